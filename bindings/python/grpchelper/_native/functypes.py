"""The C ABI's callback types (its function-pointer typedefs) and structures, for ctypes.

CALLBACK_TYPES maps each header typedef name to its CFUNCTYPE; tests/test_ffi_header.py
compares them with the header. Part of grpchelper._native.ffi's names (ffi.GH_FREE_FN, ...):
the functions' argtypes use them.
"""

import ctypes
from ctypes import CFUNCTYPE, POINTER, c_char_p, c_int, c_size_t, c_void_p

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
# typedef void (*gh_connectivity_fn)(int state, void *user_data);
GH_CONNECTIVITY_FN = CFUNCTYPE(None, c_int, c_void_p)
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
# typedef int (*gh_log_emit_fn)(void *user_data, const char *name, int level,
#                               const char *thread, const char *file,
#                               const char *function, int line,
#                               const char *message);
GH_LOG_EMIT_FN = CFUNCTYPE(c_int, c_void_p, c_char_p, c_int, c_char_p, c_char_p, c_char_p, c_int, c_char_p)

# The header's typedef name of each callback type.
CALLBACK_TYPES = {
    "gh_free_fn": GH_FREE_FN,
    "gh_handler_fn": GH_HANDLER_FN,
    "gh_server_stopped_fn": GH_SERVER_STOPPED_FN,
    "gh_message_fn": GH_MESSAGE_FN,
    "gh_done_fn": GH_DONE_FN,
    "gh_connectivity_fn": GH_CONNECTIVITY_FN,
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


__all__ = [n for n in dir() if n.startswith("GH_")] + ["CALLBACK_TYPES", "gh_info"]
