/*
 * test_misc.c — everything else:
 * - ABI: _Static_assert on enum values, flags, option ids and gh_info layout;
 * - gh_version / GH_VERSION_* / GH_VERSION_AT_LEAST;
 * - options on servers and channels (accepted before start / first call,
 *   refused after);
 * - a unix-socket listener next to a TCP one; gh_server_port; the peer
 *   address and method seen by handlers;
 * - free_user_data called once per registration by gh_server_free;
 * - gh_server_wait returning when another thread shuts the server down;
 *   gh_server_shutdown idempotent, cancelling a call in flight after the
 *   grace period and returning only after its handler returned;
 * - blocking calls from several threads on one channel.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpchelper.h>

#include "check.h"
#include "testutil.h"

/* ------------------------------------------------------------------------ */
/* ABI                                                                      */
/* ------------------------------------------------------------------------ */

_Static_assert(GH_OK == 0, "GH_OK");
_Static_assert(GH_ERR_INVALID_ARGUMENT == -501, "GH_ERR_INVALID_ARGUMENT");
_Static_assert(GH_ERR_INVALID_STATE == -502, "GH_ERR_INVALID_STATE");
_Static_assert(GH_ERR_CLOSED == -503, "GH_ERR_CLOSED");
_Static_assert(GH_ERR_BIND == -504, "GH_ERR_BIND");
_Static_assert(GH_ERR_RPC == -505, "GH_ERR_RPC");
_Static_assert(GH_ERR_TOO_LARGE == -506, "GH_ERR_TOO_LARGE");
_Static_assert(GH_ERR_FATAL == -900, "GH_ERR_FATAL");
_Static_assert(GH_ERR_NOMEM == -901, "GH_ERR_NOMEM");
_Static_assert(GH_ERR_INTERNAL == -902, "GH_ERR_INTERNAL");

_Static_assert(GH_STATUS_OK == 0, "GH_STATUS_OK");
_Static_assert(GH_STATUS_CANCELLED == 1, "GH_STATUS_CANCELLED");
_Static_assert(GH_STATUS_DEADLINE_EXCEEDED == 4, "GH_STATUS_DEADLINE_EXCEEDED");
_Static_assert(GH_STATUS_RESOURCE_EXHAUSTED == 8, "GH_STATUS_RESOURCE_EXHAUSTED");
_Static_assert(GH_STATUS_UNIMPLEMENTED == 12, "GH_STATUS_UNIMPLEMENTED");
_Static_assert(GH_STATUS_INTERNAL == 13, "GH_STATUS_INTERNAL");
_Static_assert(GH_STATUS_UNAVAILABLE == 14, "GH_STATUS_UNAVAILABLE");
_Static_assert(GH_STATUS_UNAUTHENTICATED == 16, "GH_STATUS_UNAUTHENTICATED");

_Static_assert(GH_UNARY == 0, "GH_UNARY");
_Static_assert(GH_CLIENT_STREAMING == 1, "GH_CLIENT_STREAMING");
_Static_assert(GH_SERVER_STREAMING == 2, "GH_SERVER_STREAMING");
_Static_assert(GH_BIDI_STREAMING == 3, "GH_BIDI_STREAMING");

_Static_assert(GH_COMPRESSION_DEFAULT == -1, "GH_COMPRESSION_DEFAULT");
_Static_assert(GH_COMPRESSION_NONE == 0, "GH_COMPRESSION_NONE");
_Static_assert(GH_COMPRESSION_DEFLATE == 1, "GH_COMPRESSION_DEFLATE");
_Static_assert(GH_COMPRESSION_GZIP == 2, "GH_COMPRESSION_GZIP");
_Static_assert(GH_WRITE_NO_COMPRESS == 0x1, "GH_WRITE_NO_COMPRESS");

_Static_assert(GH_OPTTYPE_INT == 0 && GH_OPTTYPE_STR == 10000, "GH_OPTTYPE_*");
_Static_assert(GH_OPT_MAX_WORKERS == 1, "GH_OPT_MAX_WORKERS");
_Static_assert(GH_OPT_MAX_RECV_MESSAGE_SIZE == 2, "GH_OPT_MAX_RECV_MESSAGE_SIZE");
_Static_assert(GH_OPT_MAX_CONCURRENT_STREAMS == 3, "GH_OPT_MAX_CONCURRENT_STREAMS");
_Static_assert(GH_OPT_MAX_HEADER_LIST_SIZE == 4, "GH_OPT_MAX_HEADER_LIST_SIZE");
_Static_assert(GH_OPT_DEFAULT_COMPRESSION == 5, "GH_OPT_DEFAULT_COMPRESSION");
_Static_assert(GH_OPT_EVENT_LOOP_THREADS == 6, "GH_OPT_EVENT_LOOP_THREADS");
_Static_assert(GH_OPT_INITIAL_WINDOW_SIZE == 7, "GH_OPT_INITIAL_WINDOW_SIZE");
_Static_assert(GH_OPT_CALLBACK_THREADS == 8, "GH_OPT_CALLBACK_THREADS");
_Static_assert(GH_OPT_USER_AGENT_PREFIX == 10001, "GH_OPT_USER_AGENT_PREFIX");
_Static_assert(GH_OPT_MAX_SEND_MESSAGE_SIZE == 10, "GH_OPT_MAX_SEND_MESSAGE_SIZE");
_Static_assert(GH_OPT_PER_MESSAGE_DECOMPRESSION == 11, "GH_OPT_PER_MESSAGE_DECOMPRESSION");
_Static_assert(GH_OPT_SO_REUSEPORT == 12, "GH_OPT_SO_REUSEPORT");
_Static_assert(GH_OPT_MAX_PARTIAL_BYTES_PER_CONNECTION == 13, "GH_OPT_MAX_PARTIAL_BYTES_PER_CONNECTION");
_Static_assert(GH_OPT_MAX_PARTIAL_BYTES == 14, "GH_OPT_MAX_PARTIAL_BYTES");
_Static_assert(GH_OPT_HANDSHAKE_TIMEOUT_MS == 15, "GH_OPT_HANDSHAKE_TIMEOUT_MS");
_Static_assert(GH_OPT_MAX_CONNECTIONS == 16, "GH_OPT_MAX_CONNECTIONS");
_Static_assert(GH_OPT_MAX_WORKERS_PER_CONNECTION == 17, "GH_OPT_MAX_WORKERS_PER_CONNECTION");
_Static_assert(GH_OPT_WORKER_WAIT_TIMEOUT_MS == 18, "GH_OPT_WORKER_WAIT_TIMEOUT_MS");
_Static_assert(GH_OPT_RESERVED_WORKERS == 19, "GH_OPT_RESERVED_WORKERS");
_Static_assert(GH_OPT_INITIAL_RECONNECT_BACKOFF_MS == 20, "GH_OPT_INITIAL_RECONNECT_BACKOFF_MS");
_Static_assert(GH_OPT_MAX_RECONNECT_BACKOFF_MS == 21, "GH_OPT_MAX_RECONNECT_BACKOFF_MS");
_Static_assert(GH_OPT_KEEPALIVE_TIME_MS == 22, "GH_OPT_KEEPALIVE_TIME_MS");
_Static_assert(GH_OPT_KEEPALIVE_TIMEOUT_MS == 23, "GH_OPT_KEEPALIVE_TIMEOUT_MS");
_Static_assert(GH_OPT_KEEPALIVE_PERMIT_WITHOUT_CALLS == 24, "GH_OPT_KEEPALIVE_PERMIT_WITHOUT_CALLS");
_Static_assert(GH_OPT_MIN_PING_INTERVAL_WITHOUT_DATA_MS == 25, "GH_OPT_MIN_PING_INTERVAL_WITHOUT_DATA_MS");
_Static_assert(GH_OPT_MAX_PING_STRIKES == 26, "GH_OPT_MAX_PING_STRIKES");
_Static_assert(GH_OPT_MAX_CONNECTION_IDLE_MS == 27, "GH_OPT_MAX_CONNECTION_IDLE_MS");
_Static_assert(GH_OPT_MAX_CONNECTION_AGE_MS == 28, "GH_OPT_MAX_CONNECTION_AGE_MS");
_Static_assert(GH_OPT_MAX_CONNECTION_AGE_GRACE_MS == 29, "GH_OPT_MAX_CONNECTION_AGE_GRACE_MS");
_Static_assert(GH_OPT_USER_AGENT_SUFFIX == 10002, "GH_OPT_USER_AGENT_SUFFIX");

_Static_assert(sizeof(gh_error) == sizeof(int), "enums are int-sized");
_Static_assert(sizeof(gh_opt) == sizeof(int), "enums are int-sized");
_Static_assert(offsetof(gh_info, age) == 0, "gh_info.age first");
_Static_assert(offsetof(gh_info, version_num) == sizeof(int), "gh_info.version_num");
_Static_assert(offsetof(gh_info, version_str) >= 2 * sizeof(int), "gh_info.version_str");

_Static_assert(GH_VERSION_NUM ==
                   ((GH_VERSION_MAJOR << 16) | (GH_VERSION_MINOR << 8) |
                    GH_VERSION_PATCH),
               "GH_VERSION_NUM");
_Static_assert(GH_VERSION_AT_LEAST(0, 3, 0), "GH_VERSION_AT_LEAST(0,3,0)");
_Static_assert(GH_VERSION_AT_LEAST(0, 2, 9), "GH_VERSION_AT_LEAST(0,2,9)");
_Static_assert(GH_VERSION_AT_LEAST(GH_VERSION_MAJOR, GH_VERSION_MINOR, GH_VERSION_PATCH),
               "GH_VERSION_AT_LEAST(this version)");
_Static_assert(!GH_VERSION_AT_LEAST(GH_VERSION_MAJOR, GH_VERSION_MINOR, GH_VERSION_PATCH + 1),
               "!GH_VERSION_AT_LEAST(the next patch)");
_Static_assert(!GH_VERSION_AT_LEAST(1, 0, 0), "!GH_VERSION_AT_LEAST(1,0,0)");

/* Function pointer types of the ABI. */
static gh_handler_fn const k_handler_type_check = tu_echo_unary;

static void test_version(void) {
    const gh_info *info = gh_version(0);
    CHECK(info != NULL);
    CHECK(info->age >= 1);
    CHECK_EQ(info->version_num, GH_VERSION_NUM);
    CHECK_STR(info->version_str, GH_VERSION_STR);
    CHECK(gh_version(0) == info); /* static */
    CHECK(gh_version(GH_VERSION_NUM) == info);
    CHECK(gh_version(0x000001) == info);
    CHECK(gh_version(GH_VERSION_NUM + 1) == NULL);
    CHECK(gh_version(0x010000) == NULL);
    CHECK(gh_version(0x7fffffff) == NULL);

    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", GH_VERSION_MAJOR,
             GH_VERSION_MINOR, GH_VERSION_PATCH);
    CHECK_STR(GH_VERSION_STR, expected);
    /* usable in #if */
#if !GH_VERSION_AT_LEAST(0, 3, 0) || GH_VERSION_NUM != ((GH_VERSION_MAJOR << 16) | (GH_VERSION_MINOR << 8) | GH_VERSION_PATCH)
#error "GH_VERSION_NUM"
#endif
}

/* gh_strdup: a copy gh_free releases. */
static void test_strdup(void) {
    char *d = gh_strdup("a copy");
    CHECK(d != NULL);
    CHECK_STR(d, "a copy");
    gh_free(d);
    d = gh_strdup("");
    CHECK(d != NULL && d[0] == 0);
    gh_free(d);
    CHECK(gh_strdup(NULL) == NULL);
}

/* ------------------------------------------------------------------------ */
/* Options, listeners, peers                                                */
/* ------------------------------------------------------------------------ */

typedef struct {
    pthread_mutex_t mu;
    char peer[256];
    char method[128];
} peer_state;

static void h_peer(gh_server_call *call, void *ud) {
    peer_state *st = ud;
    pthread_mutex_lock(&st->mu);
    snprintf(st->peer, sizeof st->peer, "%s", gh_server_call_peer(call));
    snprintf(st->method, sizeof st->method, "%s", gh_server_call_method(call));
    pthread_mutex_unlock(&st->mu);
    tu_echo_unary(call, NULL);
}

static void unary_ok(gh_channel *ch, const char *method, const char *msg) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, method, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    CHECK_OK(gh_call_unary(call, (const uint8_t *)msg, strlen(msg), &resp,
                           &resp_len));
    CHECK_BYTES_STR(resp, resp_len, msg);
    gh_call_free(call);
}

static void test_options_and_listeners(void) {
    peer_state ps;
    memset(&ps, 0, sizeof ps);
    CHECK(pthread_mutex_init(&ps.mu, NULL) == 0);

    char sock_path[108];
    snprintf(sock_path, sizeof sock_path, "/tmp/grpchelper-test-%ld.sock",
             (long)getpid());
    unlink(sock_path);
    char unix_addr[128];
    snprintf(unix_addr, sizeof unix_addr, "unix:%s", sock_path);

    gh_server *s = NULL;
    CHECK_OK(gh_server_new(&s));
    CHECK_OK(gh_server_set_int(s, GH_OPT_MAX_WORKERS, 4));
    CHECK_OK(gh_server_set_int(s, GH_OPT_MAX_RECV_MESSAGE_SIZE, 1 << 20));
    CHECK_OK(gh_server_set_int(s, GH_OPT_MAX_CONCURRENT_STREAMS, 50));
    CHECK_OK(gh_server_set_int(s, GH_OPT_MAX_HEADER_LIST_SIZE, 32 * 1024));
    CHECK_OK(gh_server_set_int(s, GH_OPT_DEFAULT_COMPRESSION, GH_COMPRESSION_NONE));
    CHECK_OK(gh_server_set_int(s, GH_OPT_EVENT_LOOP_THREADS, 2));
    CHECK_OK(gh_server_set_int(s, GH_OPT_INITIAL_WINDOW_SIZE, 256 * 1024));
    CHECK_OK(gh_server_add_listener(s, "127.0.0.1:0"));
    CHECK_OK(gh_server_add_listener(s, unix_addr));
    CHECK_OK(gh_server_register(s, "/grpchelper.test.Misc/Peer", GH_UNARY, h_peer,
                                &ps, NULL));
    CHECK_OK(gh_server_register(s, TU_UNARY, GH_UNARY, tu_echo_unary, NULL, NULL));
    int port = -1;
    CHECK(gh_server_port(s, 0, &port) < 0); /* not started yet */
    CHECK_OK(gh_server_start(s));
    CHECK_OK(gh_server_port(s, 0, &port));
    CHECK(port > 0);
    int unix_port = -1;
    CHECK_OK(gh_server_port(s, 1, &unix_port));
    CHECK_EQ(unix_port, 0);
    int dummy = 4242;
    CHECK_RC(gh_server_port(s, 2, &dummy), GH_ERR_INVALID_ARGUMENT);
    CHECK_EQ(dummy, 4242);
    CHECK_RC(gh_server_start(s), GH_ERR_INVALID_STATE);

    /* TCP channel with every channel option. */
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    gh_channel *ch = NULL;
    CHECK_OK(gh_channel_new(&ch, target));
    CHECK_OK(gh_channel_set_int(ch, GH_OPT_MAX_RECV_MESSAGE_SIZE, 1 << 20));
    CHECK_OK(gh_channel_set_int(ch, GH_OPT_MAX_HEADER_LIST_SIZE, 32 * 1024));
    CHECK_OK(gh_channel_set_int(ch, GH_OPT_DEFAULT_COMPRESSION, GH_COMPRESSION_NONE));
    CHECK_OK(gh_channel_set_int(ch, GH_OPT_INITIAL_WINDOW_SIZE, 256 * 1024));
    CHECK_OK(gh_channel_set_int(ch, GH_OPT_CALLBACK_THREADS, 2));
    CHECK_OK(gh_channel_set_int(ch, GH_OPT_INITIAL_RECONNECT_BACKOFF_MS, 100));
    CHECK_OK(gh_channel_set_int(ch, GH_OPT_MAX_RECONNECT_BACKOFF_MS, 5000));
    CHECK_RC(gh_channel_set_int(ch, GH_OPT_MAX_RECONNECT_BACKOFF_MS, 0), GH_ERR_INVALID_ARGUMENT);
    CHECK_OK(gh_channel_set_int(ch, GH_OPT_KEEPALIVE_TIME_MS, 30000));
    CHECK_OK(gh_channel_set_int(ch, GH_OPT_KEEPALIVE_TIMEOUT_MS, 5000));
    CHECK_OK(gh_channel_set_int(ch, GH_OPT_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0));
    CHECK_RC(gh_channel_set_int(ch, GH_OPT_MAX_PING_STRIKES, 1), GH_ERR_INVALID_ARGUMENT);
    CHECK_OK(gh_channel_set_str(ch, GH_OPT_USER_AGENT_PREFIX, "grpchelper-ctest/1.0"));
    /* Server-only, unknown and wrongly typed options. */
    CHECK_RC(gh_channel_set_int(ch, GH_OPT_MAX_WORKERS, 3), GH_ERR_INVALID_ARGUMENT);
    /* A channel's one connection runs on one I/O thread: refused, not ignored. */
    CHECK_RC(gh_channel_set_int(ch, GH_OPT_EVENT_LOOP_THREADS, 1), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_channel_set_int(ch, (gh_opt)4711, 3), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_channel_set_int(ch, GH_OPT_USER_AGENT_PREFIX, 3),
             GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_channel_set_str(ch, GH_OPT_MAX_RECV_MESSAGE_SIZE, "3"),
             GH_ERR_INVALID_ARGUMENT);

    unary_ok(ch, "/grpchelper.test.Misc/Peer", "over tcp");
    pthread_mutex_lock(&ps.mu);
    CHECK_MSG(strncmp(ps.peer, "ipv4:127.0.0.1:", 15) == 0, "peer %s", ps.peer);
    CHECK_STR(ps.method, "/grpchelper.test.Misc/Peer");
    pthread_mutex_unlock(&ps.mu);
    /* After the first call the options are frozen. */
    CHECK_RC(gh_channel_set_int(ch, GH_OPT_CALLBACK_THREADS, 3), GH_ERR_INVALID_STATE);
    CHECK_RC(gh_channel_set_str(ch, GH_OPT_USER_AGENT_PREFIX, "late"),
             GH_ERR_INVALID_STATE);
    gh_channel_free(ch);

    /* Unix channel. */
    gh_channel *uch = NULL;
    CHECK_OK(gh_channel_new(&uch, unix_addr));
    unary_ok(uch, "/grpchelper.test.Misc/Peer", "over unix");
    pthread_mutex_lock(&ps.mu);
    CHECK_MSG(strncmp(ps.peer, "unix:", 5) == 0, "peer %s", ps.peer);
    pthread_mutex_unlock(&ps.mu);
    unary_ok(uch, TU_UNARY, "again over unix");
    gh_channel_free(uch);

    tu_server_stop(s);
    unlink(sock_path);
    pthread_mutex_destroy(&ps.mu);
}

/* ------------------------------------------------------------------------ */
/* Server lifecycle                                                         */
/* ------------------------------------------------------------------------ */

static int g_freed[3];

static void free_counter(void *p) {
    int *slot = p;
    (*slot)++;
}

/* grpcio's options as the library gives them: the largest message sent (client
 * and server, gRPC's texts), per-message decompression and SO_REUSEPORT values,
 * the user-agent suffix, the keys a call's metadata may not set. */
static void unary_fails(gh_channel *ch, const char *msg, int status, const char *text) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, TU_UNARY, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    const uint8_t *resp = NULL;
    size_t len = 0;
    CHECK_RC(gh_call_unary(call, (const uint8_t *)msg, strlen(msg), &resp, &len), GH_ERR_RPC);
    CHECK_EQ(gh_call_status(call), status);
    CHECK_STR(gh_call_status_message(call), text);
    gh_call_free(call);
}

static void test_grpcio_options(void) {
    tu_method echo = {TU_UNARY, GH_UNARY, tu_echo_unary, NULL};
    gh_server *s = tu_server_new(&echo, 1);
    CHECK_OK(gh_server_set_int(s, GH_OPT_MAX_SEND_MESSAGE_SIZE, 4));
    CHECK_OK(gh_server_set_int(s, GH_OPT_PER_MESSAGE_DECOMPRESSION, 0));
    CHECK_OK(gh_server_set_int(s, GH_OPT_SO_REUSEPORT, 1));
    CHECK_RC(gh_server_set_int(s, GH_OPT_PER_MESSAGE_DECOMPRESSION, 2), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_set_int(s, GH_OPT_SO_REUSEPORT, -1), GH_ERR_INVALID_ARGUMENT);
    CHECK_OK(gh_server_set_int(s, GH_OPT_MAX_PARTIAL_BYTES_PER_CONNECTION, 1 << 20));
    CHECK_OK(gh_server_set_int(s, GH_OPT_MAX_PARTIAL_BYTES, 1 << 24));
    CHECK_RC(gh_server_set_int(s, GH_OPT_MAX_PARTIAL_BYTES, 0), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_set_int(s, GH_OPT_MAX_PARTIAL_BYTES_PER_CONNECTION, -5), GH_ERR_INVALID_ARGUMENT);
    CHECK_OK(gh_server_set_int(s, GH_OPT_HANDSHAKE_TIMEOUT_MS, 0));
    CHECK_OK(gh_server_set_int(s, GH_OPT_HANDSHAKE_TIMEOUT_MS, 30000));
    CHECK_OK(gh_server_set_int(s, GH_OPT_MAX_CONNECTIONS, 0));
    CHECK_OK(gh_server_set_int(s, GH_OPT_MAX_CONNECTIONS, 1000));
    CHECK_OK(gh_server_set_int(s, GH_OPT_MAX_WORKERS_PER_CONNECTION, 0));
    CHECK_OK(gh_server_set_int(s, GH_OPT_MAX_WORKERS_PER_CONNECTION, 8));
    CHECK_RC(gh_server_set_int(s, GH_OPT_MAX_WORKERS_PER_CONNECTION, -1), GH_ERR_INVALID_ARGUMENT);
    CHECK_OK(gh_server_set_int(s, GH_OPT_WORKER_WAIT_TIMEOUT_MS, 0));
    CHECK_OK(gh_server_set_int(s, GH_OPT_WORKER_WAIT_TIMEOUT_MS, 5000));
    CHECK_RC(gh_server_set_int(s, GH_OPT_WORKER_WAIT_TIMEOUT_MS, -1), GH_ERR_INVALID_ARGUMENT);
    CHECK_OK(gh_server_set_int(s, GH_OPT_RESERVED_WORKERS, 0));
    CHECK_OK(gh_server_set_int(s, GH_OPT_RESERVED_WORKERS, 4));
    CHECK_RC(gh_server_set_int(s, GH_OPT_RESERVED_WORKERS, -1), GH_ERR_INVALID_ARGUMENT);
    CHECK_OK(gh_server_set_int(s, GH_OPT_KEEPALIVE_TIME_MS, 60000));
    CHECK_OK(gh_server_set_int(s, GH_OPT_KEEPALIVE_TIMEOUT_MS, 5000));
    CHECK_OK(gh_server_set_int(s, GH_OPT_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1));
    CHECK_OK(gh_server_set_int(s, GH_OPT_MIN_PING_INTERVAL_WITHOUT_DATA_MS, 10000));
    CHECK_OK(gh_server_set_int(s, GH_OPT_MAX_PING_STRIKES, 0));
    CHECK_OK(gh_server_set_int(s, GH_OPT_MAX_CONNECTION_IDLE_MS, 600000));
    CHECK_OK(gh_server_set_int(s, GH_OPT_MAX_CONNECTION_AGE_MS, 600000));
    CHECK_OK(gh_server_set_int(s, GH_OPT_MAX_CONNECTION_AGE_GRACE_MS, 10000));
    CHECK_RC(gh_server_set_int(s, GH_OPT_KEEPALIVE_TIMEOUT_MS, 0), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_set_int(s, GH_OPT_KEEPALIVE_PERMIT_WITHOUT_CALLS, 2), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_set_int(s, GH_OPT_MAX_CONNECTION_AGE_MS, -1), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_set_int(s, GH_OPT_MAX_CONNECTIONS, -1), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_set_int(s, GH_OPT_MAX_SEND_MESSAGE_SIZE, -1), GH_ERR_INVALID_ARGUMENT);
    int port = 0;
    CHECK_OK(gh_server_bind(s, "127.0.0.1:0", &port));
    /* Another server with SO_REUSEPORT binds the same port; one without cannot. */
    gh_server *sharing = NULL, *alone = NULL;
    CHECK_OK(gh_server_new(&sharing));
    CHECK_OK(gh_server_new(&alone));
    CHECK_OK(gh_server_set_int(sharing, GH_OPT_SO_REUSEPORT, 1));
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    int port2 = 0;
    CHECK_OK(gh_server_bind(sharing, addr, &port2));
    CHECK_EQ(port2, port);
    CHECK_RC(gh_server_bind(alone, addr, &port2), GH_ERR_BIND);
    gh_server_free(sharing);
    gh_server_free(alone);
    CHECK_OK(gh_server_start(s));

    gh_channel *ch = tu_channel_new(port);
    CHECK_OK(gh_channel_set_int(ch, GH_OPT_MAX_SEND_MESSAGE_SIZE, 8));
    CHECK_OK(gh_channel_set_int(ch, GH_OPT_PER_MESSAGE_DECOMPRESSION, 1));
    CHECK_OK(gh_channel_set_str(ch, GH_OPT_USER_AGENT_SUFFIX, "suffix/1"));
    CHECK_RC(gh_channel_set_int(ch, GH_OPT_SO_REUSEPORT, 1), GH_ERR_INVALID_ARGUMENT);
    unary_ok(ch, TU_UNARY, "abcd");
    unary_fails(ch, "123456789", GH_STATUS_RESOURCE_EXHAUSTED,
                "CLIENT: Sent message larger than max (9 vs. 8)");
    unary_fails(ch, "abcdef", GH_STATUS_RESOURCE_EXHAUSTED,
                "SERVER: Sent message larger than max (6 vs. 4)");
    gh_channel_free(ch);
    tu_server_stop(s);

    CHECK_EQ(gh_metadata_key_is_managed("user-agent"), 1);
    CHECK_EQ(gh_metadata_key_is_managed("User-Agent"), 1);
    CHECK_EQ(gh_metadata_key_is_managed("grpc-timeout"), 1);
    CHECK_EQ(gh_metadata_key_is_managed("te"), 1);
    CHECK_EQ(gh_metadata_key_is_managed("grpc-status"), 0);
    CHECK_EQ(gh_metadata_key_is_managed("x-user"), 0);
    CHECK_EQ(gh_metadata_key_is_managed(NULL), 0);
}

static void test_free_user_data(void) {
    gh_server *s = NULL;
    CHECK_OK(gh_server_new(&s));
    CHECK_OK(gh_server_add_listener(s, "127.0.0.1:0"));
    CHECK_OK(gh_server_register(s, "/a.S/One", GH_UNARY, tu_echo_unary, &g_freed[0],
                                free_counter));
    CHECK_OK(gh_server_register(s, "/a.S/Two", GH_BIDI_STREAMING, tu_echo_bidi,
                                &g_freed[1], free_counter));
    CHECK_OK(gh_server_register(s, "/a.S/Three", GH_UNARY, tu_echo_unary,
                                &g_freed[2], NULL));
    CHECK_OK(gh_server_start(s));
    /* Not freed by shutdown, only by free. */
    CHECK_OK(gh_server_shutdown(s, 1));
    CHECK_EQ(g_freed[0] + g_freed[1] + g_freed[2], 0);
    gh_server_free(s);
    CHECK_EQ(g_freed[0], 1);
    CHECK_EQ(g_freed[1], 1);
    CHECK_EQ(g_freed[2], 0);

    /* A server never started is freed as well. */
    CHECK_OK(gh_server_new(&s));
    CHECK_OK(gh_server_register(s, "/a.S/One", GH_UNARY, tu_echo_unary, &g_freed[0],
                                free_counter));
    gh_server_free(s);
    CHECK_EQ(g_freed[0], 2);
}

typedef struct {
    gh_server *server;
    int rc;
    tu_counter returned;
} wait_arg;

static void *server_wait_thread(void *p) {
    wait_arg *wa = p;
    wa->rc = gh_server_wait(wa->server);
    tu_counter_add(&wa->returned, 1);
    return NULL;
}

typedef struct {
    tu_counter reading;  /* handler is blocked reading */
    tu_counter returned; /* handler has returned */
    int read_rc;
    int cancelled;
} inflight_state;

/* Bidi: reads one message, echoes it, then blocks until the call ends. */
static void h_inflight(gh_server_call *call, void *ud) {
    inflight_state *st = ud;
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_server_call_read(call, &data, &len), 1);
    CHECK_OK(gh_server_call_send(call, data, len, 0));
    tu_counter_add(&st->reading, 1);
    st->read_rc = gh_server_call_read(call, &data, &len);
    st->cancelled = gh_server_call_is_cancelled(call);
    tu_counter_add(&st->returned, 1);
}

static void test_shutdown(void) {
    inflight_state st;
    memset(&st, 0, sizeof st);
    tu_counter_init(&st.reading);
    tu_counter_init(&st.returned);
    const tu_method methods[] = {
        {"/grpchelper.test.Misc/InFlight", GH_BIDI_STREAMING, h_inflight, &st},
    };
    int port = 0;
    gh_server *s = tu_echo_server(methods, 1, &port);

    wait_arg wa;
    memset(&wa, 0, sizeof wa);
    wa.server = s;
    wa.rc = 12345;
    tu_counter_init(&wa.returned);
    pthread_t waiter;
    CHECK(pthread_create(&waiter, NULL, server_wait_thread, &wa) == 0);

    gh_channel *ch = tu_channel_new(port);
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, "/grpchelper.test.Misc/InFlight", &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    CHECK_OK(gh_call_start(call));
    CHECK_OK(gh_call_send(call, (const uint8_t *)"stay", 4, 0));
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_call_recv(call, &data, &len), 1);
    CHECK_BYTES_STR(data, len, "stay");
    CHECK(tu_counter_wait(&st.reading, 1, TU_WAIT_LIMIT));
    CHECK_EQ(tu_counter_get(&wa.returned), 0); /* still serving */

    /* Grace 0.3 s: the handler does not finish by itself, so it is cancelled;
     * shutdown returns only after it has returned. */
    double t0 = tu_now();
    CHECK_OK(gh_server_shutdown(s, 0.3));
    double took = tu_now() - t0;
    CHECK_EQ(tu_counter_get(&st.returned), 1);
    CHECK_MSG(took >= 0.2 && took < 10.0, "shutdown took %.3f s", took);
    CHECK_RC(st.read_rc, GH_ERR_CLOSED);
    CHECK(st.cancelled);

    /* The client sees the call end with an error status. */
    CHECK(gh_call_recv(call, &data, &len) <= 0);
    int status = gh_call_wait(call);
    CHECK_MSG(status != GH_STATUS_OK, "status %d", status);
    gh_call_free(call);

    /* gh_server_wait in the other thread returned. */
    CHECK(tu_counter_wait(&wa.returned, 1, TU_WAIT_LIMIT));
    CHECK(pthread_join(waiter, NULL) == 0);
    CHECK_RC(wa.rc, GH_OK);
    CHECK_OK(gh_server_wait(s)); /* already shut down: returns at once */

    /* Idempotent. */
    CHECK_OK(gh_server_shutdown(s, 5));
    CHECK_OK(gh_server_shutdown(s, 0));

    /* New calls fail now. */
    CHECK_OK(gh_call_new(ch, TU_UNARY, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    CHECK_RC(gh_call_unary(call, (const uint8_t *)"x", 1, &data, &len), GH_ERR_RPC);
    CHECK_EQ(gh_call_status(call), GH_STATUS_UNAVAILABLE);
    gh_call_free(call);

    gh_channel_free(ch);
    gh_server_free(s);
    tu_counter_destroy(&wa.returned);
    tu_counter_destroy(&st.reading);
    tu_counter_destroy(&st.returned);
}

/* A graceful shutdown lets a call in flight complete within the grace. */
static void test_graceful_completion(void) {
    int port = 0;
    gh_server *s = tu_echo_server(NULL, 0, &port);
    gh_channel *ch = tu_channel_new(port);
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, TU_BIDI, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    CHECK_OK(gh_call_start(call));
    CHECK_OK(gh_call_send(call, (const uint8_t *)"before", 6, 0));
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_call_recv(call, &data, &len), 1);

    /* Another thread blocks in gh_server_wait meanwhile. */
    wait_arg wa;
    memset(&wa, 0, sizeof wa);
    wa.server = s;
    tu_counter_init(&wa.returned);
    pthread_t waiter;
    CHECK(pthread_create(&waiter, NULL, server_wait_thread, &wa) == 0);
    /* Shut down (grace 10 s) while the call is in flight: its handler is still
     * reading; it sees the half-close and finishes with OK within the grace. */
    CHECK_OK(gh_call_send(call, (const uint8_t *)"during", 6, 0));
    CHECK_RC(gh_call_recv(call, &data, &len), 1);
    CHECK_BYTES_STR(data, len, "during");
    CHECK_OK(gh_call_close_send(call));
    CHECK_OK(gh_server_shutdown(s, 10));
    CHECK_RC(gh_call_recv(call, &data, &len), 0);
    CHECK_EQ(gh_call_wait(call), GH_STATUS_OK);
    gh_call_free(call);
    CHECK(pthread_join(waiter, NULL) == 0);
    CHECK_RC(wa.rc, GH_OK);
    tu_counter_destroy(&wa.returned);
    gh_channel_free(ch);
    gh_server_free(s);
}

/* gh_server_free without shutdown, with a channel still open. */
static void test_free_without_shutdown(void) {
    int port = 0;
    gh_server *s = tu_echo_server(NULL, 0, &port);
    gh_channel *ch = tu_channel_new(port);
    unary_ok(ch, TU_UNARY, "x");
    gh_server_free(s);
    gh_channel_free(ch);
}

/* ------------------------------------------------------------------------ */
/* Threads                                                                  */
/* ------------------------------------------------------------------------ */

#define N_THREADS 6
#define CALLS_PER_THREAD 25

typedef struct {
    gh_channel *ch;
    int index;
} thread_arg;

static void *caller_thread(void *p) {
    thread_arg *ta = p;
    for (int i = 0; i < CALLS_PER_THREAD; i++) {
        char msg[64];
        snprintf(msg, sizeof msg, "thread %d call %d", ta->index, i);
        unary_ok(ta->ch, TU_UNARY, msg);
        if (i % 5 == 0) {
            gh_call *call = NULL;
            CHECK_OK(gh_call_new(ta->ch, TU_SERVER_STREAM, &call));
            CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
            CHECK_OK(gh_call_start(call));
            CHECK_OK(gh_call_send(call, (const uint8_t *)"3:t", 3, 0));
            CHECK_OK(gh_call_close_send(call));
            const uint8_t *data = NULL;
            size_t len = 0;
            int n = 0;
            while (gh_call_recv(call, &data, &len) == 1) n++;
            CHECK_EQ(n, 3);
            CHECK_EQ(gh_call_wait(call), GH_STATUS_OK);
            gh_call_free(call);
        }
    }
    return NULL;
}

static void test_threads(void) {
    int port = 0;
    gh_server *s = tu_echo_server(NULL, 0, &port);
    gh_channel *ch = tu_channel_new(port);
    pthread_t threads[N_THREADS];
    thread_arg args[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        args[i].ch = ch;
        args[i].index = i;
        CHECK(pthread_create(&threads[i], NULL, caller_thread, &args[i]) == 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
    }
    gh_channel_free(ch);
    tu_server_stop(s);
}

/* gh_thread_is_library: 1 on the library's threads (a handler's worker, a
 * completion callback's thread), 0 on the host's (this one, one it starts). */
static void h_which_thread(gh_server_call *call, void *ud) {
    (void)ud;
    const uint8_t *data;
    size_t len;
    gh_server_call_read(call, &data, &len);
    uint8_t b = (uint8_t)gh_thread_is_library();
    gh_server_call_send(call, &b, 1, 0);
    gh_server_call_finish(call, GH_STATUS_OK, NULL, NULL, 0);
}

static tu_counter g_async_library;
static void which_done(gh_call *call, int status, void *ud) {
    (void)ud;
    CHECK_EQ(status, GH_STATUS_OK);
    tu_counter_add(&g_async_library, gh_thread_is_library() ? 1 : 100);
    gh_call_free(call);
}

static void *host_thread(void *arg) {
    *(int *)arg = gh_thread_is_library();
    return NULL;
}

static void test_thread_is_library(void) {
    CHECK_EQ(gh_thread_is_library(), 0);
    int r = -1;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, host_thread, &r) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK_EQ(r, 0);
    tu_method m = {"/grpchelper.test.Misc/Which", GH_UNARY, h_which_thread, NULL};
    int port = 0;
    gh_server *s = tu_echo_server(&m, 1, &port);
    gh_channel *ch = tu_channel_new(port);
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, m.method, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    CHECK_OK(gh_call_unary(call, (const uint8_t *)"", 0, &resp, &resp_len));
    CHECK_EQ(resp_len, 1);
    CHECK_EQ(resp[0], 1);
    gh_call_free(call);
    tu_counter_init(&g_async_library);
    CHECK_OK(gh_call_new(ch, m.method, &call));
    CHECK_OK(gh_call_start_unary_async(call, (const uint8_t *)"", 0, NULL, which_done, NULL));
    CHECK(tu_counter_wait(&g_async_library, 1, TU_WAIT_LIMIT));
    CHECK_EQ(tu_counter_get(&g_async_library), 1);
    tu_counter_destroy(&g_async_library);
    gh_channel_free(ch);
    tu_server_stop(s);
}

int main(void) {
    (void)k_handler_type_check;
    test_version();
    test_strdup();
    test_thread_is_library();
    test_options_and_listeners();
    test_grpcio_options();
    test_free_user_data();
    test_shutdown();
    test_graceful_completion();
    test_free_without_shutdown();
    test_threads();
    printf("test_misc: OK\n");
    return 0;
}
