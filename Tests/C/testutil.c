#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "testutil.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

/* ------------------------------------------------------------------------ */
/* Servers and channels                                                     */
/* ------------------------------------------------------------------------ */

gh_server *tu_server_new(const tu_method *methods, size_t n) {
    gh_server *s = NULL;
    CHECK_OK(gh_server_new(&s));
    CHECK(s != NULL);
    CHECK_OK(gh_server_add_listener(s, "127.0.0.1:0"));
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(gh_server_register(s, methods[i].method, methods[i].cardinality,
                                    methods[i].fn, methods[i].user_data, NULL));
    }
    return s;
}

int tu_server_start(gh_server *s) {
    int port = -1;
    CHECK_OK(gh_server_start(s));
    CHECK_OK(gh_server_port(s, 0, &port));
    CHECK_MSG(port > 0 && port < 65536, "port %d", port);
    return port;
}

gh_server *tu_server_start_new(const tu_method *methods, size_t n, int *port) {
    gh_server *s = tu_server_new(methods, n);
    *port = tu_server_start(s);
    return s;
}

gh_server *tu_echo_server(const tu_method *extra, size_t n_extra, int *port) {
    static const tu_method stock[] = {
        {TU_UNARY, GH_UNARY, tu_echo_unary, NULL},
        {TU_SERVER_STREAM, GH_SERVER_STREAMING, tu_server_stream, NULL},
        {TU_CLIENT_STREAM, GH_CLIENT_STREAMING, tu_client_stream, NULL},
        {TU_BIDI, GH_BIDI_STREAMING, tu_echo_bidi, NULL},
    };
    size_t n_stock = sizeof stock / sizeof stock[0];
    tu_method *all = calloc(n_stock + n_extra, sizeof *all);
    CHECK(all != NULL);
    memcpy(all, stock, sizeof stock);
    if (n_extra > 0) {
        memcpy(all + n_stock, extra, n_extra * sizeof *extra);
    }
    gh_server *s = tu_server_start_new(all, n_stock + n_extra, port);
    free(all);
    return s;
}

void tu_server_stop(gh_server *s) {
    CHECK_OK(gh_server_shutdown(s, 5.0));
    gh_server_free(s);
}

gh_channel *tu_channel_new(int port) {
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    gh_channel *ch = NULL;
    CHECK_OK(gh_channel_new(&ch, target));
    CHECK(ch != NULL);
    return ch;
}

/* ------------------------------------------------------------------------ */
/* Stock handlers                                                           */
/* ------------------------------------------------------------------------ */

void tu_echo_unary(gh_server_call *call, void *user_data) {
    (void)user_data;
    const uint8_t *data = NULL;
    size_t len = 0;
    int rc = gh_server_call_read(call, &data, &len);
    if (rc != 1) {
        gh_server_call_finish(call, GH_STATUS_INVALID_ARGUMENT,
                              "expected one request message", NULL, 0);
        return;
    }
    if (gh_server_call_send(call, data, len, 0) == GH_OK) {
        gh_server_call_finish(call, GH_STATUS_OK, NULL, NULL, 0);
    }
}

void tu_server_stream(gh_server_call *call, void *user_data) {
    (void)user_data;
    const uint8_t *data = NULL;
    size_t len = 0;
    if (gh_server_call_read(call, &data, &len) != 1) {
        gh_server_call_finish(call, GH_STATUS_INVALID_ARGUMENT,
                              "expected one request message", NULL, 0);
        return;
    }
    char req[256];
    if (len >= sizeof req) {
        gh_server_call_finish(call, GH_STATUS_INVALID_ARGUMENT,
                              "request too long", NULL, 0);
        return;
    }
    memcpy(req, data, len);
    req[len] = '\0';
    char *colon = strchr(req, ':');
    char *end = NULL;
    long count = colon ? strtol(req, &end, 10) : -1;
    if (colon == NULL || end != colon || count < 0 || count > 100000) {
        gh_server_call_finish(call, GH_STATUS_INVALID_ARGUMENT,
                              "request must be COUNT:TEXT", NULL, 0);
        return;
    }
    const char *text = colon + 1;
    for (long i = 0; i < count; i++) {
        char msg[300];
        int n = snprintf(msg, sizeof msg, "%s %ld", text, i);
        if (gh_server_call_send(call, (const uint8_t *)msg, (size_t)n, 0) != GH_OK) {
            return; /* the call has ended */
        }
    }
    gh_server_call_finish(call, GH_STATUS_OK, NULL, NULL, 0);
}

void tu_client_stream(gh_server_call *call, void *user_data) {
    (void)user_data;
    size_t cap = 256, used = 0, n = 0;
    char *joined = malloc(cap);
    CHECK(joined != NULL);
    const uint8_t *data = NULL;
    size_t len = 0;
    int rc;
    while ((rc = gh_server_call_read(call, &data, &len)) == 1) {
        size_t need = used + len + 2;
        if (need > cap) {
            while (cap < need) cap *= 2;
            joined = realloc(joined, cap);
            CHECK(joined != NULL);
        }
        if (n++ > 0) joined[used++] = ',';
        if (len > 0) memcpy(joined + used, data, len);
        used += len;
    }
    if (rc == 0) {
        if (gh_server_call_send(call, (const uint8_t *)joined, used, 0) == GH_OK) {
            gh_server_call_finish(call, GH_STATUS_OK, NULL, NULL, 0);
        }
    }
    free(joined);
}

void tu_echo_bidi(gh_server_call *call, void *user_data) {
    (void)user_data;
    const uint8_t *data = NULL;
    size_t len = 0;
    int rc;
    while ((rc = gh_server_call_read(call, &data, &len)) == 1) {
        if (gh_server_call_send(call, data, len, 0) != GH_OK) {
            return;
        }
    }
    if (rc == 0) {
        gh_server_call_finish(call, GH_STATUS_OK, NULL, NULL, 0);
    }
}

/* ------------------------------------------------------------------------ */
/* Time                                                                     */
/* ------------------------------------------------------------------------ */

double tu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void tu_sleep(double seconds) {
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ------------------------------------------------------------------------ */
/* Counter                                                                  */
/* ------------------------------------------------------------------------ */

void tu_counter_init(tu_counter *c) {
    pthread_condattr_t attr;
    CHECK(pthread_condattr_init(&attr) == 0);
    CHECK(pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0);
    CHECK(pthread_mutex_init(&c->mu, NULL) == 0);
    CHECK(pthread_cond_init(&c->cv, &attr) == 0);
    pthread_condattr_destroy(&attr);
    c->value = 0;
}

void tu_counter_destroy(tu_counter *c) {
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
}

void tu_counter_add(tu_counter *c, long n) {
    pthread_mutex_lock(&c->mu);
    c->value += n;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

long tu_counter_get(tu_counter *c) {
    pthread_mutex_lock(&c->mu);
    long v = c->value;
    pthread_mutex_unlock(&c->mu);
    return v;
}

int tu_counter_wait(tu_counter *c, long target, double timeout) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    double whole = (double)(long)timeout;
    deadline.tv_sec += (time_t)whole;
    deadline.tv_nsec += (long)((timeout - whole) * 1e9);
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec += 1;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    int rc = 0;
    while (c->value < target && rc != ETIMEDOUT) {
        rc = pthread_cond_timedwait(&c->cv, &c->mu, &deadline);
    }
    int reached = c->value >= target;
    pthread_mutex_unlock(&c->mu);
    return reached;
}

/* ------------------------------------------------------------------------ */
/* Message lists                                                            */
/* ------------------------------------------------------------------------ */

void tu_msgs_push(tu_msgs *m, const uint8_t *data, size_t len) {
    if (m->count == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        m->data = realloc(m->data, cap * sizeof *m->data);
        m->len = realloc(m->len, cap * sizeof *m->len);
        CHECK(m->data != NULL && m->len != NULL);
        m->cap = cap;
    }
    uint8_t *copy = malloc(len + 1);
    CHECK(copy != NULL);
    if (len > 0) memcpy(copy, data, len);
    copy[len] = 0;
    m->data[m->count] = copy;
    m->len[m->count] = len;
    m->count++;
}

void tu_msgs_clear(tu_msgs *m) {
    for (size_t i = 0; i < m->count; i++) free(m->data[i]);
    free(m->data);
    free(m->len);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------------ */
/* Metadata                                                                 */
/* ------------------------------------------------------------------------ */

gh_metadata *tu_md(const char *key, ...) {
    gh_metadata *md = NULL;
    CHECK_OK(gh_metadata_new(&md));
    va_list ap;
    va_start(ap, key);
    for (const char *k = key; k != NULL; k = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        CHECK(v != NULL);
        CHECK_OK(gh_metadata_add(md, k, v));
    }
    va_end(ap);
    return md;
}

size_t tu_md_values(const gh_metadata *md, const char *key,
                    const uint8_t **vals, size_t *lens, size_t max) {
    size_t found = 0;
    size_t n = gh_metadata_count(md);
    for (size_t i = 0; i < n; i++) {
        const char *k = NULL;
        const uint8_t *v = NULL;
        size_t len = 0;
        CHECK_OK(gh_metadata_get(md, i, &k, &v, &len));
        CHECK(k != NULL);
        if (strcmp(k, key) == 0) {
            if (found < max) {
                vals[found] = v;
                lens[found] = len;
            }
            found++;
        }
    }
    return found;
}

static int ends_with(const char *s, const char *suffix) {
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

void tu_md_copy_prefixed(gh_metadata *dst, const gh_metadata *src,
                         const char *prefix) {
    size_t n = gh_metadata_count(src);
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < n; i++) {
        const char *k = NULL;
        const uint8_t *v = NULL;
        size_t len = 0;
        CHECK_OK(gh_metadata_get(src, i, &k, &v, &len));
        if (strncmp(k, prefix, plen) != 0) continue;
        if (ends_with(k, "-bin")) {
            CHECK_OK(gh_metadata_add_bin(dst, k, v, len));
        } else {
            CHECK(v != NULL && v[len] == '\0');
            CHECK_OK(gh_metadata_add(dst, k, (const char *)v));
        }
    }
}
