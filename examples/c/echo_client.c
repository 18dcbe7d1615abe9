/*
 * echo_client.c — calls every method of echo_server once and prints what it
 * sent and received.
 *
 *   echo_client [TARGET]          (default TARGET: localhost:50051;
 *                                  also "[::1]:50051" or "unix:/path")
 *
 * Exits with 0 if every call returned what the echo server promises
 * (see echo_server.c), 1 otherwise.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpchelper.h>

#define SERVICE "/grpchelper.examples.Echo/"
#define TIMEOUT_SECONDS 10.0

static int g_failures = 0;

static void failure(const char *pattern, const char *fmt, const char *detail) {
    fprintf(stderr, "%s: FAILED: ", pattern);
    fprintf(stderr, fmt, detail);
    fputc('\n', stderr);
    g_failures++;
}

/* Reports a failed gh_ call or a non-OK status; returns 1 if |rc| is bad. */
static int bad_rc(const char *pattern, const char *what, int rc, gh_call *call) {
    if (rc == GH_OK) return 0;
    if (rc == GH_ERR_RPC && call != NULL) {
        fprintf(stderr, "%s: FAILED: %s: status %d: %s\n", pattern, what,
                gh_call_status(call), gh_call_status_message(call));
    } else {
        fprintf(stderr, "%s: FAILED: %s: %s (%s)\n", pattern, what,
                gh_strerror(rc), gh_last_error());
    }
    g_failures++;
    return 1;
}

static int same(const uint8_t *data, size_t len, const char *expected) {
    return len == strlen(expected) && memcmp(data, expected, len) == 0;
}

static gh_call *new_call(gh_channel *ch, const char *pattern, const char *method) {
    gh_call *call = NULL;
    int rc = gh_call_new(ch, method, &call);
    if (bad_rc(pattern, "gh_call_new", rc, NULL)) return NULL;
    rc = gh_call_set_timeout(call, TIMEOUT_SECONDS);
    if (bad_rc(pattern, "gh_call_set_timeout", rc, NULL)) {
        gh_call_free(call);
        return NULL;
    }
    return call;
}

/* Reads the end of the stream and the final status; 0 if OK. */
static int finish(const char *pattern, gh_call *call) {
    int status = gh_call_wait(call);
    if (status != GH_STATUS_OK) {
        fprintf(stderr, "%s: FAILED: status %d: %s\n", pattern, status,
                gh_call_status_message(call));
        g_failures++;
        return 1;
    }
    return 0;
}

/* Prints the metadata value of |key| in |md|, and checks it is |expected|. */
static void check_metadata(const char *pattern, const char *kind,
                           const gh_metadata *md, const char *key,
                           const char *expected) {
    const uint8_t *value = NULL;
    size_t len = 0;
    if (gh_metadata_find(md, key, &value, &len) != GH_OK) {
        failure(pattern, "no %s metadata", kind);
        return;
    }
    printf("%s: %s metadata %s: '%.*s'\n", pattern, kind, key, (int)len,
           (const char *)value);
    if (!same(value, len, expected)) failure(pattern, "expected '%s'", expected);
}

static void run_unary(gh_channel *ch) {
    const char *pattern = "unary";
    const char *request = "hello";
    gh_call *call = new_call(ch, pattern, SERVICE "Unary");
    if (call == NULL) return;

    gh_metadata *md = NULL;
    int rc = gh_metadata_new(&md);
    if (!bad_rc(pattern, "gh_metadata_new", rc, NULL)) {
        rc = gh_metadata_add(md, "x-echo", "echo-me");
        if (rc == GH_OK) rc = gh_metadata_add(md, "x-echo-trailer", "trail-me");
        if (rc == GH_OK) rc = gh_call_set_metadata(call, md);
        bad_rc(pattern, "request metadata", rc, NULL);
        gh_metadata_free(md);
    }

    const uint8_t *response = NULL;
    size_t response_len = 0;
    rc = gh_call_unary(call, (const uint8_t *)request, strlen(request), &response,
                       &response_len);
    if (!bad_rc(pattern, "gh_call_unary", rc, call)) {
        printf("%s: sent '%s' got '%.*s'\n", pattern, request, (int)response_len,
               (const char *)response);
        if (!same(response, response_len, request)) {
            failure(pattern, "expected '%s'", request);
        }
        check_metadata(pattern, "initial", gh_call_initial_metadata(call),
                       "x-echo", "echo-me");
        check_metadata(pattern, "trailing", gh_call_trailing_metadata(call),
                       "x-echo-trailer", "trail-me");
    }
    gh_call_free(call);
}

static void run_server_stream(gh_channel *ch) {
    const char *pattern = "server-stream";
    const char *request = "3:hello";
    static const char *const expected[] = {"hello 0", "hello 1", "hello 2"};
    gh_call *call = new_call(ch, pattern, SERVICE "ServerStream");
    if (call == NULL) return;

    int rc = gh_call_start(call);
    if (rc == GH_OK) rc = gh_call_send(call, (const uint8_t *)request, strlen(request), 0);
    if (rc == GH_OK) rc = gh_call_close_send(call);
    if (bad_rc(pattern, "sending the request", rc, call)) {
        gh_call_free(call);
        return;
    }
    printf("%s: sent '%s'\n", pattern, request);
    const uint8_t *data = NULL;
    size_t len = 0;
    size_t n = 0;
    while ((rc = gh_call_recv(call, &data, &len)) == 1) {
        printf("%s: got '%.*s'\n", pattern, (int)len, (const char *)data);
        if (n >= 3 || !same(data, len, expected[n])) {
            failure(pattern, "unexpected message%s", n >= 3 ? " (too many)" : "");
        }
        n++;
    }
    if (rc < 0) {
        fprintf(stderr, "%s: recv: %s\n", pattern, gh_strerror(rc));
    }
    if (finish(pattern, call) == 0 && n != 3) {
        failure(pattern, "expected 3 messages%s", "");
    }
    gh_call_free(call);
}

static void run_client_stream(gh_channel *ch) {
    const char *pattern = "client-stream";
    static const char *const requests[] = {"a", "b", "c"};
    const char *expected = "a,b,c";
    gh_call *call = new_call(ch, pattern, SERVICE "ClientStream");
    if (call == NULL) return;

    int rc = gh_call_start(call);
    for (size_t i = 0; rc == GH_OK && i < 3; i++) {
        rc = gh_call_send(call, (const uint8_t *)requests[i], strlen(requests[i]), 0);
        if (rc == GH_OK) printf("%s: sent '%s'\n", pattern, requests[i]);
    }
    if (rc == GH_OK) rc = gh_call_close_send(call);
    if (bad_rc(pattern, "sending", rc, call)) {
        gh_call_free(call);
        return;
    }
    const uint8_t *data = NULL;
    size_t len = 0;
    rc = gh_call_recv(call, &data, &len);
    if (rc == 1) {
        printf("%s: got '%.*s'\n", pattern, (int)len, (const char *)data);
        if (!same(data, len, expected)) failure(pattern, "expected '%s'", expected);
        (void)gh_call_recv(call, &data, &len); /* end of stream */
    } else {
        failure(pattern, "no response%s", "");
    }
    finish(pattern, call);
    gh_call_free(call);
}

static void run_bidi(gh_channel *ch) {
    const char *pattern = "bidi";
    gh_call *call = new_call(ch, pattern, SERVICE "Bidi");
    if (call == NULL) return;

    int rc = gh_call_start(call);
    if (bad_rc(pattern, "gh_call_start", rc, call)) {
        gh_call_free(call);
        return;
    }
    for (int i = 0; i < 3; i++) {
        char ping[32];
        snprintf(ping, sizeof ping, "ping %d", i);
        rc = gh_call_send(call, (const uint8_t *)ping, strlen(ping), 0);
        if (bad_rc(pattern, "gh_call_send", rc, call)) break;
        const uint8_t *data = NULL;
        size_t len = 0;
        rc = gh_call_recv(call, &data, &len);
        if (rc != 1) {
            failure(pattern, "no echo for '%s'", ping);
            break;
        }
        printf("%s: sent '%s' got '%.*s'\n", pattern, ping, (int)len,
               (const char *)data);
        if (!same(data, len, ping)) failure(pattern, "expected '%s'", ping);
    }
    rc = gh_call_close_send(call);
    if (!bad_rc(pattern, "gh_call_close_send", rc, call)) {
        const uint8_t *data = NULL;
        size_t len = 0;
        if (gh_call_recv(call, &data, &len) == 1) {
            failure(pattern, "unexpected extra message%s", "");
        }
    }
    finish(pattern, call);
    gh_call_free(call);
}

int main(int argc, char **argv) {
    const char *target = argc > 1 ? argv[1] : "localhost:50051";
    if (gh_version(GH_VERSION_NUM) == NULL) {
        fprintf(stderr, "echo_client: libgrpchelper older than the header (%s)\n",
                GH_VERSION_STR);
        return 1;
    }

    gh_channel *ch = NULL;
    int rc = gh_channel_new(&ch, target);
    if (rc != GH_OK) {
        fprintf(stderr, "echo_client: gh_channel_new(%s): %s (%s)\n", target,
                gh_strerror(rc), gh_last_error());
        return 1;
    }
    printf("target %s (libgrpchelper %s)\n", target, gh_version(0)->version_str);

    run_unary(ch);
    run_server_stream(ch);
    run_client_stream(ch);
    run_bidi(ch);

    gh_channel_free(ch);
    if (g_failures > 0) {
        fprintf(stderr, "echo_client: %d failure(s)\n", g_failures);
        return 1;
    }
    printf("all four patterns OK\n");
    return 0;
}
