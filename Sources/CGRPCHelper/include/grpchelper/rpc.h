/*
 * grpchelper/rpc.h — part of the C ABI of libgrpchelper (include <grpchelper.h>;
 * the conventions stated there hold here too).
 *
 * Helper layer: the managed RPC server (gh_rpc_server), its services
 * (gh_rpc_service) and the retrying client (gh_rpc_client), as grpc-helper's
 * RpcServer, RpcServiceDescriptor and RpcClient.
 */
#ifndef GRPCHELPER_RPC_H
#define GRPCHELPER_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "types.h"
#include "metadata.h"
#include "server.h"
#include "config.h"
#include "logs.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Managed RPC server and client (grpc-helper's RpcServer and RpcClient)     */
/* ------------------------------------------------------------------------ */

typedef struct gh_rpc_service gh_rpc_service;
typedef struct gh_rpc_server gh_rpc_server;
typedef struct gh_rpc_client gh_rpc_client;
typedef struct gh_rpc_responses gh_rpc_responses;

/* A managed method's handler. It runs on the server's worker pool
 * (rpc-max-workers threads) once the client's API version was accepted, and
 * reads requests and sends responses with the gh_server_call functions (the
 * call is valid until it returns; gh_server_call_finish is not needed).
 * Returns GH_RC_OK, or a ResultCode: the call is then answered with the
 * method's error response — the response type with only its Result r set
 * (that code, the message and stack given to gh_rpc_error on this thread),
 * gRPC status OK — unless the call already ended or its single response was
 * sent. The error is logged with its stack in the manager's log. */
typedef int (*gh_rpc_handler_fn)(gh_server_call *call, void *user_data);

/* Records the message and stack (copied; |stack| may be NULL) of the error
 * that the calling handler or load hook is about to return.
 * Threads: the handler's or hook's own thread. */
void gh_rpc_error(const char *message, const char *stack);

/* A manager's hooks. |load| runs once every service is served (on the thread
 * of gh_rpc_server_new), with the server and the server's auto-client (stubs
 * of every service it serves, named as the services; both borrowed, valid
 * until gh_rpc_server_free). It returns GH_RC_OK, or a ResultCode (message with
 * gh_rpc_error): the server then shuts down and gh_rpc_server_new fails with
 * GH_ERR_RESULT and that code. |shutdown| runs when the server shuts down,
 * while calls may still be pending. */
typedef int (*gh_rpc_load_fn)(gh_rpc_server *server, gh_rpc_client *client,
                              void *user_data);
typedef void (*gh_rpc_shutdown_fn)(void *user_data);

/* A service to serve (grpc-helper's RpcServiceDescriptor): |name| is the name
 * clients and srv.info know it by ("sample"), |service_name| the .proto's
 * service with its package ("pkg.SampleService": methods are
 * /pkg.SampleService/<method>), |version| the providing module's
 * "title:version", and the API versions it accepts (the lowest and highest
 * non-zero values of its version enum). Strings are copied.
 * Threads: one thread at a time per service. */
int gh_rpc_service_new(const char *name, const char *service_name,
                       const char *version, unsigned supported_api_version,
                       unsigned current_api_version, gh_rpc_service **out);

/* Adds a method. |fn| NULL declares a method the manager does not implement:
 * its calls end UNIMPLEMENTED. |user_data| is passed to every call of |fn|;
 * |free_user_data| (may be NULL) is called with it once the service and every
 * server serving it are freed (also when this function fails).
 * Threads: one thread at a time per service. */
int gh_rpc_service_add_method(gh_rpc_service *service, const char *method,
                              gh_cardinality cardinality, gh_rpc_handler_fn fn,
                              void *user_data, gh_free_fn free_user_data);

/* Sets the service's manager: its logger's name (its log file
 * <logs>/<name>/<name>.log; NULL: the service's name) and its hooks (each may
 * be NULL), with |user_data| as gh_rpc_service_add_method's.
 * Threads: one thread at a time per service. */
int gh_rpc_service_set_manager(gh_rpc_service *service, const char *logger_name,
                               gh_rpc_load_fn load, gh_rpc_shutdown_fn shutdown,
                               void *user_data, gh_free_fn free_user_data);

/* Marks the service as proxied (grpc-helper's is_proxy): srv.info lists it
 * so, with the backend registered for it by srv.proxy_register (proxy_host,
 * proxy_port, version; port 0 while none); its calls are forwarded to that
 * backend (the four patterns; since 0.5.0), or, while none is registered,
 * wait up to rpc-client-timeout for one, then answer
 * GH_RC_ERROR_PROXY_UNREGISTERED (0.4.0 and earlier: at once); its methods'
 * handlers are not called (add them with a NULL |fn|: only the names and
 * cardinalities count); it has no manager hooks.
 * Threads: one thread at a time per service. */
int gh_rpc_service_set_proxy(gh_rpc_service *service, int is_proxy);

/* Since 0.5.0. Makes the service's manager a proxied one (grpc-helper's
 * RpcProxiedManager): when the server loads its managers, it first registers
 * its own port for the |count| proxied service names |names| with |version|
 * ("title:version") at the main server rpc-main-host:rpc-main-port
 * (srv.proxy_register, retried within rpc-client-timeout), then calls the
 * load hook (gh_rpc_server_proxy_client then gives the client of the main
 * server); a failed registration fails gh_rpc_server_new with GH_ERR_RESULT
 * and its code (GH_RC_ERROR_RPC for an unreachable main server), the port
 * freed. At shutdown, after the shutdown hook, srv.proxy_forget (one try, a
 * failure logged). |use_current_host| non-zero registers this host's address
 * toward the main server instead of rpc-main-host. Strings and arrays are
 * copied. Works with or without gh_rpc_service_set_manager.
 * Threads: one thread at a time per service. */
int gh_rpc_service_set_proxied(gh_rpc_service *service, const char *const *names,
                               size_t count, const char *version,
                               int use_current_host);

/* Since 0.5.0. Adds a stub to the proxy client of a proxied manager
 * (gh_rpc_service_set_proxied; grpc-helper's _proxy_stubs): |name| for the
 * service |service_name| at |api_version| (0: none). The client always has
 * "srv" and "events".
 * Threads: one thread at a time per service. */
int gh_rpc_service_add_proxy_stub(gh_rpc_service *service, const char *name,
                                  const char *service_name, unsigned api_version);

/* Since 0.7.0. Describes the service for the RPC server's reflection (every RPC
 * server serves grpc.reflection.v1 and v1alpha, describing its built-in
 * services; see gh_server_enable_reflection): the files of a serialized
 * google.protobuf.FileDescriptorSet (`protoc --descriptor_set_out=FILE
 * --include_imports`), or one serialized google.protobuf.FileDescriptorProto
 * (add the files it imports too). |data| is copied; GH_ERR_INVALID_ARGUMENT
 * when it does not parse or a file has no name. Servers made from the service
 * before the call do not get them.
 * Threads: one thread at a time per service. */
int gh_rpc_service_add_descriptor_set(gh_rpc_service *service, const uint8_t *data,
                                      size_t len);
int gh_rpc_service_add_file_descriptor(gh_rpc_service *service, const uint8_t *data,
                                       size_t len);

/* Releases the caller's service; servers built with it keep what they need.
 * NULL does nothing.
 * Threads: any thread, once. */
void gh_rpc_service_free(gh_rpc_service *service);

/* gh_rpc_server_new flags. */
#define GH_RPC_WITH_EVENTS 0x1       /* also serve the events service */
#define GH_RPC_DEBUG_SIGNAL 0x2      /* SIGUSR2 writes a debug dump */

/* Builds and starts a managed server (grpc-helper's RpcServer) on |port| (0:
 * a free port, see gh_rpc_server_port): the config set (the built-in static
 * items plus |static_items|, |user_items|; a static item named as a built-in
 * one, "rpc-...", is used instead of it, so that a host's shared items take
 * this server's values (the Python binding's RpcStaticConfig, as
 * grpc-helper's); defaults from |folders| (may be
 * NULL) and |cli_config| "NAME=VALUE" strings, as gh_config_set_new), the
 * rolling logs (gh_logs_new_from_config), the built-in services srv, config
 * and log, then |services| (arrays borrowed for the call); calls every
 * manager's load hook; then *out.
 * It listens on [::]:|port| (IPv6 and IPv4), or 0.0.0.0:|port| where IPv6 is
 * not available; port 0 listens on 0.0.0.0.
 * Errors (GH_ERR_RESULT): the config set's and the logs'; a busy port →
 * GH_RC_ERROR_PORT_BUSY; a load hook's code (the server was shut down).
 * GH_RPC_WITH_EVENTS: the server also serves "events" (EventService: listen,
 * send, interrupt, inspect, as grpc-helper's; queues persisted in
 * <workspace>/queues.json; 0.3.0 and earlier refused the flag).
 * This is the short form, whose argument list cannot grow; the options handle
 * below (gh_rpc_server_new_with_options) is the long form.
 * Threads: any thread. */
int gh_rpc_server_new(int port, gh_rpc_service *const *services, size_t count,
                      const gh_folders *folders, const char *const *cli_config,
                      size_t cli_count, gh_config *const *static_items,
                      size_t static_count, gh_config *const *user_items,
                      size_t user_count, int flags, gh_rpc_server **out);

/* The arguments of gh_rpc_server_new as an options handle, its long form,
 * which can grow: each setter sets or appends one argument. Defaults: port 0,
 * no services, no folders, no -c values, no extra items, flags 0. Handles
 * given to it are kept (referenced) until gh_rpc_server_options_free, so
 * gh_rpc_service_free may come before the server is made; strings are copied.
 * One options handle may make several servers. Errors as gh_rpc_server_new's
 * for the same argument, reported by the setter that takes it.
 * Threads: any thread. */
typedef struct gh_rpc_server_options gh_rpc_server_options;

int gh_rpc_server_options_new(gh_rpc_server_options **out);

/* NULL does nothing; servers made with it keep what they need.
 * Threads: any thread, once. */
void gh_rpc_server_options_free(gh_rpc_server_options *options);

/* |port| 0..65535 (0: a free port).
 * Threads: one thread at a time per options handle. */
int gh_rpc_server_options_set_port(gh_rpc_server_options *options, int port);
/* Appends a service to serve (in order, as gh_rpc_server_new's array).
 * Threads: one thread at a time per options handle. */
int gh_rpc_server_options_add_service(gh_rpc_server_options *options,
                                      gh_rpc_service *service);
/* The folders (NULL: none, the default).
 * Threads: one thread at a time per options handle. */
int gh_rpc_server_options_set_folders(gh_rpc_server_options *options,
                                      const gh_folders *folders);
/* Appends a command-line "NAME=VALUE" config value (the last of a name
 * wins); a string without '=' or with an empty name → GH_ERR_RESULT
 * GH_RC_ERROR_PARAM_INVALID.
 * Threads: one thread at a time per options handle. */
int gh_rpc_server_options_add_cli_config(gh_rpc_server_options *options,
                                         const char *name_value);
/* Appends an item to the static / user items.
 * Threads: one thread at a time per options handle. */
int gh_rpc_server_options_add_static_item(gh_rpc_server_options *options,
                                          gh_config *item);
int gh_rpc_server_options_add_user_item(gh_rpc_server_options *options,
                                        gh_config *item);
/* GH_RPC_* flags, replacing the previous ones.
 * Threads: one thread at a time per options handle. */
int gh_rpc_server_options_set_flags(gh_rpc_server_options *options, int flags);

/* Builds and starts a managed server from |options| (borrowed for the call),
 * exactly as gh_rpc_server_new with the same arguments.
 * Threads: any thread, one at a time per options handle. */
int gh_rpc_server_new_with_options(const gh_rpc_server_options *options,
                                   gh_rpc_server **out);

/* The port it listens on.
 * Threads: any thread. */
int gh_rpc_server_port(const gh_rpc_server *server);

/* Its config set and logs (borrowed: valid until gh_rpc_server_free).
 * Threads: any thread. */
gh_config_set *gh_rpc_server_config(gh_rpc_server *server);
gh_logs *gh_rpc_server_logs(gh_rpc_server *server);

/* Sends an event (an encoded grpc-helper Event: name, properties; since 0.5.0
 * gh_event_encode in events.h makes one) to the server's listeners
 * in-process, as the events service's send: the same name
 * checks (empty → GH_RC_ERROR_PARAM_MISSING, a space → GH_RC_ERROR_PARAM_INVALID);
 * a server made without GH_RPC_WITH_EVENTS → GH_RC_ERROR_STATE_UNEXPECTED; an
 * undecodable message → GH_ERR_INVALID_ARGUMENT. |event| is borrowed for the
 * call. Threads: any thread, also the server's handlers and hooks. */
int gh_rpc_server_send_event(gh_rpc_server *server, const uint8_t *event,
                             size_t event_len);

/* The server's own auto-client (grpc-helper's auto_client): a gh_rpc_client of
 * this server with a stub per served service, named as the services ("srv",
 * "config", "log", yours; their current API version), timeout
 * rpc-client-timeout, named "srv-client" in the logs. Made on first use;
 * borrowed: valid until gh_rpc_server_free (do not gh_rpc_client_free it); its
 * calls fail once the server has shut down. NULL for a NULL server or when it
 * cannot be made (gh_last_error says why).
 * Threads: any thread. */
gh_rpc_client *gh_rpc_server_client(gh_rpc_server *server);

/* Since 0.5.0. The client of the main server of the proxied service named
 * |service| (gh_rpc_service_set_proxied), once it registered: from its load
 * hook on. Borrowed: valid until gh_rpc_server_free (do not free it). NULL
 * for an unknown service, one not proxied or not registered (gh_last_error
 * says why).
 * Threads: any thread. */
gh_rpc_client *gh_rpc_server_proxy_client(gh_rpc_server *server, const char *service);

/* 1 while it serves, 0 once a shutdown started.
 * Threads: any thread. */
int gh_rpc_server_is_running(const gh_rpc_server *server);

/* Shuts down: stops accepting calls, calls the managers' shutdown hooks, lets
 * pending calls run for up to rpc-shutdown-grace seconds, cancels the rest,
 * then waits for every handler to return (a handler should watch
 * gh_server_call_is_cancelled: its call handle stays valid until it returns).
 * Idempotent; returns when done (a second caller waits for the first).
 * The srv.shutdown RPC does the same on a thread of its own after answering;
 * with its timeout >= 0 the server then waits that many seconds (0:
 * rpc-shutdown-timeout) before gh_rpc_server_wait_shutdown returns; < 0: no
 * wait.
 * Threads: any thread but this server's handlers and hooks (they would wait
 * for themselves; gh_rpc_server_begin_shutdown there). */
int gh_rpc_server_shutdown(gh_rpc_server *server);

/* Begins the shutdown of gh_rpc_server_shutdown and returns at once: when it
 * returns, the server takes no new calls; the managers' shutdown hooks, the
 * grace and the end run on a library thread (gh_rpc_server_wait_shutdown tells
 * when it is done). Idempotent: a shutdown already begun (by any means) goes
 * on as it was.
 * Threads: any thread, this server's handlers and hooks too. */
int gh_rpc_server_begin_shutdown(gh_rpc_server *server);

/* Waits until a shutdown (by gh_rpc_server_shutdown, by the srv.shutdown RPC,
 * by a signal) has finished: 1, or 0 after |timeout| seconds (< 0: no limit).
 * Threads: any thread. */
int gh_rpc_server_wait_shutdown(gh_rpc_server *server, double timeout);

/* The RPC server's health service (grpc.health.v1.Health, served by every RPC
 * server; see gh_server_enable_health for Check and Watch): "" and every served
 * service are NOT_SERVING while the managers load, SERVING once they all loaded,
 * NOT_SERVING from the start of the shutdown. These set, clear and read a
 * service's own status, as gh_server_set_health, gh_server_clear_health and
 * gh_server_get_health do (service names are the gRPC ones: "RpcServerService",
 * "package.Service"). Threads: any thread, handlers and hooks included.
 * Since 0.7.0. */
int gh_rpc_server_set_health(gh_rpc_server *server, const char *service,
                             gh_health_status status);
int gh_rpc_server_clear_health(gh_rpc_server *server, const char *service);
int gh_rpc_server_get_health(gh_rpc_server *server, const char *service,
                             gh_health_status *status);

/* srv.info on encoded messages (Filter → MultiServiceInfo; response released
 * with gh_free): the services named (empty: all); an unknown name →
 * GH_ERR_RESULT GH_RC_ERROR_ITEM_UNKNOWN unless ignore_unknown.
 * Threads: any thread. */
int gh_rpc_server_info(gh_rpc_server *server, const uint8_t *request,
                       size_t request_len, uint8_t **response,
                       size_t *response_len);

/* Opt-in graceful exit: the first SIGINT or SIGTERM shuts the server down
 * (gh_rpc_server_wait_shutdown returns), the second exits the process at once
 * (status 1). For one server per process.
 * Threads: any thread. */
int gh_rpc_server_handle_exit_signals(gh_rpc_server *server);

/* Text for the debug dump (GH_RPC_DEBUG_SIGNAL: SIGUSR2 writes
 * <logs>/RpcServerDump-YYYYMMDDhhmmss.txt with the process's threads, the
 * pending calls and this text, e.g. a binding's own thread stacks): |fn|
 * returns a NUL-terminated string allocated with malloc (the library frees it)
 * or NULL. It runs on the library's signal thread. |free_user_data| as
 * gh_rpc_service_add_method's. A later call replaces the function.
 * Threads: any thread. */
typedef char *(*gh_rpc_dump_fn)(void *user_data);
int gh_rpc_server_set_dump_fn(gh_rpc_server *server, gh_rpc_dump_fn fn,
                              void *user_data, gh_free_fn free_user_data);

/* Shuts the server down if it runs, then frees it. NULL does nothing.
 * Threads: any thread but a handler's of this server, once
 * (gh_rpc_server_release there). */
void gh_rpc_server_free(gh_rpc_server *server);

/* Gives the server up without waiting: begins its shutdown if it runs (as
 * gh_rpc_server_begin_shutdown) and returns; a library thread waits until the
 * shutdown has finished (also one begun before, by any means), then frees the
 * server as gh_rpc_server_free does, calling the free_user_data of its
 * services' methods and managers there (those of services still alive run
 * with the service's gh_rpc_service_free). |server| is invalid on return (no
 * other call may use or follow it); what it lent (config set, logs,
 * auto-clients) stays valid for the handlers and hooks still running until
 * the shutdown has finished. NULL does nothing.
 * Threads: any thread, this server's handlers and hooks too, once (instead of
 * gh_rpc_server_free). */
void gh_rpc_server_release(gh_rpc_server *server);

/* A client of managed services (grpc-helper's RpcClient) on |host|:|port|.
 * Calls carry the metadata client (|name|, may be NULL), user, host and ip
 * (the local address used to reach the server), and their stub's API
 * version. A call that fails UNAVAILABLE is retried after 0.5 s, doubling,
 * until |timeout| seconds have passed (0: no retry); then, or on any other
 * failed status, GH_ERR_RESULT GH_RC_ERROR_RPC naming the method and target.
 * With |raise_errors|, a response whose result code is between GH_RC_OK and
 * GH_RC_ERROR_CUSTOM (both excluded) fails with GH_ERR_RESULT and that code
 * (read as a managed service's response: field 1 is its Result; for a
 * response type without one, pass 0 and read codes with gh_rpc_result_code).
 * Threads: any thread. Calls may run concurrently on one client. */
int gh_rpc_client_new(const char *host, int port, double timeout,
                      const char *name, int raise_errors, gh_rpc_client **out);

/* Adds a stub: |name| (what calls name it by) for the service |service_name|
 * ("pkg.SampleService"), whose calls carry |api_version| (0: none). Before the
 * first call.
 * Threads: one thread, before calls start. */
int gh_rpc_client_add_stub(gh_rpc_client *client, const char *name,
                           const char *service_name, unsigned api_version);

/* A unary call of |stub|'s |method| with |request| (borrowed for the call),
 * with a deadline of |call_timeout| seconds (<= 0: none). GH_OK with the
 * response (released with gh_free) in *response / *response_len; errors as
 * described at gh_rpc_client_new; an unknown stub → GH_ERR_INVALID_ARGUMENT.
 * Threads: any thread. */
int gh_rpc_client_call(gh_rpc_client *client, const char *stub,
                       const char *method, const uint8_t *request,
                       size_t request_len, double call_timeout,
                       uint8_t **response, size_t *response_len);

/* The metadata |stub|'s calls carry (client, user, host, ip, api_version;
 * empty values left out) as a new list, released with gh_metadata_free: for
 * calls the client has no function for (request streams), made with the core
 * call API on a channel to the same server. Those calls are not retried.
 * Threads: any thread. */
int gh_rpc_client_call_metadata(gh_rpc_client *client, const char *stub,
                                gh_metadata **out);

/* A server-streaming call, retried as a unary one until its first message.
 * GH_OK with the responses in *out (gh_rpc_responses_next).
 * Threads: any thread. */
int gh_rpc_client_stream(gh_rpc_client *client, const char *stub,
                         const char *method, const uint8_t *request,
                         size_t request_len, double call_timeout,
                         gh_rpc_responses **out);

/* The next response: 1 with it in *data / *len (released with gh_free), 0 at
 * the end, or a negative gh_error (GH_ERR_RESULT: GH_RC_ERROR_RPC for a
 * failed status, or an error result's code as gh_rpc_client_call).
 * Threads: one thread at a time per responses. */
int gh_rpc_responses_next(gh_rpc_responses *responses, uint8_t **data,
                          size_t *len);

/* Cancels the call if it still runs, then frees. NULL does nothing.
 * Threads: any thread, once. */
void gh_rpc_responses_free(gh_rpc_responses *responses);

/* The result code (Result r, field 1) of an encoded response of a managed
 * service, or GH_RC_OK when it has none (or does not decode).
 * Threads: any thread. */
int gh_rpc_result_code(const uint8_t *response, size_t len);

/* NULL does nothing. Calls still running fail.
 * Threads: any thread, once. */
void gh_rpc_client_free(gh_rpc_client *client);

#ifdef __cplusplus
}
#endif

#endif /* GRPCHELPER_RPC_H */
