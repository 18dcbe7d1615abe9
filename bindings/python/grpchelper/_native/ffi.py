"""The C ABI of libgrpchelper (grpchelper.h, Sources/CGRPCHelper/include), declared for ctypes.

Every function the package uses is declared here once, in the FUNCTIONS table (name →
restype, argtypes, errcheck), with its C prototype above it; callback types are in
CALLBACK_TYPES (header typedef name → CFUNCTYPE), constants in `constants`.
tests/test_ffi_header.py compares the table, the callback types and the GH_* constants
with the header, so that a difference fails the tests instead of corrupting memory.

Functions that return a gh_error int get an errcheck that turns a negative result into an
exception with the library's own message (gh_last_error, read on the same thread); a
helper-layer failure (GH_ERR_RESULT) becomes RpcException with gh_last_result_code's code.
ctypes releases the GIL around every foreign call: blocking calls let other threads run.
"""

import ctypes
from ctypes import (CFUNCTYPE, POINTER, byref, c_char_p, c_double, c_int, c_int64,
                    c_size_t, c_uint, c_void_p)

from .constants import *  # noqa: F401,F403 - the GH_* names are part of this module's API
from .constants import GH_ERR_BIND, GH_ERR_CLOSED, GH_ERR_INVALID_ARGUMENT, \
    GH_ERR_INVALID_STATE, GH_ERR_RESULT, GH_RC_ERROR, MIN_LIBRARY_VERSION
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


# --- callback types (function-pointer typedefs) ----------------------------------------

# typedef void (*gh_free_fn)(void *user_data);
GH_FREE_FN = CFUNCTYPE(None, c_void_p)
# typedef void (*gh_handler_fn)(gh_server_call *call, void *user_data);
GH_HANDLER_FN = CFUNCTYPE(None, c_void_p, c_void_p)
# typedef void (*gh_server_stopped_fn)(void *user_data);
GH_SERVER_STOPPED_FN = CFUNCTYPE(None, c_void_p)
# typedef void (*gh_message_fn)(gh_call *call, const uint8_t *data, size_t len,
#                               void *user_data);
GH_MESSAGE_FN = CFUNCTYPE(None, c_void_p, c_void_p, c_size_t, c_void_p)
# typedef void (*gh_done_fn)(gh_call *call, int status_code, void *user_data);
GH_DONE_FN = CFUNCTYPE(None, c_void_p, c_int, c_void_p)
# typedef int (*gh_config_validate_fn)(void *user_data, const char *name,
#                                      const char *value, char *message,
#                                      size_t message_size);
GH_CONFIG_VALIDATE_FN = CFUNCTYPE(c_int, c_void_p, c_char_p, c_char_p, c_void_p, c_size_t)
# typedef int (*gh_rpc_handler_fn)(gh_server_call *call, void *user_data);
GH_RPC_HANDLER_FN = CFUNCTYPE(c_int, c_void_p, c_void_p)
# typedef int (*gh_rpc_load_fn)(gh_rpc_server *server, gh_rpc_client *client,
#                               void *user_data);
GH_RPC_LOAD_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, c_void_p)
# typedef void (*gh_rpc_shutdown_fn)(void *user_data);
GH_RPC_SHUTDOWN_FN = CFUNCTYPE(None, c_void_p)
# typedef char *(*gh_rpc_dump_fn)(void *user_data);
# The string returned is handed over to the library (made by gh_strdup): c_void_p, so
# that ctypes does not convert it.
GH_RPC_DUMP_FN = CFUNCTYPE(c_void_p, c_void_p)
# typedef void (*gh_log_level_get_fn)(void *user_data, const char *name,
#                                     int *level, int *enabled);
GH_LOG_LEVEL_GET_FN = CFUNCTYPE(None, c_void_p, c_char_p, POINTER(c_int), POINTER(c_int))
# typedef int (*gh_log_threshold_fn)(void *user_data, const char *name);
GH_LOG_THRESHOLD_FN = CFUNCTYPE(c_int, c_void_p, c_char_p)
# typedef void (*gh_log_level_set_fn)(void *user_data, const char *name,
#                                     int level, int enabled);
GH_LOG_LEVEL_SET_FN = CFUNCTYPE(None, c_void_p, c_char_p, c_int, c_int)
# typedef int (*gh_log_emit_fn)(void *user_data, const char *name, int level, const char *thread,
#                               const char *file, const char *function, int line, const char *message);
GH_LOG_EMIT_FN = CFUNCTYPE(c_int, c_void_p, c_char_p, c_int, c_char_p, c_char_p, c_char_p, c_int, c_char_p)

# The header's typedef name of each callback type.
CALLBACK_TYPES = {
    "gh_free_fn": GH_FREE_FN,
    "gh_handler_fn": GH_HANDLER_FN,
    "gh_server_stopped_fn": GH_SERVER_STOPPED_FN,
    "gh_message_fn": GH_MESSAGE_FN,
    "gh_done_fn": GH_DONE_FN,
    "gh_config_validate_fn": GH_CONFIG_VALIDATE_FN,
    "gh_rpc_handler_fn": GH_RPC_HANDLER_FN,
    "gh_rpc_load_fn": GH_RPC_LOAD_FN,
    "gh_rpc_shutdown_fn": GH_RPC_SHUTDOWN_FN,
    "gh_rpc_dump_fn": GH_RPC_DUMP_FN,
    "gh_log_level_get_fn": GH_LOG_LEVEL_GET_FN, "gh_log_threshold_fn": GH_LOG_THRESHOLD_FN,
    "gh_log_level_set_fn": GH_LOG_LEVEL_SET_FN, "gh_log_emit_fn": GH_LOG_EMIT_FN,
}


class gh_info(ctypes.Structure):
    _fields_ = [("age", c_int), ("version_num", c_int), ("version_str", c_char_p)]


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

    # --- helper layer (grpc-helper): config items, folders, config sets, command line, logs

    # int gh_last_result_code(void);
    "gh_last_result_code": (c_int, [], None),

    # int gh_config_new(const char *name, const char *description, const char *default_value,
    #                   int can_be_empty, int validator, gh_config_validate_fn custom,
    #                   void *user_data, gh_free_fn free_user_data, gh_config **out);
    "gh_config_new": (c_int,
                      [c_char_p, c_char_p, c_char_p, c_int, c_int, GH_CONFIG_VALIDATE_FN, c_void_p,
                       GH_FREE_FN, POINTER(c_void_p)],
                      CHECK),
    # void gh_config_free(gh_config *config);
    "gh_config_free": (None, [c_void_p], None),
    # const char *gh_config_name(const gh_config *config);
    "gh_config_name": (c_char_p, [c_void_p], None),
    # char *gh_config_value(const gh_config *config);    (released with gh_free)
    "gh_config_value": (c_void_p, [c_void_p], None),
    # char *gh_config_default_value(const gh_config *config);    (released with gh_free)
    "gh_config_default_value": (c_void_p, [c_void_p], None),
    # int gh_config_int_value(const gh_config *config, int64_t *out);
    "gh_config_int_value": (c_int, [c_void_p, POINTER(c_int64)], CHECK),
    # int gh_config_float_value(const gh_config *config, double *out);
    "gh_config_float_value": (c_int, [c_void_p, POINTER(c_double)], CHECK),
    # int gh_config_describe(const gh_config *config, uint8_t **data, size_t *len);
    "gh_config_describe": (c_int, [c_void_p, POINTER(c_void_p), POINTER(c_size_t)], CHECK),
    # int gh_config_validate(const gh_config *config, const char *value);
    "gh_config_validate": (c_int, [c_void_p, c_char_p], CHECK),
    # int gh_config_update(gh_config *config, const char *value);
    "gh_config_update": (c_int, [c_void_p, c_char_p], CHECK),
    # int gh_config_reset(gh_config *config);
    "gh_config_reset": (c_int, [c_void_p], CHECK),
    # int gh_config_static_items(gh_config ***items, size_t *count);
    "gh_config_static_items": (c_int, [POINTER(POINTER(c_void_p)), POINTER(c_size_t)], CHECK),

    # int gh_folders_new(const char *system, const char *user, const char *workspace,
    #                    gh_folders **out);
    "gh_folders_new": (c_int, [c_char_p, c_char_p, c_char_p, POINTER(c_void_p)], CHECK),
    # void gh_folders_free(gh_folders *folders);
    "gh_folders_free": (None, [c_void_p], None),
    # const char *gh_folders_system(const gh_folders *folders);
    "gh_folders_system": (c_char_p, [c_void_p], None),
    # int gh_folders_user(const gh_folders *folders, const char **path);
    "gh_folders_user": (c_int, [c_void_p, POINTER(c_char_p)], CHECK),
    # int gh_folders_workspace(const gh_folders *folders, const char **path);
    "gh_folders_workspace": (c_int, [c_void_p, POINTER(c_char_p)], CHECK),

    # int gh_config_set_new(gh_config *const *static_items, size_t static_count,
    #                       gh_config *const *user_items, size_t user_count,
    #                       const gh_folders *folders, const char *const *cli_config,
    #                       size_t cli_count, gh_config_set **out);
    "gh_config_set_new": (c_int,
                          [POINTER(c_void_p), c_size_t, POINTER(c_void_p), c_size_t, c_void_p,
                           POINTER(c_char_p), c_size_t, POINTER(c_void_p)],
                          CHECK),
    # void gh_config_set_free(gh_config_set *set);
    "gh_config_set_free": (None, [c_void_p], None),
    # gh_config *gh_config_set_item(gh_config_set *set, const char *name);    (borrowed)
    "gh_config_set_item": (c_void_p, [c_void_p, c_char_p], None),
    # size_t gh_config_set_warning_count(const gh_config_set *set);
    "gh_config_set_warning_count": (c_size_t, [c_void_p], None),
    # const char *gh_config_set_warning(const gh_config_set *set, size_t index);
    "gh_config_set_warning": (c_char_p, [c_void_p, c_size_t], None),
    # int gh_config_set_get(gh_config_set *set, const uint8_t *request, size_t request_len,
    #                       uint8_t **response, size_t *response_len);
    "gh_config_set_get": (c_int,
                          [c_void_p, c_char_p, c_size_t, POINTER(c_void_p), POINTER(c_size_t)],
                          CHECK),
    # int gh_config_set_set(gh_config_set *set, const uint8_t *request, size_t request_len,
    #                       uint8_t **response, size_t *response_len);
    "gh_config_set_set": (c_int,
                          [c_void_p, c_char_p, c_size_t, POINTER(c_void_p), POINTER(c_size_t)],
                          CHECK),
    # int gh_config_set_reset(gh_config_set *set, const uint8_t *request, size_t request_len,
    #                         uint8_t **response, size_t *response_len);
    "gh_config_set_reset": (c_int,
                            [c_void_p, c_char_p, c_size_t, POINTER(c_void_p), POINTER(c_size_t)],
                            CHECK),
    # int gh_config_set_update(gh_config_set *set, const char *name, const char *value);
    "gh_config_set_update": (c_int, [c_void_p, c_char_p, c_char_p], CHECK),

    # int gh_cli_parse(int argc, const char *const *argv, const char *description,
    #                  const char *version, int default_port, const char *default_system,
    #                  const char *default_user, const char *default_workspace, gh_cli **out);
    "gh_cli_parse": (c_int,
                     [c_int, POINTER(c_char_p), c_char_p, c_char_p, c_int, c_char_p, c_char_p,
                      c_char_p, POINTER(c_void_p)],
                     CHECK),
    # void gh_cli_free(gh_cli *cli);
    "gh_cli_free": (None, [c_void_p], None),
    # int gh_cli_exit_code(const gh_cli *cli);
    "gh_cli_exit_code": (c_int, [c_void_p], None),
    # const char *gh_cli_message(const gh_cli *cli);
    "gh_cli_message": (c_char_p, [c_void_p], None),
    # int gh_cli_port(const gh_cli *cli);
    "gh_cli_port": (c_int, [c_void_p], None),
    # int gh_cli_folders(const gh_cli *cli, gh_folders **out);
    "gh_cli_folders": (c_int, [c_void_p, POINTER(c_void_p)], CHECK),
    # int gh_cli_config(const gh_cli *cli, const char *const **config, size_t *count);
    "gh_cli_config": (c_int, [c_void_p, POINTER(POINTER(c_char_p)), POINTER(c_size_t)], CHECK),
    # int gh_cli_rest(const gh_cli *cli, int *argc, const char *const **argv);
    "gh_cli_rest": (c_int, [c_void_p, POINTER(c_int), POINTER(POINTER(c_char_p))], CHECK),

    # int gh_logs_new(const char *folder, const char *unit, int interval, int backup,
    #                 const gh_folders *folders, gh_logs **out);
    "gh_logs_new": (c_int, [c_char_p, c_char_p, c_int, c_int, c_void_p, POINTER(c_void_p)], CHECK),
    # int gh_logs_new_from_config(const gh_config_set *set, gh_logs **out);
    "gh_logs_new_from_config": (c_int, [c_void_p, POINTER(c_void_p)], CHECK),
    # void gh_logs_free(gh_logs *logs);
    "gh_logs_free": (None, [c_void_p], None),
    # const char *gh_logs_folder(const gh_logs *logs);
    "gh_logs_folder": (c_char_p, [c_void_p], None),
    # int gh_logs_enabled(const gh_logs *logs, const char *name, int level);
    "gh_logs_enabled": (c_int, [c_void_p, c_char_p, c_int], None),
    # int gh_logs_write(gh_logs *logs, const char *name, int level, const char *message);
    "gh_logs_write": (c_int, [c_void_p, c_char_p, c_int, c_char_p], CHECK),
    # int gh_logs_write_record(gh_logs *logs, const char *name, const char *record_name,
    #                          int level, const char *thread, const char *file,
    #                          const char *function, int line, const char *message);
    "gh_logs_write_record": (c_int,
                             [c_void_p, c_char_p, c_char_p, c_int, c_char_p, c_char_p, c_char_p,
                              c_int, c_char_p],
                             CHECK),
    # int gh_logs_use_level_source(gh_log_level_get_fn get,
    #                              gh_log_threshold_fn threshold,
    #                              gh_log_level_set_fn set, gh_log_emit_fn emit,
    #                              void *user_data, gh_free_fn free_user_data);
    "gh_logs_use_level_source": (c_int, [GH_LOG_LEVEL_GET_FN, GH_LOG_THRESHOLD_FN,
                                         GH_LOG_LEVEL_SET_FN, GH_LOG_EMIT_FN, c_void_p,
                                         GH_FREE_FN], CHECK),
    # int gh_logs_write_handled(gh_logs *logs, const char *name,
    #                           const char *record_name, int level,
    #                           const char *thread, const char *file,
    #                           const char *function, int line,
    #                           const char *message);
    "gh_logs_write_handled": (c_int, [c_void_p, c_char_p, c_char_p, c_int, c_char_p, c_char_p,
                                      c_char_p, c_int, c_char_p], CHECK),
    # int gh_logs_get(gh_logs *logs, const uint8_t *request, size_t request_len,
    #                 uint8_t **response, size_t *response_len);
    "gh_logs_get": (c_int,
                    [c_void_p, c_char_p, c_size_t, POINTER(c_void_p), POINTER(c_size_t)],
                    CHECK),
    # int gh_logs_set(gh_logs *logs, const uint8_t *request, size_t request_len,
    #                 uint8_t **response, size_t *response_len);
    "gh_logs_set": (c_int,
                    [c_void_p, c_char_p, c_size_t, POINTER(c_void_p), POINTER(c_size_t)],
                    CHECK),
    # int gh_logs_reset(gh_logs *logs, const uint8_t *request, size_t request_len,
    #                   uint8_t **response, size_t *response_len);
    "gh_logs_reset": (c_int,
                      [c_void_p, c_char_p, c_size_t, POINTER(c_void_p), POINTER(c_size_t)],
                      CHECK),

    # --- managed RPC server and client (grpc-helper's RpcServer and RpcClient)

    # void gh_rpc_error(const char *message, const char *stack);
    "gh_rpc_error": (None, [c_char_p, c_char_p], None),

    # int gh_rpc_service_new(const char *name, const char *service_name, const char *version,
    #                        unsigned supported_api_version, unsigned current_api_version,
    #                        gh_rpc_service **out);
    "gh_rpc_service_new": (c_int,
                           [c_char_p, c_char_p, c_char_p, c_uint, c_uint, POINTER(c_void_p)],
                           CHECK),
    # int gh_rpc_service_add_method(gh_rpc_service *service, const char *method,
    #                               gh_cardinality cardinality, gh_rpc_handler_fn fn,
    #                               void *user_data, gh_free_fn free_user_data);
    "gh_rpc_service_add_method": (c_int,
                                  [c_void_p, c_char_p, c_int, GH_RPC_HANDLER_FN, c_void_p,
                                   GH_FREE_FN],
                                  CHECK),
    # int gh_rpc_service_set_manager(gh_rpc_service *service, const char *logger_name,
    #                                gh_rpc_load_fn load, gh_rpc_shutdown_fn shutdown,
    #                                void *user_data, gh_free_fn free_user_data);
    "gh_rpc_service_set_manager": (c_int,
                                   [c_void_p, c_char_p, GH_RPC_LOAD_FN, GH_RPC_SHUTDOWN_FN,
                                    c_void_p, GH_FREE_FN],
                                   CHECK),
    # int gh_rpc_service_set_proxy(gh_rpc_service *service, int is_proxy);
    "gh_rpc_service_set_proxy": (c_int, [c_void_p, c_int], CHECK),
    # void gh_rpc_service_free(gh_rpc_service *service);
    "gh_rpc_service_free": (None, [c_void_p], None),

    # int gh_rpc_server_new(int port, gh_rpc_service *const *services, size_t count,
    #                       const gh_folders *folders, const char *const *cli_config,
    #                       size_t cli_count, gh_config *const *static_items,
    #                       size_t static_count, gh_config *const *user_items,
    #                       size_t user_count, int flags, gh_rpc_server **out);
    "gh_rpc_server_new": (c_int,
                          [c_int, POINTER(c_void_p), c_size_t, c_void_p, POINTER(c_char_p),
                           c_size_t, POINTER(c_void_p), c_size_t, POINTER(c_void_p), c_size_t,
                           c_int, POINTER(c_void_p)],
                          CHECK),
    # int gh_rpc_server_port(const gh_rpc_server *server);
    "gh_rpc_server_port": (c_int, [c_void_p], None),
    # gh_config_set *gh_rpc_server_config(gh_rpc_server *server);    (borrowed)
    "gh_rpc_server_config": (c_void_p, [c_void_p], None),
    # gh_logs *gh_rpc_server_logs(gh_rpc_server *server);    (borrowed)
    "gh_rpc_server_logs": (c_void_p, [c_void_p], None),
    # int gh_rpc_server_is_running(const gh_rpc_server *server);
    "gh_rpc_server_is_running": (c_int, [c_void_p], None),
    # int gh_rpc_server_shutdown(gh_rpc_server *server);
    "gh_rpc_server_shutdown": (c_int, [c_void_p], CHECK),
    # int gh_rpc_server_begin_shutdown(gh_rpc_server *server);
    "gh_rpc_server_begin_shutdown": (c_int, [c_void_p], CHECK),
    # int gh_rpc_server_wait_shutdown(gh_rpc_server *server, double timeout);
    "gh_rpc_server_wait_shutdown": (c_int, [c_void_p, c_double], CHECK),
    # int gh_rpc_server_info(gh_rpc_server *server, const uint8_t *request, size_t request_len,
    #                        uint8_t **response, size_t *response_len);
    "gh_rpc_server_info": (c_int,
                           [c_void_p, c_char_p, c_size_t, POINTER(c_void_p), POINTER(c_size_t)],
                           CHECK),
    # int gh_rpc_server_handle_exit_signals(gh_rpc_server *server);
    "gh_rpc_server_handle_exit_signals": (c_int, [c_void_p], CHECK),
    # int gh_rpc_server_set_dump_fn(gh_rpc_server *server, gh_rpc_dump_fn fn, void *user_data,
    #                               gh_free_fn free_user_data);
    "gh_rpc_server_set_dump_fn": (c_int, [c_void_p, GH_RPC_DUMP_FN, c_void_p, GH_FREE_FN], CHECK),
    # void gh_rpc_server_free(gh_rpc_server *server);
    "gh_rpc_server_free": (None, [c_void_p], None),
    # void gh_rpc_server_release(gh_rpc_server *server);
    "gh_rpc_server_release": (None, [c_void_p], None),

    # int gh_rpc_client_new(const char *host, int port, double timeout, const char *name,
    #                       int raise_errors, gh_rpc_client **out);
    "gh_rpc_client_new": (c_int,
                          [c_char_p, c_int, c_double, c_char_p, c_int, POINTER(c_void_p)],
                          CHECK),
    # int gh_rpc_client_add_stub(gh_rpc_client *client, const char *name,
    #                            const char *service_name, unsigned api_version);
    "gh_rpc_client_add_stub": (c_int, [c_void_p, c_char_p, c_char_p, c_uint], CHECK),
    # int gh_rpc_client_call(gh_rpc_client *client, const char *stub, const char *method,
    #                        const uint8_t *request, size_t request_len, double call_timeout,
    #                        uint8_t **response, size_t *response_len);
    "gh_rpc_client_call": (c_int,
                           [c_void_p, c_char_p, c_char_p, c_char_p, c_size_t, c_double,
                            POINTER(c_void_p), POINTER(c_size_t)],
                           CHECK),
    # int gh_rpc_client_call_metadata(gh_rpc_client *client, const char *stub,
    #                                 gh_metadata **out);
    "gh_rpc_client_call_metadata": (c_int, [c_void_p, c_char_p, POINTER(c_void_p)], CHECK),
    # int gh_rpc_client_stream(gh_rpc_client *client, const char *stub, const char *method,
    #                          const uint8_t *request, size_t request_len, double call_timeout,
    #                          gh_rpc_responses **out);
    "gh_rpc_client_stream": (c_int,
                             [c_void_p, c_char_p, c_char_p, c_char_p, c_size_t, c_double,
                              POINTER(c_void_p)],
                             CHECK),
    # int gh_rpc_responses_next(gh_rpc_responses *responses, uint8_t **data, size_t *len);
    "gh_rpc_responses_next": (c_int, [c_void_p, POINTER(c_void_p), POINTER(c_size_t)], CHECK),
    # void gh_rpc_responses_free(gh_rpc_responses *responses);
    "gh_rpc_responses_free": (None, [c_void_p], None),
    # int gh_rpc_result_code(const uint8_t *response, size_t len);
    "gh_rpc_result_code": (c_int, [c_char_p, c_size_t], None),
    # void gh_rpc_client_free(gh_rpc_client *client);
    "gh_rpc_client_free": (None, [c_void_p], None),
}


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
