/*
 * test_deadlines.c — deadlines and cancellation:
 * - a unary call with a 0.2 s timeout to a handler that never answers gets
 *   DEADLINE_EXCEEDED in about 0.2 s; the handler sees the deadline
 *   (time_remaining) and the cancellation (is_cancelled), and its late send
 *   fails with GH_ERR_CLOSED;
 * - the same for a bidi call, and a server stream cut by the deadline;
 * - no timeout: time_remaining is HUGE_VAL; a 30 s timeout is seen as such;
 * - gh_call_cancel: the client gets CANCELLED, the handler's blocked read
 *   returns GH_ERR_CLOSED;
 * - unreachable server: UNAVAILABLE at once, or DEADLINE_EXCEEDED with
 *   wait-for-ready.
 * The test thread never sleeps: it waits on counters signalled by handlers.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpchelper.h>

#include "check.h"
#include "testutil.h"

#define M_WAIT_UNARY "/grpchelper.test.Deadline/WaitUnary"
#define M_WAIT_BIDI "/grpchelper.test.Deadline/WaitBidi"
#define M_SLOW_STREAM "/grpchelper.test.Deadline/SlowStream"
#define M_REMAINING "/grpchelper.test.Deadline/Remaining"
#define M_BLOCKED_READ "/grpchelper.test.Deadline/BlockedRead"

/* State shared between a handler and the test thread. The handler writes the
 * fields, then bumps |done|; the test reads them after waiting on |done|
 * (the counter's mutex orders the accesses). */
typedef struct {
    tu_counter started;
    tu_counter done;
    double remaining_at_start;
    double remaining_at_end;
    int saw_cancelled;
    int late_send_rc;
    int read_rc;
    long messages_sent;
} call_state;

static void state_init(call_state *st) {
    memset(st, 0, sizeof *st);
    tu_counter_init(&st->started);
    tu_counter_init(&st->done);
}

static void state_destroy(call_state *st) {
    tu_counter_destroy(&st->started);
    tu_counter_destroy(&st->done);
}

/* Never answers: waits (bounded) until the call is cancelled, which the
 * client's deadline must cause. */
static void h_wait(gh_server_call *call, void *ud) {
    call_state *st = ud;
    st->remaining_at_start = gh_server_call_time_remaining(call);
    tu_counter_add(&st->started, 1);
    gh_server_call_wait_done(call, TU_WAIT_LIMIT);
    st->saw_cancelled = gh_server_call_is_cancelled(call);
    st->remaining_at_end = gh_server_call_time_remaining(call);
    st->late_send_rc = gh_server_call_send(call, (const uint8_t *)"late", 4, 0);
    tu_counter_add(&st->done, 1);
}

/* Server streaming: one message every 20 ms until sending fails. */
static void h_slow_stream(gh_server_call *call, void *ud) {
    call_state *st = ud;
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_server_call_read(call, &data, &len), 1);
    double t0 = tu_now();
    int rc = GH_OK;
    long i = 0;
    while (tu_now() - t0 < TU_WAIT_LIMIT) {
        char msg[32];
        int n = snprintf(msg, sizeof msg, "tick %ld", i);
        rc = gh_server_call_send(call, (const uint8_t *)msg, (size_t)n, 0);
        if (rc != GH_OK) break;
        i++;
        tu_sleep(0.02);
    }
    st->messages_sent = i;
    st->late_send_rc = rc;
    st->saw_cancelled = gh_server_call_is_cancelled(call);
    tu_counter_add(&st->done, 1);
}

/* Unary: records time_remaining and echoes. */
static void h_remaining(gh_server_call *call, void *ud) {
    call_state *st = ud;
    st->remaining_at_start = gh_server_call_time_remaining(call);
    st->saw_cancelled = gh_server_call_is_cancelled(call);
    tu_counter_add(&st->done, 1);
    tu_echo_unary(call, NULL);
}

/* Bidi: reads one message, then blocks in the next read until cancelled. */
static void h_blocked_read(gh_server_call *call, void *ud) {
    call_state *st = ud;
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_server_call_read(call, &data, &len), 1);
    tu_counter_add(&st->started, 1);
    st->read_rc = gh_server_call_read(call, &data, &len);
    st->saw_cancelled = gh_server_call_is_cancelled(call);
    tu_counter_add(&st->done, 1);
}

static void test_unary_deadline(gh_channel *ch, call_state *st) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, M_WAIT_UNARY, &call));
    CHECK_OK(gh_call_set_timeout(call, 0.2));
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    double t0 = tu_now();
    CHECK_RC(gh_call_unary(call, (const uint8_t *)"wait", 4, &resp, &resp_len),
             GH_ERR_RPC);
    double elapsed = tu_now() - t0;
    CHECK_EQ(gh_call_status(call), GH_STATUS_DEADLINE_EXCEEDED);
    CHECK_MSG(elapsed >= 0.15 && elapsed < 5.0, "deadline after %.3f s", elapsed);
    gh_call_free(call);

    CHECK_MSG(tu_counter_wait(&st->done, 1, TU_WAIT_LIMIT + 5),
              "handler did not observe the cancellation");
    CHECK(st->saw_cancelled);
    CHECK_MSG(st->remaining_at_start <= 0.25 && st->remaining_at_start > -1.0,
              "time_remaining at start %f", st->remaining_at_start);
    CHECK_MSG(st->remaining_at_end < 0.05, "time_remaining at end %f",
              st->remaining_at_end);
    CHECK_RC(st->late_send_rc, GH_ERR_CLOSED);
}

static void test_bidi_deadline(gh_channel *ch, call_state *st) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, M_WAIT_BIDI, &call));
    CHECK_OK(gh_call_set_timeout(call, 0.2));
    CHECK_OK(gh_call_start(call));
    CHECK_OK(gh_call_send(call, (const uint8_t *)"anyone?", 7, 0));
    const uint8_t *data = NULL;
    size_t len = 0;
    double t0 = tu_now();
    CHECK(gh_call_recv(call, &data, &len) <= 0);
    double elapsed = tu_now() - t0;
    CHECK_EQ(gh_call_wait(call), GH_STATUS_DEADLINE_EXCEEDED);
    CHECK_MSG(elapsed < 5.0, "deadline after %.3f s", elapsed);
    /* Nothing can be sent on an ended call. */
    CHECK_RC(gh_call_send(call, (const uint8_t *)"x", 1, 0), GH_ERR_CLOSED);
    gh_call_free(call);

    CHECK(tu_counter_wait(&st->done, 1, TU_WAIT_LIMIT + 5));
    CHECK(st->saw_cancelled);
    CHECK_RC(st->late_send_rc, GH_ERR_CLOSED);
}

static void test_stream_cut_by_deadline(gh_channel *ch, call_state *st) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, M_SLOW_STREAM, &call));
    CHECK_OK(gh_call_set_timeout(call, 0.3));
    CHECK_OK(gh_call_start(call));
    CHECK_OK(gh_call_send(call, (const uint8_t *)"go", 2, 0));
    CHECK_OK(gh_call_close_send(call));
    const uint8_t *data = NULL;
    size_t len = 0;
    long received = 0;
    int rc;
    while ((rc = gh_call_recv(call, &data, &len)) == 1) {
        char expected[32];
        snprintf(expected, sizeof expected, "tick %ld", received);
        CHECK_BYTES_STR(data, len, expected);
        received++;
    }
    CHECK(rc <= 0);
    CHECK_EQ(gh_call_wait(call), GH_STATUS_DEADLINE_EXCEEDED);
    CHECK_MSG(received >= 1, "received %ld messages", received);
    gh_call_free(call);

    CHECK(tu_counter_wait(&st->done, 1, TU_WAIT_LIMIT + 5));
    CHECK_RC(st->late_send_rc, GH_ERR_CLOSED);
    CHECK(st->saw_cancelled);
    CHECK(st->messages_sent >= received);
}

static void test_time_remaining(gh_channel *ch, call_state *st) {
    /* No timeout: HUGE_VAL. */
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, M_REMAINING, &call));
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    CHECK_OK(gh_call_unary(call, (const uint8_t *)"r", 1, &resp, &resp_len));
    gh_call_free(call);
    CHECK(tu_counter_wait(&st->done, 1, TU_WAIT_LIMIT));
    CHECK_MSG(st->remaining_at_start == HUGE_VAL, "time_remaining %f",
              st->remaining_at_start);
    CHECK(!st->saw_cancelled);

    /* 30 s: a bit less than 30 s is left when the handler runs. */
    CHECK_OK(gh_call_new(ch, M_REMAINING, &call));
    CHECK_OK(gh_call_set_timeout(call, 30.0));
    CHECK_OK(gh_call_unary(call, (const uint8_t *)"r", 1, &resp, &resp_len));
    gh_call_free(call);
    CHECK(tu_counter_wait(&st->done, 2, TU_WAIT_LIMIT));
    CHECK_MSG(st->remaining_at_start > 20.0 && st->remaining_at_start <= 30.01,
              "time_remaining %f", st->remaining_at_start);

    /* A timeout <= 0 means none. */
    CHECK_OK(gh_call_new(ch, M_REMAINING, &call));
    CHECK_OK(gh_call_set_timeout(call, 0));
    CHECK_OK(gh_call_unary(call, (const uint8_t *)"r", 1, &resp, &resp_len));
    gh_call_free(call);
    CHECK(tu_counter_wait(&st->done, 3, TU_WAIT_LIMIT));
    CHECK_MSG(st->remaining_at_start == HUGE_VAL, "time_remaining %f",
              st->remaining_at_start);
}

static void test_client_cancel(gh_channel *ch, call_state *st) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, M_BLOCKED_READ, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    CHECK_OK(gh_call_start(call));
    CHECK_OK(gh_call_send(call, (const uint8_t *)"first", 5, 0));
    /* Wait until the handler is blocked in its second read. */
    CHECK(tu_counter_wait(&st->started, 1, TU_WAIT_LIMIT));
    CHECK_OK(gh_call_cancel(call));
    CHECK_EQ(gh_call_wait(call), GH_STATUS_CANCELLED);
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK(gh_call_recv(call, &data, &len) <= 0);
    CHECK_RC(gh_call_send(call, (const uint8_t *)"x", 1, 0), GH_ERR_CLOSED);
    /* Cancelling an ended call has no effect. */
    CHECK_OK(gh_call_cancel(call));
    CHECK_EQ(gh_call_status(call), GH_STATUS_CANCELLED);

    CHECK(tu_counter_wait(&st->done, 1, TU_WAIT_LIMIT));
    CHECK_RC(st->read_rc, GH_ERR_CLOSED);
    CHECK(st->saw_cancelled);
    gh_call_free(call);
}

static void test_unreachable(void) {
    /* A port nobody listens on: bind one, then close the server. */
    gh_server *s = tu_server_new(NULL, 0);
    int port = tu_server_start(s);
    tu_server_stop(s);
    gh_channel *ch = tu_channel_new(port);

    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, TU_UNARY, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    double t0 = tu_now();
    CHECK_RC(gh_call_unary(call, (const uint8_t *)"x", 1, &resp, &resp_len),
             GH_ERR_RPC);
    double elapsed = tu_now() - t0;
    CHECK_EQ(gh_call_status(call), GH_STATUS_UNAVAILABLE);
    CHECK_MSG(elapsed < 5.0, "UNAVAILABLE after %.3f s", elapsed);
    gh_call_free(call);

    /* With wait-for-ready the call keeps trying until its deadline. */
    CHECK_OK(gh_call_new(ch, TU_UNARY, &call));
    CHECK_OK(gh_call_set_timeout(call, 0.3));
    CHECK_OK(gh_call_set_wait_for_ready(call, 1));
    t0 = tu_now();
    CHECK_RC(gh_call_unary(call, (const uint8_t *)"x", 1, &resp, &resp_len),
             GH_ERR_RPC);
    elapsed = tu_now() - t0;
    CHECK_EQ(gh_call_status(call), GH_STATUS_DEADLINE_EXCEEDED);
    CHECK_MSG(elapsed >= 0.25 && elapsed < 5.0, "deadline after %.3f s", elapsed);
    gh_call_free(call);

    /* The blocking streaming API reports it through recv/wait, not start. */
    CHECK_OK(gh_call_new(ch, TU_BIDI, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    CHECK_OK(gh_call_start(call));
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK(gh_call_recv(call, &data, &len) <= 0);
    CHECK_EQ(gh_call_wait(call), GH_STATUS_UNAVAILABLE);
    gh_call_free(call);

    gh_channel_free(ch);
}

int main(void) {
    call_state unary_st, bidi_st, stream_st, remaining_st, read_st;
    state_init(&unary_st);
    state_init(&bidi_st);
    state_init(&stream_st);
    state_init(&remaining_st);
    state_init(&read_st);

    const tu_method methods[] = {
        {M_WAIT_UNARY, GH_UNARY, h_wait, &unary_st},
        {M_WAIT_BIDI, GH_BIDI_STREAMING, h_wait, &bidi_st},
        {M_SLOW_STREAM, GH_SERVER_STREAMING, h_slow_stream, &stream_st},
        {M_REMAINING, GH_UNARY, h_remaining, &remaining_st},
        {M_BLOCKED_READ, GH_BIDI_STREAMING, h_blocked_read, &read_st},
    };
    int port = 0;
    gh_server *server =
        tu_echo_server(methods, sizeof methods / sizeof methods[0], &port);
    gh_channel *ch = tu_channel_new(port);

    test_unary_deadline(ch, &unary_st);
    test_bidi_deadline(ch, &bidi_st);
    test_stream_cut_by_deadline(ch, &stream_st);
    test_time_remaining(ch, &remaining_st);
    test_client_cancel(ch, &read_st);
    /* The connection survived all of that. */
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, TU_UNARY, &call));
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    CHECK_OK(gh_call_unary(call, (const uint8_t *)"still", 5, &resp, &resp_len));
    CHECK_BYTES_STR(resp, resp_len, "still");
    gh_call_free(call);

    gh_channel_free(ch);
    tu_server_stop(server);
    test_unreachable();

    state_destroy(&unary_st);
    state_destroy(&bidi_st);
    state_destroy(&stream_st);
    state_destroy(&remaining_st);
    state_destroy(&read_st);
    printf("test_deadlines: OK\n");
    return 0;
}
