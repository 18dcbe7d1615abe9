"""The C ABI of libgrpchelper (grpchelper.h, Sources/CGRPCHelper/include), declared for ctypes.

Every function the package uses is declared once, in the FUNCTIONS table (name →
restype, argtypes, errcheck), with its C prototype above it: the core's (server, channel,
calls, metadata) here, the helper layer's in `ffi_helper`, merged into FUNCTIONS below.
Callback types are in `functypes` (CALLBACK_TYPES: header typedef name → CFUNCTYPE),
constants in `constants`; this module re-exports both, so `ffi.<name>` reaches every
function, callback type and GH_* constant. tests/test_ffi_header.py compares the table,
the callback types and the GH_* constants with the header, so that a difference fails the
tests instead of corrupting memory.

Functions that return a gh_error int get an errcheck that turns a negative result into an
exception with the library's own message (gh_last_error, read on the same thread); a
helper-layer failure (GH_ERR_RESULT) becomes RpcException with gh_last_result_code's code.
ctypes releases the GIL around every foreign call: blocking calls let other threads run.
"""

from ctypes import POINTER, byref, c_char_p, c_double, c_int, c_int64, c_size_t, c_uint64, \
    c_void_p

from .constants import *  # noqa: F401,F403 - the GH_* names are part of this module's API
from .constants import GH_ERR_BIND, GH_ERR_CLOSED, GH_ERR_INVALID_ARGUMENT, \
    GH_ERR_INVALID_STATE, GH_ERR_RESULT, GH_RC_ERROR, MIN_LIBRARY_VERSION
from .functypes import *  # noqa: F401,F403 - the callback types are part of this module's API
from .functypes import CALLBACK_TYPES, GH_CONNECTIVITY_FN, GH_DONE_FN, GH_FREE_FN, \
    GH_HANDLER_FN, GH_MESSAGE_FN, GH_SERVER_STOPPED_FN, gh_info
from . import ffi_helper
from .library import load_library

class GrpcHelperError(Exception):
    """A gh_ function failed: `.code` is the gh_error, the text is the library's message."""

    def __init__(self, code, message):
        super().__init__("%s (%s)" % (message, code))
        self.code = code
        self.message = message


class InvalidArgumentError(GrpcHelperError, ValueError):
    pass


class InvalidStateError(GrpcHelperError):
    pass


class ClosedError(GrpcHelperError):
    pass


class BindError(GrpcHelperError, OSError):
    pass


_ERRORS = {
    GH_ERR_INVALID_ARGUMENT: InvalidArgumentError,
    GH_ERR_INVALID_STATE: InvalidStateError,
    GH_ERR_CLOSED: ClosedError,
    GH_ERR_BIND: BindError,
}


lib = load_library()


def _check(rc, func, args):
    if rc < 0:
        # Both are per thread and read before any other gh_ call of this thread.
        result_code = gh_last_result_code() if rc == GH_ERR_RESULT else 0
        msg = lib.gh_last_error()
        text = msg.decode("utf-8", "replace") if msg else ""
        if rc == GH_ERR_RESULT:
            # A helper-layer failure: grpc-helper's RpcException(message, ResultCode).
            # Imported here: errors needs protobuf, which `import grpchelper` does not.
            from .._helper.errors import RpcException
            raise RpcException(text, result_code or GH_RC_ERROR)
        raise _ERRORS.get(rc, GrpcHelperError)(rc, text or lib.gh_strerror(rc).decode())
    return rc


# --- functions ---------------------------------------------------------------------------
# name: (restype, argtypes, errcheck), each below its C prototype (as in the header).
# CHECK: a negative gh_error result raises (see _check). The package calls only functions
# listed here; tests/test_ffi_header.py compares the table with the header.

CHECK = _check

FUNCTIONS = {
    # const gh_info *gh_version(int least_version_num);
    "gh_version": (POINTER(gh_info), [c_int], None),
    # const char *gh_strerror(int code);
    "gh_strerror": (c_char_p, [c_int], None),
    # const char *gh_last_error(void);
    "gh_last_error": (c_char_p, [], None),
    # void gh_free(void *p);
    "gh_free": (None, [c_void_p], None),
    # char *gh_strdup(const char *s);
    # Returns c_void_p: the copy is handed over as it is (gh_free, or to the library).
    "gh_strdup": (c_void_p, [c_char_p], None),
    # int gh_thread_is_library(void);
    "gh_thread_is_library": (c_int, [], None),

    # int gh_metadata_new(gh_metadata **out);
    "gh_metadata_new": (c_int, [POINTER(c_void_p)], CHECK),
    # void gh_metadata_free(gh_metadata *md);
    "gh_metadata_free": (None, [c_void_p], None),
    # int gh_metadata_add(gh_metadata *md, const char *key, const char *value);
    "gh_metadata_add": (c_int, [c_void_p, c_char_p, c_char_p], CHECK),
    # int gh_metadata_key_is_managed(const char *key);
    "gh_metadata_key_is_managed": (c_int, [c_char_p], None),
    # int gh_metadata_add_bin(gh_metadata *md, const char *key, const uint8_t *value,
    #                         size_t len);
    "gh_metadata_add_bin": (c_int, [c_void_p, c_char_p, c_char_p, c_size_t], CHECK),
    # size_t gh_metadata_count(const gh_metadata *md);
    "gh_metadata_count": (c_size_t, [c_void_p], None),
    # int gh_metadata_get(const gh_metadata *md, size_t index, const char **key,
    #                     const uint8_t **value, size_t *len);
    "gh_metadata_get": (c_int,
                        [c_void_p, c_size_t, POINTER(c_char_p), POINTER(c_void_p),
                         POINTER(c_size_t)],
                        CHECK),

    # int gh_server_new(gh_server **out);
    "gh_server_new": (c_int, [POINTER(c_void_p)], CHECK),
    # int gh_server_set_int(gh_server *s, gh_opt option, int64_t value);
    "gh_server_set_int": (c_int, [c_void_p, c_int, c_int64], CHECK),
    # int gh_server_add_listener(gh_server *s, const char *address);
    "gh_server_add_listener": (c_int, [c_void_p, c_char_p], CHECK),

    # int gh_server_bind(gh_server *s, const char *address, int *port);
    "gh_server_bind": (c_int, [c_void_p, c_char_p, POINTER(c_int)], CHECK),

    # int gh_server_register(gh_server *s, const char *method, gh_cardinality cardinality,
    #                        gh_handler_fn fn, void *user_data, gh_free_fn free_user_data);
    "gh_server_register": (c_int,
                           [c_void_p, c_char_p, c_int, GH_HANDLER_FN, c_void_p, GH_FREE_FN],
                           CHECK),
    # int gh_server_register_fallback(gh_server *s, gh_handler_fn fn, void *user_data,
    #                                 gh_free_fn free_user_data);
    "gh_server_register_fallback": (c_int, [c_void_p, GH_HANDLER_FN, c_void_p, GH_FREE_FN], CHECK),
    # int gh_server_start(gh_server *s);
    "gh_server_start": (c_int, [c_void_p], CHECK),
    # int gh_server_enable_health(gh_server *s);
    "gh_server_enable_health": (c_int, [c_void_p], CHECK),
    # int gh_server_set_health(gh_server *s, const char *service, gh_health_status status);
    "gh_server_set_health": (c_int, [c_void_p, c_char_p, c_int], CHECK),
    # int gh_server_clear_health(gh_server *s, const char *service);
    "gh_server_clear_health": (c_int, [c_void_p, c_char_p], CHECK),
    # int gh_server_get_health(gh_server *s, const char *service, gh_health_status *status);
    "gh_server_get_health": (c_int, [c_void_p, c_char_p, POINTER(c_int)], CHECK),
    # int gh_server_enable_reflection(gh_server *s);
    "gh_server_enable_reflection": (c_int, [c_void_p], CHECK),
    # int gh_server_add_descriptor_set(gh_server *s, const uint8_t *data, size_t len);
    "gh_server_add_descriptor_set": (c_int, [c_void_p, c_char_p, c_size_t], CHECK),
    # int gh_server_add_file_descriptor(gh_server *s, const uint8_t *data, size_t len);
    "gh_server_add_file_descriptor": (c_int, [c_void_p, c_char_p, c_size_t], CHECK),
    # int gh_server_port(const gh_server *s, size_t index, int *port);
    "gh_server_port": (c_int, [c_void_p, c_size_t, POINTER(c_int)], CHECK),
    # int gh_server_shutdown(gh_server *s, double grace_seconds);
    "gh_server_shutdown": (c_int, [c_void_p, c_double], CHECK),
    # int gh_server_begin_shutdown(gh_server *s, double grace_seconds,
    #                              gh_server_stopped_fn on_stopped, void *user_data);
    "gh_server_begin_shutdown": (c_int, [c_void_p, c_double, GH_SERVER_STOPPED_FN, c_void_p],
                                 CHECK),
    # int gh_server_wait(gh_server *s);
    "gh_server_wait": (c_int, [c_void_p], CHECK),
    # void gh_server_free(gh_server *s);
    "gh_server_free": (None, [c_void_p], None),
    # void gh_server_release(gh_server *s);
    "gh_server_release": (None, [c_void_p], None),

    # const char *gh_server_call_method(const gh_server_call *call);
    "gh_server_call_method": (c_char_p, [c_void_p], None),
    # const gh_metadata *gh_server_call_request_metadata(const gh_server_call *call);
    "gh_server_call_request_metadata": (c_void_p, [c_void_p], None),
    # const char *gh_server_call_peer(const gh_server_call *call);
    "gh_server_call_peer": (c_char_p, [c_void_p], None),
    # const char *gh_server_call_user_agent(const gh_server_call *call);
    "gh_server_call_user_agent": (c_char_p, [c_void_p], None),
    # double gh_server_call_time_remaining(const gh_server_call *call);
    "gh_server_call_time_remaining": (c_double, [c_void_p], None),
    # int gh_server_call_is_cancelled(const gh_server_call *call);
    "gh_server_call_is_cancelled": (c_int, [c_void_p], None),
    # int gh_server_call_wait_done(gh_server_call *call, double timeout_seconds);
    "gh_server_call_wait_done": (c_int, [c_void_p, c_double], CHECK),
    # int gh_server_call_read(gh_server_call *call, const uint8_t **data, size_t *len);
    "gh_server_call_read": (c_int, [c_void_p, POINTER(c_void_p), POINTER(c_size_t)], None),
    # int gh_server_call_send_initial_metadata(gh_server_call *call, const gh_metadata *md);
    "gh_server_call_send_initial_metadata": (c_int, [c_void_p, c_void_p], None),
    # int gh_server_call_set_compression(gh_server_call *call, int compression);
    "gh_server_call_set_compression": (c_int, [c_void_p, c_int], None),
    # int gh_server_call_send(gh_server_call *call, const uint8_t *data, size_t len, int flags);
    "gh_server_call_send": (c_int, [c_void_p, c_char_p, c_size_t, c_int], None),
    # int gh_server_call_set_trailing_metadata(gh_server_call *call, const gh_metadata *md);
    "gh_server_call_set_trailing_metadata": (c_int, [c_void_p, c_void_p], CHECK),
    # int gh_server_call_finish(gh_server_call *call, int code, const char *message,
    #                           const uint8_t *details, size_t details_len);
    "gh_server_call_finish": (c_int, [c_void_p, c_int, c_char_p, c_char_p, c_size_t], None),

    # int gh_channel_new(gh_channel **out, const char *target);
    "gh_channel_new": (c_int, [POINTER(c_void_p), c_char_p], CHECK),
    # int gh_channel_set_int(gh_channel *ch, gh_opt option, int64_t value);
    "gh_channel_set_int": (c_int, [c_void_p, c_int, c_int64], CHECK),
    # int gh_channel_set_str(gh_channel *ch, gh_opt option, const char *value);
    "gh_channel_set_str": (c_int, [c_void_p, c_int, c_char_p], CHECK),
    # int gh_channel_connectivity(gh_channel *ch, int try_to_connect);
    "gh_channel_connectivity": (c_int, [c_void_p, c_int], CHECK),
    # int gh_channel_watch_connectivity(gh_channel *ch, int try_to_connect,
    #                                   gh_connectivity_fn fn, void *user_data,
    #                                   gh_free_fn free_user_data, uint64_t *watch);
    "gh_channel_watch_connectivity": (c_int,
                                      [c_void_p, c_int, GH_CONNECTIVITY_FN, c_void_p, GH_FREE_FN,
                                       POINTER(c_uint64)],
                                      CHECK),
    # int gh_channel_unwatch_connectivity(gh_channel *ch, uint64_t watch);
    "gh_channel_unwatch_connectivity": (c_int, [c_void_p, c_uint64], CHECK),
    # void gh_channel_free(gh_channel *ch);
    "gh_channel_free": (None, [c_void_p], None),

    # int gh_call_new(gh_channel *ch, const char *method, gh_call **out);
    "gh_call_new": (c_int, [c_void_p, c_char_p, POINTER(c_void_p)], CHECK),
    # int gh_call_set_timeout(gh_call *call, double seconds);
    "gh_call_set_timeout": (c_int, [c_void_p, c_double], CHECK),
    # int gh_call_set_metadata(gh_call *call, const gh_metadata *md);
    "gh_call_set_metadata": (c_int, [c_void_p, c_void_p], CHECK),
    # int gh_call_set_compression(gh_call *call, int compression);
    "gh_call_set_compression": (c_int, [c_void_p, c_int], CHECK),
    # int gh_call_set_wait_for_ready(gh_call *call, int enabled);
    "gh_call_set_wait_for_ready": (c_int, [c_void_p, c_int], CHECK),
    # int gh_call_start(gh_call *call);
    "gh_call_start": (c_int, [c_void_p], CHECK),
    # int gh_call_send(gh_call *call, const uint8_t *data, size_t len, int flags);
    "gh_call_send": (c_int, [c_void_p, c_char_p, c_size_t, c_int], None),
    # int gh_call_close_send(gh_call *call);
    "gh_call_close_send": (c_int, [c_void_p], None),
    # int gh_call_recv(gh_call *call, const uint8_t **data, size_t *len);
    "gh_call_recv": (c_int, [c_void_p, POINTER(c_void_p), POINTER(c_size_t)], CHECK),
    # int gh_call_wait(gh_call *call);
    "gh_call_wait": (c_int, [c_void_p], CHECK),
    # int gh_call_status(const gh_call *call);
    "gh_call_status": (c_int, [c_void_p], None),
    # const char *gh_call_status_message(const gh_call *call);
    "gh_call_status_message": (c_char_p, [c_void_p], None),
    # int gh_call_status_details(const gh_call *call, const uint8_t **data, size_t *len);
    "gh_call_status_details": (c_int, [c_void_p, POINTER(c_void_p), POINTER(c_size_t)], CHECK),
    # const gh_metadata *gh_call_initial_metadata(gh_call *call);
    "gh_call_initial_metadata": (c_void_p, [c_void_p], None),
    # const gh_metadata *gh_call_trailing_metadata(const gh_call *call);
    "gh_call_trailing_metadata": (c_void_p, [c_void_p], None),
    # int gh_call_cancel(gh_call *call);
    "gh_call_cancel": (c_int, [c_void_p], CHECK),
    # int gh_call_unary(gh_call *call, const uint8_t *request, size_t request_len,
    #                   const uint8_t **response, size_t *response_len);
    "gh_call_unary": (c_int,
                      [c_void_p, c_char_p, c_size_t, POINTER(c_void_p), POINTER(c_size_t)],
                      None),

    # int gh_call_start_async(gh_call *call, gh_message_fn on_message, gh_done_fn on_done,
    #                         void *user_data);
    "gh_call_start_async": (c_int, [c_void_p, GH_MESSAGE_FN, GH_DONE_FN, c_void_p], CHECK),
    # int gh_call_start_unary_async(gh_call *call, const uint8_t *request, size_t request_len,
    #                               gh_message_fn on_message, gh_done_fn on_done,
    #                               void *user_data);
    "gh_call_start_unary_async": (c_int,
                                  [c_void_p, c_char_p, c_size_t, GH_MESSAGE_FN, GH_DONE_FN,
                                   c_void_p],
                                  CHECK),
    # void gh_call_free(gh_call *call);
    "gh_call_free": (None, [c_void_p], None),
}
# The helper layer's functions (config items, folders, config sets, command line, logs,
# managed RPC server and client): ffi_helper.py.
FUNCTIONS.update(ffi_helper.functions(CHECK))


def _declare(functions):
    """Sets restype, argtypes and errcheck of each lib function; module globals of them.
    ImportError naming the functions the loaded library lacks (a build older than the
    package), before declaring any."""
    missing = [name for name in functions if not hasattr(lib, name)]
    if missing:
        raise ImportError("libgrpchelper (%s) lacks %s, which this package uses: it is "
                          "older than the package" % (lib._name, ", ".join(missing)))
    for name, (restype, argtypes, errcheck) in functions.items():
        f = getattr(lib, name)
        f.restype = restype
        f.argtypes = argtypes
        if errcheck is not None:
            f.errcheck = errcheck
        globals()[name] = f


_declare(FUNCTIONS)


def last_error():
    msg = gh_last_error()
    return msg.decode("utf-8", "replace") if msg else ""


def raise_for(rc):
    """Raises the exception for a negative gh_error result of a function without errcheck."""
    if rc < 0:
        _check(rc, None, None)
    return rc


def version():
    info = gh_version(0)
    return info.contents.version_str.decode()


__all__ = [n for n in dir() if n.startswith(("gh_", "GH_"))] + [
    "GrpcHelperError", "InvalidArgumentError", "InvalidStateError", "ClosedError",
    "BindError", "lib", "load_library", "last_error", "raise_for", "version",
    "FUNCTIONS", "CALLBACK_TYPES", "CHECK", "gh_info",
    "MIN_LIBRARY_VERSION", "byref",
]
