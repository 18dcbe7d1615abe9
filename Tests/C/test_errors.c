/*
 * test_errors.c — error reporting:
 * - a handler finishing with a code, a message and details bytes: the client
 *   sees exactly them (unary and streaming, trailers-only and after messages);
 * - an unknown method gives GH_STATUS_UNIMPLEMENTED;
 * - a unary handler returning without a response gives INTERNAL, a streaming
 *   one returning without finish gives OK;
 * - gh_strerror / gh_is_fatal / gh_last_error (per thread);
 * - invalid metadata keys and values refused with GH_ERR_INVALID_ARGUMENT;
 * - NULL handles and out-pointers; out-pointers untouched on failure;
 * - state errors (option after start, second finish, send after finish);
 * - GH_ERR_BIND for an address in use.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpchelper.h>

#include "check.h"
#include "testutil.h"

#define M_FAIL "/grpchelper.test.Errors/Fail"
#define M_FAIL_STREAM "/grpchelper.test.Errors/FailStream"
#define M_NO_RESPONSE "/grpchelper.test.Errors/NoResponse"
#define M_NO_FINISH "/grpchelper.test.Errors/NoFinish"
#define M_DOUBLE_FINISH "/grpchelper.test.Errors/DoubleFinish"

/* UTF-8 and characters that need percent-encoding in grpc-message. */
static const char k_fail_message[] = "it failed: 100% \xc3\xbc" "ber-broken\tdone";
/* Arbitrary bytes, including NUL and 0xff. */
static const uint8_t k_details[] = {0x08, 0x05, 0x00, 0xff, 0x12, 0x00, 0x80, 'z'};

/* Request: a decimal gRPC status code. Finishes with that code, the message
 * and the details. */
static void h_fail(gh_server_call *call, void *ud) {
    (void)ud;
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_server_call_read(call, &data, &len), 1);
    char buf[16] = {0};
    CHECK(len > 0 && len < sizeof buf);
    memcpy(buf, data, len);
    int code = atoi(buf);
    CHECK_OK(gh_server_call_finish(call, code, k_fail_message, k_details,
                                   sizeof k_details));
}

/* Server streaming: sends two messages, then fails with ABORTED. */
static void h_fail_stream(gh_server_call *call, void *ud) {
    (void)ud;
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_server_call_read(call, &data, &len), 1);
    CHECK_OK(gh_server_call_send(call, (const uint8_t *)"one", 3, 0));
    CHECK_OK(gh_server_call_send(call, (const uint8_t *)"two", 3, 0));
    CHECK_OK(gh_server_call_finish(call, GH_STATUS_ABORTED, "stream aborted",
                                   NULL, 0));
}

/* Unary: reads the request and returns without sending anything. */
static void h_no_response(gh_server_call *call, void *ud) {
    (void)ud;
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_server_call_read(call, &data, &len), 1);
}

/* Server streaming: sends one message and returns without finishing. */
static void h_no_finish(gh_server_call *call, void *ud) {
    (void)ud;
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_server_call_read(call, &data, &len), 1);
    CHECK_OK(gh_server_call_send(call, (const uint8_t *)"only", 4, 0));
}

/* Records what a second finish and a send after finish return. */
typedef struct {
    tu_counter done;
    int second_finish_rc;
    int send_after_finish_rc;
    int initial_md_after_send_rc;
} double_finish_state;

static void h_double_finish(gh_server_call *call, void *ud) {
    double_finish_state *st = ud;
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_server_call_read(call, &data, &len), 1);
    CHECK_OK(gh_server_call_send(call, data, len, 0));
    st->initial_md_after_send_rc = gh_server_call_send_initial_metadata(call, NULL);
    CHECK_OK(gh_server_call_finish(call, GH_STATUS_OK, NULL, NULL, 0));
    st->second_finish_rc =
        gh_server_call_finish(call, GH_STATUS_INTERNAL, "again", NULL, 0);
    st->send_after_finish_rc =
        gh_server_call_send(call, (const uint8_t *)"late", 4, 0);
    tu_counter_add(&st->done, 1);
}

static void check_failed_status(gh_call *call, int code, const char *message,
                                const uint8_t *details, size_t details_len) {
    CHECK_EQ(gh_call_wait(call), code);
    CHECK_EQ(gh_call_status(call), code);
    CHECK_STR(gh_call_status_message(call), message);
    const uint8_t *d = NULL;
    size_t dl = 0;
    CHECK_OK(gh_call_status_details(call, &d, &dl));
    if (details_len == 0) {
        CHECK(d == NULL);
        CHECK_EQ(dl, 0);
    } else {
        CHECK_MEM(d, dl, details, details_len);
    }
}

static void test_status_roundtrip(gh_channel *ch) {
    static const int codes[] = {
        GH_STATUS_CANCELLED,       GH_STATUS_UNKNOWN,
        GH_STATUS_INVALID_ARGUMENT, GH_STATUS_NOT_FOUND,
        GH_STATUS_PERMISSION_DENIED, GH_STATUS_FAILED_PRECONDITION,
        GH_STATUS_OUT_OF_RANGE,     GH_STATUS_INTERNAL,
        GH_STATUS_UNAVAILABLE,      GH_STATUS_DATA_LOSS,
        GH_STATUS_UNAUTHENTICATED,
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        char req[16];
        snprintf(req, sizeof req, "%d", codes[i]);
        gh_call *call = NULL;
        CHECK_OK(gh_call_new(ch, M_FAIL, &call));
        CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
        const uint8_t *resp = (const uint8_t *)"untouched";
        size_t resp_len = 0;
        CHECK_RC(gh_call_unary(call, (const uint8_t *)req, strlen(req), &resp,
                               &resp_len),
                 GH_ERR_RPC);
        check_failed_status(call, codes[i], k_fail_message, k_details,
                            sizeof k_details);
        CHECK(gh_call_trailing_metadata(call) != NULL);
        gh_call_free(call);
    }

    /* The same through the streaming API: recv ends, the status tells. */
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, M_FAIL, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    CHECK_OK(gh_call_start(call));
    CHECK_OK(gh_call_send(call, (const uint8_t *)"5", 1, 0));
    CHECK_OK(gh_call_close_send(call));
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK(gh_call_recv(call, &data, &len) <= 0);
    check_failed_status(call, GH_STATUS_NOT_FOUND, k_fail_message, k_details,
                        sizeof k_details);
    gh_call_free(call);
}

static void test_stream_error_after_messages(gh_channel *ch) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, M_FAIL_STREAM, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    CHECK_OK(gh_call_start(call));
    CHECK_OK(gh_call_send(call, (const uint8_t *)"go", 2, 0));
    CHECK_OK(gh_call_close_send(call));
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_call_recv(call, &data, &len), 1);
    CHECK_BYTES_STR(data, len, "one");
    CHECK_RC(gh_call_recv(call, &data, &len), 1);
    CHECK_BYTES_STR(data, len, "two");
    CHECK(gh_call_recv(call, &data, &len) <= 0);
    check_failed_status(call, GH_STATUS_ABORTED, "stream aborted", NULL, 0);
    gh_call_free(call);
}

static void test_unimplemented(gh_channel *ch) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, "/grpchelper.test.Nope/Missing", &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    CHECK_RC(gh_call_unary(call, (const uint8_t *)"x", 1, &resp, &resp_len),
             GH_ERR_RPC);
    CHECK_EQ(gh_call_status(call), GH_STATUS_UNIMPLEMENTED);
    CHECK(gh_call_status_message(call) != NULL);
    gh_call_free(call);

    /* Also for a streaming call. */
    CHECK_OK(gh_call_new(ch, "/grpchelper.test.Echo/NoSuchMethod", &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    CHECK_OK(gh_call_start(call));
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK(gh_call_recv(call, &data, &len) <= 0);
    CHECK_EQ(gh_call_wait(call), GH_STATUS_UNIMPLEMENTED);
    gh_call_free(call);
}

static void test_implicit_finish(gh_channel *ch) {
    /* Unary handler that never sent a response: INTERNAL. */
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, M_NO_RESPONSE, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    CHECK_RC(gh_call_unary(call, (const uint8_t *)"x", 1, &resp, &resp_len),
             GH_ERR_RPC);
    CHECK_EQ(gh_call_status(call), GH_STATUS_INTERNAL);
    gh_call_free(call);

    /* Streaming handler returning without finish: OK. */
    CHECK_OK(gh_call_new(ch, M_NO_FINISH, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    CHECK_OK(gh_call_start(call));
    CHECK_OK(gh_call_send(call, (const uint8_t *)"x", 1, 0));
    CHECK_OK(gh_call_close_send(call));
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_call_recv(call, &data, &len), 1);
    CHECK_BYTES_STR(data, len, "only");
    CHECK_RC(gh_call_recv(call, &data, &len), 0);
    CHECK_EQ(gh_call_wait(call), GH_STATUS_OK);
    gh_call_free(call);
}

static void test_double_finish(gh_channel *ch, double_finish_state *st) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, M_DOUBLE_FINISH, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    CHECK_OK(gh_call_unary(call, (const uint8_t *)"df", 2, &resp, &resp_len));
    CHECK_BYTES_STR(resp, resp_len, "df");
    gh_call_free(call);
    CHECK(tu_counter_wait(&st->done, 1, TU_WAIT_LIMIT));
    /* Headers went out with the first message. */
    CHECK_RC(st->initial_md_after_send_rc, GH_ERR_INVALID_STATE);
    CHECK_RC(st->second_finish_rc, GH_ERR_INVALID_STATE);
    /* The header names both codes for this case (INVALID_STATE: "a message
     * sent after finish"; CLOSED: the call has ended ... finished). */
    CHECK_MSG(st->send_after_finish_rc == GH_ERR_INVALID_STATE ||
                  st->send_after_finish_rc == GH_ERR_CLOSED,
              "send after finish returned %d", st->send_after_finish_rc);
}

static void test_strerror(void) {
    static const int codes[] = {
        GH_OK,           GH_ERR_INVALID_ARGUMENT, GH_ERR_INVALID_STATE,
        GH_ERR_CLOSED,   GH_ERR_BIND,             GH_ERR_RPC,
        GH_ERR_TOO_LARGE, GH_ERR_FATAL,           GH_ERR_NOMEM,
        GH_ERR_INTERNAL,
    };
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        const char *s = gh_strerror(codes[i]);
        CHECK(s != NULL);
        CHECK_MSG(codes[i] == GH_OK || s[0] != '\0', "empty text for %d",
                  codes[i]);
    }
    /* Unknown codes still get a text. */
    CHECK(gh_strerror(-12345) != NULL);
    CHECK(gh_strerror(42) != NULL);
    CHECK(gh_strerror(GH_STATUS_UNIMPLEMENTED) != NULL);

    CHECK(!gh_is_fatal(GH_OK));
    CHECK(!gh_is_fatal(GH_ERR_INVALID_ARGUMENT));
    CHECK(!gh_is_fatal(GH_ERR_INVALID_STATE));
    CHECK(!gh_is_fatal(GH_ERR_CLOSED));
    CHECK(!gh_is_fatal(GH_ERR_BIND));
    CHECK(!gh_is_fatal(GH_ERR_RPC));
    CHECK(!gh_is_fatal(GH_ERR_TOO_LARGE));
    CHECK(gh_is_fatal(GH_ERR_FATAL));
    CHECK(gh_is_fatal(GH_ERR_NOMEM));
    CHECK(gh_is_fatal(GH_ERR_INTERNAL));
    CHECK(gh_is_fatal(-1000));
}

/* gh_last_error is per thread: a fresh thread sees "", its own failure sets
 * its own text, and the main thread's text is not affected. */
static void *last_error_thread(void *arg) {
    (void)arg;
    const char *e = gh_last_error();
    CHECK(e != NULL);
    CHECK_STR(e, "");
    gh_metadata *md = NULL;
    CHECK_OK(gh_metadata_new(&md));
    CHECK_RC(gh_metadata_add(md, "thread:key", "v"), GH_ERR_INVALID_ARGUMENT);
    e = gh_last_error();
    CHECK(e != NULL && e[0] != '\0');
    gh_metadata_free(md);
    return NULL;
}

static void test_last_error(void) {
    CHECK_RC(gh_server_start(NULL), GH_ERR_INVALID_ARGUMENT);
    const char *e = gh_last_error();
    CHECK(e != NULL);
    CHECK_MSG(e[0] != '\0', "gh_last_error empty after a failure");
    char saved[512];
    snprintf(saved, sizeof saved, "%s", e);

    pthread_t t;
    CHECK(pthread_create(&t, NULL, last_error_thread, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK_STR(gh_last_error(), saved);
}

static void expect_md_add_fails(gh_metadata *md, const char *key,
                                const char *value) {
    size_t before = gh_metadata_count(md);
    int rc = gh_metadata_add(md, key, value);
    CHECK_MSG(rc == GH_ERR_INVALID_ARGUMENT,
              "gh_metadata_add(\"%s\", \"%s\") returned %d", key ? key : "(null)",
              value ? value : "(null)", rc);
    const char *e = gh_last_error();
    CHECK(e != NULL && e[0] != '\0');
    CHECK_EQ(gh_metadata_count(md), before);
}

static void test_invalid_metadata(void) {
    gh_metadata *md = NULL;
    CHECK_OK(gh_metadata_new(&md));
    CHECK_OK(gh_metadata_add(md, "x-ok", "fine"));
    CHECK_OK(gh_metadata_add(md, "a0_.-z", "key chars"));
    CHECK_OK(gh_metadata_add(md, "x-empty", ""));
    CHECK_EQ(gh_metadata_count(md), 3);

    /* Bad keys. */
    expect_md_add_fails(md, "", "v");
    expect_md_add_fails(md, "X-Upper", "v");
    expect_md_add_fails(md, "has space", "v");
    expect_md_add_fails(md, "x-colon:", "v");
    expect_md_add_fails(md, "x-\xc3\xa9", "v");
    expect_md_add_fails(md, "x-data-bin", "text under a -bin key");
    expect_md_add_fails(md, ":path", "/x");
    expect_md_add_fails(md, ":authority", "x");
    expect_md_add_fails(md, "grpc-timeout", "1S");
    expect_md_add_fails(md, "grpc-status", "0");
    expect_md_add_fails(md, "grpc-anything", "v");
    expect_md_add_fails(md, "content-type", "application/grpc");
    expect_md_add_fails(md, "te", "trailers");
    expect_md_add_fails(md, "user-agent", "me");
    expect_md_add_fails(md, NULL, "v");
    /* Bad values. */
    expect_md_add_fails(md, "x-v", "line\nbreak");
    expect_md_add_fails(md, "x-v", "cr\rhere");
    expect_md_add_fails(md, "x-v", "del\x7f");
    expect_md_add_fails(md, "x-v", "bell\x07");
    expect_md_add_fails(md, "x-v", "utf8 \xc3\xbc");
    expect_md_add_fails(md, "x-v", NULL);

    /* Binary entries need a -bin key, and a valid one. */
    static const uint8_t bytes[] = {0, 1, 2};
    size_t before = gh_metadata_count(md);
    CHECK_RC(gh_metadata_add_bin(md, "x-not-binary", bytes, sizeof bytes),
             GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_metadata_add_bin(md, "X-Upper-bin", bytes, sizeof bytes),
             GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_metadata_add_bin(md, "x-null-bin", NULL, 3),
             GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_metadata_add_bin(NULL, "x-bin", bytes, sizeof bytes),
             GH_ERR_INVALID_ARGUMENT);
    CHECK_EQ(gh_metadata_count(md), before);
    CHECK_OK(gh_metadata_add_bin(md, "x-empty-bin", NULL, 0));
    CHECK_EQ(gh_metadata_count(md), before + 1);

    /* Lookups. */
    const uint8_t *v = NULL;
    size_t len = 0;
    CHECK_RC(gh_metadata_find(md, "x-missing", &v, &len), GH_ERR_INVALID_ARGUMENT);
    const char *k = NULL;
    CHECK_RC(gh_metadata_get(md, gh_metadata_count(md), &k, &v, &len),
             GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_metadata_get(NULL, 0, &k, &v, &len), GH_ERR_INVALID_ARGUMENT);
    gh_metadata_free(md);
}

static void test_null_handles(void) {
    /* Destructors accept NULL. */
    gh_free(NULL);
    gh_metadata_free(NULL);
    gh_server_free(NULL);
    gh_channel_free(NULL);
    gh_call_free(NULL);

    CHECK_RC(gh_metadata_new(NULL), GH_ERR_INVALID_ARGUMENT);
    CHECK_EQ(gh_metadata_count(NULL), 0);
    CHECK_RC(gh_metadata_add(NULL, "x-k", "v"), GH_ERR_INVALID_ARGUMENT);

    CHECK_RC(gh_server_new(NULL), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_set_int(NULL, GH_OPT_MAX_WORKERS, 4), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_set_str(NULL, GH_OPT_USER_AGENT_PREFIX, "x"),
             GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_add_listener(NULL, "127.0.0.1:0"), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_register(NULL, "/a.B/C", GH_UNARY, tu_echo_unary, NULL, NULL),
             GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_start(NULL), GH_ERR_INVALID_ARGUMENT);
    int port = 777;
    CHECK_RC(gh_server_port(NULL, 0, &port), GH_ERR_INVALID_ARGUMENT);
    CHECK_EQ(port, 777);
    CHECK_RC(gh_server_shutdown(NULL, 0), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_wait(NULL), GH_ERR_INVALID_ARGUMENT);

    gh_channel *ch = (gh_channel *)&port; /* sentinel: must stay untouched */
    CHECK_RC(gh_channel_new(NULL, "127.0.0.1:1"), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_channel_new(&ch, NULL), GH_ERR_INVALID_ARGUMENT);
    CHECK(ch == (gh_channel *)&port);
    CHECK_RC(gh_channel_set_int(NULL, GH_OPT_CALLBACK_THREADS, 1),
             GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_channel_set_str(NULL, GH_OPT_USER_AGENT_PREFIX, "x"),
             GH_ERR_INVALID_ARGUMENT);

    gh_call *call = (gh_call *)&port;
    CHECK_RC(gh_call_new(NULL, "/a.B/C", &call), GH_ERR_INVALID_ARGUMENT);
    CHECK(call == (gh_call *)&port);
    CHECK_RC(gh_call_set_timeout(NULL, 1), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_call_set_metadata(NULL, NULL), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_call_set_compression(NULL, GH_COMPRESSION_NONE),
             GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_call_set_wait_for_ready(NULL, 1), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_call_start(NULL), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_call_send(NULL, (const uint8_t *)"x", 1, 0), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_call_close_send(NULL), GH_ERR_INVALID_ARGUMENT);
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_call_recv(NULL, &data, &len), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_call_cancel(NULL), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_call_unary(NULL, (const uint8_t *)"x", 1, &data, &len),
             GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_call_start_async(NULL, NULL, NULL, NULL), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_call_start_unary_async(NULL, (const uint8_t *)"x", 1, NULL, NULL,
                                       NULL),
             GH_ERR_INVALID_ARGUMENT);
}

/* NULL arguments to live handles. */
static void test_null_arguments(gh_channel *ch) {
    gh_server *s = NULL;
    CHECK_OK(gh_server_new(&s));
    CHECK_RC(gh_server_add_listener(s, NULL), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_register(s, NULL, GH_UNARY, tu_echo_unary, NULL, NULL),
             GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_register(s, "/a.B/C", GH_UNARY, NULL, NULL, NULL),
             GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_register(s, "/a.B/C", (gh_cardinality)17, tu_echo_unary,
                                NULL, NULL),
             GH_ERR_INVALID_ARGUMENT);
    /* No server string option exists. */
    CHECK_RC(gh_server_set_str(s, GH_OPT_USER_AGENT_PREFIX, "x"),
             GH_ERR_INVALID_ARGUMENT);
    /* Channel-only and unknown options. */
    CHECK_RC(gh_server_set_int(s, GH_OPT_CALLBACK_THREADS, 2), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_set_int(s, (gh_opt)9999, 2), GH_ERR_INVALID_ARGUMENT);
    gh_server_free(s);

    gh_call *call = NULL;
    CHECK_RC(gh_call_new(ch, NULL, &call), GH_ERR_INVALID_ARGUMENT);
    CHECK(call == NULL);
    CHECK_RC(gh_call_new(ch, TU_UNARY, NULL), GH_ERR_INVALID_ARGUMENT);
    CHECK_OK(gh_call_new(ch, TU_UNARY, &call));
    CHECK_RC(gh_call_set_compression(call, 77), GH_ERR_INVALID_ARGUMENT);
    gh_call_free(call);
}

/* Misuse (send after close_send) is GH_ERR_INVALID_STATE; a call that ended is
 * GH_ERR_CLOSED. */
static void test_send_errors(gh_channel *ch) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, TU_BIDI, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    CHECK_OK(gh_call_start(call));
    CHECK_OK(gh_call_close_send(call));
    CHECK_RC(gh_call_send(call, (const uint8_t *)"late", 4, 0), GH_ERR_INVALID_STATE);
    CHECK_EQ(gh_call_wait(call), GH_STATUS_OK);
    gh_call_free(call);

    CHECK_OK(gh_call_new(ch, TU_BIDI, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    CHECK_OK(gh_call_start(call));
    CHECK_OK(gh_call_cancel(call));
    CHECK_RC(gh_call_send(call, (const uint8_t *)"x", 1, 0), GH_ERR_CLOSED);
    CHECK_EQ(gh_call_wait(call), GH_STATUS_CANCELLED);
    gh_call_free(call);
}

static void test_state_errors(void) {
    gh_server *s = tu_server_new(NULL, 0);
    int port = tu_server_start(s);
    CHECK_RC(gh_server_set_int(s, GH_OPT_MAX_WORKERS, 8), GH_ERR_INVALID_STATE);
    CHECK_RC(gh_server_add_listener(s, "127.0.0.1:0"), GH_ERR_INVALID_STATE);
    CHECK_RC(gh_server_register(s, "/late.S/M", GH_UNARY, tu_echo_unary, NULL, NULL),
             GH_ERR_INVALID_STATE);
    CHECK_RC(gh_server_port(s, 5, &port), GH_ERR_INVALID_ARGUMENT);

    /* A second server on the same port: GH_ERR_BIND, the address in the text. */
    gh_server *s2 = NULL;
    CHECK_OK(gh_server_new(&s2));
    char addr[64], port_text[16];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    snprintf(port_text, sizeof port_text, "%d", port);
    CHECK_OK(gh_server_add_listener(s2, addr));
    CHECK_RC(gh_server_start(s2), GH_ERR_BIND);
    CHECK_MSG(strstr(gh_last_error(), port_text) != NULL,
              "gh_last_error does not name the address: %s", gh_last_error());
    gh_server_free(s2);

    tu_server_stop(s);
}

int main(void) {
    double_finish_state df;
    memset(&df, 0, sizeof df);
    tu_counter_init(&df.done);

    test_strerror();
    test_last_error();
    test_invalid_metadata();
    test_null_handles();
    test_state_errors();

    const tu_method methods[] = {
        {M_FAIL, GH_UNARY, h_fail, NULL},
        {M_FAIL_STREAM, GH_SERVER_STREAMING, h_fail_stream, NULL},
        {M_NO_RESPONSE, GH_UNARY, h_no_response, NULL},
        {M_NO_FINISH, GH_SERVER_STREAMING, h_no_finish, NULL},
        {M_DOUBLE_FINISH, GH_UNARY, h_double_finish, &df},
    };
    int port = 0;
    gh_server *server =
        tu_echo_server(methods, sizeof methods / sizeof methods[0], &port);
    gh_channel *ch = tu_channel_new(port);

    test_null_arguments(ch);
    test_send_errors(ch);
    test_status_roundtrip(ch);
    test_stream_error_after_messages(ch);
    test_unimplemented(ch);
    test_implicit_finish(ch);
    test_double_finish(ch, &df);

    gh_channel_free(ch);
    tu_server_stop(server);
    tu_counter_destroy(&df.done);
    printf("test_errors: OK\n");
    return 0;
}
