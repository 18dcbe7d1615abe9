/*
 * The events service and the events listener through the C ABI only
 * (grpchelper/events.h, gh_rpc_server_send_event, the service's RPCs through a
 * gh_rpc_client "events" stub):
 * - listeners: ready and distinct client ids, the name filter, events in the
 *   order sent (by RPC and in-process), properties through every accessor,
 *   gh_event_encode;
 * - the service's errors: empty and invalid names (send and listen), unknown
 *   ids (listen, interrupt), interrupting twice;
 * - interrupt: the listener's thread ends, the queue is kept and collects, a
 *   listener given its id resumes it with what was sent meanwhile; an unknown
 *   id starts a new queue; interrupt from the callback;
 * - keep-alive events (rpc-event-keepalive-timeout 1) reach a raw stream and
 *   never a listener's callback; an interrupted queue goes after
 *   rpc-event-retain-timeout (1 s: checked once two keep-alives went by);
 * - rpc-event-queue-max: an interrupted queue keeps the newest events;
 * - shutdown → ERROR_STREAM_SHUTDOWN on a raw stream; a listener resumes
 *   across a restart on the same port (queues.json), losing nothing;
 * - a malformed queues.json: the server starts, the file is kept aside.
 * Everything happens below one mkdtemp folder, removed at the end.
 */
#define _GNU_SOURCE

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpchelper.h>

#include "check.h"
#include "testutil.h"

static char *g_tmp;

/* ------------------------------------------------------------------------ */
/* Servers, clients and the service's calls                                 */
/* ------------------------------------------------------------------------ */

/* A managed server with events on |port| (0: a free one), with "NAME=VALUE"
 * config values (NULL-terminated, may be NULL). */
static gh_rpc_server *events_server(tu_layout *l, int port, const char *const *cli) {
    gh_rpc_server_options *o = NULL;
    CHECK_OK(gh_rpc_server_options_new(&o));
    CHECK_OK(gh_rpc_server_options_set_port(o, port));
    CHECK_OK(gh_rpc_server_options_set_folders(o, l->folders));
    CHECK_OK(gh_rpc_server_options_add_cli_config(o, "rpc-shutdown-grace=0.5"));
    for (size_t i = 0; cli != NULL && cli[i] != NULL; i++)
        CHECK_OK(gh_rpc_server_options_add_cli_config(o, cli[i]));
    CHECK_OK(gh_rpc_server_options_set_flags(o, GH_RPC_WITH_EVENTS));
    gh_rpc_server *s = NULL;
    CHECK_OK(gh_rpc_server_new_with_options(o, &s));
    gh_rpc_server_options_free(o);
    return s;
}

static gh_rpc_client *events_client(gh_rpc_server *s) {
    gh_rpc_client *c = NULL;
    CHECK_OK(gh_rpc_client_new("127.0.0.1", gh_rpc_server_port(s), 5.0, "c-events", 1, &c));
    CHECK_OK(gh_rpc_client_add_stub(c, "events", "EventService", 2));
    return c;
}

/* send(Event{name, k=v}) by RPC: its gh_error (GH_ERR_RESULT: gh_result_code). */
static int send_event(gh_rpc_client *c, const char *name, const char *value) {
    const char *names[] = {"k"};
    const char *values[] = {value};
    uint8_t *ev = NULL, *resp = NULL;
    size_t ev_len = 0, resp_len = 0;
    CHECK_OK(gh_event_encode(name, names, values, value != NULL ? 1 : 0, &ev, &ev_len));
    int rc = gh_rpc_client_call(c, "events", "send", ev, ev_len, 5.0, &resp, &resp_len);
    gh_free(ev);
    gh_free(resp);
    return rc;
}

static void push_event(gh_rpc_server *s, const char *name) {
    uint8_t *ev = NULL;
    size_t len = 0;
    CHECK_OK(gh_event_encode(name, NULL, NULL, 0, &ev, &len));
    CHECK_OK(gh_rpc_server_send_event(s, ev, len));
    gh_free(ev);
}

static int interrupt_queue(gh_rpc_client *c, uint32_t id) {
    tu_buf req = {0};
    tu_pb_varint(&req, 1, id);
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    int rc = gh_rpc_client_call(c, "events", "interrupt", req.data, req.len, 5.0, &resp, &resp_len);
    tu_buf_free(&req);
    gh_free(resp);
    return rc;
}

/* inspect(): the queue ids (EventQueueStatus.client_ids, field 2, packed or
 * not) in ids[], their count returned. */
static size_t inspect_queues(gh_rpc_client *c, uint32_t *ids, size_t max) {
    uint8_t *resp = NULL;
    size_t resp_len = 0, n = 0;
    CHECK_OK(gh_rpc_client_call(c, "events", "inspect", NULL, 0, 5.0, &resp, &resp_len));
    tu_pb_reader r;
    tu_pb_field f;
    tu_pb_reader_init(&r, resp, resp_len);
    while (tu_pb_next(&r, &f)) {
        if (f.field != 2) continue;
        if (f.wire == 0) {
            if (n < max) ids[n] = (uint32_t)f.varint;
            n++;
        } else if (f.wire == 2) {
            const uint8_t *p = f.bytes, *end = f.bytes + f.len;
            while (p < end) {
                uint64_t v = 0;
                int shift = 0;
                while (p < end && (*p & 0x80)) { v |= (uint64_t)(*p++ & 0x7f) << shift; shift += 7; }
                CHECK(p < end);
                v |= (uint64_t)(*p++) << shift;
                if (n < max) ids[n] = (uint32_t)v;
                n++;
            }
        }
    }
    gh_free(resp);
    return n;
}

/* A raw listen stream: EventFilter{names, client_id}. */
static gh_rpc_responses *raw_listen(gh_rpc_client *c, const char *name, uint32_t id) {
    tu_buf req = {0};
    if (name != NULL) tu_pb_string(&req, 1, name);
    if (id != 0) tu_pb_varint(&req, 2, id);
    gh_rpc_responses *rs = NULL;
    int rc = gh_rpc_client_stream(c, "events", "listen", req.data, req.len, 0, &rs);
    tu_buf_free(&req);
    return rc == GH_OK ? rs : NULL;
}

/* The next EventStatus of a raw stream: 1 with its event's name (malloc'd,
 * "" for a keep-alive or the first message) and client id; else the rc. */
static int raw_next(gh_rpc_responses *rs, char **name, uint32_t *id) {
    uint8_t *m = NULL;
    size_t len = 0;
    int rc = gh_rpc_responses_next(rs, &m, &len);
    if (rc != 1) return rc;
    *name = strdup("");
    *id = 0;
    tu_pb_reader r, er;
    tu_pb_field f, ef;
    tu_pb_reader_init(&r, m, len);
    while (tu_pb_next(&r, &f)) {
        if (f.field == 3) *id = (uint32_t)f.varint;
        if (f.field == 2) {
            tu_pb_reader_init(&er, f.bytes, f.len);
            while (tu_pb_next(&er, &ef)) {
                if (ef.field == 1) {
                    free(*name);
                    *name = tu_pb_strdup(&ef);
                }
            }
        }
    }
    gh_free(m);
    return 1;
}

/* ------------------------------------------------------------------------ */
/* A listener's collector                                                   */
/* ------------------------------------------------------------------------ */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char names[64][32];
    char values[64][32];
    size_t count;
    int empty_names;              /* keep-alives given to the callback (must stay 0) */
    gh_events_listener *self;     /* interrupt from the callback when set */
    int interrupted_in_callback;
    int freed;                    /* free_user_data calls */
} collector;

static void collector_init(collector *c) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
}

static void collector_destroy(collector *c) {
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
}

static void on_event(const gh_event *e, void *user_data) {
    collector *c = user_data;
    const char *name = gh_event_name(e);
    const char *value = gh_event_property_value(e, "k");
    /* The accessors agree with the encoded message. */
    const uint8_t *enc = NULL;
    size_t enc_len = 0;
    CHECK_OK(gh_event_encoded(e, &enc, &enc_len));
    CHECK(enc_len >= strlen(name) + 2 && memmem(enc, enc_len, name, strlen(name)) != NULL);
    size_t n = gh_event_property_count(e);
    CHECK(n == (value != NULL ? 1u : 0u));
    if (n == 1) {
        const char *pn = NULL, *pv = NULL;
        CHECK_OK(gh_event_property(e, 0, &pn, &pv));
        CHECK_STR(pn, "k");
        CHECK(pv == value);
    }
    CHECK_RC(gh_event_property(e, n, NULL, NULL), GH_ERR_INVALID_ARGUMENT);
    CHECK(gh_event_property_value(e, "absent") == NULL);

    pthread_mutex_lock(&c->mu);
    if (name[0] == '\0') c->empty_names++;
    if (c->count < 64) {
        snprintf(c->names[c->count], sizeof c->names[0], "%s", name);
        snprintf(c->values[c->count], sizeof c->values[0], "%s", value != NULL ? value : "");
        c->count++;
    }
    gh_events_listener *self = c->self;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (self != NULL) {
        /* From its own callback: does not wait, returns 1. */
        CHECK_EQ(gh_events_listener_interrupt(self, 10), 1);
        pthread_mutex_lock(&c->mu);
        c->interrupted_in_callback = 1;
        pthread_mutex_unlock(&c->mu);
    }
}

static void free_collector(void *user_data) {
    collector *c = user_data;
    pthread_mutex_lock(&c->mu);
    c->freed++;
    pthread_mutex_unlock(&c->mu);
}

/* Waits until |n| events came (up to TU_WAIT_LIMIT); returns how many there are. */
static size_t wait_events(collector *c, size_t n) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)TU_WAIT_LIMIT;
    pthread_mutex_lock(&c->mu);
    while (c->count < n) {
        if (pthread_cond_timedwait(&c->cv, &c->mu, &deadline) != 0) break;
    }
    size_t got = c->count;
    pthread_mutex_unlock(&c->mu);
    return got;
}

static gh_events_listener *listen_to(gh_rpc_client *c, const char *const *names, size_t n,
                                     uint32_t id, collector *col) {
    gh_events_listener *l = NULL;
    CHECK_OK(gh_events_listener_new(c, names, n, id, on_event, col, free_collector, &l));
    CHECK_EQ(gh_events_listener_wait_ready(l, TU_WAIT_LIMIT), 1);
    CHECK(gh_events_listener_client_id(l) != 0);
    return l;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

static void test_encode_and_arguments(void) {
    uint8_t *ev = NULL;
    size_t len = 0;
    const char *names[] = {"a", "b"};
    const char *values[] = {"1", "2"};
    CHECK_OK(gh_event_encode("evt", names, values, 2, &ev, &len));
    /* Event{1: "evt", 2: {1: "a", 2: "1"}, 2: {1: "b", 2: "2"}} */
    static const uint8_t want[] = {0x0a, 3, 'e', 'v', 't', 0x12, 6, 0x0a, 1, 'a', 0x12, 1, '1',
                                   0x12, 6, 0x0a, 1, 'b', 0x12, 1, '2'};
    CHECK_MEM(ev, len, want, sizeof want);
    gh_free(ev);
    CHECK_RC(gh_event_encode(NULL, NULL, NULL, 0, &ev, &len), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_event_encode("x", NULL, NULL, 1, &ev, &len), GH_ERR_INVALID_ARGUMENT);

    gh_events_listener *l = NULL;
    collector col;
    collector_init(&col);
    CHECK_RC(gh_events_listener_new(NULL, NULL, 0, 0, on_event, &col, free_collector, &l),
             GH_ERR_INVALID_ARGUMENT);
    CHECK_EQ(col.freed, 1);                   /* freed also when it fails */
    CHECK(gh_events_listener_client_id(NULL) == 0);
    CHECK_EQ(gh_events_listener_is_running(NULL), 0);
    gh_events_listener_free(NULL);
    collector_destroy(&col);
}

static void test_listen_filter_interrupt_resume(void) {
    tu_layout lay;
    tu_layout_new(&lay, g_tmp, "listen");
    gh_rpc_server *s = events_server(&lay, 0, NULL);
    gh_rpc_client *c = events_client(s);

    collector all, only_b;
    collector_init(&all);
    collector_init(&only_b);
    gh_events_listener *l1 = listen_to(c, NULL, 0, 0, &all);
    const char *b[] = {"b"};
    gh_events_listener *l2 = listen_to(c, b, 1, 0, &only_b);
    uint32_t id1 = gh_events_listener_client_id(l1), id2 = gh_events_listener_client_id(l2);
    CHECK((id1 == 1 && id2 == 2) || (id1 == 2 && id2 == 1));
    uint32_t ids[8];
    CHECK_EQ(inspect_queues(c, ids, 8), 2u);

    CHECK_OK(send_event(c, "a", "v"));
    push_event(s, "b");
    CHECK_OK(send_event(c, "c", NULL));
    CHECK_EQ(wait_events(&all, 3), 3u);
    CHECK_STR(all.names[0], "a");
    CHECK_STR(all.values[0], "v");
    CHECK_STR(all.names[1], "b");
    CHECK_STR(all.names[2], "c");
    CHECK_EQ(wait_events(&only_b, 1), 1u);
    CHECK_STR(only_b.names[0], "b");

    /* The service's errors. */
    CHECK_RESULT(send_event(c, "", NULL), GH_RC_ERROR_PARAM_MISSING);
    CHECK_RESULT(send_event(c, "a b", NULL), GH_RC_ERROR_PARAM_INVALID);
    CHECK_RESULT(interrupt_queue(c, 99), GH_RC_ERROR_ITEM_UNKNOWN);
    gh_rpc_responses *rs = raw_listen(c, "x y", 0);
    CHECK(rs != NULL);
    char *name = NULL;
    uint32_t id = 0;
    CHECK_RESULT(raw_next(rs, &name, &id), GH_RC_ERROR_PARAM_INVALID);
    gh_rpc_responses_free(rs);
    rs = raw_listen(c, "", 0);
    CHECK(rs != NULL);
    CHECK_RESULT(raw_next(rs, &name, &id), GH_RC_ERROR_PARAM_MISSING);
    gh_rpc_responses_free(rs);
    rs = raw_listen(c, NULL, 77);
    CHECK(rs != NULL);
    CHECK_RESULT(raw_next(rs, &name, &id), GH_RC_ERROR_ITEM_UNKNOWN);
    gh_rpc_responses_free(rs);

    /* Interrupted: the thread ends, the queue stays and collects. */
    CHECK_EQ(gh_events_listener_interrupt(l2, TU_WAIT_LIMIT), 1);
    CHECK_EQ(gh_events_listener_is_running(l2), 0);
    CHECK_EQ(gh_events_listener_interrupt(l2, TU_WAIT_LIMIT), 1);      /* again: only waits */
    CHECK_RESULT(interrupt_queue(c, id2), GH_RC_ERROR_STATE_UNEXPECTED);
    CHECK_EQ(inspect_queues(c, ids, 8), 2u);
    CHECK_OK(send_event(c, "b", "meanwhile"));
    gh_events_listener_free(l2);
    CHECK_EQ(only_b.freed, 1);

    /* Resumed by a new listener given the id: what was sent meanwhile comes first. */
    collector resumed;
    collector_init(&resumed);
    gh_events_listener *l3 = listen_to(c, b, 1, id2, &resumed);
    CHECK_EQ(gh_events_listener_client_id(l3), id2);
    CHECK_EQ(wait_events(&resumed, 1), 1u);
    CHECK_STR(resumed.names[0], "b");
    CHECK_STR(resumed.values[0], "meanwhile");

    /* An unknown id: a new queue (the lowest free id). */
    collector fresh;
    collector_init(&fresh);
    gh_events_listener *l4 = listen_to(c, NULL, 0, 41, &fresh);
    CHECK_EQ(gh_events_listener_client_id(l4), 3u);
    push_event(s, "d");
    CHECK_EQ(wait_events(&fresh, 1), 1u);
    CHECK_STR(fresh.names[0], "d");
    CHECK_EQ(wait_events(&all, 5), 5u);
    CHECK_STR(all.names[3], "b");                /* "meanwhile" */
    CHECK_STR(all.names[4], "d");

    /* Interrupt from the callback. */
    pthread_mutex_lock(&fresh.mu);
    fresh.self = l4;
    pthread_mutex_unlock(&fresh.mu);
    push_event(s, "stop");
    CHECK_EQ(wait_events(&fresh, 2), 2u);
    CHECK_EQ(gh_events_listener_interrupt(l4, TU_WAIT_LIMIT), 1);
    CHECK_EQ(fresh.interrupted_in_callback, 1);
    CHECK_EQ(gh_events_listener_is_running(l4), 0);

    gh_events_listener_free(l1);
    gh_events_listener_free(l3);
    gh_events_listener_free(l4);
    CHECK_EQ(all.empty_names + only_b.empty_names + resumed.empty_names + fresh.empty_names, 0);
    CHECK_EQ(all.freed + resumed.freed + fresh.freed, 3);
    collector_destroy(&all);
    collector_destroy(&only_b);
    collector_destroy(&resumed);
    collector_destroy(&fresh);
    gh_rpc_client_free(c);
    gh_rpc_server_free(s);
    tu_layout_free(&lay);
}

static void test_keepalive_and_retain_timeout(void) {
    tu_layout lay;
    tu_layout_new(&lay, g_tmp, "keepalive");
    const char *cli[] = {"rpc-event-keepalive-timeout=1", "rpc-event-retain-timeout=1", NULL};
    gh_rpc_server *s = events_server(&lay, 0, cli);
    gh_rpc_client *c = events_client(s);
    collector col;
    collector_init(&col);
    gh_events_listener *l = listen_to(c, NULL, 0, 0, &col);

    /* A queue interrupted now... */
    gh_rpc_responses *victim = raw_listen(c, NULL, 0);
    char *name = NULL;
    uint32_t vid = 0;
    CHECK_EQ(raw_next(victim, &name, &vid), 1);
    free(name);
    CHECK_OK(interrupt_queue(c, vid));
    CHECK_EQ(raw_next(victim, &name, &vid), 0);
    gh_rpc_responses_free(victim);

    /* ...is still there until a keep-alive (or send) at least 1 s later. A raw
     * stream sees the keep-alives (empty names); after two of them, 1 s has
     * passed since the interrupt. */
    gh_rpc_responses *raw = raw_listen(c, "never", 0);
    uint32_t rid = 0;
    CHECK_EQ(raw_next(raw, &name, &rid), 1);
    free(name);
    for (int k = 0; k < 2; k++) {
        CHECK_EQ(raw_next(raw, &name, &rid), 1);
        CHECK_STR(name, "");
        free(name);
    }
    CHECK_OK(send_event(c, "after", NULL));      /* a send also drops expired queues */
    uint32_t ids[8];
    size_t n = inspect_queues(c, ids, 8);
    CHECK_EQ(n, 2u);                             /* the listener's and the raw stream's */
    for (size_t i = 0; i < n; i++) CHECK(ids[i] != vid);
    CHECK_EQ(wait_events(&col, 1), 1u);
    CHECK_STR(col.names[0], "after");
    CHECK_EQ(col.empty_names, 0);                /* keep-alives never reach the callback */
    gh_rpc_responses_free(raw);
    gh_events_listener_free(l);
    collector_destroy(&col);
    gh_rpc_client_free(c);
    gh_rpc_server_free(s);
    tu_layout_free(&lay);
}

static void test_queue_max(void) {
    tu_layout lay;
    tu_layout_new(&lay, g_tmp, "queuemax");
    const char *cli[] = {"rpc-event-queue-max=3", NULL};
    gh_rpc_server *s = events_server(&lay, 0, cli);
    gh_rpc_client *c = events_client(s);
    collector col;
    collector_init(&col);
    gh_events_listener *l = listen_to(c, NULL, 0, 0, &col);
    uint32_t id = gh_events_listener_client_id(l);
    CHECK_EQ(gh_events_listener_interrupt(l, TU_WAIT_LIMIT), 1);
    gh_events_listener_free(l);
    char name[16];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "e%d", i);
        push_event(s, name);
    }
    collector back;
    collector_init(&back);
    l = listen_to(c, NULL, 0, id, &back);
    CHECK_EQ(wait_events(&back, 3), 3u);
    CHECK_STR(back.names[0], "e7");
    CHECK_STR(back.names[1], "e8");
    CHECK_STR(back.names[2], "e9");
    gh_events_listener_free(l);
    collector_destroy(&col);
    collector_destroy(&back);
    gh_rpc_client_free(c);
    gh_rpc_server_free(s);
    char log[900];
    TU_PATH(log, "%s/logs/EventsManager/EventsManager.log", lay.ws);
    char *text = tu_read_file(log, NULL);
    CHECK(text != NULL);
    CHECK_CONTAINS(text, "Event queue #1 is full (rpc-event-queue-max 3 undelivered events)");
    free(text);
    tu_layout_free(&lay);
}

static void test_shutdown_restart_and_bad_file(void) {
    tu_layout lay;
    tu_layout_new(&lay, g_tmp, "restart");
    gh_rpc_server *s = events_server(&lay, 0, NULL);
    int port = gh_rpc_server_port(s);
    gh_rpc_client *c = events_client(s);
    collector col;
    collector_init(&col);
    gh_events_listener *l = listen_to(c, NULL, 0, 0, &col);
    uint32_t id = gh_events_listener_client_id(l);
    gh_rpc_responses *raw = raw_listen(c, NULL, 0);
    char *name = NULL;
    uint32_t rid = 0;
    CHECK_EQ(raw_next(raw, &name, &rid), 1);
    free(name);
    push_event(s, "one");
    CHECK_EQ(wait_events(&col, 1), 1u);

    /* Shutdown: a raw stream's last message is ERROR_STREAM_SHUTDOWN (after
     * the events it had not read). */
    CHECK_OK(gh_rpc_server_shutdown(s));
    int rc;
    while ((rc = raw_next(raw, &name, &rid)) == 1) free(name);
    CHECK_RESULT(rc, GH_RC_ERROR_STREAM_SHUTDOWN);
    gh_rpc_responses_free(raw);
    gh_rpc_server_free(s);

    /* Same workspace and port: the listener resumes its queue; what the new
     * server got before it came back is delivered. */
    s = events_server(&lay, port, NULL);
    push_event(s, "two");
    CHECK_EQ(wait_events(&col, 2), 2u);
    CHECK_STR(col.names[1], "two");
    CHECK_EQ(gh_events_listener_client_id(l), id);
    CHECK_EQ(gh_events_listener_is_running(l), 1);
    gh_events_listener_free(l);
    collector_destroy(&col);
    gh_rpc_client_free(c);
    gh_rpc_server_free(s);

    /* A malformed queues.json: the server starts without it, the file is kept
     * aside and the log names it. */
    char path[900], aside[900], log[900];
    TU_PATH(path, "%s/queues.json", lay.ws);
    TU_PATH(aside, "%s/queues.json.invalid", lay.ws);
    tu_write_file(path, "{not json");
    s = events_server(&lay, 0, NULL);
    c = events_client(s);
    uint32_t ids[4];
    CHECK_EQ(inspect_queues(c, ids, 4), 0u);
    char *kept = tu_read_file(aside, NULL);
    CHECK(kept != NULL);
    CHECK_STR(kept, "{not json");
    free(kept);
    gh_rpc_client_free(c);
    gh_rpc_server_free(s);
    TU_PATH(log, "%s/logs/EventsManager/EventsManager.log", lay.ws);
    char *text = tu_read_file(log, NULL);
    CHECK(text != NULL);
    CHECK_CONTAINS(text, "Invalid event queues file");
    CHECK_CONTAINS(text, "queues.json");
    free(text);
    tu_layout_free(&lay);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    g_tmp = tu_tmpdir();
    test_encode_and_arguments();
    printf("encode and arguments: OK\n");
    test_listen_filter_interrupt_resume();
    printf("listen, filter, interrupt, resume: OK\n");
    test_keepalive_and_retain_timeout();
    printf("keep-alive and retain timeout: OK\n");
    test_queue_max();
    printf("queue max: OK\n");
    test_shutdown_restart_and_bad_file();
    printf("shutdown, restart, bad file: OK\n");
    tu_rmtree(g_tmp);
    free(g_tmp);
    printf("all OK\n");
    return 0;
}
