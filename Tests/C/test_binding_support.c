/*
 * test_binding_support.c — the server features that language bindings build
 * on, over real sockets with the library's own channel:
 * - gh_server_bind: "127.0.0.1:0" gives a port before start; the socket
 *   listens at once (a raw connect succeeds); a call started before
 *   gh_server_start waits in the backlog and succeeds after start; server
 *   options are refused after a bind; bind listeners are not counted by
 *   gh_server_port; binding a port in use gives GH_ERR_BIND naming the address;
 * - gh_server_register_fallback: registered methods keep their handlers; every
 *   other method reaches the fallback (as a bidi stream), which reads the
 *   method and echoes, or answers UNIMPLEMENTED; its free_user_data runs once,
 *   at gh_server_free; a second fallback, or one after start, is refused;
 * - gh_server_call_user_agent: starts with the channel's
 *   GH_OPT_USER_AGENT_PREFIX and is not part of the request metadata;
 * - gh_server_call_wait_done: 0 on timeout while the call runs; 1 in a helper
 *   thread and in the handler once the client cancels; 1 after finish;
 * - GH_OPT_MAX_CONCURRENT_RPCS = 1: a second call while one is held in its
 *   handler gets RESOURCE_EXHAUSTED "Concurrent RPC limit exceeded!" without
 *   running the handler; the held call then completes with OK.
 * - gh_server_begin_shutdown: on a server never started, on_stopped runs at
 *   once and the server still starts; while a call is held, it returns with
 *   on_stopped not yet called, new connections and new calls refused, the held
 *   call completing within the grace, then on_stopped runs once, before
 *   gh_server_wait returns; after the end, a further call's on_stopped still
 *   runs; a handler may begin its own server's shutdown.
 * - gh_server_release: from the main thread with a call held by a handler, it
 *   returns at once and the server takes no new connection; the held call is
 *   cancelled (grace 0), and nothing is freed until its handler has returned;
 *   from a handler of the server (the handler goes on); from inside the
 *   on_stopped of gh_server_begin_shutdown (on the library's shutdown thread,
 *   which the free waits for); a server never started; NULL. Every time each
 *   free_user_data runs once, on the library's thread (gh-shutdown), after
 *   every handler returned.
 * The test thread never sleeps: it waits (bounded) on counters signalled by
 * handlers, helper threads and completion callbacks.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpchelper.h>

#include "check.h"
#include "testutil.h"

#define M_KNOWN "/grpchelper.test.Binding/Known"
#define M_DYN_ECHO "/grpchelper.test.Dynamic/Echo"
#define M_DYN_UNKNOWN "/grpchelper.test.Dynamic/Unknown"
#define M_USER_AGENT "/grpchelper.test.Binding/UserAgent"
#define M_WAIT_DONE "/grpchelper.test.Binding/WaitDone"
#define M_FINISH_DONE "/grpchelper.test.Binding/FinishDone"
#define M_HOLD "/grpchelper.test.Binding/Hold"
#define M_RELEASE "/grpchelper.test.Binding/Release"

#define UA_PREFIX "c-test/1.0"

/* ------------------------------------------------------------------------ */
/* Client helpers                                                           */
/* ------------------------------------------------------------------------ */

/* A unary call that must succeed with |want| as its response. */
static void unary_expect(gh_channel *ch, const char *method, const char *req,
                         const char *want) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, method, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    int rc = gh_call_unary(call, (const uint8_t *)req, strlen(req), &resp, &resp_len);
    CHECK_MSG(rc == GH_OK, "%s: rc %d, status %d \"%s\"", method, rc,
              gh_call_status(call),
              gh_call_status_message(call) ? gh_call_status_message(call) : "");
    CHECK_BYTES_STR(resp, resp_len, want);
    gh_call_free(call);
}

/* Completion-callback state of an async call. on_message and on_done run one
 * at a time for a call, on_done last; |done| orders them before the test
 * thread's reads. */
typedef struct {
    tu_counter done;
    tu_msgs msgs;
    int status;
} async_state;

static void async_state_init(async_state *st) {
    memset(st, 0, sizeof *st);
    tu_counter_init(&st->done);
    st->status = -1;
}

static void async_state_destroy(async_state *st) {
    tu_msgs_clear(&st->msgs);
    tu_counter_destroy(&st->done);
}

static void on_message(gh_call *call, const uint8_t *data, size_t len, void *ud) {
    (void)call;
    async_state *st = ud;
    tu_msgs_push(&st->msgs, data, len);
}

static void on_done(gh_call *call, int status_code, void *ud) {
    (void)call;
    async_state *st = ud;
    st->status = status_code;
    tu_counter_add(&st->done, 1);
}

/* Starts an async unary call of M_HOLD on |ch| (request "held", a deadline
 * beyond the tests' waits) reporting to |held|; the caller frees the call. */
static gh_call *start_held_call(gh_channel *ch, async_state *held) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, M_HOLD, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT + 10));
    CHECK_OK(gh_call_start_unary_async(call, (const uint8_t *)"held", 4, on_message, on_done,
                                       held));
    return call;
}

/* ------------------------------------------------------------------------ */
/* 1. gh_server_bind                                                        */
/* ------------------------------------------------------------------------ */

/* A plain TCP connect to 127.0.0.1:|port|; returns 1 if it was accepted (by
 * the kernel: the socket listens). */
static int raw_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    CHECK(inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr) == 1);
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

static void test_bind(void) {
    gh_server *s = NULL;
    CHECK_OK(gh_server_new(&s));
    CHECK_OK(gh_server_set_int(s, GH_OPT_MAX_WORKERS, 4));
    int port = -1;
    CHECK_OK(gh_server_bind(s, "127.0.0.1:0", &port));
    CHECK_MSG(port > 0 && port < 65536, "gh_server_bind port %d", port);
    /* Listening already: the kernel accepts a connection into the backlog. */
    CHECK_MSG(raw_connect(port), "connect to the bound port %d before start failed",
              port);

    /* Options are fixed from the first bind on. */
    CHECK_RC(gh_server_set_int(s, GH_OPT_MAX_WORKERS, 8), GH_ERR_INVALID_STATE);
    CHECK_RC(gh_server_set_int(s, GH_OPT_MAX_CONCURRENT_RPCS, 5),
             GH_ERR_INVALID_STATE);
    /* Methods may still be registered until start. */
    CHECK_OK(gh_server_register(s, TU_UNARY, GH_UNARY, tu_echo_unary, NULL, NULL));

    /* The same port on a second server: GH_ERR_BIND naming the address. */
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    gh_server *s2 = NULL;
    CHECK_OK(gh_server_new(&s2));
    int port2 = -1;
    int rc = gh_server_bind(s2, addr, &port2);
    char err[512];
    snprintf(err, sizeof err, "%s", gh_last_error());
    CHECK_MSG(rc == GH_ERR_BIND, "binding %s twice returned %d (%s), gh_last_error: %s",
              addr, rc, gh_strerror(rc), err);
    CHECK_MSG(strstr(err, addr) != NULL,
              "gh_last_error after GH_ERR_BIND does not mention %s: \"%s\"", addr, err);
    gh_server_free(s2);

    /* A call started before gh_server_start: the connection waits in the
     * listen backlog, the call neither completes nor fails meanwhile. */
    gh_channel *ch = tu_channel_new(port);
    async_state st;
    async_state_init(&st);
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, TU_UNARY, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    CHECK_OK(gh_call_start_unary_async(call, (const uint8_t *)"early bird", 10,
                                       on_message, on_done, &st));
    /* Not a synchronisation: a bounded check that nothing ends the call while
     * the server is not started (the result does not depend on timing). */
    CHECK_MSG(!tu_counter_wait(&st.done, 1, 0.3),
              "call ended before gh_server_start: status %d", st.status);
    CHECK_EQ(gh_call_status(call), -1);

    CHECK_OK(gh_server_start(s));
    CHECK_MSG(tu_counter_wait(&st.done, 1, TU_WAIT_LIMIT),
              "call started before gh_server_start did not complete after it");
    CHECK_EQ(st.status, GH_STATUS_OK);
    CHECK_EQ(st.msgs.count, 1);
    CHECK_BYTES_STR(st.msgs.data[0], st.msgs.len[0], "early bird");
    gh_call_free(call);
    async_state_destroy(&st);

    /* And afterwards, normal calls. */
    unary_expect(ch, TU_UNARY, "after start", "after start");

    /* Bind listeners are not counted by gh_server_port's index. */
    int dummy = 4242;
    CHECK_RC(gh_server_port(s, 0, &dummy), GH_ERR_INVALID_ARGUMENT);
    /* Neither binding nor options after start. */
    CHECK_RC(gh_server_bind(s, "127.0.0.1:0", &dummy), GH_ERR_INVALID_STATE);

    gh_channel_free(ch);
    tu_server_stop(s);
    printf("  bind: ok (port %d)\n", port);
}

/* ------------------------------------------------------------------------ */
/* 2. Fallback handler                                                      */
/* ------------------------------------------------------------------------ */

typedef struct {
    pthread_mutex_t mu;
    int known_calls;
    int fallback_calls;
    int fallback_echo_calls;
    int fallback_unknown_calls;
    char last_method[128];
    int freed;
} fallback_state;

/* Registered unary method: "known:" + request. */
static void h_known(gh_server_call *call, void *ud) {
    fallback_state *st = ud;
    pthread_mutex_lock(&st->mu);
    st->known_calls++;
    pthread_mutex_unlock(&st->mu);
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_server_call_read(call, &data, &len), 1);
    char out[256];
    int n = snprintf(out, sizeof out, "known:%.*s", (int)len, (const char *)data);
    CHECK_OK(gh_server_call_send(call, (const uint8_t *)out, (size_t)n, 0));
    CHECK_OK(gh_server_call_finish(call, GH_STATUS_OK, NULL, NULL, 0));
}

/* Fallback: M_DYN_ECHO answers every request with "<method>|<request>" (a
 * bidi stream); any other method is UNIMPLEMENTED. */
static void h_fallback(gh_server_call *call, void *ud) {
    fallback_state *st = ud;
    const char *method = gh_server_call_method(call);
    CHECK(method != NULL);
    pthread_mutex_lock(&st->mu);
    st->fallback_calls++;
    snprintf(st->last_method, sizeof st->last_method, "%s", method);
    pthread_mutex_unlock(&st->mu);

    if (strcmp(method, M_DYN_ECHO) != 0) {
        pthread_mutex_lock(&st->mu);
        st->fallback_unknown_calls++;
        pthread_mutex_unlock(&st->mu);
        char msg[200];
        snprintf(msg, sizeof msg, "fallback does not serve %s", method);
        CHECK_OK(gh_server_call_finish(call, GH_STATUS_UNIMPLEMENTED, msg, NULL, 0));
        return;
    }
    pthread_mutex_lock(&st->mu);
    st->fallback_echo_calls++;
    pthread_mutex_unlock(&st->mu);
    const uint8_t *data = NULL;
    size_t len = 0;
    int rc;
    while ((rc = gh_server_call_read(call, &data, &len)) == 1) {
        char out[300];
        int n = snprintf(out, sizeof out, "%s|%.*s", method, (int)len,
                         (const char *)data);
        CHECK_OK(gh_server_call_send(call, (const uint8_t *)out, (size_t)n, 0));
    }
    CHECK_RC(rc, 0);
    CHECK_OK(gh_server_call_finish(call, GH_STATUS_OK, NULL, NULL, 0));
}

/* Registered as a rejected second fallback: must never run. */
static void h_wrong_fallback(gh_server_call *call, void *ud) {
    (void)ud;
    fprintf(stderr, "the rejected second fallback handler ran for %s\n",
            gh_server_call_method(call));
    CHECK(0);
}

static void free_fallback_state(void *p) {
    fallback_state *st = p;
    pthread_mutex_lock(&st->mu);
    st->freed++;
    pthread_mutex_unlock(&st->mu);
}

static void test_fallback(void) {
    fallback_state st;
    memset(&st, 0, sizeof st);
    CHECK(pthread_mutex_init(&st.mu, NULL) == 0);

    gh_server *s = NULL;
    CHECK_OK(gh_server_new(&s));
    CHECK_OK(gh_server_add_listener(s, "127.0.0.1:0"));
    CHECK_OK(gh_server_register(s, M_KNOWN, GH_UNARY, h_known, &st, NULL));
    CHECK_OK(gh_server_register_fallback(s, h_fallback, &st, free_fallback_state));
    CHECK_RC(gh_server_register_fallback(s, h_wrong_fallback, NULL, NULL),
             GH_ERR_INVALID_STATE);
    int port = tu_server_start(s);
    CHECK_RC(gh_server_register_fallback(s, h_wrong_fallback, NULL, NULL),
             GH_ERR_INVALID_STATE);

    gh_channel *ch = tu_channel_new(port);

    /* A registered method still goes to its own handler. */
    unary_expect(ch, M_KNOWN, "hi", "known:hi");
    pthread_mutex_lock(&st.mu);
    CHECK_EQ(st.known_calls, 1);
    CHECK_EQ(st.fallback_calls, 0);
    pthread_mutex_unlock(&st.mu);

    /* An unregistered method, called as unary, reaches the fallback. */
    unary_expect(ch, M_DYN_ECHO, "one", M_DYN_ECHO "|one");
    pthread_mutex_lock(&st.mu);
    CHECK_EQ(st.fallback_calls, 1);
    CHECK_EQ(st.fallback_echo_calls, 1);
    CHECK_STR(st.last_method, M_DYN_ECHO);
    pthread_mutex_unlock(&st.mu);

    /* ... and as a bidi stream: interleaved messages. */
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, M_DYN_ECHO, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    CHECK_OK(gh_call_start(call));
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_OK(gh_call_send(call, (const uint8_t *)"a", 1, 0));
    CHECK_RC(gh_call_recv(call, &data, &len), 1);
    CHECK_BYTES_STR(data, len, M_DYN_ECHO "|a");
    CHECK_OK(gh_call_send(call, (const uint8_t *)"b", 1, 0));
    CHECK_RC(gh_call_recv(call, &data, &len), 1);
    CHECK_BYTES_STR(data, len, M_DYN_ECHO "|b");
    CHECK_OK(gh_call_close_send(call));
    CHECK_RC(gh_call_recv(call, &data, &len), 0);
    CHECK_EQ(gh_call_wait(call), GH_STATUS_OK);
    gh_call_free(call);

    /* A method the fallback does not know: UNIMPLEMENTED, its message. */
    CHECK_OK(gh_call_new(ch, M_DYN_UNKNOWN, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    CHECK_RC(gh_call_unary(call, (const uint8_t *)"x", 1, &resp, &resp_len),
             GH_ERR_RPC);
    CHECK_EQ(gh_call_status(call), GH_STATUS_UNIMPLEMENTED);
    CHECK_STR(gh_call_status_message(call),
              "fallback does not serve " M_DYN_UNKNOWN);
    gh_call_free(call);

    pthread_mutex_lock(&st.mu);
    CHECK_EQ(st.known_calls, 1);
    CHECK_EQ(st.fallback_calls, 3);
    CHECK_EQ(st.fallback_echo_calls, 2);
    CHECK_EQ(st.fallback_unknown_calls, 1);
    CHECK_STR(st.last_method, M_DYN_UNKNOWN);
    pthread_mutex_unlock(&st.mu);

    gh_channel_free(ch);

    /* free_user_data: not at shutdown, exactly once at gh_server_free. */
    CHECK_OK(gh_server_shutdown(s, 5.0));
    pthread_mutex_lock(&st.mu);
    CHECK_EQ(st.freed, 0);
    pthread_mutex_unlock(&st.mu);
    gh_server_free(s);
    pthread_mutex_lock(&st.mu);
    CHECK_MSG(st.freed == 1, "fallback free_user_data called %d times", st.freed);
    pthread_mutex_unlock(&st.mu);

    pthread_mutex_destroy(&st.mu);
    printf("  fallback: ok\n");
}

/* ------------------------------------------------------------------------ */
/* 3. User agent                                                            */
/* ------------------------------------------------------------------------ */

typedef struct {
    tu_counter done;
    int has_ua;
    char ua[512];
    int ua_key_in_metadata;
    int ua_value_in_metadata;
    int probe_seen;
} ua_state;

static void h_user_agent(gh_server_call *call, void *ud) {
    ua_state *st = ud;
    const char *ua = gh_server_call_user_agent(call);
    st->has_ua = ua != NULL;
    snprintf(st->ua, sizeof st->ua, "%s", ua ? ua : "");
    st->ua_key_in_metadata = 0;
    st->ua_value_in_metadata = 0;
    st->probe_seen = 0;
    const gh_metadata *md = gh_server_call_request_metadata(call);
    size_t n = gh_metadata_count(md);
    for (size_t i = 0; i < n; i++) {
        const char *k = NULL;
        const uint8_t *v = NULL;
        size_t len = 0;
        CHECK_OK(gh_metadata_get(md, i, &k, &v, &len));
        if (strcmp(k, "user-agent") == 0) st->ua_key_in_metadata = 1;
        if (ua != NULL && len == strlen(ua) && memcmp(v, ua, len) == 0) {
            st->ua_value_in_metadata = 1;
        }
        if (strcmp(k, "x-probe") == 0 && len == 3 && memcmp(v, "yes", 3) == 0) {
            st->probe_seen = 1;
        }
    }
    tu_counter_add(&st->done, 1);
    tu_echo_unary(call, NULL);
}

static void ua_call(gh_channel *ch, ua_state *st, long nth) {
    gh_metadata *md = tu_md("x-probe", "yes", NULL);
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, M_USER_AGENT, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    CHECK_OK(gh_call_set_metadata(call, md));
    gh_metadata_free(md);
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    CHECK_OK(gh_call_unary(call, (const uint8_t *)"ua", 2, &resp, &resp_len));
    CHECK_BYTES_STR(resp, resp_len, "ua");
    gh_call_free(call);
    CHECK(tu_counter_wait(&st->done, nth, TU_WAIT_LIMIT));
}

static void test_user_agent(void) {
    ua_state st;
    memset(&st, 0, sizeof st);
    tu_counter_init(&st.done);
    const tu_method methods[] = {
        {M_USER_AGENT, GH_UNARY, h_user_agent, &st},
    };
    int port = 0;
    gh_server *s = tu_server_start_new(methods, 1, &port);

    /* With a prefix. */
    gh_channel *ch = tu_channel_new(port);
    CHECK_OK(gh_channel_set_str(ch, GH_OPT_USER_AGENT_PREFIX, UA_PREFIX));
    ua_call(ch, &st, 1);
    CHECK_MSG(st.has_ua, "gh_server_call_user_agent returned NULL");
    CHECK_MSG(strncmp(st.ua, UA_PREFIX " ", strlen(UA_PREFIX " ")) == 0,
              "user agent \"%s\" does not start with \"" UA_PREFIX " \"", st.ua);
    CHECK_MSG(strlen(st.ua) > strlen(UA_PREFIX " "),
              "user agent \"%s\" has nothing after the prefix", st.ua);
    CHECK_MSG(!st.ua_key_in_metadata, "user-agent is in the request metadata");
    CHECK_MSG(!st.ua_value_in_metadata,
              "the user agent \"%s\" is a request metadata value", st.ua);
    CHECK_MSG(st.probe_seen, "x-probe: yes missing from the request metadata");
    char with_prefix[512];
    snprintf(with_prefix, sizeof with_prefix, "%s", st.ua);
    gh_channel_free(ch);

    /* Without: the library's own user agent, which the prefixed one ends in. */
    ch = tu_channel_new(port);
    ua_call(ch, &st, 2);
    CHECK_MSG(st.has_ua, "gh_server_call_user_agent returned NULL (no prefix)");
    CHECK_MSG(strncmp(st.ua, UA_PREFIX, strlen(UA_PREFIX)) != 0,
              "user agent \"%s\" has the prefix of another channel", st.ua);
    CHECK_STR(with_prefix + strlen(UA_PREFIX " "), st.ua);
    CHECK(!st.ua_key_in_metadata);
    CHECK(!st.ua_value_in_metadata);
    CHECK(st.probe_seen);
    gh_channel_free(ch);

    printf("  user agent: ok (\"%s\")\n", with_prefix);
    tu_server_stop(s);
    tu_counter_destroy(&st.done);
}

/* ------------------------------------------------------------------------ */
/* 4. gh_server_call_wait_done                                              */
/* ------------------------------------------------------------------------ */

typedef struct {
    tu_counter helper_entering; /* the helper is about to block in wait_done */
    tu_counter helper_returned; /* ... and has returned from it */
    tu_counter handler_done;    /* the handler has recorded everything */
    gh_server_call *call;       /* for the helper, while the handler runs */
    int helper_rc;
    int short_rc;
    double short_elapsed;
    int handler_rc;
    int cancelled_after;
    int send_after_rc;
    /* M_FINISH_DONE */
    int before_finish_rc;
    int after_finish_rc;
} wd_state;

static void *wait_done_helper(void *p) {
    wd_state *st = p;
    tu_counter_add(&st->helper_entering, 1);
    st->helper_rc = gh_server_call_wait_done(st->call, -1);
    tu_counter_add(&st->helper_returned, 1);
    return NULL;
}

/* Server streaming: a helper thread blocks in wait_done(-1); the handler checks
 * wait_done(0.01) times out, sends one message and blocks in wait_done too
 * (bounded) until the client cancels; then joins the helper. */
static void h_wait_done(gh_server_call *call, void *ud) {
    wd_state *st = ud;
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_server_call_read(call, &data, &len), 1);

    st->call = call;
    pthread_t helper;
    CHECK(pthread_create(&helper, NULL, wait_done_helper, st) == 0);
    CHECK_MSG(tu_counter_wait(&st->helper_entering, 1, TU_WAIT_LIMIT),
              "wait_done helper thread did not start");

    /* The client is waiting for the first message: the call is alive. */
    double t0 = tu_now();
    st->short_rc = gh_server_call_wait_done(call, 0.01);
    st->short_elapsed = tu_now() - t0;

    CHECK_OK(gh_server_call_send(call, (const uint8_t *)"first", 5, 0));
    st->handler_rc = gh_server_call_wait_done(call, TU_WAIT_LIMIT);
    if (st->handler_rc != 1) {
        /* End the call so that the helper's unbounded wait returns. */
        gh_server_call_finish(call, GH_STATUS_ABORTED, "wait_done timed out", NULL, 0);
    }
    CHECK(pthread_join(helper, NULL) == 0);
    st->call = NULL;
    st->cancelled_after = gh_server_call_is_cancelled(call);
    st->send_after_rc = gh_server_call_send(call, (const uint8_t *)"late", 4, 0);
    tu_counter_add(&st->handler_done, 1);
}

/* Unary: wait_done times out before finish, returns 1 at once after it. */
static void h_finish_done(gh_server_call *call, void *ud) {
    wd_state *st = ud;
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_server_call_read(call, &data, &len), 1);
    CHECK_OK(gh_server_call_send(call, data, len, 0));
    st->before_finish_rc = gh_server_call_wait_done(call, 0.01);
    CHECK_OK(gh_server_call_finish(call, GH_STATUS_OK, NULL, NULL, 0));
    st->after_finish_rc = gh_server_call_wait_done(call, 0);
    tu_counter_add(&st->handler_done, 1);
}

static void test_wait_done(void) {
    wd_state st, fst;
    memset(&st, 0, sizeof st);
    memset(&fst, 0, sizeof fst);
    tu_counter_init(&st.helper_entering);
    tu_counter_init(&st.helper_returned);
    tu_counter_init(&st.handler_done);
    tu_counter_init(&fst.helper_entering);
    tu_counter_init(&fst.helper_returned);
    tu_counter_init(&fst.handler_done);
    st.helper_rc = st.short_rc = st.handler_rc = -12345;
    fst.before_finish_rc = fst.after_finish_rc = -12345;
    const tu_method methods[] = {
        {M_WAIT_DONE, GH_SERVER_STREAMING, h_wait_done, &st},
        {M_FINISH_DONE, GH_UNARY, h_finish_done, &fst},
    };
    int port = 0;
    gh_server *s = tu_server_start_new(methods, 2, &port);
    gh_channel *ch = tu_channel_new(port);

    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, M_WAIT_DONE, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    CHECK_OK(gh_call_start(call));
    CHECK_OK(gh_call_send(call, (const uint8_t *)"go", 2, 0));
    CHECK_OK(gh_call_close_send(call));
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_call_recv(call, &data, &len), 1);
    CHECK_BYTES_STR(data, len, "first");
    /* The handler sent it only after the helper started and its own
     * wait_done(0.01) returned. */
    CHECK(tu_counter_wait(&st.helper_entering, 1, TU_WAIT_LIMIT));
    CHECK_MSG(tu_counter_get(&st.helper_returned) == 0,
              "wait_done(-1) in the helper returned (%d) while the call was alive",
              st.helper_rc);
    CHECK_EQ(tu_counter_get(&st.handler_done), 0);

    CHECK_OK(gh_call_cancel(call));
    CHECK_EQ(gh_call_wait(call), GH_STATUS_CANCELLED);
    CHECK_MSG(tu_counter_wait(&st.helper_returned, 1, TU_WAIT_LIMIT + 5),
              "wait_done(-1) in the helper did not return after the cancel");
    CHECK_MSG(tu_counter_wait(&st.handler_done, 1, TU_WAIT_LIMIT + 5),
              "the wait_done handler did not return after the cancel");
    CHECK_MSG(st.short_rc == 0, "wait_done(0.01) on a live call returned %d",
              st.short_rc);
    CHECK_MSG(st.short_elapsed >= 0.005 && st.short_elapsed < 5.0,
              "wait_done(0.01) took %.4f s", st.short_elapsed);
    CHECK_MSG(st.helper_rc == 1, "wait_done(-1) in the helper returned %d",
              st.helper_rc);
    CHECK_MSG(st.handler_rc == 1,
              "wait_done(%.0f) in the handler returned %d after the cancel",
              TU_WAIT_LIMIT, st.handler_rc);
    CHECK(st.cancelled_after);
    CHECK_RC(st.send_after_rc, GH_ERR_CLOSED);
    gh_call_free(call);

    /* Finished by the handler counts as ended too. */
    unary_expect(ch, M_FINISH_DONE, "fin", "fin");
    CHECK(tu_counter_wait(&fst.handler_done, 1, TU_WAIT_LIMIT));
    CHECK_MSG(fst.before_finish_rc == 0,
              "wait_done(0.01) before finish returned %d", fst.before_finish_rc);
    CHECK_MSG(fst.after_finish_rc == 1, "wait_done(0) after finish returned %d",
              fst.after_finish_rc);

    gh_channel_free(ch);
    tu_server_stop(s);
    tu_counter_destroy(&st.helper_entering);
    tu_counter_destroy(&st.helper_returned);
    tu_counter_destroy(&st.handler_done);
    tu_counter_destroy(&fst.helper_entering);
    tu_counter_destroy(&fst.helper_returned);
    tu_counter_destroy(&fst.handler_done);
    printf("  wait_done: ok\n");
}

/* ------------------------------------------------------------------------ */
/* 5. GH_OPT_MAX_CONCURRENT_RPCS                                            */
/* ------------------------------------------------------------------------ */

typedef struct {
    tu_counter entered; /* handler invocations */
    tu_counter gate;    /* opened (>= 1) by the test */
    tu_counter returned;
    int released;
} hold_state;

/* Unary: holds the call until the gate opens (bounded), then echoes. */
static void h_hold(gh_server_call *call, void *ud) {
    hold_state *st = ud;
    tu_counter_add(&st->entered, 1);
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_server_call_read(call, &data, &len), 1);
    st->released = tu_counter_wait(&st->gate, 1, TU_WAIT_LIMIT);
    if (!st->released) {
        gh_server_call_finish(call, GH_STATUS_ABORTED, "gate never opened", NULL, 0);
    } else {
        CHECK_OK(gh_server_call_send(call, data, len, 0));
        CHECK_OK(gh_server_call_finish(call, GH_STATUS_OK, NULL, NULL, 0));
    }
    tu_counter_add(&st->returned, 1);
}

static void test_max_concurrent_rpcs(void) {
    hold_state st;
    memset(&st, 0, sizeof st);
    tu_counter_init(&st.entered);
    tu_counter_init(&st.gate);
    tu_counter_init(&st.returned);

    const tu_method methods[] = {
        {M_HOLD, GH_UNARY, h_hold, &st},
    };
    gh_server *s = tu_server_new(methods, 1);
    CHECK_OK(gh_server_set_int(s, GH_OPT_MAX_CONCURRENT_RPCS, 1));
    int port = tu_server_start(s);
    gh_channel *ch = tu_channel_new(port);

    /* First call: held in its handler. */
    async_state first;
    async_state_init(&first);
    gh_call *held = NULL;
    CHECK_OK(gh_call_new(ch, M_HOLD, &held));
    CHECK_OK(gh_call_set_timeout(held, TU_WAIT_LIMIT + 10));
    CHECK_OK(gh_call_start_unary_async(held, (const uint8_t *)"held", 4, on_message,
                                       on_done, &first));
    CHECK_MSG(tu_counter_wait(&st.entered, 1, TU_WAIT_LIMIT),
              "the first call's handler did not start");

    /* Second call: refused at once, its handler not run. */
    gh_call *second = NULL;
    CHECK_OK(gh_call_new(ch, M_HOLD, &second));
    CHECK_OK(gh_call_set_timeout(second, TU_WAIT_LIMIT));
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    int rc = gh_call_unary(second, (const uint8_t *)"second", 6, &resp, &resp_len);
    CHECK_MSG(rc == GH_ERR_RPC, "second call over the limit returned %d, status %d",
              rc, gh_call_status(second));
    CHECK_EQ(gh_call_status(second), GH_STATUS_RESOURCE_EXHAUSTED);
    CHECK_STR(gh_call_status_message(second), "Concurrent RPC limit exceeded!");
    gh_call_free(second);
    CHECK_EQ(tu_counter_get(&st.entered), 1);
    CHECK_EQ(tu_counter_get(&first.done), 0); /* still held */

    /* Release: the first call completes with OK. */
    tu_counter_add(&st.gate, 1);
    CHECK_MSG(tu_counter_wait(&first.done, 1, TU_WAIT_LIMIT + 5),
              "the held call did not complete after release");
    CHECK_EQ(first.status, GH_STATUS_OK);
    CHECK_EQ(first.msgs.count, 1);
    CHECK_BYTES_STR(first.msgs.data[0], first.msgs.len[0], "held");
    CHECK(tu_counter_wait(&st.returned, 1, TU_WAIT_LIMIT));
    CHECK(st.released);
    CHECK_EQ(tu_counter_get(&st.entered), 1);
    gh_call_free(held);
    async_state_destroy(&first);

    gh_channel_free(ch);
    tu_server_stop(s);
    tu_counter_destroy(&st.entered);
    tu_counter_destroy(&st.gate);
    tu_counter_destroy(&st.returned);
    printf("  max concurrent RPCs: ok\n");
}

/* ------------------------------------------------------------------------ */
/* 6. gh_server_begin_shutdown                                              */
/* ------------------------------------------------------------------------ */

static void on_stopped(void *ud) { tu_counter_add((tu_counter *)ud, 1); }

typedef struct {
    gh_server *server;
    tu_counter stopped;
    int begin_rc;
} self_stop_state;

/* Unary: begins its own server's shutdown, then answers. */
static void h_self_stop(gh_server_call *call, void *ud) {
    self_stop_state *st = ud;
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_server_call_read(call, &data, &len), 1);
    st->begin_rc = gh_server_begin_shutdown(st->server, 5, on_stopped, &st->stopped);
    CHECK_OK(gh_server_call_send(call, data, len, 0));
}

static void test_begin_shutdown(void) {
    hold_state st;
    memset(&st, 0, sizeof st);
    tu_counter_init(&st.entered);
    tu_counter_init(&st.gate);
    tu_counter_init(&st.returned);
    tu_counter stopped;
    tu_counter_init(&stopped);

    /* Never started: nothing to stop; it still starts afterwards. */
    const tu_method methods[] = {{M_HOLD, GH_UNARY, h_hold, &st}};
    gh_server *s = tu_server_new(methods, 1);
    CHECK_OK(gh_server_begin_shutdown(s, 5, on_stopped, &stopped));
    CHECK_EQ(tu_counter_get(&stopped), 1);
    int port = tu_server_start(s);
    gh_channel *ch = tu_channel_new(port);

    /* A held call: begin returns at once; the server takes nothing new. */
    async_state held;
    async_state_init(&held);
    gh_call *call = start_held_call(ch, &held);
    CHECK(tu_counter_wait(&st.entered, 1, TU_WAIT_LIMIT));
    CHECK_OK(gh_server_begin_shutdown(s, TU_WAIT_LIMIT + 10, on_stopped, &stopped));
    CHECK_EQ(tu_counter_get(&stopped), 1);
    CHECK_EQ(tu_counter_get(&held.done), 0);
    CHECK_MSG(!raw_connect(port), "a new connection was accepted after begin_shutdown");
    gh_call *late = NULL;
    CHECK_OK(gh_call_new(ch, M_HOLD, &late));
    CHECK_OK(gh_call_set_timeout(late, TU_WAIT_LIMIT));
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    CHECK_RC(gh_call_unary(late, (const uint8_t *)"late", 4, &resp, &resp_len), GH_ERR_RPC);
    CHECK_EQ(gh_call_status(late), GH_STATUS_UNAVAILABLE);
    gh_call_free(late);
    CHECK_EQ(tu_counter_get(&st.entered), 1);

    /* Released within the grace: the call completes, then on_stopped runs once. */
    tu_counter_add(&st.gate, 1);
    CHECK(tu_counter_wait(&held.done, 1, TU_WAIT_LIMIT));
    CHECK_EQ(held.status, GH_STATUS_OK);
    CHECK_OK(gh_server_wait(s));
    CHECK_EQ(tu_counter_get(&stopped), 2);
    /* Once it is over, a further call's on_stopped still runs. */
    CHECK_OK(gh_server_begin_shutdown(s, 0, on_stopped, &stopped));
    CHECK(tu_counter_wait(&stopped, 3, TU_WAIT_LIMIT));
    CHECK_OK(gh_server_begin_shutdown(s, 0, NULL, NULL));
    gh_call_free(call);
    async_state_destroy(&held);
    gh_channel_free(ch);
    gh_server_free(s);
    CHECK_EQ(tu_counter_get(&stopped), 3);

    /* A handler begins its own server's shutdown. */
    self_stop_state self;
    memset(&self, 0, sizeof self);
    tu_counter_init(&self.stopped);
    self.begin_rc = -1;
    const tu_method self_methods[] = {{M_KNOWN, GH_UNARY, h_self_stop, &self}};
    self.server = tu_server_new(self_methods, 1);
    port = tu_server_start(self.server);
    ch = tu_channel_new(port);
    unary_expect(ch, M_KNOWN, "bye", "bye");
    CHECK_EQ(self.begin_rc, GH_OK);
    CHECK(tu_counter_wait(&self.stopped, 1, TU_WAIT_LIMIT));
    CHECK_OK(gh_server_wait(self.server));
    gh_channel_free(ch);
    gh_server_free(self.server);
    CHECK_EQ(tu_counter_get(&self.stopped), 1);
    tu_counter_destroy(&self.stopped);

    tu_counter_destroy(&stopped);
    tu_counter_destroy(&st.entered);
    tu_counter_destroy(&st.gate);
    tu_counter_destroy(&st.returned);
    printf("  begin shutdown: ok\n");
}

/* ------------------------------------------------------------------------ */
/* 7. gh_server_release                                                     */
/* ------------------------------------------------------------------------ */

/* One released server: its two methods ("hold", "release") share it as user
 * data, each with release_free. */
typedef struct {
    gh_server *server;            /* what "release" and the on_stopped release */
    tu_counter entered;           /* handlers entered */
    tu_counter cancelled;         /* "hold" saw its call cancelled */
    tu_counter gate;              /* opened by the test: "hold" may return */
    tu_counter returned;          /* handlers about to return */
    tu_counter released;          /* gh_server_release returned on a handler / on_stopped */
    tu_counter frees;             /* free_user_data calls */
    atomic_int frees_off_library; /* free_user_data calls not on gh-shutdown */
    atomic_int frees_early;       /* free_user_data calls before every handler returned */
    atomic_int stopped_off_library; /* on_stopped not on gh-shutdown */
} release_state;

#define RELEASE_FREES 2 /* the two methods */

static void release_state_init(release_state *st) {
    memset(st, 0, sizeof *st);
    tu_counter_init(&st->entered);
    tu_counter_init(&st->cancelled);
    tu_counter_init(&st->gate);
    tu_counter_init(&st->returned);
    tu_counter_init(&st->released);
    tu_counter_init(&st->frees);
    atomic_init(&st->frees_off_library, 0);
    atomic_init(&st->frees_early, 0);
    atomic_init(&st->stopped_off_library, 0);
}

static void release_state_destroy(release_state *st) {
    tu_counter_destroy(&st->entered);
    tu_counter_destroy(&st->cancelled);
    tu_counter_destroy(&st->gate);
    tu_counter_destroy(&st->returned);
    tu_counter_destroy(&st->released);
    tu_counter_destroy(&st->frees);
}

/* Whether the calling thread is the library's gh-shutdown (Linux: its comm). */
static int on_shutdown_thread(void) {
    char name[32] = "";
    FILE *f = fopen("/proc/thread-self/comm", "r");
    if (f != NULL) {
        if (fgets(name, sizeof name, f) == NULL) name[0] = '\0';
        fclose(f);
    }
    name[strcspn(name, "\n")] = '\0';
    return strcmp(name, "gh-shutdown") == 0;
}

static void release_free(void *ud) {
    release_state *st = ud;
    if (!on_shutdown_thread()) atomic_fetch_add(&st->frees_off_library, 1);
    if (tu_counter_get(&st->returned) < tu_counter_get(&st->entered))
        atomic_fetch_add(&st->frees_early, 1);
    tu_counter_add(&st->frees, 1);
}

/* Unary: waits (bounded) until its call is cancelled, then until the gate
 * opens, then returns without answering. */
static void h_release_hold(gh_server_call *call, void *ud) {
    release_state *st = ud;
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_server_call_read(call, &data, &len), 1);
    tu_counter_add(&st->entered, 1);
    if (gh_server_call_wait_done(call, TU_WAIT_LIMIT) == 1 && gh_server_call_is_cancelled(call))
        tu_counter_add(&st->cancelled, 1);
    CHECK(tu_counter_wait(&st->gate, 1, TU_WAIT_LIMIT));
    tu_counter_add(&st->returned, 1);
}

/* Unary: gives its own server up, then answers (the call may be cancelled by
 * then: the answer's fate is the shutdown's). */
static void h_release_self(gh_server_call *call, void *ud) {
    release_state *st = ud;
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_server_call_read(call, &data, &len), 1);
    tu_counter_add(&st->entered, 1);
    gh_server_release(st->server); /* returns at once: the handle is gone */
    st->server = NULL;
    tu_counter_add(&st->released, 1);
    gh_server_call_send(call, data, len, 0);
    tu_counter_add(&st->returned, 1);
}

/* on_stopped of gh_server_begin_shutdown: gives the server up there. */
static void on_stopped_release(void *ud) {
    release_state *st = ud;
    if (!on_shutdown_thread()) atomic_fetch_add(&st->stopped_off_library, 1);
    gh_server_release(st->server);
    st->server = NULL;
    tu_counter_add(&st->released, 1);
}

/* A server of "hold" and "release" with |st| as their user data, not started. */
static gh_server *release_server(release_state *st) {
    gh_server *s = NULL;
    CHECK_OK(gh_server_new(&s));
    CHECK_OK(gh_server_add_listener(s, "127.0.0.1:0"));
    CHECK_OK(gh_server_register(s, M_HOLD, GH_UNARY, h_release_hold, st, release_free));
    CHECK_OK(gh_server_register(s, M_RELEASE, GH_UNARY, h_release_self, st, release_free));
    st->server = s;
    return s;
}

/* Every free_user_data ran once, on the library's thread, after the handlers. */
static void check_freed_by_library(release_state *st) {
    CHECK_MSG(tu_counter_wait(&st->frees, RELEASE_FREES, TU_WAIT_LIMIT),
              "the released server's user data was not freed");
    CHECK_EQ(tu_counter_get(&st->frees), RELEASE_FREES);
    CHECK_EQ(atomic_load(&st->frees_off_library), 0);
    CHECK_EQ(atomic_load(&st->frees_early), 0);
}

static void test_release(void) {
    /* From the main thread, a call held by its handler: returns at once, no new
     * connection; the held call is cancelled, nothing is freed while its
     * handler runs; the library frees once it has returned. */
    release_state st;
    release_state_init(&st);
    gh_server *s = release_server(&st);
    int port = tu_server_start(s);
    gh_channel *ch = tu_channel_new(port);
    async_state held;
    async_state_init(&held);
    gh_call *call = start_held_call(ch, &held);
    CHECK(tu_counter_wait(&st.entered, 1, TU_WAIT_LIMIT));
    gh_server_release(s);
    CHECK_MSG(!raw_connect(port), "a new connection was accepted after gh_server_release");
    CHECK_MSG(tu_counter_wait(&st.cancelled, 1, TU_WAIT_LIMIT),
              "the held call was not cancelled");
    CHECK(tu_counter_wait(&held.done, 1, TU_WAIT_LIMIT));
    CHECK_MSG(held.status != GH_STATUS_OK, "the held call ended OK");
    CHECK_EQ(tu_counter_get(&st.frees), 0); /* its handler still runs */
    tu_counter_add(&st.gate, 1);
    check_freed_by_library(&st);
    gh_call_free(call);
    async_state_destroy(&held);
    gh_channel_free(ch);
    release_state_destroy(&st);

    /* From one of its handlers: the handler goes on; the free follows it. */
    release_state_init(&st);
    s = release_server(&st);
    port = tu_server_start(s);
    ch = tu_channel_new(port);
    gh_call *self = NULL;
    CHECK_OK(gh_call_new(ch, M_RELEASE, &self));
    CHECK_OK(gh_call_set_timeout(self, TU_WAIT_LIMIT));
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    gh_call_unary(self, (const uint8_t *)"bye", 3, &resp, &resp_len); /* OK or cancelled */
    gh_call_free(self);
    CHECK(tu_counter_wait(&st.released, 1, TU_WAIT_LIMIT));
    check_freed_by_library(&st);
    CHECK_EQ(tu_counter_get(&st.returned), 1);
    CHECK_MSG(!raw_connect(port), "the released server still listens");
    gh_channel_free(ch);
    release_state_destroy(&st);

    /* From inside on_stopped, on the library's shutdown thread (which the free
     * waits for: it must not wait for itself). */
    release_state_init(&st);
    s = release_server(&st);
    port = tu_server_start(s);
    CHECK_OK(gh_server_begin_shutdown(s, 5, on_stopped_release, &st));
    CHECK(tu_counter_wait(&st.released, 1, TU_WAIT_LIMIT));
    CHECK_EQ(atomic_load(&st.stopped_off_library), 0);
    check_freed_by_library(&st);
    release_state_destroy(&st);

    /* A server never started: freed on the library's thread as well. */
    release_state_init(&st);
    gh_server_release(release_server(&st));
    check_freed_by_library(&st);
    release_state_destroy(&st);

    gh_server_release(NULL); /* does nothing */
    printf("  release: ok\n");
}

int main(void) {
    test_bind();
    test_fallback();
    test_user_agent();
    test_wait_done();
    test_max_concurrent_rpcs();
    test_begin_shutdown();
    test_release();
    printf("test_binding_support: OK\n");
    return 0;
}
