"""The helper layer's C functions (grpc-helper: config items, folders, config sets,
command line, logs, the managed RPC server and client), declared for ctypes: the second
part of grpchelper._native.ffi.FUNCTIONS, which declares them with the rest.

`functions(CHECK)` returns the table, in ffi.FUNCTIONS' form (name → (restype, argtypes,
errcheck), each below its C prototype); CHECK is ffi's errcheck that turns a negative
gh_error result into an exception. tests/test_ffi_header.py compares it with the header.
"""

from ctypes import POINTER, c_char_p, c_double, c_int, c_int64, c_size_t, c_uint, c_void_p

from .functypes import GH_CONFIG_VALIDATE_FN, GH_FREE_FN, GH_LOG_EMIT_FN, \
    GH_LOG_LEVEL_GET_FN, GH_LOG_LEVEL_SET_FN, GH_LOG_THRESHOLD_FN, GH_RPC_DUMP_FN, \
    GH_RPC_HANDLER_FN, GH_RPC_LOAD_FN, GH_RPC_SHUTDOWN_FN


def functions(CHECK):  # noqa: N803 - the name the table's entries use, as in ffi.py
    """The helper layer's part of ffi.FUNCTIONS, with CHECK as the errcheck of the
    functions that return a gh_error."""
    return {
        # int gh_last_result_code(void);
        "gh_last_result_code": (c_int, [], None),

        # int gh_config_new(const char *name, const char *description, const char *default_value,
        #                   int can_be_empty, int validator, gh_config_validate_fn custom,
        #                   void *user_data, gh_free_fn free_user_data, gh_config **out);
        "gh_config_new": (c_int,
                          [c_char_p, c_char_p, c_char_p, c_int, c_int, GH_CONFIG_VALIDATE_FN,
                           c_void_p, GH_FREE_FN, POINTER(c_void_p)],
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
                                [c_void_p, c_char_p, c_size_t, POINTER(c_void_p),
                                 POINTER(c_size_t)],
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
        "gh_logs_new": (c_int, [c_char_p, c_char_p, c_int, c_int, c_void_p, POINTER(c_void_p)],
                        CHECK),
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
        # int gh_logs_cache_thresholds(int enable);
        "gh_logs_cache_thresholds": (c_int, [c_int], CHECK),
        # void gh_logs_levels_changed(void);
        "gh_logs_levels_changed": (None, [], None),
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
        # int gh_rpc_service_add_descriptor_set(gh_rpc_service *service, const uint8_t *data,
        #                                       size_t len);
        "gh_rpc_service_add_descriptor_set": (c_int, [c_void_p, c_char_p, c_size_t], CHECK),
        # int gh_rpc_service_add_file_descriptor(gh_rpc_service *service, const uint8_t *data,
        #                                        size_t len);
        "gh_rpc_service_add_file_descriptor": (c_int, [c_void_p, c_char_p, c_size_t], CHECK),
        # int gh_rpc_server_set_health(gh_rpc_server *server, const char *service,
        #                              gh_health_status status);
        "gh_rpc_server_set_health": (c_int, [c_void_p, c_char_p, c_int], CHECK),
        # int gh_rpc_server_clear_health(gh_rpc_server *server, const char *service);
        "gh_rpc_server_clear_health": (c_int, [c_void_p, c_char_p], CHECK),
        # int gh_rpc_server_get_health(gh_rpc_server *server, const char *service,
        #                              gh_health_status *status);
        "gh_rpc_server_get_health": (c_int, [c_void_p, c_char_p, POINTER(c_int)], CHECK),
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
        # int gh_rpc_server_send_event(gh_rpc_server *server, const uint8_t *event,
        #                              size_t event_len);
        "gh_rpc_server_send_event": (c_int, [c_void_p, c_char_p, c_size_t], CHECK),
        # int gh_rpc_server_handle_exit_signals(gh_rpc_server *server);
        "gh_rpc_server_handle_exit_signals": (c_int, [c_void_p], CHECK),
        # int gh_rpc_server_set_dump_fn(gh_rpc_server *server, gh_rpc_dump_fn fn, void *user_data,
        #                               gh_free_fn free_user_data);
        "gh_rpc_server_set_dump_fn": (c_int, [c_void_p, GH_RPC_DUMP_FN, c_void_p, GH_FREE_FN],
                                      CHECK),
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
