/*
 * c_proxied_backend.c — OUR C RpcProxiedManager (gh_rpc_service_set_proxied) for
 * test_proxy_interop.py: a managed server (gh_rpc_server) serving the sample
 * service of protos/sample.proto ("sample", /SampleService/<method>,
 * "interop-sample:1.2.3", API 2..3), whose manager registers it as the backend
 * of the proxied service "sample" (version "x:1.0") with the main server at
 * rpc-main-host:rpc-main-port while the server loads, and forgets it at
 * shutdown. Compiled by the test with `cc` against the library the Python
 * binding loads.
 *
 * The sample's methods, as _original_server.py's SampleManager:
 * - echo: SampleStatus{text: the request's text upper-cased}: each character
 *   by towupper in the C.UTF-8 locale (as Python's str.upper for the texts of
 *   the tests; the program exits 1 when the locale is missing);
 * - count: `count` messages SampleStatus{index: i, text: text + i}, failing
 *   with `code` / `message` when i reaches `fail_after` (if set);
 * - fail: the error `code` / `message`;
 * - crash, missing, check: declared, not implemented (UNIMPLEMENTED).
 *
 * Usage: c_proxied_backend -w WORKSPACE -c NAME=VALUE ... (grpc-helper's RPC
 * options, gh_cli_parse; port 0 unless -p). Prints
 *   LOADED <own port> <proxy_port>   from the load hook: the sample item's
 *                                    proxy_port in the main server's srv.info,
 *                                    asked with the proxy client
 *   READY <port>                     serving (gh_rpc_server_new returned)
 *   STOPPED                          shut down ("shutdown" or EOF on stdin,
 *                                    SIGTERM / SIGINT), then exits 0.
 */
#define _POSIX_C_SOURCE 200809L
#include <locale.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <wctype.h>

#include <grpchelper.h>

/* --- protobuf, by hand ---------------------------------------------------- */

typedef struct {
    uint8_t *data;
    size_t len, cap;
} buf;

static void put(buf *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->len + n) cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (d == NULL) abort();
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_varint(buf *b, uint64_t v) {
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) { tmp[n++] = (uint8_t)(v | 0x80); v >>= 7; }
    tmp[n++] = (uint8_t)v;
    put(b, tmp, n);
}

static void put_bytes(buf *b, int field, const void *p, size_t n) {
    put_varint(b, (uint64_t)field << 3 | 2);
    put_varint(b, n);
    put(b, p, n);
}

static int get_varint(const uint8_t *d, size_t len, size_t *pos, uint64_t *v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64 && *pos < len; shift += 7) {
        uint8_t c = d[(*pos)++];
        r |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) { *v = r; return 1; }
    }
    return 0;
}

/* One field: number, wire type, varint value or bytes. 0 at the end or on an
 * undecodable message. */
typedef struct {
    int field, wire;
    uint64_t varint;
    const uint8_t *bytes;
    size_t len;
} pb_field;

static int next_field(const uint8_t *d, size_t len, size_t *pos, pb_field *f) {
    uint64_t key, v;
    if (*pos >= len || !get_varint(d, len, pos, &key)) return 0;
    f->field = (int)(key >> 3);
    f->wire = (int)(key & 7);
    switch (f->wire) {
    case 0:
        return get_varint(d, len, pos, &f->varint);
    case 2:
        if (!get_varint(d, len, pos, &v) || v > len - *pos) return 0;
        f->bytes = d + *pos;
        f->len = (size_t)v;
        *pos += (size_t)v;
        return 1;
    case 1: if (len - *pos < 8) return 0; *pos += 8; return 1;
    case 5: if (len - *pos < 4) return 0; *pos += 4; return 1;
    default: return 0;
    }
}

/* SampleRequest { 1: text; 2: count; 3: code; 4: message; 5: fail_after } */
typedef struct {
    char *text, *message;
    uint64_t count, code, fail_after;
} sample_request;

static char *dup_n(const uint8_t *p, size_t n) {
    char *s = malloc(n + 1);
    if (s == NULL) abort();
    if (n) memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static int read_request(gh_server_call *call, sample_request *r) {
    const uint8_t *d = NULL;
    size_t len = 0, pos = 0;
    pb_field f;
    memset(r, 0, sizeof *r);
    if (gh_server_call_read(call, &d, &len) != 1) return 0;
    while (next_field(d, len, &pos, &f)) {
        if (f.field == 1 && f.wire == 2) { free(r->text); r->text = dup_n(f.bytes, f.len); }
        if (f.field == 4 && f.wire == 2) { free(r->message); r->message = dup_n(f.bytes, f.len); }
        if (f.field == 2 && f.wire == 0) r->count = f.varint;
        if (f.field == 3 && f.wire == 0) r->code = f.varint;
        if (f.field == 5 && f.wire == 0) r->fail_after = f.varint;
    }
    if (r->text == NULL) r->text = dup_n(NULL, 0);
    if (r->message == NULL) r->message = dup_n(NULL, 0);
    return pos == len;
}

static void request_free(sample_request *r) {
    free(r->text);
    free(r->message);
}

/* SampleStatus { 2: text; 3: index } (defaults omitted, as protobuf does). */
static int send_status(gh_server_call *call, const char *text, uint64_t index) {
    buf b = {0};
    if (text[0] != '\0') put_bytes(&b, 2, text, strlen(text));
    if (index != 0) { put_varint(&b, 3 << 3 | 0); put_varint(&b, index); }
    int rc = gh_server_call_send(call, b.len ? b.data : (const uint8_t *)"", b.len, 0);
    free(b.data);
    return rc;
}

/* --- the sample service ----------------------------------------------------- */

static int bad_request(void) {
    gh_rpc_error("undecodable request", NULL);
    return GH_RC_ERROR_PARAM_INVALID;
}

static int sample_echo(gh_server_call *call, void *user_data) {
    (void)user_data;
    sample_request r;
    if (!read_request(call, &r)) { request_free(&r); return bad_request(); }
    /* UTF-8 -> wide characters -> towupper -> UTF-8 (LC_CTYPE is C.UTF-8) */
    size_t n = strlen(r.text);
    wchar_t *wide = calloc(n + 1, sizeof *wide);
    char *upper = calloc(n * MB_CUR_MAX + 1, 1);
    if (wide == NULL || upper == NULL) abort();
    int rc = GH_RC_ERROR;
    if (mbstowcs(wide, r.text, n + 1) == (size_t)-1) {
        gh_rpc_error("the text is not UTF-8", NULL);
        rc = GH_RC_ERROR_PARAM_INVALID;
    } else {
        for (wchar_t *w = wide; *w; w++) *w = (wchar_t)towupper((wint_t)*w);
        if (wcstombs(upper, wide, n * MB_CUR_MAX + 1) != (size_t)-1 && send_status(call, upper, 0) == GH_OK)
            rc = GH_RC_OK;
    }
    free(wide);
    free(upper);
    request_free(&r);
    return rc;
}

static int sample_fail(gh_server_call *call, void *user_data) {
    (void)user_data;
    sample_request r;
    if (!read_request(call, &r)) { request_free(&r); return bad_request(); }
    gh_rpc_error(r.message, NULL);
    int code = (int)r.code;
    request_free(&r);
    return code;
}

static int sample_count(gh_server_call *call, void *user_data) {
    (void)user_data;
    sample_request r;
    if (!read_request(call, &r)) { request_free(&r); return bad_request(); }
    int rc = GH_RC_OK;
    for (uint64_t i = 0; i < r.count; i++) {
        if (r.fail_after && i == r.fail_after) {
            gh_rpc_error(r.message, NULL);
            rc = (int)r.code;
            break;
        }
        size_t n = strlen(r.text) + 24;
        char *text = malloc(n);
        if (text == NULL) abort();
        snprintf(text, n, "%s%llu", r.text, (unsigned long long)i);
        int sent = send_status(call, text, i);
        free(text);
        if (sent != GH_OK) break;       /* the call ended (cancelled by the client) */
    }
    request_free(&r);
    return rc;
}

/* The load hook: once registered, the main server's srv.info (through the proxy
 * client) shows this server's port as the sample's proxy_port. */
static int sample_load(gh_rpc_server *server, gh_rpc_client *client, void *user_data) {
    (void)client;
    (void)user_data;
    gh_rpc_client *main_client = gh_rpc_server_proxy_client(server, "sample");
    if (main_client == NULL) {
        gh_rpc_error("no proxy client in the load hook", NULL);
        return GH_RC_ERROR_STATE_UNEXPECTED;
    }
    buf filter = {0};
    put_bytes(&filter, 1, "sample", 6);                   /* Filter { 1: names } */
    uint8_t *resp = NULL;
    size_t len = 0;
    int rc = gh_rpc_client_call(main_client, "srv", "info", filter.data, filter.len, 10, &resp, &len);
    free(filter.data);
    if (rc != GH_OK) {
        gh_rpc_error(gh_last_error(), NULL);
        return GH_RC_ERROR_RPC;
    }
    /* MultiServiceInfo { 2: ServiceInfo { 7: proxy_port } } */
    uint64_t proxy_port = 0;
    size_t pos = 0;
    pb_field f;
    while (next_field(resp, len, &pos, &f)) {
        if (f.field != 2 || f.wire != 2) continue;
        size_t ipos = 0;
        pb_field g;
        while (next_field(f.bytes, f.len, &ipos, &g))
            if (g.field == 7 && g.wire == 0) proxy_port = g.varint;
    }
    gh_free(resp);
    printf("LOADED %d %llu\n", gh_rpc_server_port(server), (unsigned long long)proxy_port);
    fflush(stdout);
    return GH_RC_OK;
}

/* --- main --------------------------------------------------------------------- */

static void *watch_stdin(void *p) {
    char line[256];
    while (fgets(line, sizeof line, stdin) != NULL && strncmp(line, "shutdown", 8) != 0) {}
    gh_rpc_server_begin_shutdown((gh_rpc_server *)p);
    return NULL;
}

static int fail(const char *what) {
    fprintf(stderr, "c_proxied_backend: %s: %s\n", what, gh_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (setlocale(LC_CTYPE, "C.UTF-8") == NULL) {
        fprintf(stderr, "c_proxied_backend: no C.UTF-8 locale (echo upper-cases with it)\n");
        return 1;
    }
    gh_cli *cli = NULL;
    if (gh_cli_parse(argc, (const char *const *)argv, "C proxied backend", NULL, 0, NULL, NULL,
                     NULL, &cli) != GH_OK)
        return fail("gh_cli_parse");
    if (gh_cli_exit_code(cli) != -1) {
        fprintf(stderr, "%s\n", gh_cli_message(cli));
        return gh_cli_exit_code(cli);
    }
    gh_folders *folders = NULL;
    const char *const *cli_config = NULL;
    size_t cli_count = 0;
    if (gh_cli_folders(cli, &folders) != GH_OK || gh_cli_config(cli, &cli_config, &cli_count) != GH_OK)
        return fail("gh_cli");

    gh_rpc_service *s = NULL;
    const char *const names[] = {"sample"};
    if (gh_rpc_service_new("sample", "SampleService", "interop-sample:1.2.3", 2, 3, &s) != GH_OK ||
        gh_rpc_service_add_method(s, "echo", GH_UNARY, sample_echo, NULL, NULL) != GH_OK ||
        gh_rpc_service_add_method(s, "fail", GH_UNARY, sample_fail, NULL, NULL) != GH_OK ||
        gh_rpc_service_add_method(s, "crash", GH_UNARY, NULL, NULL, NULL) != GH_OK ||
        gh_rpc_service_add_method(s, "count", GH_SERVER_STREAMING, sample_count, NULL, NULL) != GH_OK ||
        gh_rpc_service_add_method(s, "missing", GH_UNARY, NULL, NULL, NULL) != GH_OK ||
        gh_rpc_service_add_method(s, "check", GH_UNARY, NULL, NULL, NULL) != GH_OK ||
        gh_rpc_service_set_manager(s, "SampleManager", sample_load, NULL, NULL, NULL) != GH_OK ||
        gh_rpc_service_set_proxied(s, names, 1, "x:1.0", 0) != GH_OK)
        return fail("gh_rpc_service");

    gh_rpc_server *server = NULL;
    if (gh_rpc_server_new(gh_cli_port(cli), &s, 1, folders, cli_config, cli_count, NULL, 0, NULL, 0,
                          0, &server) != GH_OK)
        return fail("gh_rpc_server_new");
    gh_rpc_service_free(s);
    if (gh_rpc_server_handle_exit_signals(server) != GH_OK) return fail("exit signals");
    printf("READY %d\n", gh_rpc_server_port(server));
    fflush(stdout);

    pthread_t watcher;
    if (pthread_create(&watcher, NULL, watch_stdin, server) != 0) return fail("pthread_create");
    pthread_detach(watcher);
    gh_rpc_server_wait_shutdown(server, -1);
    gh_rpc_server_free(server);
    gh_folders_free(folders);
    gh_cli_free(cli);
    printf("STOPPED\n");
    fflush(stdout);
    return 0;
}
