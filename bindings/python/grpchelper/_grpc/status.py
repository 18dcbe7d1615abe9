"""gRPC status codes, in the one place the package defines them.

- `StatusCode`: grpcio's grpc.StatusCode when grpcio is importable, else an equivalent
  enum of our own (values `(int code, "lowercase name")`, as grpcio's).
- The int codes (`OK`, `CANCELLED`, ... `UNAUTHENTICATED`): the header's gh_status_code
  values (GH_STATUS_*), which the C functions take and return.
- `status_code(int)` → StatusCode; `application_code(code)` → int, by grpcio's rule for
  codes set by an application.
"""

import enum

from .._native import constants as _c

try:  # pragma: no cover - which branch runs depends on the environment
    import grpc as _grpcio
except ImportError:  # pragma: no cover
    _grpcio = None

OK = _c.GH_STATUS_OK
CANCELLED = _c.GH_STATUS_CANCELLED
UNKNOWN = _c.GH_STATUS_UNKNOWN
INVALID_ARGUMENT = _c.GH_STATUS_INVALID_ARGUMENT
DEADLINE_EXCEEDED = _c.GH_STATUS_DEADLINE_EXCEEDED
NOT_FOUND = _c.GH_STATUS_NOT_FOUND
ALREADY_EXISTS = _c.GH_STATUS_ALREADY_EXISTS
PERMISSION_DENIED = _c.GH_STATUS_PERMISSION_DENIED
RESOURCE_EXHAUSTED = _c.GH_STATUS_RESOURCE_EXHAUSTED
FAILED_PRECONDITION = _c.GH_STATUS_FAILED_PRECONDITION
ABORTED = _c.GH_STATUS_ABORTED
OUT_OF_RANGE = _c.GH_STATUS_OUT_OF_RANGE
UNIMPLEMENTED = _c.GH_STATUS_UNIMPLEMENTED
INTERNAL = _c.GH_STATUS_INTERNAL
UNAVAILABLE = _c.GH_STATUS_UNAVAILABLE
DATA_LOSS = _c.GH_STATUS_DATA_LOSS
UNAUTHENTICATED = _c.GH_STATUS_UNAUTHENTICATED

if _grpcio is not None:
    StatusCode = _grpcio.StatusCode
else:
    @enum.unique
    class StatusCode(enum.Enum):
        """grpc.StatusCode's values: (int code, lowercase name)."""
        OK = (OK, "ok")
        CANCELLED = (CANCELLED, "cancelled")
        UNKNOWN = (UNKNOWN, "unknown")
        INVALID_ARGUMENT = (INVALID_ARGUMENT, "invalid argument")
        DEADLINE_EXCEEDED = (DEADLINE_EXCEEDED, "deadline exceeded")
        NOT_FOUND = (NOT_FOUND, "not found")
        ALREADY_EXISTS = (ALREADY_EXISTS, "already exists")
        PERMISSION_DENIED = (PERMISSION_DENIED, "permission denied")
        RESOURCE_EXHAUSTED = (RESOURCE_EXHAUSTED, "resource exhausted")
        FAILED_PRECONDITION = (FAILED_PRECONDITION, "failed precondition")
        ABORTED = (ABORTED, "aborted")
        OUT_OF_RANGE = (OUT_OF_RANGE, "out of range")
        UNIMPLEMENTED = (UNIMPLEMENTED, "unimplemented")
        INTERNAL = (INTERNAL, "internal")
        UNAVAILABLE = (UNAVAILABLE, "unavailable")
        DATA_LOSS = (DATA_LOSS, "data loss")
        UNAUTHENTICATED = (UNAUTHENTICATED, "unauthenticated")

_CODES = {c.value[0]: c for c in StatusCode}


def status_code(value):
    """grpc.StatusCode for an int code (UNKNOWN for codes gRPC does not define)."""
    return _CODES.get(value, StatusCode.UNKNOWN)


def application_code(code):
    """The int of a status code set by the application (set_code, abort): as grpcio's
    _application_code, UNKNOWN for anything that is not a StatusCode."""
    if isinstance(code, StatusCode):
        return code.value[0]
    return UNKNOWN
