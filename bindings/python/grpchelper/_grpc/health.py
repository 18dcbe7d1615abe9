"""Health checking (grpc.health.v1.Health) served by the library: the statuses and the
calls a server's and an RpcServer's methods share."""

import enum
from ctypes import byref, c_int

from .._native import ffi


class HealthStatus(enum.IntEnum):
    """A service's serving status: the values of grpc_health.v1.health_pb2.
    HealthCheckResponse's ServingStatus (either may be given where a status is taken)."""
    UNKNOWN = 0
    SERVING = 1
    NOT_SERVING = 2
    SERVICE_UNKNOWN = 3     # only in Watch answers: an unknown service


def settable(status):
    """`status` as the library takes it: UNKNOWN, SERVING or NOT_SERVING (an int, a
    HealthStatus or a health_pb2 value); ValueError otherwise."""
    try:
        s = HealthStatus(int(status))
    except (TypeError, ValueError):
        raise ValueError("not a health status: %r" % (status,))
    if s == HealthStatus.SERVICE_UNKNOWN:
        raise ValueError("SERVICE_UNKNOWN cannot be set (UNKNOWN, SERVING or NOT_SERVING)")
    return int(s)


def service_name(service):
    if isinstance(service, bytes):
        service = service.decode()
    if not isinstance(service, str):
        raise TypeError("a service name is a str, got %r" % (service,))
    return service.encode()


def get(fn, ptr, service):
    """The status from a gh_*_get_health function; None for an unknown service."""
    out = c_int()
    fn(ptr, service_name(service), byref(out))
    s = HealthStatus(out.value)
    return None if s == HealthStatus.SERVICE_UNKNOWN else s
