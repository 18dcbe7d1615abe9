/*
 * test_connectivity.c — a channel's connectivity state through <grpchelper.h>:
 * - gh_channel_connectivity: IDLE for a new channel (a check alone connects
 *   nothing), try_to_connect makes it connect (READY), NULL channel;
 * - gh_channel_watch_connectivity: the current state first, then each change in
 *   order (IDLE, CONNECTING, READY; IDLE once the server is gone), SHUTDOWN last
 *   at gh_channel_free, user_data freed once the watch has ended; a watch that
 *   ends itself from its own callback; a try-to-connect watch on a port nobody
 *   listens on (TRANSIENT_FAILURE); argument errors (user_data freed too).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <grpchelper.h>

#include "check.h"
#include "testutil.h"

#define MAX_STATES 64

typedef struct {
    pthread_mutex_t mu;
    int states[MAX_STATES];
    int count;
    tu_counter seen;  /* states delivered */
    tu_counter freed; /* free_user_data calls */
    gh_channel *ch;   /* for the watch that ends itself */
    uint64_t id;
    int unwatch_rc;
} watch_log;

static void log_init(watch_log *w) {
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    tu_counter_init(&w->seen);
    tu_counter_init(&w->freed);
    w->unwatch_rc = 1;
}

static void log_destroy(watch_log *w) {
    pthread_mutex_destroy(&w->mu);
    tu_counter_destroy(&w->seen);
    tu_counter_destroy(&w->freed);
}

static void on_state(int state, void *user_data) {
    watch_log *w = user_data;
    pthread_mutex_lock(&w->mu);
    CHECK(w->count < MAX_STATES);
    w->states[w->count++] = state;
    pthread_mutex_unlock(&w->mu);
    tu_counter_add(&w->seen, 1);
}

static void on_state_then_unwatch(int state, void *user_data) {
    watch_log *w = user_data;
    on_state(state, user_data);
    w->unwatch_rc = gh_channel_unwatch_connectivity(w->ch, w->id);
}

static void on_free(void *user_data) {
    watch_log *w = user_data;
    tu_counter_add(&w->freed, 1);
}

/* Waits until |state| was delivered; returns its index. */
static int wait_state(watch_log *w, int state) {
    double end = tu_now() + TU_WAIT_LIMIT;
    for (;;) {
        long n = tu_counter_get(&w->seen);
        pthread_mutex_lock(&w->mu);
        for (int i = 0; i < w->count; i++) {
            if (w->states[i] == state) {
                pthread_mutex_unlock(&w->mu);
                return i;
            }
        }
        pthread_mutex_unlock(&w->mu);
        CHECK_MSG(tu_now() < end, "state %d never delivered", state);
        tu_counter_wait(&w->seen, n + 1, end - tu_now());
    }
}

static void check_states(watch_log *w, const int *expected, int n) {
    pthread_mutex_lock(&w->mu);
    CHECK_MSG(w->count == n, "%d states delivered, expected %d", w->count, n);
    for (int i = 0; i < n; i++) {
        CHECK_MSG(w->states[i] == expected[i], "state %d is %d, expected %d", i, w->states[i],
                  expected[i]);
    }
    pthread_mutex_unlock(&w->mu);
}

static void test_watch_through_a_servers_life(void) {
    int port = 0;
    gh_server *s = tu_echo_server(NULL, 0, &port);
    gh_channel *ch = tu_channel_new(port);
    CHECK_EQ(gh_channel_connectivity(ch, 0), GH_CONNECTIVITY_IDLE);
    CHECK_EQ(gh_channel_connectivity(ch, 0), GH_CONNECTIVITY_IDLE);

    watch_log w;
    log_init(&w);
    uint64_t id = 0;
    CHECK_OK(gh_channel_watch_connectivity(ch, 0, on_state, &w, on_free, &id));
    CHECK(id != 0);
    wait_state(&w, GH_CONNECTIVITY_IDLE);

    /* A watch that ends itself from its first callback: nothing more, freed. */
    watch_log self;
    log_init(&self);
    self.ch = ch;
    pthread_mutex_lock(&self.mu); /* self.id is set before its callback reads it */
    CHECK_OK(gh_channel_watch_connectivity(ch, 0, on_state_then_unwatch, &self, on_free, &self.id));
    pthread_mutex_unlock(&self.mu);
    CHECK(tu_counter_wait(&self.freed, 1, TU_WAIT_LIMIT));
    CHECK_EQ(self.unwatch_rc, GH_OK);
    CHECK_RC(gh_channel_unwatch_connectivity(ch, self.id), GH_ERR_INVALID_ARGUMENT);

    CHECK_EQ(gh_channel_connectivity(ch, 1), GH_CONNECTIVITY_IDLE); /* the state before */
    wait_state(&w, GH_CONNECTIVITY_READY);
    CHECK_EQ(gh_channel_connectivity(ch, 0), GH_CONNECTIVITY_READY);
    check_states(&w, (const int[]){GH_CONNECTIVITY_IDLE, GH_CONNECTIVITY_CONNECTING,
                                   GH_CONNECTIVITY_READY}, 3);
    CHECK_EQ(self.count, 1);

    /* The server goes away: IDLE. */
    tu_server_stop(s);
    CHECK(tu_counter_wait(&w.seen, 4, TU_WAIT_LIMIT));
    CHECK_EQ(w.states[3], GH_CONNECTIVITY_IDLE);

    /* Freed: SHUTDOWN last, then the user_data is freed. */
    gh_channel_free(ch);
    CHECK(tu_counter_wait(&w.freed, 1, TU_WAIT_LIMIT));
    check_states(&w, (const int[]){GH_CONNECTIVITY_IDLE, GH_CONNECTIVITY_CONNECTING,
                                   GH_CONNECTIVITY_READY, GH_CONNECTIVITY_IDLE,
                                   GH_CONNECTIVITY_SHUTDOWN}, 5);
    log_destroy(&w);
    log_destroy(&self);
}

static void test_try_to_connect_to_nobody(void) {
    /* A port nobody listens on: bind one, then stop the server. */
    int port = 0;
    gh_server *s = tu_echo_server(NULL, 0, &port);
    tu_server_stop(s);
    gh_channel *ch = tu_channel_new(port);
    watch_log w;
    log_init(&w);
    uint64_t id = 0;
    CHECK_OK(gh_channel_watch_connectivity(ch, 1, on_state, &w, on_free, &id));
    int i = wait_state(&w, GH_CONNECTIVITY_TRANSIENT_FAILURE);
    CHECK(i >= 2);
    CHECK_EQ(w.states[0], GH_CONNECTIVITY_IDLE);
    CHECK_EQ(w.states[1], GH_CONNECTIVITY_CONNECTING);
    CHECK_OK(gh_channel_unwatch_connectivity(ch, id));
    CHECK(tu_counter_wait(&w.freed, 1, TU_WAIT_LIMIT));
    gh_channel_free(ch);
    log_destroy(&w);
}

static void test_argument_errors(void) {
    watch_log w;
    log_init(&w);
    uint64_t id = 0;
    CHECK_RC(gh_channel_connectivity(NULL, 0), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_channel_watch_connectivity(NULL, 0, on_state, &w, on_free, &id),
             GH_ERR_INVALID_ARGUMENT);
    CHECK_EQ(tu_counter_get(&w.freed), 1); /* freed also when it fails */
    gh_channel *ch = tu_channel_new(1);
    CHECK_RC(gh_channel_watch_connectivity(ch, 0, NULL, &w, on_free, &id), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_channel_watch_connectivity(ch, 0, on_state, &w, on_free, NULL),
             GH_ERR_INVALID_ARGUMENT);
    CHECK_EQ(tu_counter_get(&w.freed), 3);
    CHECK_RC(gh_channel_unwatch_connectivity(ch, 12345), GH_ERR_INVALID_ARGUMENT);
    gh_channel_free(ch);
    log_destroy(&w);
}

int main(void) {
    test_argument_errors();
    test_watch_through_a_servers_life();
    test_try_to_connect_to_nobody();
    printf("test_connectivity: OK\n");
    return 0;
}
