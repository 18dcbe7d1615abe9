/*
 * test_async.c — callback mode:
 * - gh_call_start_unary_async for unary and server-streaming calls;
 * - gh_call_start_async for a bidi call fed by the test thread, and a bidi
 *   ping-pong driven from on_message;
 * - messages arrive in order, all before on_done, never on the test thread;
 * - gh_call_free from on_done; NULL callbacks with gh_call_wait;
 * - errors (UNIMPLEMENTED), deadline and cancel reported to on_done;
 * - many concurrent calls on one channel.
 * The test thread waits on a pthread condition signalled by on_done.
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

typedef struct {
    tu_counter *done;     /* bumped by on_done (may be shared) */
    pthread_t test_thread;
    tu_msgs msgs;
    int status;
    int done_calls;
    int messages_after_done;
    int ran_on_test_thread;
    int free_in_done;
    /* ping-pong */
    pthread_mutex_t send_mu; /* one sender at a time on the call */
    int pingpong_rounds;     /* > 0: on_message sends the next ping */
    int pingpong_sent;
} async_state;

static void state_init(async_state *st, tu_counter *done) {
    memset(st, 0, sizeof *st);
    st->done = done;
    st->test_thread = pthread_self();
    st->status = -1;
    CHECK(pthread_mutex_init(&st->send_mu, NULL) == 0);
}

static void state_destroy(async_state *st) {
    tu_msgs_clear(&st->msgs);
    pthread_mutex_destroy(&st->send_mu);
}

static void send_ping(gh_call *call, int i) {
    char msg[32];
    int n = snprintf(msg, sizeof msg, "pp %d", i);
    CHECK_OK(gh_call_send(call, (const uint8_t *)msg, (size_t)n, 0));
}

static void on_message(gh_call *call, const uint8_t *data, size_t len, void *ud) {
    async_state *st = ud;
    if (pthread_equal(pthread_self(), st->test_thread)) st->ran_on_test_thread = 1;
    if (st->done_calls > 0) st->messages_after_done++;
    tu_msgs_push(&st->msgs, data, len);
    if (st->pingpong_rounds > 0) {
        pthread_mutex_lock(&st->send_mu);
        if (st->pingpong_sent < st->pingpong_rounds) {
            send_ping(call, st->pingpong_sent++);
        } else if (st->pingpong_sent == st->pingpong_rounds) {
            st->pingpong_sent++;
            CHECK_OK(gh_call_close_send(call));
        }
        pthread_mutex_unlock(&st->send_mu);
    }
}

static void on_done(gh_call *call, int status, void *ud) {
    async_state *st = ud;
    if (pthread_equal(pthread_self(), st->test_thread)) st->ran_on_test_thread = 1;
    st->status = status;
    st->done_calls++;
    if (st->free_in_done) gh_call_free(call);
    tu_counter_add(st->done, 1);
}

static gh_call *new_call(gh_channel *ch, const char *method, double timeout) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, method, &call));
    CHECK_OK(gh_call_set_timeout(call, timeout));
    return call;
}

/* Waits for on_done and checks the common invariants. */
static void wait_done(async_state *st, long target, int expected_status) {
    CHECK_MSG(tu_counter_wait(st->done, target, TU_WAIT_LIMIT + 5),
              "on_done not called");
    CHECK_EQ(st->done_calls, 1);
    CHECK_EQ(st->status, expected_status);
    CHECK_EQ(st->messages_after_done, 0);
    CHECK(!st->ran_on_test_thread);
}

static void test_unary_async(gh_channel *ch) {
    tu_counter done;
    tu_counter_init(&done);
    async_state st;
    state_init(&st, &done);
    gh_call *call = new_call(ch, TU_UNARY, TU_WAIT_LIMIT);
    const char *req = "async hello";
    CHECK_OK(gh_call_start_unary_async(call, (const uint8_t *)req, strlen(req),
                                       on_message, on_done, &st));
    wait_done(&st, 1, GH_STATUS_OK);
    CHECK_EQ(st.msgs.count, 1);
    CHECK_BYTES_STR(st.msgs.data[0], st.msgs.len[0], req);
    CHECK_EQ(gh_call_status(call), GH_STATUS_OK);
    CHECK_EQ(gh_call_wait(call), GH_STATUS_OK);
    gh_call_free(call);
    state_destroy(&st);
    tu_counter_destroy(&done);
}

static void test_server_stream_async(gh_channel *ch) {
    tu_counter done;
    tu_counter_init(&done);
    async_state st;
    state_init(&st, &done);
    gh_call *call = new_call(ch, TU_SERVER_STREAM, TU_WAIT_LIMIT);
    const char *req = "25:part";
    CHECK_OK(gh_call_start_unary_async(call, (const uint8_t *)req, strlen(req),
                                       on_message, on_done, &st));
    wait_done(&st, 1, GH_STATUS_OK);
    CHECK_EQ(st.msgs.count, 25);
    for (size_t i = 0; i < 25; i++) {
        char expected[32];
        snprintf(expected, sizeof expected, "part %zu", i);
        CHECK_BYTES_STR(st.msgs.data[i], st.msgs.len[i], expected);
    }
    gh_call_free(call);
    state_destroy(&st);
    tu_counter_destroy(&done);
}

static void test_bidi_async(gh_channel *ch) {
    tu_counter done;
    tu_counter_init(&done);
    async_state st;
    state_init(&st, &done);
    gh_call *call = new_call(ch, TU_BIDI, TU_WAIT_LIMIT);
    CHECK_OK(gh_call_start_async(call, on_message, on_done, &st));
    for (int i = 0; i < 30; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof msg, "async bidi %d", i);
        CHECK_OK(gh_call_send(call, (const uint8_t *)msg, (size_t)n, 0));
    }
    CHECK_OK(gh_call_close_send(call));
    wait_done(&st, 1, GH_STATUS_OK);
    CHECK_EQ(st.msgs.count, 30);
    for (size_t i = 0; i < 30; i++) {
        char expected[32];
        snprintf(expected, sizeof expected, "async bidi %zu", i);
        CHECK_BYTES_STR(st.msgs.data[i], st.msgs.len[i], expected);
    }
    gh_call_free(call);
    state_destroy(&st);
    tu_counter_destroy(&done);
}

/* Each echoed ping makes on_message send the next one; after the last, it
 * half-closes. */
static void test_bidi_pingpong_in_callbacks(gh_channel *ch) {
    tu_counter done;
    tu_counter_init(&done);
    async_state st;
    state_init(&st, &done);
    st.pingpong_rounds = 15;
    gh_call *call = new_call(ch, TU_BIDI, TU_WAIT_LIMIT);
    CHECK_OK(gh_call_start_async(call, on_message, on_done, &st));
    pthread_mutex_lock(&st.send_mu);
    send_ping(call, st.pingpong_sent++);
    pthread_mutex_unlock(&st.send_mu);
    wait_done(&st, 1, GH_STATUS_OK);
    CHECK_EQ(st.msgs.count, 15);
    for (size_t i = 0; i < 15; i++) {
        char expected[32];
        snprintf(expected, sizeof expected, "pp %zu", i);
        CHECK_BYTES_STR(st.msgs.data[i], st.msgs.len[i], expected);
    }
    gh_call_free(call);
    state_destroy(&st);
    tu_counter_destroy(&done);
}

static void test_free_in_on_done(gh_channel *ch) {
    tu_counter done;
    tu_counter_init(&done);
    async_state st;
    state_init(&st, &done);
    st.free_in_done = 1;
    gh_call *call = new_call(ch, TU_UNARY, TU_WAIT_LIMIT);
    CHECK_OK(gh_call_start_unary_async(call, (const uint8_t *)"bye", 3, on_message,
                                       on_done, &st));
    wait_done(&st, 1, GH_STATUS_OK);
    CHECK_EQ(st.msgs.count, 1);
    CHECK_BYTES_STR(st.msgs.data[0], st.msgs.len[0], "bye");
    /* |call| was freed by on_done. */
    state_destroy(&st);
    tu_counter_destroy(&done);
}

static void test_null_callbacks(gh_channel *ch) {
    gh_call *call = new_call(ch, TU_UNARY, TU_WAIT_LIMIT);
    CHECK_OK(gh_call_start_unary_async(call, (const uint8_t *)"quiet", 5, NULL,
                                       NULL, NULL));
    CHECK_EQ(gh_call_wait(call), GH_STATUS_OK);
    gh_call_free(call);

    /* on_done only. */
    tu_counter done;
    tu_counter_init(&done);
    async_state st;
    state_init(&st, &done);
    call = new_call(ch, TU_SERVER_STREAM, TU_WAIT_LIMIT);
    CHECK_OK(gh_call_start_unary_async(call, (const uint8_t *)"3:x", 3, NULL,
                                       on_done, &st));
    wait_done(&st, 1, GH_STATUS_OK);
    CHECK_EQ(st.msgs.count, 0);
    gh_call_free(call);
    state_destroy(&st);
    tu_counter_destroy(&done);
}

static void test_async_errors(gh_channel *ch) {
    tu_counter done;
    tu_counter_init(&done);

    /* Unknown method. */
    async_state st;
    state_init(&st, &done);
    gh_call *call = new_call(ch, "/grpchelper.test.Nope/Async", TU_WAIT_LIMIT);
    CHECK_OK(gh_call_start_unary_async(call, (const uint8_t *)"?", 1, on_message,
                                       on_done, &st));
    wait_done(&st, 1, GH_STATUS_UNIMPLEMENTED);
    CHECK_EQ(st.msgs.count, 0);
    CHECK_EQ(gh_call_status(call), GH_STATUS_UNIMPLEMENTED);
    gh_call_free(call);
    state_destroy(&st);

    /* Deadline: the echo handler waits for a message that never comes. */
    state_init(&st, &done);
    call = new_call(ch, TU_BIDI, 0.2);
    CHECK_OK(gh_call_start_async(call, on_message, on_done, &st));
    wait_done(&st, 2, GH_STATUS_DEADLINE_EXCEEDED);
    CHECK_EQ(st.msgs.count, 0);
    gh_call_free(call);
    state_destroy(&st);

    /* Cancel after one echoed message. */
    state_init(&st, &done);
    call = new_call(ch, TU_BIDI, TU_WAIT_LIMIT);
    CHECK_OK(gh_call_start_async(call, on_message, on_done, &st));
    CHECK_OK(gh_call_send(call, (const uint8_t *)"one", 3, 0));
    CHECK_OK(gh_call_cancel(call));
    wait_done(&st, 3, GH_STATUS_CANCELLED);
    CHECK(st.msgs.count <= 1);
    gh_call_free(call);
    state_destroy(&st);

    tu_counter_destroy(&done);
}

#define N_CONCURRENT 32

static void test_many_concurrent(gh_channel *ch) {
    tu_counter done;
    tu_counter_init(&done);
    static async_state st[N_CONCURRENT];
    gh_call *calls[N_CONCURRENT];
    char reqs[N_CONCURRENT][32];
    for (int i = 0; i < N_CONCURRENT; i++) {
        state_init(&st[i], &done);
        snprintf(reqs[i], sizeof reqs[i], "concurrent %d", i);
        calls[i] = new_call(ch, TU_UNARY, TU_WAIT_LIMIT);
    }
    for (int i = 0; i < N_CONCURRENT; i++) {
        CHECK_OK(gh_call_start_unary_async(calls[i], (const uint8_t *)reqs[i],
                                           strlen(reqs[i]), on_message, on_done,
                                           &st[i]));
    }
    CHECK_MSG(tu_counter_wait(&done, N_CONCURRENT, TU_WAIT_LIMIT + 5),
              "%ld of %d calls done", tu_counter_get(&done), N_CONCURRENT);
    for (int i = 0; i < N_CONCURRENT; i++) {
        CHECK_EQ(st[i].done_calls, 1);
        CHECK_EQ(st[i].status, GH_STATUS_OK);
        CHECK_EQ(st[i].msgs.count, 1);
        CHECK_BYTES_STR(st[i].msgs.data[0], st[i].msgs.len[0], reqs[i]);
        gh_call_free(calls[i]);
        state_destroy(&st[i]);
    }
    tu_counter_destroy(&done);
}

/* After gh_call_free returns, no callback of that call runs (its handle is gone). */
static void count_message(gh_call *call, const uint8_t *data, size_t len, void *ud) {
    (void)call; (void)data; (void)len;
    tu_counter_add(ud, 1);
}
static void count_done(gh_call *call, int status, void *ud) {
    (void)call; (void)status;
    tu_counter_add(ud, 1);
}

static void test_no_callbacks_after_free(int port) {
    tu_counter calls;
    tu_counter_init(&calls);
    gh_channel *ch = tu_channel_new(port);
    for (int i = 0; i < 20; i++) {
        gh_call *call = new_call(ch, TU_BIDI, TU_WAIT_LIMIT);
        CHECK_OK(gh_call_start_async(call, count_message, count_done, &calls));
        CHECK_OK(gh_call_send(call, (const uint8_t *)"x", 1, 0));
        gh_call_free(call); /* cancels: on_done must not follow */
    }
    /* Freeing the channel drains its callback threads: anything queued has run. */
    gh_channel_free(ch);
    CHECK_EQ(tu_counter_get(&calls), 0);
    tu_counter_destroy(&calls);
}

/* gh_channel_free from inside a completion callback returns (no self-wait). */
typedef struct {
    gh_channel *ch;
    tu_counter done;
} free_channel_state;

static void free_channel_on_done(gh_call *call, int status, void *ud) {
    free_channel_state *st = ud;
    (void)status;
    gh_call_free(call);
    gh_channel_free(st->ch);
    tu_counter_add(&st->done, 1);
}

static void test_channel_free_in_callback(int port) {
    free_channel_state st;
    tu_counter_init(&st.done);
    st.ch = tu_channel_new(port);
    gh_call *call = new_call(st.ch, TU_UNARY, TU_WAIT_LIMIT);
    CHECK_OK(gh_call_start_unary_async(call, (const uint8_t *)"x", 1, NULL, free_channel_on_done, &st));
    CHECK_MSG(tu_counter_wait(&st.done, 1, TU_WAIT_LIMIT), "on_done did not return");
    tu_counter_destroy(&st.done);
}

int main(void) {
    int port = 0;
    gh_server *server = tu_echo_server(NULL, 0, &port);
    gh_channel *ch = NULL;
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    CHECK_OK(gh_channel_new(&ch, target));
    CHECK_OK(gh_channel_set_int(ch, GH_OPT_CALLBACK_THREADS, 3));

    test_unary_async(ch);
    test_server_stream_async(ch);
    test_bidi_async(ch);
    test_bidi_pingpong_in_callbacks(ch);
    test_free_in_on_done(ch);
    test_null_callbacks(ch);
    test_async_errors(ch);
    test_many_concurrent(ch);
    test_no_callbacks_after_free(port);
    test_channel_free_in_callback(port);

    gh_channel_free(ch);
    tu_server_stop(server);
    printf("test_async: OK\n");
    return 0;
}
