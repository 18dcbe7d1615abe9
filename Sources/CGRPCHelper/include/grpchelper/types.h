/*
 * grpchelper/types.h — part of the C ABI of libgrpchelper (include <grpchelper.h>;
 * the conventions stated there hold here too).
 *
 * gRPC status codes, call cardinality, compression, write flags and the
 * options of servers and channels.
 */
#ifndef GRPCHELPER_TYPES_H
#define GRPCHELPER_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

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
    /* server: number of I/O event-loop threads (default: cores) */
    GH_OPT_EVENT_LOOP_THREADS = GH_OPTTYPE_INT + 6,
    /* server and channel: HTTP/2 initial stream window in bytes (default 1 MiB) */
    GH_OPT_INITIAL_WINDOW_SIZE = GH_OPTTYPE_INT + 7,
    /* channel: number of threads running completion callbacks (default 4) */
    GH_OPT_CALLBACK_THREADS = GH_OPTTYPE_INT + 8,
    /* server: calls running or waiting for a worker at once, over all
     * connections; a call beyond it is answered RESOURCE_EXHAUSTED
     * ("Concurrent RPC limit exceeded!") without running its handler
     * (default 0: no limit). */
    GH_OPT_MAX_CONCURRENT_RPCS = GH_OPTTYPE_INT + 9,
    /* server and channel: largest message sent, in bytes, before compression
     * (default: no limit); a larger one ends the call RESOURCE_EXHAUSTED,
     * "CLIENT: Sent message larger than max (N vs. M)" (channel) or "SERVER:
     * ..." (server), as gRPC's grpc.max_send_message_length; the send fails. */
    GH_OPT_MAX_SEND_MESSAGE_SIZE = GH_OPTTYPE_INT + 10,
    /* server and channel: 1 (default) decompresses received compressed
     * messages; 0 hands them over as they came, compressed (the receive limit
     * then applies to the compressed size), as gRPC's
     * grpc.per_message_decompression */
    GH_OPT_PER_MESSAGE_DECOMPRESSION = GH_OPTTYPE_INT + 11,
    /* server: 1 sets SO_REUSEPORT on the listening sockets, so that other
     * sockets with it may bind the same port (default 0), as gRPC's
     * grpc.so_reuseport */
    GH_OPT_SO_REUSEPORT = GH_OPTTYPE_INT + 12,
    /* server: the most bytes of request messages not yet complete that one
     * connection's calls may hold together; past it the call whose bytes went
     * over ends RESOURCE_EXHAUSTED (default 64 MiB). Since 0.7.0. */
    GH_OPT_MAX_PARTIAL_BYTES_PER_CONNECTION = GH_OPTTYPE_INT + 13,
    /* server: the same for all its connections together (default 256 MiB).
     * Since 0.7.0. */
    GH_OPT_MAX_PARTIAL_BYTES = GH_OPTTYPE_INT + 14,
    /* server: milliseconds a new connection has to send the HTTP/2 preface and
     * its first SETTINGS before it is closed (default 120000, gRPC's
     * grpc.server_handshake_timeout_ms; 0: no limit). Since 0.7.0. */
    GH_OPT_HANDSHAKE_TIMEOUT_MS = GH_OPTTYPE_INT + 15,
    /* server: the most connections open at once; one beyond it is closed as soon
     * as it is accepted (default 0: no limit; gRPC's
     * grpc.max_allowed_incoming_connections). Since 0.7.0. */
    GH_OPT_MAX_CONNECTIONS = GH_OPTTYPE_INT + 16,
    /* server: the most workers the blocking calls of one connection hold at
     * once; its further calls wait, in order, until one of its own ends
     * (default 0: GH_OPT_MAX_WORKERS). Since 0.8.0. */
    GH_OPT_MAX_WORKERS_PER_CONNECTION = GH_OPTTYPE_INT + 17,
    /* server: milliseconds a blocking call may wait for a worker; then it ends
     * RESOURCE_EXHAUSTED without its handler having run (default 30000; 0: it
     * waits as long as it takes). Since 0.8.0. */
    GH_OPT_WORKER_WAIT_TIMEOUT_MS = GH_OPTTYPE_INT + 18,
    /* server: worker threads beyond GH_OPT_MAX_WORKERS, taken only by calls of
     * connections that hold no worker, so that a peer holding every regular
     * worker does not starve the others (default: a quarter of
     * GH_OPT_MAX_WORKERS, at least 1; 0: none). Since 0.8.0. */
    GH_OPT_RESERVED_WORKERS = GH_OPTTYPE_INT + 19,
    /* channel: milliseconds from the start of a failed connection attempt to the
     * next (default 1000; each later wait 1.6 times the last, +-20 %), as gRPC's
     * grpc.initial_reconnect_backoff_ms. Since 0.8.0. */
    GH_OPT_INITIAL_RECONNECT_BACKOFF_MS = GH_OPTTYPE_INT + 20,
    /* channel: the longest of those waits before its +-20 % (default 120000), as
     * gRPC's grpc.max_reconnect_backoff_ms. Since 0.8.0. */
    GH_OPT_MAX_RECONNECT_BACKOFF_MS = GH_OPTTYPE_INT + 21,
    /* server and channel: milliseconds without anything read from the peer
     * before a keepalive PING is sent; without its acknowledgement within
     * GH_OPT_KEEPALIVE_TIMEOUT_MS the connection is closed and its calls end
     * UNAVAILABLE (gRPC's grpc.keepalive_time_ms; default: 2 hours for a server,
     * never for a channel; 0: never). A channel whose server answers GOAWAY
     * "too_many_pings" pings half as often. Since 0.8.0. */
    GH_OPT_KEEPALIVE_TIME_MS = GH_OPTTYPE_INT + 22,
    /* server and channel: see GH_OPT_KEEPALIVE_TIME_MS (default 20000). Since
     * 0.8.0. */
    GH_OPT_KEEPALIVE_TIMEOUT_MS = GH_OPTTYPE_INT + 23,
    /* server and channel: 1 sends keepalive PINGs also while no call is open;
     * for a server, also lets clients PING then as often as
     * GH_OPT_MIN_PING_INTERVAL_WITHOUT_DATA_MS (default 0: once in 2 hours),
     * as gRPC's grpc.keepalive_permit_without_calls. Since 0.8.0. */
    GH_OPT_KEEPALIVE_PERMIT_WITHOUT_CALLS = GH_OPTTYPE_INT + 24,
    /* server: the shortest interval between a client's PINGs while the server
     * sends it no data (default 300000); each PING sooner is a strike, cleared
     * when the server sends HEADERS or DATA (gRPC's
     * grpc.http2.min_recv_ping_interval_without_data_ms). Since 0.8.0. */
    GH_OPT_MIN_PING_INTERVAL_WITHOUT_DATA_MS = GH_OPTTYPE_INT + 25,
    /* server: strikes allowed; one more ends the connection with GOAWAY
     * ENHANCE_YOUR_CALM "too_many_pings" (default 2; 0: no limit), as gRPC's
     * grpc.http2.max_ping_strikes. Since 0.8.0. */
    GH_OPT_MAX_PING_STRIKES = GH_OPTTYPE_INT + 26,
    /* server: milliseconds a connection may stay without calls before the
     * server sends GOAWAY (default 0: no limit), as gRPC's
     * grpc.max_connection_idle_ms. Since 0.8.0. */
    GH_OPT_MAX_CONNECTION_IDLE_MS = GH_OPTTYPE_INT + 27,
    /* server: milliseconds a connection may live (+-10 %) before the server
     * sends GOAWAY (default 0: no limit), as gRPC's grpc.max_connection_age_ms.
     * Since 0.8.0. */
    GH_OPT_MAX_CONNECTION_AGE_MS = GH_OPTTYPE_INT + 28,
    /* server: milliseconds calls may go on after that GOAWAY before they are
     * cancelled and the connection closed (default 0: no limit), as gRPC's
     * grpc.max_connection_age_grace_ms. Since 0.8.0. */
    GH_OPT_MAX_CONNECTION_AGE_GRACE_MS = GH_OPTTYPE_INT + 29,
    /* channel: text put before the library's own user-agent */
    GH_OPT_USER_AGENT_PREFIX = GH_OPTTYPE_STR + 1,
    /* channel: text put after the library's own user-agent */
    GH_OPT_USER_AGENT_SUFFIX = GH_OPTTYPE_STR + 2
} gh_opt;

#ifdef __cplusplus
}
#endif

#endif /* GRPCHELPER_TYPES_H */
