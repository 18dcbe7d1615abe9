/*
 * test_patterns.c — the four call patterns with the blocking client API:
 * unary (gh_call_unary and the explicit start/send/recv form), server
 * streaming, client streaming, bidi ping-pong and bidi send-all-then-read,
 * plus empty and large messages and channel reuse.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpchelper.h>

#include "check.h"
#include "testutil.h"

static gh_call *new_call(gh_channel *ch, const char *method) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, method, &call));
    CHECK(call != NULL);
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    return call;
}

static void send_str(gh_call *call, const char *s) {
    CHECK_OK(gh_call_send(call, (const uint8_t *)s, strlen(s), 0));
}

/* Receives one message and checks that it is |expected|. */
static void recv_expect(gh_call *call, const char *expected) {
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_call_recv(call, &data, &len), 1);
    CHECK_BYTES_STR(data, len, expected);
}

/* Expects the end of the response stream and status OK. */
static void expect_end_ok(gh_call *call) {
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_call_recv(call, &data, &len), 0);
    CHECK_EQ(gh_call_wait(call), GH_STATUS_OK);
    CHECK_EQ(gh_call_status(call), GH_STATUS_OK);
    CHECK(gh_call_status_message(call) != NULL);
}

static void test_unary(gh_channel *ch) {
    const char *req = "hello, unary";
    gh_call *call = new_call(ch, TU_UNARY);
    CHECK_EQ(gh_call_status(call), -1); /* not started */
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    CHECK_OK(gh_call_unary(call, (const uint8_t *)req, strlen(req), &resp,
                           &resp_len));
    CHECK_BYTES_STR(resp, resp_len, req);
    CHECK_EQ(gh_call_status(call), GH_STATUS_OK);
    CHECK_EQ(gh_call_wait(call), GH_STATUS_OK);
    CHECK_STR(gh_call_status_message(call), "");
    const uint8_t *details = (const uint8_t *)"x";
    size_t details_len = 99;
    CHECK_OK(gh_call_status_details(call, &details, &details_len));
    CHECK(details == NULL);
    CHECK_EQ(details_len, 0);
    gh_call_free(call);
}

static void test_unary_explicit(gh_channel *ch) {
    gh_call *call = new_call(ch, TU_UNARY);
    CHECK_OK(gh_call_start(call));
    send_str(call, "explicit");
    CHECK_OK(gh_call_close_send(call));
    recv_expect(call, "explicit");
    expect_end_ok(call);
    gh_call_free(call);
}

static void test_unary_empty(gh_channel *ch) {
    static const uint8_t nothing[1] = {0};
    gh_call *call = new_call(ch, TU_UNARY);
    const uint8_t *resp = NULL;
    size_t resp_len = 12345;
    CHECK_OK(gh_call_unary(call, nothing, 0, &resp, &resp_len));
    CHECK_EQ(resp_len, 0);
    gh_call_free(call);
}

static void test_unary_large(gh_channel *ch) {
    size_t len = 1024 * 1024; /* 1 MiB, below the 4 MiB default limit */
    uint8_t *req = malloc(len);
    CHECK(req != NULL);
    uint32_t x = 12345;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u; /* incompressible-ish bytes */
        req[i] = (uint8_t)(x >> 16);
    }
    gh_call *call = new_call(ch, TU_UNARY);
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    CHECK_OK(gh_call_unary(call, req, len, &resp, &resp_len));
    CHECK_MEM(resp, resp_len, req, len);
    gh_call_free(call);
    free(req);
}

static void test_server_streaming(gh_channel *ch) {
    gh_call *call = new_call(ch, TU_SERVER_STREAM);
    CHECK_OK(gh_call_start(call));
    send_str(call, "5:item");
    CHECK_OK(gh_call_close_send(call));
    for (int i = 0; i < 5; i++) {
        char expected[32];
        snprintf(expected, sizeof expected, "item %d", i);
        recv_expect(call, expected);
    }
    expect_end_ok(call);
    gh_call_free(call);

    /* Zero responses: the stream ends at once with OK. */
    call = new_call(ch, TU_SERVER_STREAM);
    CHECK_OK(gh_call_start(call));
    send_str(call, "0:none");
    CHECK_OK(gh_call_close_send(call));
    expect_end_ok(call);
    gh_call_free(call);

    /* Many small responses (exercises flow control on the client side). */
    call = new_call(ch, TU_SERVER_STREAM);
    CHECK_OK(gh_call_start(call));
    send_str(call, "2000:many");
    CHECK_OK(gh_call_close_send(call));
    for (int i = 0; i < 2000; i++) {
        char expected[32];
        snprintf(expected, sizeof expected, "many %d", i);
        recv_expect(call, expected);
    }
    expect_end_ok(call);
    gh_call_free(call);
}

static void test_client_streaming(gh_channel *ch) {
    gh_call *call = new_call(ch, TU_CLIENT_STREAM);
    CHECK_OK(gh_call_start(call));
    send_str(call, "a");
    send_str(call, "bb");
    send_str(call, "ccc");
    CHECK_OK(gh_call_close_send(call));
    recv_expect(call, "a,bb,ccc");
    expect_end_ok(call);
    gh_call_free(call);

    /* No request at all: one empty response. */
    call = new_call(ch, TU_CLIENT_STREAM);
    CHECK_OK(gh_call_start(call));
    CHECK_OK(gh_call_close_send(call));
    recv_expect(call, "");
    expect_end_ok(call);
    gh_call_free(call);
}

static void test_bidi_ping_pong(gh_channel *ch) {
    gh_call *call = new_call(ch, TU_BIDI);
    CHECK_OK(gh_call_start(call));
    for (int i = 0; i < 20; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "ping %d", i);
        send_str(call, msg);
        recv_expect(call, msg); /* answered before the next one is sent */
    }
    CHECK_OK(gh_call_close_send(call));
    expect_end_ok(call);
    gh_call_free(call);
}

static void test_bidi_batch(gh_channel *ch) {
    gh_call *call = new_call(ch, TU_BIDI);
    CHECK_OK(gh_call_start(call));
    for (int i = 0; i < 50; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "batch %d", i);
        send_str(call, msg);
    }
    CHECK_OK(gh_call_close_send(call));
    for (int i = 0; i < 50; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "batch %d", i);
        recv_expect(call, msg);
    }
    expect_end_ok(call);
    /* Nothing more can be sent after the half-close. */
    CHECK(gh_call_send(call, (const uint8_t *)"late", 4, 0) < 0);
    gh_call_free(call);
}

/* Freeing a call that is still running cancels it; the channel stays usable. */
static void test_free_running_call(gh_channel *ch) {
    gh_call *call = new_call(ch, TU_BIDI);
    CHECK_OK(gh_call_start(call));
    send_str(call, "abandoned");
    recv_expect(call, "abandoned");
    gh_call_free(call);
    test_unary(ch);
}

int main(void) {
    int port = 0;
    gh_server *server = tu_echo_server(NULL, 0, &port);
    gh_channel *ch = tu_channel_new(port);

    test_unary(ch);
    test_unary_explicit(ch);
    test_unary_empty(ch);
    test_unary_large(ch);
    test_server_streaming(ch);
    test_client_streaming(ch);
    test_bidi_ping_pong(ch);
    test_bidi_batch(ch);
    test_free_running_call(ch);
    /* The channel is reused for every call above; one more after all that. */
    test_unary(ch);

    gh_channel_free(ch);
    tu_server_stop(server);
    printf("test_patterns: OK\n");
    return 0;
}
