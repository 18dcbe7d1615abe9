/*
 * grpchelper/server.h — part of the C ABI of libgrpchelper (include <grpchelper.h>;
 * the conventions stated there hold here too).
 *
 * The core gRPC server (gh_server) and its calls (gh_server_call).
 */
#ifndef GRPCHELPER_SERVER_H
#define GRPCHELPER_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "types.h"
#include "metadata.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Server                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct gh_server gh_server;
typedef struct gh_server_call gh_server_call;

/* A method handler. It runs on a worker-pool thread, never on an I/O thread,
 * and drives the call with the gh_server_call_* functions. |call| is valid until
 * the handler returns. A handler that returns without gh_server_call_finish
 * finishes the call with OK, or with INTERNAL when the method has a single
 * response (GH_UNARY, GH_CLIENT_STREAMING) and none was sent. */
typedef void (*gh_handler_fn)(gh_server_call *call, void *user_data);

/* Creates a server in *out (not yet listening). Release with gh_server_free.
 * Threads: any thread. */
int gh_server_new(gh_server **out);

/* Sets an integer option (GH_OPT_MAX_WORKERS, GH_OPT_MAX_RECV_MESSAGE_SIZE,
 * GH_OPT_MAX_CONCURRENT_STREAMS, GH_OPT_MAX_HEADER_LIST_SIZE,
 * GH_OPT_DEFAULT_COMPRESSION, GH_OPT_EVENT_LOOP_THREADS,
 * GH_OPT_INITIAL_WINDOW_SIZE, GH_OPT_MAX_CONCURRENT_RPCS,
 * GH_OPT_MAX_SEND_MESSAGE_SIZE, GH_OPT_PER_MESSAGE_DECOMPRESSION,
 * GH_OPT_SO_REUSEPORT, GH_OPT_MAX_PARTIAL_BYTES_PER_CONNECTION,
 * GH_OPT_MAX_PARTIAL_BYTES, GH_OPT_HANDSHAKE_TIMEOUT_MS,
 * GH_OPT_MAX_CONNECTIONS); any other option is refused with
 * GH_ERR_INVALID_ARGUMENT. Before gh_server_start only.
 * Threads: one thread at a time per server. */
int gh_server_set_int(gh_server *s, gh_opt option, int64_t value);

/* Sets a string option; |value| is copied. No server string option exists yet:
 * GH_ERR_INVALID_ARGUMENT for every id today.
 * Threads: one thread at a time per server. */
int gh_server_set_str(gh_server *s, gh_opt option, const char *value);

/* Adds an address to listen on: "host:port" (IPv4 name or address),
 * "[v6addr]:port", or "unix:PATH". Port 0 picks a free port (see
 * gh_server_port). |address| is copied. Before gh_server_start only.
 * Threads: one thread at a time per server. */
int gh_server_add_listener(gh_server *s, const char *address);

/* Binds and listens on |address| (as for gh_server_add_listener; copied) now,
 * and writes the bound port to *port (0 for unix sockets) — so port 0 can be
 * resolved before the server starts. Connections wait in the listen backlog
 * until gh_server_start. Server options are fixed from the first bind on
 * (gh_server_set_int returns GH_ERR_INVALID_STATE after it). These listeners
 * are not counted by gh_server_port's index. GH_ERR_BIND (address and reason
 * in gh_last_error) if the address cannot be bound. Before gh_server_start.
 * Threads: one thread at a time per server. */
int gh_server_bind(gh_server *s, const char *address, int *port);

/* Registers |fn| for |method| ("/package.Service/Method"; copied). |user_data|
 * is passed to every invocation; |free_user_data| (may be NULL) is called with
 * it once when the server is freed. Before gh_server_start only.
 * Threads: one thread at a time per server. */
int gh_server_register(gh_server *s, const char *method,
                       gh_cardinality cardinality, gh_handler_fn fn,
                       void *user_data, gh_free_fn free_user_data);

/* Registers |fn| for every method that has no handler registered with
 * gh_server_register (at most one fallback per server). Its calls run as
 * GH_BIDI_STREAMING whatever the method: the handler reads requests and sends
 * responses as the method needs, reads the method with gh_server_call_method,
 * and finishes with GH_STATUS_UNIMPLEMENTED a method it does not serve.
 * |user_data| and |free_user_data| as for gh_server_register. Before
 * gh_server_start only; GH_ERR_INVALID_STATE for a second fallback.
 * Threads: one thread at a time per server. */
int gh_server_register_fallback(gh_server *s, gh_handler_fn fn, void *user_data,
                                gh_free_fn free_user_data);

/* Binds every listener and starts serving in the background. GH_ERR_BIND (with
 * the address and reason in gh_last_error) if an address cannot be bound.
 * Threads: one thread at a time per server. */
int gh_server_start(gh_server *s);

/* Writes the port bound by listener |index| (in gh_server_add_listener order)
 * to *port; 0 for unix listeners. After gh_server_start.
 * Threads: any thread. */
int gh_server_port(const gh_server *s, size_t index, int *port);

/* Graceful shutdown: sends GOAWAY, stops accepting, lets calls in flight run
 * for up to |grace_seconds| (< 0: wait without limit), then cancels the rest,
 * and returns when every handler has returned. Idempotent.
 * Threads: any thread except a handler of this server. */
int gh_server_shutdown(gh_server *s, double grace_seconds);

/* Called once a shutdown begun by gh_server_begin_shutdown has finished (every
 * handler returned), on a library thread, with the user_data given there. */
typedef void (*gh_server_stopped_fn)(void *user_data);

/* Begins gh_server_shutdown's graceful shutdown without waiting for it: returns
 * once the server takes no new calls (listeners closed, GOAWAY sent; calls on
 * open connections end UNAVAILABLE); the rest runs on a library thread, which
 * then calls |on_stopped| (may be NULL) with |user_data|, before
 * gh_server_wait or gh_server_free of this server return. Each call's
 * |on_stopped| runs once, also when a shutdown was already under way or done
 * (then as soon as it has finished). A server never bound nor started has
 * nothing to stop (it can still be started): |on_stopped| runs at once, on the
 * calling thread.
 * Threads: any thread, a handler of this server too. */
int gh_server_begin_shutdown(gh_server *s, double grace_seconds,
                             gh_server_stopped_fn on_stopped, void *user_data);

/* Blocks until the server has been shut down (by any thread).
 * Threads: any thread except a handler of this server. */
int gh_server_wait(gh_server *s);

/* Shuts down immediately (grace 0) if still running, then frees the server and
 * calls every free_user_data. NULL does nothing.
 * Threads: one thread, once, not from a handler (gh_server_release there). */
void gh_server_free(gh_server *s);

/* Gives the server up without waiting: a running server is shut down as by
 * gh_server_shutdown(s, 0) (calls in flight cancelled at once; a shutdown
 * already under way keeps its grace), and takes no new calls once this
 * returns; a library thread waits until the server has stopped, every handler
 * returned and every on_stopped of gh_server_begin_shutdown returned, then
 * frees the server as gh_server_free does, calling every free_user_data
 * there. |s| is invalid on return (no other call may use or follow it; the
 * handlers still running keep their gh_server_call until they return). NULL
 * does nothing.
 * Threads: any thread, a handler of this server too, and its on_stopped (the
 * library's shutdown thread), once (instead of gh_server_free). */
void gh_server_release(gh_server *s);

/* --- health checking (grpc.health.v1.Health) ------------------------------ */

/* A service's serving status, as grpc.health.v1.HealthCheckResponse's. */
typedef enum {
    GH_HEALTH_UNKNOWN = 0,
    GH_HEALTH_SERVING = 1,
    GH_HEALTH_NOT_SERVING = 2,
    GH_HEALTH_SERVICE_UNKNOWN = 3 /* only in Watch answers: an unknown service */
} gh_health_status;

/* Serves the standard health service grpc.health.v1.Health (Check and Watch,
 * doc/health-checking.md of grpc/grpc) on |s|. Statuses: the one set with
 * gh_server_set_health; else the overall entry "" and every service with a
 * method registered with gh_server_register are SERVING; any other service is
 * unknown (Check: NOT_FOUND; Watch: SERVICE_UNKNOWN until it gets a status).
 * From the start of the shutdown every known service is NOT_SERVING (later sets
 * are ignored) and Watch streams end, UNAVAILABLE, once they got it. Neither
 * method takes a worker thread (they run on the I/O threads). Before
 * gh_server_start, once (GH_ERR_INVALID_STATE after it or the second time).
 * Threads: one thread at a time per server, before any thread calls the other
 * health functions. Since 0.7.0. */
int gh_server_enable_health(gh_server *s);

/* Sets the status of |service| ("package.Service", or "" for the server as a
 * whole; copied) to GH_HEALTH_SERVING, GH_HEALTH_NOT_SERVING or
 * GH_HEALTH_UNKNOWN (any other value: GH_ERR_INVALID_ARGUMENT); its Watch
 * streams get it. GH_ERR_INVALID_STATE when health is not enabled. Ignored
 * (GH_OK) once the shutdown began.
 * Threads: any thread, handlers included. Since 0.7.0. */
int gh_server_set_health(gh_server *s, const char *service, gh_health_status status);

/* Forgets the status set for |service|: it is SERVING again if it is "" or has
 * a registered method, else unknown. GH_ERR_INVALID_STATE when health is not
 * enabled. Threads: any thread, handlers included. Since 0.7.0. */
int gh_server_clear_health(gh_server *s, const char *service);

/* Writes the status of |service| to *status: what Check answers, or
 * GH_HEALTH_SERVICE_UNKNOWN for a service it answers NOT_FOUND.
 * GH_ERR_INVALID_STATE when health is not enabled.
 * Threads: any thread, handlers included. Since 0.7.0. */
int gh_server_get_health(gh_server *s, const char *service, gh_health_status *status);

/* --- server reflection (grpc.reflection.v1 and v1alpha) -------------------- */

/* Serves the standard reflection services grpc.reflection.v1.ServerReflection
 * and grpc.reflection.v1alpha.ServerReflection (doc/server-reflection.md of
 * grpc/grpc; what grpcurl, grpc_cli, Postman and grpcio-reflection's client
 * speak) on |s|: list_services (the served services that are described),
 * file_by_filename and file_containing_symbol (the file, then the files it
 * depends on, each dependency once per stream), file_containing_extension,
 * all_extension_numbers_of_type; what is not described gets an error_response
 * NOT_FOUND. It describes the standard services (health, reflection) and the
 * files given with gh_server_add_descriptor_set / gh_server_add_file_descriptor
 * (a file name or a symbol given twice: the first stays). A client that stops
 * reading stops being answered: later requests wait, within the stream's flow
 * control window. The streams run on the I/O threads (no worker
 * thread). Before gh_server_start, once (GH_ERR_INVALID_STATE otherwise).
 * Threads: one thread at a time per server, before any thread adds
 * descriptors. Since 0.7.0. */
int gh_server_enable_reflection(gh_server *s);

/* Adds the files of a serialized google.protobuf.FileDescriptorSet — what
 * `protoc --descriptor_set_out=FILE --include_imports a.proto ...` writes — to
 * what reflection describes (|data| is copied). A file whose name is known
 * already is skipped. GH_ERR_INVALID_ARGUMENT (nothing added) when the bytes do
 * not parse; GH_ERR_INVALID_STATE when reflection is not enabled.
 * Threads: any thread, before or after start. Since 0.7.0. */
int gh_server_add_descriptor_set(gh_server *s, const uint8_t *data, size_t len);

/* The same for one serialized google.protobuf.FileDescriptorProto (add the
 * files it imports too; a file without a name: GH_ERR_INVALID_ARGUMENT).
 * |data| is copied. Threads: any thread, before or after start. Since 0.7.0. */
int gh_server_add_file_descriptor(gh_server *s, const uint8_t *data, size_t len);

/* --- the server side of a call (inside a handler) ------------------------ */

/* The method path, valid until the handler returns.
 * Threads: any thread while the handler runs. */
const char *gh_server_call_method(const gh_server_call *call);

/* The request metadata, valid until the handler returns (do not free).
 * Threads: any thread while the handler runs. */
const gh_metadata *gh_server_call_request_metadata(const gh_server_call *call);

/* The peer address ("ipv4:1.2.3.4:5", "ipv6:[::1]:5", "unix:PATH"), valid
 * until the handler returns.
 * Threads: any thread while the handler runs. */
const char *gh_server_call_peer(const gh_server_call *call);

/* Seconds left before the call's deadline (negative once passed), or
 * HUGE_VAL when the client set no deadline.
 * Threads: any thread while the handler runs. */
double gh_server_call_time_remaining(const gh_server_call *call);

/* Non-zero once the call is cancelled: by the client, by the deadline, or by
 * server shutdown.
 * Threads: any thread while the handler runs. */
int gh_server_call_is_cancelled(const gh_server_call *call);

/* The client's user-agent header (not part of the request metadata), or NULL
 * when it sent none. Valid until the handler returns.
 * Threads: any thread while the handler runs. */
const char *gh_server_call_user_agent(const gh_server_call *call);

/* Blocks until the call has ended — finished with gh_server_call_finish, or
 * cancelled (client, deadline, server shutdown) — or until |timeout_seconds|
 * passed (< 0: no limit). Returns 1 when the call has ended, 0 on timeout.
 * Lets a helper thread wait for the end of a call whose handler is busy.
 * Threads: any thread while the handler runs (the handler must not return
 * while another thread waits here). */
int gh_server_call_wait_done(gh_server_call *call, double timeout_seconds);

/* Reads the next request message, blocking. Returns 1 with *data and *len set
 * (valid until the next gh_server_call_read or the handler returns), 0 at the
 * end of the request stream, or GH_ERR_CLOSED when the call was cancelled.
 * Threads: one thread at a time per call. */
int gh_server_call_read(gh_server_call *call, const uint8_t **data, size_t *len);

/* Sends response headers with |md| (copied; may be NULL) now, instead of with
 * the first message. GH_ERR_INVALID_STATE if headers were already sent.
 * Threads: one thread at a time per call. */
int gh_server_call_send_initial_metadata(gh_server_call *call,
                                         const gh_metadata *md);

/* Sets the compression of the response messages (a gh_compression). By default
 * the server answers in the request's algorithm when it supports it, else in
 * its default. Only before the response headers are sent (before the first
 * message and before gh_server_call_send_initial_metadata);
 * GH_ERR_INVALID_STATE after.
 * Threads: one thread at a time per call. */
int gh_server_call_set_compression(gh_server_call *call, int compression);

/* Sends one response message (|data| copied; may be NULL when |len| is 0).
 * Blocks while the client is not reading (HTTP/2 flow control). |flags|: 0 or
 * GH_WRITE_NO_COMPRESS. GH_ERR_CLOSED once the call was cancelled (client,
 * deadline, shutdown); GH_ERR_INVALID_STATE after gh_server_call_finish or for
 * a second response of a single-response method.
 * Threads: one thread at a time per call. */
int gh_server_call_send(gh_server_call *call, const uint8_t *data, size_t len,
                        int flags);

/* Sets trailing metadata (copied) to go with the status.
 * Threads: one thread at a time per call. */
int gh_server_call_set_trailing_metadata(gh_server_call *call,
                                         const gh_metadata *md);

/* Ends the call with |code| (a gh_status_code), |message| (UTF-8, may be NULL;
 * copied) and |details| (grpc-status-details-bin bytes, may be NULL; copied).
 * GH_ERR_INVALID_STATE if already finished.
 * Threads: one thread at a time per call. */
int gh_server_call_finish(gh_server_call *call, int code, const char *message,
                          const uint8_t *details, size_t details_len);

#ifdef __cplusplus
}
#endif

#endif /* GRPCHELPER_SERVER_H */
