/*
 * test_compression.c — message compression, with a 100 KiB compressible
 * message and a 100 KiB incompressible one:
 * - GH_OPT_DEFAULT_COMPRESSION on the channel (gzip, deflate);
 * - per call gh_call_set_compression (overriding the channel default, and
 *   NONE), GH_WRITE_NO_COMPRESS on single messages;
 * - GH_OPT_DEFAULT_COMPRESSION on the server and gh_server_call_set_compression
 *   in a handler;
 * - streams of compressed messages in both directions;
 * - invalid compression values refused.
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

#define MSG_SIZE (100 * 1024)
#define M_GZIP_REPLY "/grpchelper.test.Compression/GzipReply"
#define M_MIXED_STREAM "/grpchelper.test.Compression/MixedStream"

static uint8_t *g_text;   /* compressible */
static uint8_t *g_noise;  /* incompressible */

static void make_payloads(void) {
    static const char phrase[] = "grpchelper compresses this line again and again. ";
    g_text = malloc(MSG_SIZE);
    g_noise = malloc(MSG_SIZE);
    CHECK(g_text != NULL && g_noise != NULL);
    size_t plen = sizeof phrase - 1;
    for (size_t i = 0; i < MSG_SIZE; i++) {
        g_text[i] = (uint8_t)phrase[i % plen];
    }
    /* Line numbers every 1000 bytes so that a shifted copy would not match. */
    for (size_t i = 0; i + 16 < MSG_SIZE; i += 1000) {
        char tag[16];
        int n = snprintf(tag, sizeof tag, "[%zu]", i);
        memcpy(g_text + i, tag, (size_t)n);
    }
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < MSG_SIZE; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        g_noise[i] = (uint8_t)x;
    }
}

/* Unary: answers in gzip whatever the request used. */
static void h_gzip_reply(gh_server_call *call, void *ud) {
    (void)ud;
    CHECK_OK(gh_server_call_set_compression(call, GH_COMPRESSION_GZIP));
    tu_echo_unary(call, NULL);
}

/* Bidi: echoes, alternating compressed and GH_WRITE_NO_COMPRESS messages. */
static void h_mixed_stream(gh_server_call *call, void *ud) {
    (void)ud;
    CHECK_OK(gh_server_call_set_compression(call, GH_COMPRESSION_DEFLATE));
    const uint8_t *data = NULL;
    size_t len = 0;
    int rc, i = 0;
    while ((rc = gh_server_call_read(call, &data, &len)) == 1) {
        int flags = (i++ % 2) ? GH_WRITE_NO_COMPRESS : 0;
        if (gh_server_call_send(call, data, len, flags) != GH_OK) return;
    }
    if (rc == 0) gh_server_call_finish(call, GH_STATUS_OK, NULL, NULL, 0);
}

/* One unary round trip of |msg| on |ch| with call compression |comp|
 * (GH_COMPRESSION_DEFAULT: leave the call alone). */
static void roundtrip(gh_channel *ch, const char *method, int comp,
                      const uint8_t *msg, size_t len) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, method, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    if (comp != GH_COMPRESSION_DEFAULT) {
        CHECK_OK(gh_call_set_compression(call, comp));
    }
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    CHECK_OK(gh_call_unary(call, msg, len, &resp, &resp_len));
    CHECK_MEM(resp, resp_len, msg, len);
    gh_call_free(call);
}

static void roundtrip_both(gh_channel *ch, const char *method, int comp) {
    roundtrip(ch, method, comp, g_text, MSG_SIZE);
    roundtrip(ch, method, comp, g_noise, MSG_SIZE);
    roundtrip(ch, method, comp, (const uint8_t *)"", 0);
    roundtrip(ch, method, comp, (const uint8_t *)"tiny", 4);
}

static gh_channel *channel_with_default(int port, int comp) {
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    gh_channel *ch = NULL;
    CHECK_OK(gh_channel_new(&ch, target));
    if (comp != GH_COMPRESSION_DEFAULT) {
        CHECK_OK(gh_channel_set_int(ch, GH_OPT_DEFAULT_COMPRESSION, comp));
    }
    return ch;
}

static void stream_both_ways(gh_channel *ch, int call_comp) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, M_MIXED_STREAM, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    if (call_comp != GH_COMPRESSION_DEFAULT) {
        CHECK_OK(gh_call_set_compression(call, call_comp));
    }
    CHECK_OK(gh_call_start(call));
    for (int i = 0; i < 6; i++) {
        const uint8_t *msg = (i % 3 == 2) ? g_noise : g_text;
        int flags = (i % 2) ? GH_WRITE_NO_COMPRESS : 0;
        CHECK_OK(gh_call_send(call, msg, MSG_SIZE, flags));
        const uint8_t *data = NULL;
        size_t len = 0;
        CHECK_RC(gh_call_recv(call, &data, &len), 1);
        CHECK_MEM(data, len, msg, MSG_SIZE);
    }
    CHECK_OK(gh_call_close_send(call));
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_call_recv(call, &data, &len), 0);
    CHECK_EQ(gh_call_wait(call), GH_STATUS_OK);
    gh_call_free(call);
}

int main(void) {
    make_payloads();
    const tu_method methods[] = {
        {M_GZIP_REPLY, GH_UNARY, h_gzip_reply, NULL},
        {M_MIXED_STREAM, GH_BIDI_STREAMING, h_mixed_stream, NULL},
    };
    size_t n_methods = sizeof methods / sizeof methods[0];

    /* Server with default settings. */
    int port = 0;
    gh_server *server = tu_echo_server(methods, n_methods, &port);

    /* Channel default gzip, and deflate. */
    gh_channel *gz = channel_with_default(port, GH_COMPRESSION_GZIP);
    roundtrip_both(gz, TU_UNARY, GH_COMPRESSION_DEFAULT);
    roundtrip_both(gz, TU_UNARY, GH_COMPRESSION_DEFLATE); /* per-call override */
    roundtrip_both(gz, TU_UNARY, GH_COMPRESSION_NONE);
    roundtrip_both(gz, M_GZIP_REPLY, GH_COMPRESSION_DEFAULT);
    stream_both_ways(gz, GH_COMPRESSION_DEFAULT);
    gh_channel_free(gz);

    gh_channel *df = channel_with_default(port, GH_COMPRESSION_DEFLATE);
    roundtrip_both(df, TU_UNARY, GH_COMPRESSION_DEFAULT);
    roundtrip_both(df, M_GZIP_REPLY, GH_COMPRESSION_DEFAULT);
    gh_channel_free(df);

    /* Channel without default compression: per call only. */
    gh_channel *plain = channel_with_default(port, GH_COMPRESSION_DEFAULT);
    roundtrip_both(plain, TU_UNARY, GH_COMPRESSION_GZIP);
    roundtrip_both(plain, TU_UNARY, GH_COMPRESSION_DEFLATE);
    roundtrip_both(plain, TU_UNARY, GH_COMPRESSION_DEFAULT);
    roundtrip_both(plain, M_GZIP_REPLY, GH_COMPRESSION_NONE);
    stream_both_ways(plain, GH_COMPRESSION_GZIP);
    stream_both_ways(plain, GH_COMPRESSION_NONE);

    /* Invalid values. */
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(plain, TU_UNARY, &call));
    CHECK_RC(gh_call_set_compression(call, 3), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_call_set_compression(call, -2), GH_ERR_INVALID_ARGUMENT);
    CHECK_OK(gh_call_set_compression(call, GH_COMPRESSION_DEFAULT));
    gh_call_free(call);
    gh_channel_free(plain);
    tu_server_stop(server);

    /* Server default compression gzip: responses compressed by default. */
    gh_server *zserver = tu_server_new(methods, n_methods);
    CHECK_OK(gh_server_set_int(zserver, GH_OPT_DEFAULT_COMPRESSION,
                               GH_COMPRESSION_GZIP));
    CHECK_OK(gh_server_register(zserver, TU_UNARY, GH_UNARY, tu_echo_unary, NULL,
                                NULL));
    CHECK_RC(gh_server_set_int(zserver, GH_OPT_DEFAULT_COMPRESSION, 99),
             GH_ERR_INVALID_ARGUMENT);
    port = tu_server_start(zserver);
    gh_channel *ch = channel_with_default(port, GH_COMPRESSION_DEFAULT);
    roundtrip_both(ch, TU_UNARY, GH_COMPRESSION_DEFAULT);
    roundtrip_both(ch, TU_UNARY, GH_COMPRESSION_DEFLATE);
    stream_both_ways(ch, GH_COMPRESSION_DEFAULT);
    gh_channel_free(ch);
    tu_server_stop(zserver);

    free(g_text);
    free(g_noise);
    printf("test_compression: OK\n");
    return 0;
}
