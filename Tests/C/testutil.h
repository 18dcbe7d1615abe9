/*
 * testutil.h — shared helpers for the libgrpchelper C tests: in-process server
 * setup, a few stock handlers, a monotonic clock, a waitable counter and a
 * message list. Uses only the public API (<grpchelper.h>).
 */
#ifndef GH_TEST_UTIL_H
#define GH_TEST_UTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <grpchelper.h>

/* Method paths served by the stock handlers below. */
#define TU_UNARY "/grpchelper.test.Echo/Unary"
#define TU_SERVER_STREAM "/grpchelper.test.Echo/ServerStream"
#define TU_CLIENT_STREAM "/grpchelper.test.Echo/ClientStream"
#define TU_BIDI "/grpchelper.test.Echo/Bidi"

/* Upper bound for any wait in the tests, in seconds. */
#define TU_WAIT_LIMIT 20.0

typedef struct {
    const char *method;
    gh_cardinality cardinality;
    gh_handler_fn fn;
    void *user_data;
} tu_method;

/* A server listening on "127.0.0.1:0" with |methods| registered, not started
 * (options may still be set). */
gh_server *tu_server_new(const tu_method *methods, size_t n);

/* Starts |s| and returns the port of its first listener. */
int tu_server_start(gh_server *s);

/* tu_server_new + tu_server_start. */
gh_server *tu_server_start_new(const tu_method *methods, size_t n, int *port);

/* The four stock echo methods (TU_UNARY, TU_SERVER_STREAM, TU_CLIENT_STREAM,
 * TU_BIDI) plus |extra|: tu_server_start_new with all of them. */
gh_server *tu_echo_server(const tu_method *extra, size_t n_extra, int *port);

/* gh_server_shutdown(grace 5) + gh_server_free. */
void tu_server_stop(gh_server *s);

/* A channel to "127.0.0.1:<port>". */
gh_channel *tu_channel_new(int port);

/* Stock handlers.
 * - tu_echo_unary:  reads one request, sends it back.
 * - tu_server_stream: request "N:text" -> N responses "text 0" .. "text N-1";
 *   a malformed request finishes with INVALID_ARGUMENT.
 * - tu_client_stream: joins all requests with "," and sends that once.
 * - tu_echo_bidi:  sends every request back as soon as it is read. */
void tu_echo_unary(gh_server_call *call, void *user_data);
void tu_server_stream(gh_server_call *call, void *user_data);
void tu_client_stream(gh_server_call *call, void *user_data);
void tu_echo_bidi(gh_server_call *call, void *user_data);

/* Monotonic time in seconds. */
double tu_now(void);

/* Sleeps |seconds|. Only for polling inside handlers. */
void tu_sleep(double seconds);

/* A counter that threads can wait on. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long value;
} tu_counter;

void tu_counter_init(tu_counter *c);
void tu_counter_destroy(tu_counter *c);
void tu_counter_add(tu_counter *c, long n);
long tu_counter_get(tu_counter *c);
/* Waits until value >= |target| or |timeout| seconds pass; returns non-zero if
 * the target was reached. */
int tu_counter_wait(tu_counter *c, long target, double timeout);

/* A growable list of byte messages (copies). Not synchronised. */
typedef struct {
    size_t count;
    size_t cap;
    uint8_t **data;
    size_t *len;
} tu_msgs;

void tu_msgs_push(tu_msgs *m, const uint8_t *data, size_t len);
void tu_msgs_clear(tu_msgs *m);

/* A metadata list from NULL-terminated text pairs: tu_md("k", "v", ..., NULL). */
gh_metadata *tu_md(const char *key, ...);

/* Collects, in order, up to |max| values of |key| in |md| into vals/lens;
 * returns how many there are in total. */
size_t tu_md_values(const gh_metadata *md, const char *key,
                    const uint8_t **vals, size_t *lens, size_t max);

/* Copies into |dst| every entry of |src| whose key starts with |prefix|. */
void tu_md_copy_prefixed(gh_metadata *dst, const gh_metadata *src,
                         const char *prefix);

#endif /* GH_TEST_UTIL_H */
