/*
 * echo_server.c — a gRPC echo server in C on libgrpchelper.
 *
 *   echo_server [PORT [HOST]]     (defaults: PORT 0 = any free port, HOST 0.0.0.0)
 *
 * Prints "listening on port N" once serving, and stops gracefully (5 s grace)
 * on SIGINT or SIGTERM.
 *
 * Messages are raw bytes (no protobuf). Methods of grpchelper.examples.Echo:
 *   /grpchelper.examples.Echo/Unary         unary: echoes the request.
 *   /grpchelper.examples.Echo/ServerStream  server streaming: the request is
 *       "COUNT:TEXT" (e.g. "3:hello"); answers COUNT messages "TEXT 0" ..
 *       "TEXT COUNT-1" (COUNT 0..1000). Anything else: INVALID_ARGUMENT.
 *   /grpchelper.examples.Echo/ClientStream  client streaming: answers once
 *       with all requests joined by ",".
 *   /grpchelper.examples.Echo/Bidi          bidi: echoes each message as soon
 *       as it arrives (ping-pong).
 * Metadata, on every method: the request's "x-echo" values come back as
 * initial (header) metadata "x-echo", and its "x-echo-trailer" values as
 * trailing metadata "x-echo-trailer".
 * Health checking: it serves grpc.health.v1.Health (gh_server_enable_health):
 * "" and grpchelper.examples.Echo are SERVING until the shutdown begins.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpchelper.h>

#define SERVICE "/grpchelper.examples.Echo/"

/* Sends every "x-echo" value back as initial metadata and arranges for every
 * "x-echo-trailer" value to come back as trailing metadata. Returns 0, or -1
 * if that failed (the call is then left to end on its own). */
static int echo_metadata(gh_server_call *call) {
    const gh_metadata *req = gh_server_call_request_metadata(call);
    gh_metadata *initial = NULL, *trailing = NULL;
    int rc = gh_metadata_new(&initial);
    if (rc == GH_OK) rc = gh_metadata_new(&trailing);
    size_t n = gh_metadata_count(req);
    for (size_t i = 0; rc == GH_OK && i < n; i++) {
        const char *key = NULL;
        const uint8_t *value = NULL;
        size_t len = 0;
        rc = gh_metadata_get(req, i, &key, &value, &len);
        if (rc != GH_OK) break;
        /* Text values are NUL-terminated. */
        if (strcmp(key, "x-echo") == 0) {
            rc = gh_metadata_add(initial, key, (const char *)value);
        } else if (strcmp(key, "x-echo-trailer") == 0) {
            rc = gh_metadata_add(trailing, key, (const char *)value);
        }
    }
    if (rc == GH_OK && gh_metadata_count(initial) > 0) {
        rc = gh_server_call_send_initial_metadata(call, initial);
    }
    if (rc == GH_OK && gh_metadata_count(trailing) > 0) {
        rc = gh_server_call_set_trailing_metadata(call, trailing);
    }
    gh_metadata_free(initial);
    gh_metadata_free(trailing);
    return rc == GH_OK ? 0 : -1;
}

static void handle_unary(gh_server_call *call, void *user_data) {
    (void)user_data;
    if (echo_metadata(call) != 0) return;
    const uint8_t *data = NULL;
    size_t len = 0;
    if (gh_server_call_read(call, &data, &len) != 1) {
        gh_server_call_finish(call, GH_STATUS_INVALID_ARGUMENT,
                              "expected one request", NULL, 0);
        return;
    }
    if (gh_server_call_send(call, data, len, 0) != GH_OK) return;
    gh_server_call_finish(call, GH_STATUS_OK, NULL, NULL, 0);
}

static void handle_server_stream(gh_server_call *call, void *user_data) {
    (void)user_data;
    if (echo_metadata(call) != 0) return;
    const uint8_t *data = NULL;
    size_t len = 0;
    if (gh_server_call_read(call, &data, &len) != 1) {
        gh_server_call_finish(call, GH_STATUS_INVALID_ARGUMENT,
                              "expected one request", NULL, 0);
        return;
    }
    /* Parse "COUNT:TEXT". */
    char request[512];
    if (len >= sizeof request) {
        gh_server_call_finish(call, GH_STATUS_INVALID_ARGUMENT,
                              "request too long", NULL, 0);
        return;
    }
    memcpy(request, data, len);
    request[len] = '\0';
    char *colon = strchr(request, ':');
    char *end = NULL;
    long count = colon ? strtol(request, &end, 10) : -1;
    if (colon == NULL || end != colon || colon == request || count < 0 ||
        count > 1000) {
        gh_server_call_finish(call, GH_STATUS_INVALID_ARGUMENT,
                              "request must be COUNT:TEXT with COUNT 0..1000",
                              NULL, 0);
        return;
    }
    for (long i = 0; i < count; i++) {
        char reply[600];
        int n = snprintf(reply, sizeof reply, "%s %ld", colon + 1, i);
        if (gh_server_call_send(call, (const uint8_t *)reply, (size_t)n, 0) != GH_OK) {
            return; /* cancelled or the deadline passed */
        }
    }
    gh_server_call_finish(call, GH_STATUS_OK, NULL, NULL, 0);
}

static void handle_client_stream(gh_server_call *call, void *user_data) {
    (void)user_data;
    if (echo_metadata(call) != 0) return;
    size_t cap = 1024, used = 0, count = 0;
    char *joined = malloc(cap);
    if (joined == NULL) {
        gh_server_call_finish(call, GH_STATUS_RESOURCE_EXHAUSTED, "out of memory",
                              NULL, 0);
        return;
    }
    const uint8_t *data = NULL;
    size_t len = 0;
    int rc;
    while ((rc = gh_server_call_read(call, &data, &len)) == 1) {
        if (used + len + 1 > cap) {
            while (used + len + 1 > cap) cap *= 2;
            char *bigger = realloc(joined, cap);
            if (bigger == NULL) {
                free(joined);
                gh_server_call_finish(call, GH_STATUS_RESOURCE_EXHAUSTED,
                                      "out of memory", NULL, 0);
                return;
            }
            joined = bigger;
        }
        if (count++ > 0) joined[used++] = ',';
        if (len > 0) memcpy(joined + used, data, len);
        used += len;
    }
    if (rc == 0 &&
        gh_server_call_send(call, (const uint8_t *)joined, used, 0) == GH_OK) {
        gh_server_call_finish(call, GH_STATUS_OK, NULL, NULL, 0);
    }
    free(joined);
}

static void handle_bidi(gh_server_call *call, void *user_data) {
    (void)user_data;
    if (echo_metadata(call) != 0) return;
    const uint8_t *data = NULL;
    size_t len = 0;
    int rc;
    while ((rc = gh_server_call_read(call, &data, &len)) == 1) {
        if (gh_server_call_send(call, data, len, 0) != GH_OK) return;
    }
    if (rc == 0) gh_server_call_finish(call, GH_STATUS_OK, NULL, NULL, 0);
}

static int fail(const char *what, int rc) {
    fprintf(stderr, "echo_server: %s: %s (%s)\n", what, gh_strerror(rc),
            gh_last_error());
    return 1;
}

int main(int argc, char **argv) {
    long port = 0;
    const char *host = "0.0.0.0";
    if (argc > 1) {
        char *end = NULL;
        port = strtol(argv[1], &end, 10);
        if (end == argv[1] || *end != '\0' || port < 0 || port > 65535) {
            fprintf(stderr, "usage: %s [PORT [HOST]]\n", argv[0]);
            return 2;
        }
    }
    if (argc > 2) host = argv[2];

    /* Block SIGINT/SIGTERM before any thread exists, so that every thread
     * (including the library's) inherits the mask and the signals are only
     * taken by sigwait() below — no gh_ call from signal context. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    int err = pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    if (err != 0) {
        fprintf(stderr, "echo_server: pthread_sigmask: %s\n", strerror(err));
        return 1;
    }

    gh_server *server = NULL;
    int rc = gh_server_new(&server);
    if (rc != GH_OK) return fail("gh_server_new", rc);

    char address[300];
    if (strchr(host, ':') != NULL && host[0] != '[') {
        snprintf(address, sizeof address, "[%s]:%ld", host, port); /* IPv6 */
    } else {
        snprintf(address, sizeof address, "%s:%ld", host, port);
    }
    static const struct {
        const char *method;
        gh_cardinality cardinality;
        gh_handler_fn fn;
    } methods[] = {
        {SERVICE "Unary", GH_UNARY, handle_unary},
        {SERVICE "ServerStream", GH_SERVER_STREAMING, handle_server_stream},
        {SERVICE "ClientStream", GH_CLIENT_STREAMING, handle_client_stream},
        {SERVICE "Bidi", GH_BIDI_STREAMING, handle_bidi},
    };
    if ((rc = gh_server_add_listener(server, address)) != GH_OK) {
        int code = fail("gh_server_add_listener", rc);
        gh_server_free(server);
        return code;
    }
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        rc = gh_server_register(server, methods[i].method, methods[i].cardinality,
                                methods[i].fn, NULL, NULL);
        if (rc != GH_OK) {
            int code = fail("gh_server_register", rc);
            gh_server_free(server);
            return code;
        }
    }
    if ((rc = gh_server_enable_health(server)) != GH_OK) {
        int code = fail("gh_server_enable_health", rc);
        gh_server_free(server);
        return code;
    }
    if ((rc = gh_server_start(server)) != GH_OK) {
        int code = fail("gh_server_start", rc);
        gh_server_free(server);
        return code;
    }
    int bound = 0;
    if ((rc = gh_server_port(server, 0, &bound)) != GH_OK) {
        int code = fail("gh_server_port", rc);
        gh_server_free(server);
        return code;
    }
    printf("listening on port %d\n", bound);
    fflush(stdout);

    int sig = 0;
    do {
        err = sigwait(&stop_signals, &sig);
    } while (err == EINTR);
    if (err != 0) {
        fprintf(stderr, "echo_server: sigwait: %s\n", strerror(err));
    } else {
        printf("received signal %d, shutting down\n", sig);
        fflush(stdout);
    }

    rc = gh_server_shutdown(server, 5.0);
    gh_server_free(server);
    if (rc != GH_OK) {
        fprintf(stderr, "echo_server: gh_server_shutdown: %s\n", gh_strerror(rc));
        return 1;
    }
    return err == 0 ? 0 : 1;
}
