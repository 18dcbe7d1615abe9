/*
 * test_metadata.c — metadata lists and metadata on calls:
 * - the gh_metadata_* API (order, repeated keys, find, text NUL-termination,
 *   binary values);
 * - request metadata seen by the handler (text, -bin, several values per key,
 *   in order);
 * - initial and trailing response metadata, both text and -bin, several
 *   values per key; initial metadata sent before any message;
 * - trailing metadata on an error (trailers-only) response;
 * - lists are copied by gh_call_set_metadata / gh_server_call_* (freed right
 *   after the call).
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

#define M_ECHO_MD "/grpchelper.test.Metadata/EchoUnary"
#define M_EARLY_MD "/grpchelper.test.Metadata/EarlyBidi"
#define M_FAIL_MD "/grpchelper.test.Metadata/FailWithTrailers"

static uint8_t g_all_bytes[256];
static const uint8_t k_bin2[] = {0x00, 0x00, 0xfe, 0x0a, 0x0d};

/* Checks that |md| holds, for |key|, exactly the text values |vals| in order. */
static void expect_text_values(const gh_metadata *md, const char *key,
                               const char *const *vals, size_t n) {
    const uint8_t *got[16];
    size_t lens[16];
    size_t found = tu_md_values(md, key, got, lens, 16);
    CHECK_MSG(found == n, "key %s: %zu values, expected %zu", key, found, n);
    for (size_t i = 0; i < n; i++) {
        CHECK_BYTES_STR(got[i], lens[i], vals[i]);
        CHECK(got[i][lens[i]] == '\0'); /* text values are NUL-terminated */
    }
}

/* Checks the entries the client puts on every request (see request_md()),
 * as seen again in |md| (by the handler, or echoed back to the client). */
static void expect_request_entries(const gh_metadata *md) {
    static const char *const one[] = {"hello"};
    static const char *const multi[] = {"first", "second", "third"};
    static const char *const spaced[] = {"inner  spaces, and: punctuation!"};
    expect_text_values(md, "x-text", one, 1);
    expect_text_values(md, "x-multi", multi, 3);
    expect_text_values(md, "x-spaced", spaced, 1);

    const uint8_t *vals[4];
    size_t lens[4];
    CHECK_EQ(tu_md_values(md, "x-data-bin", vals, lens, 4), 2);
    CHECK_MEM(vals[0], lens[0], g_all_bytes, sizeof g_all_bytes);
    CHECK_MEM(vals[1], lens[1], k_bin2, sizeof k_bin2);
    CHECK_EQ(tu_md_values(md, "x-empty-bin", vals, lens, 4), 1);
    CHECK_EQ(lens[0], 0);
}

static gh_metadata *request_md(void) {
    gh_metadata *md = tu_md("x-text", "hello", "x-multi", "first", "x-spaced",
                            "inner  spaces, and: punctuation!", "x-multi", "second",
                            NULL);
    CHECK_OK(gh_metadata_add_bin(md, "x-data-bin", g_all_bytes, sizeof g_all_bytes));
    CHECK_OK(gh_metadata_add(md, "x-multi", "third"));
    CHECK_OK(gh_metadata_add_bin(md, "x-data-bin", k_bin2, sizeof k_bin2));
    CHECK_OK(gh_metadata_add_bin(md, "x-empty-bin", NULL, 0));
    return md;
}

/* Unary: checks the request metadata, then echoes every "x-" entry back as
 * initial metadata (unchanged) and as trailing metadata (same entries plus
 * "x-trailer: yes" and a -bin entry). */
static void h_echo_md(gh_server_call *call, void *ud) {
    (void)ud;
    const gh_metadata *req = gh_server_call_request_metadata(call);
    CHECK(req != NULL);
    expect_request_entries(req);
    CHECK_STR(gh_server_call_method(call), M_ECHO_MD);

    gh_metadata *initial = NULL;
    CHECK_OK(gh_metadata_new(&initial));
    tu_md_copy_prefixed(initial, req, "x-");
    CHECK_OK(gh_server_call_send_initial_metadata(call, initial));
    gh_metadata_free(initial); /* copied by the call */
    /* Headers are out: a second time is a state error. */
    CHECK_RC(gh_server_call_send_initial_metadata(call, NULL), GH_ERR_INVALID_STATE);

    gh_metadata *trailing = NULL;
    CHECK_OK(gh_metadata_new(&trailing));
    tu_md_copy_prefixed(trailing, req, "x-");
    CHECK_OK(gh_metadata_add(trailing, "x-trailer", "yes"));
    static const uint8_t tb[] = {0xde, 0xad, 0x00, 0xbe, 0xef};
    CHECK_OK(gh_metadata_add_bin(trailing, "x-trailer-bin", tb, sizeof tb));
    CHECK_OK(gh_server_call_set_trailing_metadata(call, trailing));
    gh_metadata_free(trailing); /* copied by the call */

    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_server_call_read(call, &data, &len), 1);
    CHECK_OK(gh_server_call_send(call, data, len, 0));
    CHECK_OK(gh_server_call_finish(call, GH_STATUS_OK, NULL, NULL, 0));
}

/* Bidi: sends initial metadata before reading anything, then echoes. */
static void h_early_md(gh_server_call *call, void *ud) {
    (void)ud;
    gh_metadata *md = tu_md("x-early", "yes", "x-early", "again", NULL);
    CHECK_OK(gh_server_call_send_initial_metadata(call, md));
    gh_metadata_free(md);
    tu_echo_bidi(call, NULL);
}

/* Unary: fails with trailing metadata and no message (trailers-only). */
static void h_fail_md(gh_server_call *call, void *ud) {
    (void)ud;
    gh_metadata *md = tu_md("x-reason", "quota", "x-reason", "again", NULL);
    static const uint8_t b[] = {1, 2, 3, 0};
    CHECK_OK(gh_metadata_add_bin(md, "x-reason-bin", b, sizeof b));
    CHECK_OK(gh_server_call_set_trailing_metadata(call, md));
    gh_metadata_free(md);
    CHECK_OK(gh_server_call_finish(call, GH_STATUS_RESOURCE_EXHAUSTED,
                                   "out of quota", NULL, 0));
}

static void test_metadata_api(void) {
    gh_metadata *md = NULL;
    CHECK_OK(gh_metadata_new(&md));
    CHECK(md != NULL);
    CHECK_EQ(gh_metadata_count(md), 0);

    CHECK_OK(gh_metadata_add(md, "k1", "v1"));
    CHECK_OK(gh_metadata_add(md, "k2", "printable ASCII ~!@#$%^&*()"));
    CHECK_OK(gh_metadata_add(md, "k1", "v1-second"));
    static const uint8_t bin[] = {0, 255, 0, 7};
    CHECK_OK(gh_metadata_add_bin(md, "k3-bin", bin, sizeof bin));
    CHECK_OK(gh_metadata_add(md, "k4", ""));
    CHECK_EQ(gh_metadata_count(md), 5);

    /* Entries keep their order. */
    static const char *const keys[] = {"k1", "k2", "k1", "k3-bin", "k4"};
    for (size_t i = 0; i < 5; i++) {
        const char *k = NULL;
        const uint8_t *v = NULL;
        size_t len = 0;
        CHECK_OK(gh_metadata_get(md, i, &k, &v, &len));
        CHECK_STR(k, keys[i]);
        if (i == 3) {
            CHECK_MEM(v, len, bin, sizeof bin);
        } else {
            CHECK(v != NULL);
            CHECK_EQ(v[len], '\0');
        }
    }
    const char *k = NULL;
    const uint8_t *v = NULL;
    size_t len = 0;
    CHECK_OK(gh_metadata_get(md, 2, &k, &v, &len));
    CHECK_BYTES_STR(v, len, "v1-second");
    CHECK_OK(gh_metadata_get(md, 4, &k, &v, &len));
    CHECK_EQ(len, 0);

    /* find returns the first entry of a key. */
    CHECK_OK(gh_metadata_find(md, "k1", &v, &len));
    CHECK_BYTES_STR(v, len, "v1");
    CHECK_OK(gh_metadata_find(md, "k3-bin", &v, &len));
    CHECK_MEM(v, len, bin, sizeof bin);
    CHECK_RC(gh_metadata_find(md, "k9", &v, &len), GH_ERR_INVALID_ARGUMENT);

    /* The list copies keys and values. */
    char key[8] = "k5", value[8] = "v5";
    CHECK_OK(gh_metadata_add(md, key, value));
    strcpy(key, "zz");
    strcpy(value, "zz");
    CHECK_OK(gh_metadata_find(md, "k5", &v, &len));
    CHECK_BYTES_STR(v, len, "v5");
    gh_metadata_free(md);
}

static void test_unary_metadata(gh_channel *ch) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, M_ECHO_MD, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    gh_metadata *md = request_md();
    CHECK_OK(gh_call_set_metadata(call, md));
    gh_metadata_free(md); /* copied by the call */

    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    CHECK_OK(gh_call_unary(call, (const uint8_t *)"md", 2, &resp, &resp_len));
    CHECK_BYTES_STR(resp, resp_len, "md");

    const gh_metadata *initial = gh_call_initial_metadata(call);
    CHECK(initial != NULL);
    expect_request_entries(initial);
    const uint8_t *vals[4];
    size_t lens[4];
    CHECK_EQ(tu_md_values(initial, "x-trailer", vals, lens, 4), 0);

    const gh_metadata *trailing = gh_call_trailing_metadata(call);
    CHECK(trailing != NULL);
    expect_request_entries(trailing);
    static const char *const yes[] = {"yes"};
    expect_text_values(trailing, "x-trailer", yes, 1);
    static const uint8_t tb[] = {0xde, 0xad, 0x00, 0xbe, 0xef};
    CHECK_EQ(tu_md_values(trailing, "x-trailer-bin", vals, lens, 4), 1);
    CHECK_MEM(vals[0], lens[0], tb, sizeof tb);
    gh_call_free(call);
}

static void test_early_initial_metadata(gh_channel *ch) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, M_EARLY_MD, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    CHECK_OK(gh_call_start(call));
    /* Arrives although the client has not sent any message yet. */
    const gh_metadata *initial = gh_call_initial_metadata(call);
    CHECK(initial != NULL);
    static const char *const early[] = {"yes", "again"};
    expect_text_values(initial, "x-early", early, 2);
    CHECK(gh_call_trailing_metadata(call) == NULL); /* still running */
    CHECK(gh_call_status_message(call) == NULL);
    CHECK_EQ(gh_call_status(call), -1);

    CHECK_OK(gh_call_send(call, (const uint8_t *)"after", 5, 0));
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RC(gh_call_recv(call, &data, &len), 1);
    CHECK_BYTES_STR(data, len, "after");
    CHECK_OK(gh_call_close_send(call));
    CHECK_RC(gh_call_recv(call, &data, &len), 0);
    CHECK_EQ(gh_call_wait(call), GH_STATUS_OK);
    CHECK(gh_call_trailing_metadata(call) != NULL);
    /* Same pointer contents after the end. */
    expect_text_values(gh_call_initial_metadata(call), "x-early", early, 2);
    gh_call_free(call);
}

static void test_error_trailers(gh_channel *ch) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, M_FAIL_MD, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    CHECK_RC(gh_call_unary(call, (const uint8_t *)"x", 1, &resp, &resp_len),
             GH_ERR_RPC);
    CHECK_EQ(gh_call_status(call), GH_STATUS_RESOURCE_EXHAUSTED);
    CHECK_STR(gh_call_status_message(call), "out of quota");

    const gh_metadata *trailing = gh_call_trailing_metadata(call);
    CHECK(trailing != NULL);
    static const char *const reasons[] = {"quota", "again"};
    expect_text_values(trailing, "x-reason", reasons, 2);
    const uint8_t *vals[2];
    size_t lens[2];
    static const uint8_t b[] = {1, 2, 3, 0};
    CHECK_EQ(tu_md_values(trailing, "x-reason-bin", vals, lens, 2), 1);
    CHECK_MEM(vals[0], lens[0], b, sizeof b);

    /* No initial metadata of the handler's own. */
    const gh_metadata *initial = gh_call_initial_metadata(call);
    CHECK_EQ(tu_md_values(initial, "x-reason", vals, lens, 2), 0);
    gh_call_free(call);
}

int main(void) {
    for (int i = 0; i < 256; i++) g_all_bytes[i] = (uint8_t)i;

    test_metadata_api();

    const tu_method methods[] = {
        {M_ECHO_MD, GH_UNARY, h_echo_md, NULL},
        {M_EARLY_MD, GH_BIDI_STREAMING, h_early_md, NULL},
        {M_FAIL_MD, GH_UNARY, h_fail_md, NULL},
    };
    int port = 0;
    gh_server *server =
        tu_server_start_new(methods, sizeof methods / sizeof methods[0], &port);
    gh_channel *ch = tu_channel_new(port);

    test_unary_metadata(ch);
    test_early_initial_metadata(ch);
    test_error_trailers(ch);
    /* Twice, on the same connection (HPACK dynamic table reuse). */
    test_unary_metadata(ch);

    gh_channel_free(ch);
    tu_server_stop(server);
    printf("test_metadata: OK\n");
    return 0;
}
