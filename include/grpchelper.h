/*
 * grpchelper.h — the stable C ABI of libgrpchelper.
 *
 * libgrpchelper is a gRPC implementation (server and client) written in Swift on
 * libnghttp2, zlib and SwiftNIO. This header is its C interface; it is an ABI
 * promise: functions are only ever added, never changed or removed, and enum
 * values are only ever appended.
 *
 * Conventions
 * - Every name starts with gh_ / GH_. Handles are opaque (incomplete structs).
 * - Functions that can fail return int: GH_OK (0) or a negative gh_error code.
 *   The text of the latest error on the calling thread is gh_last_error().
 *   Function results are never gRPC status codes; a call's status is read with
 *   gh_call_status().
 * - Constructors fill an out-pointer on success and leave it untouched on
 *   failure. Destructors (*_free) accept NULL.
 * - Ownership is stated per argument with three phrases: "copied" (the library
 *   keeps its own copy, the caller keeps theirs), "borrowed for the call" (the
 *   library uses it only during the call), and "valid until ..." (memory owned by
 *   the library, to be used by the caller only until the named event). Memory
 *   that the library hands over to the caller is released with gh_free().
 * - Every function has a "Threads:" line. "Any thread" means it may be called
 *   from any thread, concurrently with other calls on the same handle.
 * - Callbacks never run on an I/O (event-loop) thread: server handlers run on the
 *   server's worker pool; client completion callbacks run on the channel's
 *   callback threads. Each callback receives the user_data given with it.
 */
#ifndef GRPCHELPER_H
#define GRPCHELPER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Versions                                                                 */
/* ------------------------------------------------------------------------ */

#define GH_VERSION_MAJOR 0
#define GH_VERSION_MINOR 2
#define GH_VERSION_PATCH 0
#define GH_VERSION_STR "0.2.0"
/* 0xXXYYZZ: major, minor, patch. */
#define GH_VERSION_NUM 0x000200
#define GH_VERSION_AT_LEAST(x, y, z) \
    (GH_VERSION_NUM >= (((x) << 16) | ((y) << 8) | (z)))

#if defined(__GNUC__) || defined(__clang__)
#define GH_DEPRECATED(msg) __attribute__((deprecated(msg)))
#else
#define GH_DEPRECATED(msg)
#endif

/* Run-time version information. Fields are only ever appended; |age| says
 * which exist (age 1: version_num, version_str). */
typedef struct {
    int age;
    int version_num;
    const char *version_str;
} gh_info;

/* Returns the library's version information if the library's version number is
 * at least |least_version_num| (0 accepts any), else NULL. The struct is static.
 * Threads: any thread. */
const gh_info *gh_version(int least_version_num);

/* ------------------------------------------------------------------------ */
/* Errors and memory                                                        */
/* ------------------------------------------------------------------------ */

typedef enum {
    GH_OK = 0,
    /* An argument is NULL, out of range or malformed (bad target, bad metadata
     * key or value, unknown option, ...). */
    GH_ERR_INVALID_ARGUMENT = -501,
    /* The object is not in a state that allows this (e.g. a server option set
     * after start, a second finish, a message sent after finish). */
    GH_ERR_INVALID_STATE = -502,
    /* The call has ended (cancelled, deadline exceeded, finished, reset by the
     * peer); nothing more can be sent or read. */
    GH_ERR_CLOSED = -503,
    /* An address could not be bound or listened on (e.g. port in use). */
    GH_ERR_BIND = -504,
    /* The RPC ended with a non-OK status; read it with gh_call_status(). */
    GH_ERR_RPC = -505,
    /* Reserved for send-side message limits (not returned by this version). */
    GH_ERR_TOO_LARGE = -506,
    /* A helper-layer operation (config, logs, command line) failed with a
     * grpc-helper ResultCode: read it with gh_last_result_code() and the
     * message with gh_last_error(). */
    GH_ERR_RESULT = -507,
    /* Errors at or below GH_ERR_FATAL leave the handle usable only for *_free. */
    GH_ERR_FATAL = -900,
    GH_ERR_NOMEM = -901,
    GH_ERR_INTERNAL = -902
} gh_error;

/* Static English text for a gh_error code (never NULL).
 * Threads: any thread. */
const char *gh_strerror(int code);

/* Non-zero if |code| is fatal (at or below GH_ERR_FATAL).
 * Threads: any thread. */
int gh_is_fatal(int code);

/* The message of the latest failed gh_ function on the calling thread, or "" if
 * none. Valid until the next gh_ call on the same thread.
 * Threads: any thread (the text is per thread). */
const char *gh_last_error(void);

/* Releases memory that the library handed over to the caller (documented as
 * "release with gh_free"). NULL does nothing.
 * Threads: any thread. */
void gh_free(void *p);

/* ------------------------------------------------------------------------ */
/* gRPC status codes, call cardinality, compression                         */
/* ------------------------------------------------------------------------ */

typedef enum {
    GH_STATUS_OK = 0,
    GH_STATUS_CANCELLED = 1,
    GH_STATUS_UNKNOWN = 2,
    GH_STATUS_INVALID_ARGUMENT = 3,
    GH_STATUS_DEADLINE_EXCEEDED = 4,
    GH_STATUS_NOT_FOUND = 5,
    GH_STATUS_ALREADY_EXISTS = 6,
    GH_STATUS_PERMISSION_DENIED = 7,
    GH_STATUS_RESOURCE_EXHAUSTED = 8,
    GH_STATUS_FAILED_PRECONDITION = 9,
    GH_STATUS_ABORTED = 10,
    GH_STATUS_OUT_OF_RANGE = 11,
    GH_STATUS_UNIMPLEMENTED = 12,
    GH_STATUS_INTERNAL = 13,
    GH_STATUS_UNAVAILABLE = 14,
    GH_STATUS_DATA_LOSS = 15,
    GH_STATUS_UNAUTHENTICATED = 16
} gh_status_code;

typedef enum {
    GH_UNARY = 0,             /* one request, one response */
    GH_CLIENT_STREAMING = 1,  /* request stream, one response */
    GH_SERVER_STREAMING = 2,  /* one request, response stream */
    GH_BIDI_STREAMING = 3     /* both streams, freely interleaved */
} gh_cardinality;

typedef enum {
    GH_COMPRESSION_DEFAULT = -1, /* per call: use the channel's/server's default */
    GH_COMPRESSION_NONE = 0,     /* identity */
    GH_COMPRESSION_DEFLATE = 1,
    GH_COMPRESSION_GZIP = 2
} gh_compression;

/* Flags for gh_server_call_send / gh_call_send. */
#define GH_WRITE_NO_COMPRESS 0x1 /* send this message uncompressed */

/* ------------------------------------------------------------------------ */
/* Metadata                                                                 */
/* ------------------------------------------------------------------------ */

/* An ordered list of (key, value) entries; a key may repeat. Keys ending in
 * "-bin" hold bytes (base64 on the wire); other keys hold printable ASCII. */
typedef struct gh_metadata gh_metadata;

/* Creates an empty list in *out. Release with gh_metadata_free.
 * Threads: any thread. */
int gh_metadata_new(gh_metadata **out);

/* Frees |md|; NULL does nothing. Must not be a list owned by a call.
 * Threads: one thread at a time per list. */
void gh_metadata_free(gh_metadata *md);

/* Appends a text entry. |key| and |value| are copied. GH_ERR_INVALID_ARGUMENT
 * (nothing added, reason in gh_last_error) when the key is empty, not lowercase
 * [0-9a-z_.-], ends in "-bin", is reserved (":...", "grpc-...", content-type,
 * te, user-agent, connection, ...), or the value has a byte outside
 * printable ASCII or starts or ends with a space or tab (RFC 9113 8.2.1).
 * Received metadata never contains reserved keys.
 * Threads: one thread at a time per list. */
int gh_metadata_add(gh_metadata *md, const char *key, const char *value);

/* Appends a binary entry; |key| must end in "-bin". |key| and the |len| bytes at
 * |value| are copied (|value| may be NULL when |len| is 0).
 * Threads: one thread at a time per list. */
int gh_metadata_add_bin(gh_metadata *md, const char *key, const uint8_t *value,
                        size_t len);

/* Number of entries; 0 for NULL.
 * Threads: any thread, if nobody modifies the list meanwhile. */
size_t gh_metadata_count(const gh_metadata *md);

/* Reads entry |index|: *key (NUL-terminated), *value and *len are valid until
 * |md| is modified or freed. Text values are also NUL-terminated.
 * Threads: any thread, if nobody modifies the list meanwhile. */
int gh_metadata_get(const gh_metadata *md, size_t index, const char **key,
                    const uint8_t **value, size_t *len);

/* Finds the first entry with |key| (borrowed for the call). Returns GH_OK and
 * fills *value and *len (valid as for gh_metadata_get), or GH_ERR_INVALID_ARGUMENT
 * (with gh_last_error set) when there is none.
 * Threads: any thread, if nobody modifies the list meanwhile. */
int gh_metadata_find(const gh_metadata *md, const char *key,
                     const uint8_t **value, size_t *len);

/* ------------------------------------------------------------------------ */
/* Options (type-tagged ids, typed setters)                                 */
/* ------------------------------------------------------------------------ */

enum { GH_OPTTYPE_INT = 0, GH_OPTTYPE_STR = 10000 };

typedef enum {
    /* server: size of the worker pool running handlers (default 30) */
    GH_OPT_MAX_WORKERS = GH_OPTTYPE_INT + 1,
    /* server and channel: largest message accepted, in bytes (default 4 MiB) */
    GH_OPT_MAX_RECV_MESSAGE_SIZE = GH_OPTTYPE_INT + 2,
    /* server: SETTINGS_MAX_CONCURRENT_STREAMS per connection (default 100) */
    GH_OPT_MAX_CONCURRENT_STREAMS = GH_OPTTYPE_INT + 3,
    /* server and channel: largest header list accepted (default 16 KiB) */
    GH_OPT_MAX_HEADER_LIST_SIZE = GH_OPTTYPE_INT + 4,
    /* server and channel: default compression, a gh_compression (default NONE) */
    GH_OPT_DEFAULT_COMPRESSION = GH_OPTTYPE_INT + 5,
    /* server and channel: number of I/O event-loop threads (default: cores) */
    GH_OPT_EVENT_LOOP_THREADS = GH_OPTTYPE_INT + 6,
    /* server and channel: HTTP/2 initial stream window in bytes (default 1 MiB) */
    GH_OPT_INITIAL_WINDOW_SIZE = GH_OPTTYPE_INT + 7,
    /* channel: number of threads running completion callbacks (default 4) */
    GH_OPT_CALLBACK_THREADS = GH_OPTTYPE_INT + 8,
    /* server: calls running or waiting for a worker at once, over all
     * connections; a call beyond it is answered RESOURCE_EXHAUSTED
     * ("Concurrent RPC limit exceeded!") without running its handler
     * (default 0: no limit). Since 0.1.0 (issue 3). */
    GH_OPT_MAX_CONCURRENT_RPCS = GH_OPTTYPE_INT + 9,
    /* channel: text put before the library's own user-agent */
    GH_OPT_USER_AGENT_PREFIX = GH_OPTTYPE_STR + 1
} gh_opt;

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
 * GH_OPT_INITIAL_WINDOW_SIZE, GH_OPT_MAX_CONCURRENT_RPCS). Before
 * gh_server_start only.
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
                       void *user_data, void (*free_user_data)(void *));

/* Registers |fn| for every method that has no handler registered with
 * gh_server_register (at most one fallback per server). Its calls run as
 * GH_BIDI_STREAMING whatever the method: the handler reads requests and sends
 * responses as the method needs, reads the method with gh_server_call_method,
 * and finishes with GH_STATUS_UNIMPLEMENTED a method it does not serve.
 * |user_data| and |free_user_data| as for gh_server_register. Before
 * gh_server_start only; GH_ERR_INVALID_STATE for a second fallback.
 * Threads: one thread at a time per server. */
int gh_server_register_fallback(gh_server *s, gh_handler_fn fn, void *user_data,
                                void (*free_user_data)(void *));

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

/* Blocks until the server has been shut down (by any thread).
 * Threads: any thread except a handler of this server. */
int gh_server_wait(gh_server *s);

/* Shuts down immediately (grace 0) if still running, then frees the server and
 * calls every free_user_data. NULL does nothing.
 * Threads: one thread, once, not from a handler. */
void gh_server_free(gh_server *s);

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

/* ------------------------------------------------------------------------ */
/* Channel (client)                                                         */
/* ------------------------------------------------------------------------ */

typedef struct gh_channel gh_channel;
typedef struct gh_call gh_call;

/* Creates a channel to |target| ("host:port", "[v6]:port", "unix:PATH";
 * copied). Connects lazily, on the first call; reconnects (with backoff) after
 * a drop. Release with gh_channel_free.
 * Threads: any thread. */
int gh_channel_new(gh_channel **out, const char *target);

/* Sets an integer option (GH_OPT_MAX_RECV_MESSAGE_SIZE,
 * GH_OPT_MAX_HEADER_LIST_SIZE, GH_OPT_DEFAULT_COMPRESSION,
 * GH_OPT_EVENT_LOOP_THREADS (accepted; a channel uses one I/O thread),
 * GH_OPT_INITIAL_WINDOW_SIZE, GH_OPT_CALLBACK_THREADS). Only before the first
 * call on the channel is started (GH_ERR_INVALID_STATE after).
 * Threads: one thread at a time per channel. */
int gh_channel_set_int(gh_channel *ch, gh_opt option, int64_t value);

/* Sets a string option (GH_OPT_USER_AGENT_PREFIX); |value| is copied. Only
 * before the first call on the channel is started.
 * Threads: one thread at a time per channel. */
int gh_channel_set_str(gh_channel *ch, gh_opt option, const char *value);

/* Cancels calls in flight, closes the connection and frees the channel. Calls
 * created on it must be freed too (before or after); one started after this
 * ends at once with GH_STATUS_CANCELLED ("channel closed"). NULL does nothing.
 * Queued completion callbacks have run when it returns, except when it is
 * called from one of this channel's own callbacks (allowed: the callback
 * threads then stop in the background).
 * Threads: one thread, once. */
void gh_channel_free(gh_channel *ch);

/* --- client calls --------------------------------------------------------- */

/* Creates a call of |method| ("/package.Service/Method"; copied) on |ch|. Set
 * its options, then start it with gh_call_start, gh_call_start_async or
 * gh_call_unary. Release with gh_call_free.
 * Threads: any thread. */
int gh_call_new(gh_channel *ch, const char *method, gh_call **out);

/* Per-call timeout in seconds (<= 0: none). Before start.
 * Threads: one thread at a time per call. */
int gh_call_set_timeout(gh_call *call, double seconds);

/* Request metadata (copied). Before start.
 * Threads: one thread at a time per call. */
int gh_call_set_metadata(gh_call *call, const gh_metadata *md);

/* Compression of the request messages (a gh_compression; DEFAULT: the
 * channel's). Before start.
 * Threads: one thread at a time per call. */
int gh_call_set_compression(gh_call *call, int compression);

/* Non-zero: if the server cannot be reached, keep trying until the deadline
 * instead of failing with UNAVAILABLE at once. Before start.
 * Threads: one thread at a time per call. */
int gh_call_set_wait_for_ready(gh_call *call, int enabled);

/* Starts the call (connecting if needed) for blocking use with gh_call_send,
 * gh_call_close_send, gh_call_recv and gh_call_wait. It does not block; if the
 * server cannot be reached, the failure is reported by recv/wait.
 * Threads: one thread at a time per call. */
int gh_call_start(gh_call *call);

/* Sends one request message (|data| copied; may be NULL when |len| is 0),
 * blocking while the server is not reading. |flags|: 0 or GH_WRITE_NO_COMPRESS.
 * GH_ERR_CLOSED if the call ended; GH_ERR_INVALID_STATE after
 * gh_call_close_send.
 * Threads: one thread at a time per call (may differ from the reading thread). */
int gh_call_send(gh_call *call, const uint8_t *data, size_t len, int flags);

/* Half-closes: no more request messages.
 * Threads: one thread at a time per call. */
int gh_call_close_send(gh_call *call);

/* Reads the next response message, blocking. Returns 1 with *data and *len set
 * (valid until the next gh_call_recv or gh_call_free), 0 when the response
 * stream ended, whatever the status (read it with gh_call_wait or
 * gh_call_status), or a negative gh_error (a NULL or unstarted call). Not with
 * gh_call_start_async.
 * Threads: one thread at a time per call (may differ from the sending thread). */
int gh_call_recv(gh_call *call, const uint8_t **data, size_t *len);

/* Blocks until the call has its status; returns the gh_status_code (>= 0).
 * Threads: any thread. */
int gh_call_wait(gh_call *call);

/* The status code, or -1 while the call is still running.
 * Threads: any thread. */
int gh_call_status(const gh_call *call);

/* The status message (UTF-8, "" if none), valid until gh_call_free. NULL while
 * the call is still running.
 * Threads: any thread. */
const char *gh_call_status_message(const gh_call *call);

/* The grpc-status-details-bin bytes: *data and *len valid until gh_call_free
 * (*data NULL, *len 0 when none). GH_ERR_INVALID_STATE while running.
 * Threads: any thread. */
int gh_call_status_details(const gh_call *call, const uint8_t **data,
                           size_t *len);

/* The response headers' metadata, blocking until they arrive or the call ends
 * (then empty for a trailers-only response). Valid until gh_call_free; do not
 * free. NULL for a NULL or not yet started call.
 * Threads: any thread. */
const gh_metadata *gh_call_initial_metadata(gh_call *call);

/* The trailing metadata, valid until gh_call_free; NULL while running.
 * Threads: any thread. */
const gh_metadata *gh_call_trailing_metadata(const gh_call *call);

/* Cancels the call: RST_STREAM(CANCEL) to the server, status CANCELLED
 * locally. No effect on a call that has ended.
 * Threads: any thread. */
int gh_call_cancel(gh_call *call);

/* Unary convenience: starts the call, sends |request| (copied), half-closes and
 * waits for the response. GH_OK with *response and *response_len set (valid until
 * gh_call_free) when the status is OK; GH_ERR_RPC otherwise (read the status
 * with gh_call_status / gh_call_status_message).
 * Threads: one thread at a time per call. */
int gh_call_unary(gh_call *call, const uint8_t *request, size_t request_len,
                  const uint8_t **response, size_t *response_len);

/* Completion callbacks. They run on the channel's callback threads, one at a
 * time per call, in order: every on_message, then on_done once. |data| is valid
 * only during the callback. The call stays valid until gh_call_free, which may
 * be called from on_done. */
typedef void (*gh_message_fn)(gh_call *call, const uint8_t *data, size_t len,
                              void *user_data);
typedef void (*gh_done_fn)(gh_call *call, int status_code, void *user_data);

/* Starts the call in callback mode: each response message is passed to
 * |on_message| (may be NULL), then |on_done| (may be NULL) gets the status.
 * Request messages are sent with gh_call_send / gh_call_close_send. For unary
 * and server-streaming calls use gh_call_start_unary_async.
 * Threads: one thread at a time per call. */
int gh_call_start_async(gh_call *call, gh_message_fn on_message,
                        gh_done_fn on_done, void *user_data);

/* Starts a call with one request (|request| copied) already sent and the
 * request stream closed, in callback mode as gh_call_start_async. Does not
 * block.
 * Threads: one thread at a time per call. */
int gh_call_start_unary_async(gh_call *call, const uint8_t *request,
                              size_t request_len, gh_message_fn on_message,
                              gh_done_fn on_done, void *user_data);

/* Frees the call, cancelling it if it is still running. NULL does nothing.
 * Once it returns, no callback of this call starts (on_done is not called for
 * the cancellation); a callback already running on another thread finishes.
 * May be called from the call's own on_message or on_done.
 * Threads: one thread, once. */
void gh_call_free(gh_call *call);

/* ======================================================================== */
/* Helper layer (grpc-helper): result codes, config items, folders, config  */
/* sets, command line, rolling logs. Since 0.2.0.                           */
/* ======================================================================== */

/* grpc-helper's ResultCode values (the wire enum of grpc-helper-api). */
typedef enum {
    GH_RC_OK = 0,
    GH_RC_ERROR = 1,
    GH_RC_ARGS = 2,
    GH_RC_ERROR_PORT_BUSY = 10,
    GH_RC_ERROR_API_CLIENT_TOO_OLD = 11,
    GH_RC_ERROR_API_SERVER_TOO_OLD = 12,
    GH_RC_ERROR_RPC = 13,
    GH_RC_ERROR_PROXY_UNREGISTERED = 14,
    GH_RC_ERROR_STREAM_SHUTDOWN = 15,
    GH_RC_ERROR_PARAM_MISSING = 20,
    GH_RC_ERROR_PARAM_INVALID = 21,
    GH_RC_ERROR_PARAM_UNSUPPORTED = 22,
    GH_RC_ERROR_ITEM_UNKNOWN = 30,
    GH_RC_ERROR_ITEM_CONFLICT = 31,
    GH_RC_ERROR_ITEM_BUSY = 32,
    GH_RC_ERROR_ITEM_MULTIPLE = 33,
    GH_RC_ERROR_MODEL_INVALID = 40,
    GH_RC_ERROR_MODEL_SYNTAX = 41,
    GH_RC_ERROR_REQUEST_FAILED = 50,
    GH_RC_ERROR_REQUEST_TIMEOUT = 51,
    GH_RC_ERROR_REQUEST_UNSUPPORTED = 52,
    GH_RC_ERROR_STATE_UNREACHABLE = 60,
    GH_RC_ERROR_STATE_UNEXPECTED = 61,
    GH_RC_ERROR_CUSTOM = 100
} gh_result_code;

/* The ResultCode of the latest function that returned GH_ERR_RESULT on the
 * calling thread (its message is gh_last_error()), or GH_RC_OK if none did.
 * Valid until the next gh_ call on the same thread.
 * Threads: any thread (the value is per thread). */
int gh_last_result_code(void);

/* ------------------------------------------------------------------------ */
/* Config items                                                             */
/* ------------------------------------------------------------------------ */

/* Validators (grpc-helper-api ConfigValidator). */
typedef enum {
    GH_CONFIG_VALID_STRING = 0,
    GH_CONFIG_VALID_CUSTOM = 1,
    GH_CONFIG_VALID_INT = 2,
    GH_CONFIG_VALID_POS_INT = 3,
    GH_CONFIG_VALID_FLOAT = 4,
    GH_CONFIG_VALID_POS_FLOAT = 5
} gh_config_validator;

typedef struct gh_config gh_config;

/* A custom validator: returns GH_RC_OK if |value| is valid for the item
 * |name|, else a ResultCode (GH_RC_ERROR_PARAM_INVALID, best) after writing a
 * NUL-terminated message of at most |message_size| bytes (including the NUL)
 * into |message|. |name| and |value| are valid during the call. It runs on the
 * thread that validates (gh_config_update, a config set's constructor or
 * set operation, ...), possibly on several threads at once. A negative return
 * is reported as GH_RC_ERROR; codes above GH_RC_ERROR_CUSTOM pass through. */
typedef int (*gh_config_validate_fn)(void *user_data, const char *name,
                                     const char *value, char *message,
                                     size_t message_size);

/* A configuration item (grpc-helper's Config). |name| must match
 * [a-z][a-z0-9-]* (else GH_ERR_RESULT, GH_RC_ERROR_PARAM_INVALID);
 * |validator| is a gh_config_validator; GH_CONFIG_VALID_CUSTOM needs |custom|
 * (else GH_ERR_RESULT, GH_RC_ERROR_PARAM_MISSING), which is ignored with the
 * other validators. Strings are copied; |description| and |default_value| may
 * be NULL (""). |user_data| is passed to |custom|; |free_user_data| (may be
 * NULL) is called with it once the item is gone (freed here and released by
 * every config set holding it), also when this function fails. The default
 * value is validated when the item joins a config set (a layer may replace it
 * first). On success *out is a new reference, released with gh_config_free.
 * Threads: any thread. Items are thread-safe. */
int gh_config_new(const char *name, const char *description,
                  const char *default_value, int can_be_empty, int validator,
                  gh_config_validate_fn custom, void *user_data,
                  void (*free_user_data)(void *), gh_config **out);

/* Releases the caller's reference. Config sets that hold the item keep theirs.
 * NULL does nothing.
 * Threads: any thread, once per reference. */
void gh_config_free(gh_config *config);

/* The item's name. Valid until gh_config_free.
 * Threads: any thread. */
const char *gh_config_name(const gh_config *config);

/* The current value, as a NUL-terminated copy released with gh_free (NULL only
 * when out of memory).
 * Threads: any thread. */
char *gh_config_value(const gh_config *config);

/* The default value (hard-coded, or the last config-set layer that gave one),
 * as a copy released with gh_free.
 * Threads: any thread. */
char *gh_config_default_value(const gh_config *config);

/* The current value as an integer / a float (read as Python's int() and
 * float() read strings). GH_ERR_RESULT (GH_RC_ERROR_PARAM_INVALID) if it is
 * not one; *out is untouched then.
 * Threads: any thread. */
int gh_config_int_value(const gh_config *config, int64_t *out);
int gh_config_float_value(const gh_config *config, double *out);

/* The item as the config service reports it: an encoded ConfigItem message
 * (name, description, value, default_value, can_be_empty, validator) in
 * *data / *len, released with gh_free.
 * Threads: any thread. */
int gh_config_describe(const gh_config *config, uint8_t **data, size_t *len);

/* Checks |value| (borrowed for the call) with the item's rules: empty while
 * not allowed → GH_ERR_RESULT GH_RC_ERROR_PARAM_MISSING; not of the
 * validator's kind → GH_RC_ERROR_PARAM_INVALID naming the item and the value;
 * a custom validator's own code and message.
 * Threads: any thread. */
int gh_config_validate(const gh_config *config, const char *value);

/* Validates, then sets the current value (unchanged on error). This does not
 * persist anything: a config set's user items are changed and persisted with
 * gh_config_set_update or gh_config_set_set.
 * Threads: any thread. */
int gh_config_update(gh_config *config, const char *value);

/* Sets the current value back to the default.
 * Threads: any thread. */
int gh_config_reset(gh_config *config);

/* The built-in static items of an RPC server (rpc-max-workers,
 * rpc-shutdown-grace, rpc-shutdown-timeout, rpc-logs-folder, rpc-logs-backup,
 * rpc-logs-interval-unit, rpc-logs-interval, rpc-main-host, rpc-main-port,
 * rpc-client-timeout, rpc-event-retain-timeout, rpc-event-keepalive-timeout),
 * new items on each call. *items is an array of *count new references: free
 * each with gh_config_free, then the array with gh_free.
 * Threads: any thread. */
int gh_config_static_items(gh_config ***items, size_t *count);

/* ------------------------------------------------------------------------ */
/* Folders                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct gh_folders gh_folders;

/* Folders of a helper-layer program (grpc-helper's Folders): system
 * (read-only defaults), user (per-user defaults), workspace (persisted state,
 * logs). Any may be NULL (absent). Paths are copied; a leading "~" is
 * expanded. Nothing is created here.
 * Threads: any thread. Folders are immutable. */
int gh_folders_new(const char *system, const char *user, const char *workspace,
                   gh_folders **out);

/* NULL does nothing.
 * Threads: any thread, once. */
void gh_folders_free(gh_folders *folders);

/* The system folder, or NULL when absent. Never created. Valid until
 * gh_folders_free.
 * Threads: any thread. */
const char *gh_folders_system(const gh_folders *folders);

/* The user / workspace folder in *path (NULL when absent), created with its
 * parents on first use (GH_ERR_RESULT GH_RC_ERROR if that fails). *path is
 * valid until gh_folders_free.
 * Threads: any thread. */
int gh_folders_user(const gh_folders *folders, const char **path);
int gh_folders_workspace(const gh_folders *folders, const char **path);

/* ------------------------------------------------------------------------ */
/* Config sets                                                              */
/* ------------------------------------------------------------------------ */

typedef struct gh_config_set gh_config_set;

/* The configuration of a program: static and user items (arrays of
 * |static_count| and |user_count| handles, borrowed for the call; the set takes
 * its own references). Default values in layers, each overriding the previous:
 * the hard-coded default; config.json in the system folder; config.json in the
 * user folder; the environment ("my-item" → MY_ITEM); |cli_config|, an array
 * of |cli_count| "NAME=VALUE" strings (the command line's -c options, see
 * gh_cli_config). Then the user items' persisted values (the workspace's
 * config.json) are restored; one that no longer validates falls back to its
 * default with a warning (gh_config_set_warning). |folders| (may be NULL: no
 * folders) is borrowed for the call.
 * Errors (GH_ERR_RESULT): an item in both lists or twice →
 * GH_RC_ERROR_MODEL_INVALID; a config.json that is not a JSON object of
 * strings → GH_RC_ERROR_MODEL_INVALID naming the file; an invalid default →
 * the validator's code, naming the item and the layer it came from; a
 * malformed |cli_config| string → GH_RC_ERROR_PARAM_INVALID.
 * Threads: any thread. Sets are thread-safe. */
int gh_config_set_new(gh_config *const *static_items, size_t static_count,
                      gh_config *const *user_items, size_t user_count,
                      const gh_folders *folders, const char *const *cli_config,
                      size_t cli_count, gh_config_set **out);

/* NULL does nothing.
 * Threads: any thread, once. */
void gh_config_set_free(gh_config_set *set);

/* A static or user item by name (borrowed: valid until gh_config_set_free),
 * or NULL if the set has none of that name.
 * Threads: any thread. */
gh_config *gh_config_set_item(gh_config_set *set, const char *name);

/* The number of warnings raised while loading, and the |index|-th text
 * (valid until gh_config_set_free; NULL when out of range).
 * Threads: any thread. */
size_t gh_config_set_warning_count(const gh_config_set *set);
const char *gh_config_set_warning(const gh_config_set *set, size_t index);

/* The ConfigService operations, on encoded messages (request borrowed for the
 * call; the response, released with gh_free, in *response / *response_len):
 * - get: Filter → ConfigStatus, the user items named (empty: all);
 * - set: ConfigUpdate → ConfigStatus, validates every item first and applies
 *   none if one fails, then persists the non-default user values in the
 *   workspace's config.json (atomically);
 * - reset: Filter → ConfigStatus, back to the defaults, persisted.
 * Errors (GH_ERR_RESULT, nothing applied): an empty list (set, reset) or an
 * empty name → GH_RC_ERROR_PARAM_MISSING; an unknown or static name →
 * GH_RC_ERROR_ITEM_UNKNOWN unless the request's ignore_unknown; a bad value →
 * its validator's error. A request that does not decode →
 * GH_ERR_INVALID_ARGUMENT.
 * Threads: any thread (operations are serialized per set). */
int gh_config_set_get(gh_config_set *set, const uint8_t *request,
                      size_t request_len, uint8_t **response,
                      size_t *response_len);
int gh_config_set_set(gh_config_set *set, const uint8_t *request,
                      size_t request_len, uint8_t **response,
                      size_t *response_len);
int gh_config_set_reset(gh_config_set *set, const uint8_t *request,
                        size_t request_len, uint8_t **response,
                        size_t *response_len);

/* Sets one user item and persists, as gh_config_set_set with one item.
 * Threads: any thread. */
int gh_config_set_update(gh_config_set *set, const char *name,
                         const char *value);

/* ------------------------------------------------------------------------ */
/* Command line                                                             */
/* ------------------------------------------------------------------------ */

typedef struct gh_cli gh_cli;

/* Parses |argc| / |argv| (argv[0] is the program name; borrowed for the call)
 * for the RPC options of grpc-helper's RpcCliParser: -h/--help, -V/--version,
 * --system PATH, --user PATH, -w/--workspace PATH, -p/--port PORT and
 * -c/--config NAME=VALUE (repeatable; the last of a name wins). Defaults:
 * |default_port| and the three folders (each may be NULL). |description| and
 * |version| (may be NULL: no -V) are shown by --help and -V.
 * Arguments that are not RPC options are kept, in order, for the host
 * (gh_cli_rest). Always fills *out (GH_OK) once the arguments are readable;
 * then gh_cli_exit_code says whether the host goes on (-1) or prints
 * gh_cli_message (to stdout when the code is 0: help, version; to stderr
 * otherwise: a malformed option, named in the message) and exits with it.
 * Threads: any thread. The handle is immutable. */
int gh_cli_parse(int argc, const char *const *argv, const char *description,
                 const char *version, int default_port,
                 const char *default_system, const char *default_user,
                 const char *default_workspace, gh_cli **out);

/* NULL does nothing.
 * Threads: any thread, once. */
void gh_cli_free(gh_cli *cli);

/* -1 when the program goes on; else the exit status: 0 after --help or -V,
 * 64 (EX_USAGE) after a usage error.
 * Threads: any thread. */
int gh_cli_exit_code(const gh_cli *cli);

/* The text to print when gh_cli_exit_code is not -1 (else ""). Valid until
 * gh_cli_free.
 * Threads: any thread. */
const char *gh_cli_message(const gh_cli *cli);

/* The listening port (-p, else the default; 0..65535, 0 asking for any free
 * port).
 * Threads: any thread. */
int gh_cli_port(const gh_cli *cli);

/* The folders (the options, else the defaults) as a new handle, released with
 * gh_folders_free.
 * Threads: any thread. */
int gh_cli_folders(const gh_cli *cli, gh_folders **out);

/* The -c options as "NAME=VALUE" strings, one per name, ready for
 * gh_config_set_new: *config (an array of *count strings) is valid until
 * gh_cli_free.
 * Threads: any thread. */
int gh_cli_config(const gh_cli *cli, const char *const **config,
                  size_t *count);

/* The arguments that are not RPC options, in order (argv[0] excluded): *argv
 * (an array of *argc strings) is valid until gh_cli_free.
 * Threads: any thread. */
int gh_cli_rest(const gh_cli *cli, int *argc, const char *const **argv);

/* ------------------------------------------------------------------------ */
/* Rolling logs                                                             */
/* ------------------------------------------------------------------------ */

/* Levels (Python logging's numbers; grpc-helper-api LoggerLevel for DEBUG
 * to CRITICAL). */
typedef enum {
    GH_LOG_TRACE = 5,
    GH_LOG_DEBUG = 10,
    GH_LOG_INFO = 20,
    GH_LOG_NOTICE = 25,
    GH_LOG_WARNING = 30,
    GH_LOG_ERROR = 40,
    GH_LOG_CRITICAL = 50
} gh_log_level;

typedef struct gh_logs gh_logs;

/* The rolling logs of a program. Each named logger writes to
 * <folder>/<name>/<name>.log, and every record also goes to
 * <folder>/root/root.log (the root logger's file). Lines read
 * "YYYY-MM-DD hh:mm:ss.mmm [thread/name] LEVEL message", with
 * " - file:function:line" when the source is known; the thread is
 * "MainThread" for the main thread, else its name and kernel id
 * ("worker-4242"). A header line is written (in the file and in the root
 * file) when the process opens a file. Files roll over every |interval| |unit|
 * (S, M, H, D, MIDNIGHT, W0..W6, any case: Python's TimedRotatingFileHandler
 * units), keeping |backup| old files (0: all). Levels per logger come in
 * layers from loggers.json in the system, user and workspace folders of
 * |folders| (may be NULL); name → level name ("DEBUG", ...) or false
 * (disabled). A logger without a level takes its nearest dotted parent's, and
 * finally the root's (name "" or "root"; INFO unless configured). Names that
 * map to one file ("a/b" and "a_b": a slash becomes "_") share it. A file that
 * cannot be written (its folder removed, ...) is reopened, its folder made
 * again, on the next record; records are lost meanwhile (reported once on
 * stderr), never an error of the caller.
 * |folder| is copied; a relative one is taken from the workspace (the current
 * directory without one).
 * Errors (GH_ERR_RESULT): a bad unit or interval → GH_RC_ERROR_PARAM_INVALID;
 * a malformed loggers.json → GH_RC_ERROR_MODEL_INVALID naming it; a folder
 * that cannot be created → GH_RC_ERROR.
 * Threads: any thread. Logs are thread-safe. */
int gh_logs_new(const char *folder, const char *unit, int interval, int backup,
                const gh_folders *folders, gh_logs **out);

/* The same, with folder, unit, interval and backup from the set's
 * rpc-logs-folder, rpc-logs-interval-unit, rpc-logs-interval and
 * rpc-logs-backup items and the set's folders (borrowed for the call).
 * Threads: any thread. */
int gh_logs_new_from_config(const gh_config_set *set, gh_logs **out);

/* Closes the files. No gh_logs_* call may run on it concurrently or after.
 * NULL does nothing.
 * Threads: any thread, once. */
void gh_logs_free(gh_logs *logs);

/* The logs folder (absolute). Valid until gh_logs_free.
 * Threads: any thread. */
const char *gh_logs_folder(const gh_logs *logs);

/* 1 if a record of |level| from logger |name| would be written, else 0 (also
 * for a NULL |logs|).
 * Threads: any thread. */
int gh_logs_enabled(const gh_logs *logs, const char *name, int level);

/* Writes |message| from logger |name| at |level| (a gh_log_level or any
 * 1..50 number) if enabled, naming the calling thread (see gh_logs_new).
 * Strings are borrowed for the call.
 * Threads: any thread. */
int gh_logs_write(gh_logs *logs, const char *name, int level,
                  const char *message);

/* As gh_logs_write, for bindings that forward their language's log records:
 * |name| is the logger whose file gets the record (and the root file);
 * |record_name| (NULL: |name|) the logger that made it, when it reached
 * |name|'s handler by propagation (a child, or another library's logger at the
 * root): its level and enablement decide, and its name is on the line. With
 * the record's thread name, source file, function and line (|thread|, |file|,
 * |function| may be NULL; |line| 0: unknown).
 * Threads: any thread. */
int gh_logs_write_record(gh_logs *logs, const char *name,
                         const char *record_name, int level,
                         const char *thread, const char *file,
                         const char *function, int line, const char *message);

/* The LoggerService operations, on encoded messages (as the config set's):
 * - get: Filter → LoggerStatus, the named loggers' configuration ("" is the
 *   root, reported as "root"; a logger without a level reports LVL_UNKNOWN);
 * - set: LoggerUpdate → LoggerStatus, sets level and enablement and persists
 *   them in the workspace's loggers.json (atomically);
 * - reset: Filter → LoggerStatus, forgets the workspace setting: back to
 *   what the system and user loggers.json give (else no level of its own and
 *   enabled; the root at INFO), removed from the workspace's loggers.json.
 * Errors (GH_ERR_RESULT): an empty request → GH_RC_ERROR_PARAM_MISSING.
 * Threads: any thread. */
int gh_logs_get(gh_logs *logs, const uint8_t *request, size_t request_len,
                uint8_t **response, size_t *response_len);
int gh_logs_set(gh_logs *logs, const uint8_t *request, size_t request_len,
                uint8_t **response, size_t *response_len);
int gh_logs_reset(gh_logs *logs, const uint8_t *request, size_t request_len,
                  uint8_t **response, size_t *response_len);

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
                              void *user_data, void (*free_user_data)(void *));

/* Sets the service's manager: its logger's name (its log file
 * <logs>/<name>/<name>.log; NULL: the service's name) and its hooks (each may
 * be NULL), with |user_data| as gh_rpc_service_add_method's.
 * Threads: one thread at a time per service. */
int gh_rpc_service_set_manager(gh_rpc_service *service, const char *logger_name,
                               gh_rpc_load_fn load, gh_rpc_shutdown_fn shutdown,
                               void *user_data, void (*free_user_data)(void *));

/* Marks the service as proxied (grpc-helper's is_proxy): srv.info lists it
 * so; its calls answer GH_RC_ERROR_PROXY_UNREGISTERED (forwarding to proxies
 * comes with a later version); it has no manager hooks.
 * Threads: one thread at a time per service. */
int gh_rpc_service_set_proxy(gh_rpc_service *service, int is_proxy);

/* Releases the caller's service; servers built with it keep what they need.
 * NULL does nothing.
 * Threads: any thread, once. */
void gh_rpc_service_free(gh_rpc_service *service);

/* gh_rpc_server_new flags. */
#define GH_RPC_WITH_EVENTS 0x1       /* serve the events service (not yet) */
#define GH_RPC_DEBUG_SIGNAL 0x2      /* SIGUSR2 writes a debug dump */

/* Builds and starts a managed server (grpc-helper's RpcServer) on |port| (0:
 * a free port, see gh_rpc_server_port): the config set (the built-in static
 * items plus |static_items|, |user_items|; defaults from |folders| (may be
 * NULL) and |cli_config| "NAME=VALUE" strings, as gh_config_set_new), the
 * rolling logs (gh_logs_new_from_config), the built-in services srv, config
 * and log, then |services| (arrays borrowed for the call); calls every
 * manager's load hook; then *out.
 * It listens on [::]:|port| (IPv6 and IPv4), or 0.0.0.0:|port| where IPv6 is
 * not available; port 0 listens on 0.0.0.0.
 * Errors (GH_ERR_RESULT): the config set's and the logs'; a busy port →
 * GH_RC_ERROR_PORT_BUSY; GH_RPC_WITH_EVENTS → GH_RC_ERROR_PARAM_UNSUPPORTED (a
 * later version); a load hook's code (the server was shut down).
 * Threads: any thread. */
int gh_rpc_server_new(int port, gh_rpc_service *const *services, size_t count,
                      const gh_folders *folders, const char *const *cli_config,
                      size_t cli_count, gh_config *const *static_items,
                      size_t static_count, gh_config *const *user_items,
                      size_t user_count, int flags, gh_rpc_server **out);

/* The port it listens on.
 * Threads: any thread. */
int gh_rpc_server_port(const gh_rpc_server *server);

/* Its config set and logs (borrowed: valid until gh_rpc_server_free).
 * Threads: any thread. */
gh_config_set *gh_rpc_server_config(gh_rpc_server *server);
gh_logs *gh_rpc_server_logs(gh_rpc_server *server);

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
 * for themselves). */
int gh_rpc_server_shutdown(gh_rpc_server *server);

/* Waits until a shutdown (by gh_rpc_server_shutdown, by the srv.shutdown RPC,
 * by a signal) has finished: 1, or 0 after |timeout| seconds (< 0: no limit).
 * Threads: any thread. */
int gh_rpc_server_wait_shutdown(gh_rpc_server *server, double timeout);

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
                              void *user_data, void (*free_user_data)(void *));

/* Shuts the server down if it runs, then frees it. NULL does nothing.
 * Threads: any thread but a handler's of this server, once. */
void gh_rpc_server_free(gh_rpc_server *server);

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

#endif /* GRPCHELPER_H */
