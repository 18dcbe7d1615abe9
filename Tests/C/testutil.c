#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
/* nftw and its FTW_ flags are XSI. */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700
#endif

#include "testutil.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

/* ------------------------------------------------------------------------ */
/* Helper-layer tests                                                       */
/* ------------------------------------------------------------------------ */

const char *tu_check_result_(int rc, int code, const char *expr,
                             const char *code_text, const char *file, int line) {
    static _Thread_local char message[4096];
    /* Read both before any other gh_ call. */
    int result = gh_last_result_code();
    const char *text = gh_last_error();
    snprintf(message, sizeof message, "%s", text ? text : "");
    if (rc != GH_ERR_RESULT || result != code || message[0] == '\0') {
        fprintf(stderr,
                "%s:%d: %s returned %d (%s) with result code %d, expected "
                "GH_ERR_RESULT with %s = %d and a message; gh_last_error: %s\n",
                file, line, expr, rc, gh_strerror(rc), result, code_text, code,
                message);
        CHECK_FAIL_EXIT_();
    }
    return message;
}

void tu_check_contains_(const char *s, const char *part, const char *expr,
                        const char *file, int line) {
    if (s == NULL || strstr(s, part) == NULL) {
        fprintf(stderr, "%s:%d: CHECK_CONTAINS failed: %s (\"%s\") contains \"%s\"\n",
                file, line, expr, s ? s : "(null)", part);
        CHECK_FAIL_EXIT_();
    }
}

void tu_subdir(char *out, size_t size, const char *root, const char *name) {
    int n = snprintf(out, size, "%s/%s", root, name);
    CHECK(n > 0 && (size_t)n < size);
    CHECK_MSG(mkdir(out, 0755) == 0, "mkdir %s", out);
}

void tu_layout_new(tu_layout *l, const char *root, const char *name) {
    tu_subdir(l->base, sizeof l->base, root, name);
    TU_PATH(l->sys, "%s/sys", l->base);
    TU_PATH(l->user, "%s/user", l->base);
    TU_PATH(l->ws, "%s/ws", l->base);
    TU_PATH(l->sys_json, "%s/config.json", l->sys);
    TU_PATH(l->user_json, "%s/config.json", l->user);
    TU_PATH(l->ws_json, "%s/config.json", l->ws);
    CHECK(mkdir(l->sys, 0755) == 0);
    CHECK(mkdir(l->user, 0755) == 0);
    CHECK_OK(gh_folders_new(l->sys, l->user, l->ws, &l->folders));
}

void tu_layout_free(tu_layout *l) { gh_folders_free(l->folders); }

char *tu_tmpdir(void) {
    char *path = strdup("/tmp/gh-c-helper-XXXXXX");
    CHECK(path != NULL);
    CHECK_MSG(mkdtemp(path) != NULL, "mkdtemp: %s", strerror(errno));
    return path;
}

static int tu_rm_entry(const char *path, const struct stat *st, int type,
                       struct FTW *ftw) {
    (void)st;
    (void)ftw;
    int rc = (type == FTW_DP) ? rmdir(path) : unlink(path);
    CHECK_MSG(rc == 0 || errno == ENOENT, "removing %s: %s", path, strerror(errno));
    return 0;
}

void tu_rmtree(const char *path) {
    if (!tu_exists(path)) return;
    CHECK_MSG(nftw(path, tu_rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0,
              "nftw %s: %s", path, strerror(errno));
}

char *tu_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        CHECK_MSG(errno == ENOENT, "fopen %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, used = 0;
    char *buf = malloc(cap);
    CHECK(buf != NULL);
    for (;;) {
        if (cap - used < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
            CHECK(buf != NULL);
        }
        size_t n = fread(buf + used, 1, cap - used - 1, f);
        used += n;
        if (n == 0) break;
    }
    CHECK_MSG(!ferror(f), "reading %s", path);
    fclose(f);
    buf[used] = '\0';
    if (len != NULL) *len = used;
    return buf;
}

void tu_write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f != NULL, "fopen %s: %s", path, strerror(errno));
    size_t n = strlen(text);
    CHECK(fwrite(text, 1, n, f) == n);
    CHECK(fclose(f) == 0);
}

int tu_exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

int tu_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Protobuf ------------------------------------------------------------- */

void tu_buf_free(tu_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

static void tu_buf_put(tu_buf *b, const void *data, size_t len) {
    if (b->cap - b->len < len) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < len) cap *= 2;
        b->data = realloc(b->data, cap);
        CHECK(b->data != NULL);
        b->cap = cap;
    }
    if (len > 0) memcpy(b->data + b->len, data, len);
    b->len += len;
}

static void tu_buf_varint(tu_buf *b, uint64_t v) {
    uint8_t tmp[10];
    size_t n = 0;
    do {
        uint8_t byte = (uint8_t)(v & 0x7f);
        v >>= 7;
        tmp[n++] = (uint8_t)(byte | (v ? 0x80 : 0));
    } while (v);
    tu_buf_put(b, tmp, n);
}

void tu_pb_varint(tu_buf *b, int field, uint64_t value) {
    tu_buf_varint(b, ((uint64_t)field << 3) | 0);
    tu_buf_varint(b, value);
}

void tu_pb_bytes(tu_buf *b, int field, const void *data, size_t len) {
    tu_buf_varint(b, ((uint64_t)field << 3) | 2);
    tu_buf_varint(b, len);
    tu_buf_put(b, data, len);
}

void tu_pb_string(tu_buf *b, int field, const char *s) {
    tu_pb_bytes(b, field, s, strlen(s));
}

void tu_pb_message(tu_buf *b, int field, const tu_buf *message) {
    tu_pb_bytes(b, field, message->data, message->len);
}

tu_buf tu_pb_filter(int ignore_unknown, const char *const *names) {
    tu_buf b = {0};
    for (size_t i = 0; names != NULL && names[i] != NULL; i++) tu_pb_string(&b, 1, names[i]);
    if (ignore_unknown) tu_pb_varint(&b, 2, 1);
    return b;
}

void tu_pb_reader_init(tu_pb_reader *r, const uint8_t *data, size_t len) {
    r->p = data;
    r->end = data + len;
}

static uint64_t tu_pb_read_varint(tu_pb_reader *r) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        CHECK_MSG(r->p < r->end, "truncated varint");
        uint8_t byte = *r->p++;
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) return v;
    }
    CHECK_MSG(0, "varint too long");
    return 0;
}

int tu_pb_next(tu_pb_reader *r, tu_pb_field *f) {
    if (r->p >= r->end) return 0;
    memset(f, 0, sizeof *f);
    uint64_t key = tu_pb_read_varint(r);
    f->field = (int)(key >> 3);
    f->wire = (int)(key & 7);
    CHECK_MSG(f->field > 0, "field number 0");
    switch (f->wire) {
    case 0:
        f->varint = tu_pb_read_varint(r);
        break;
    case 1:
    case 5: {
        size_t n = f->wire == 1 ? 8 : 4;
        CHECK_MSG((size_t)(r->end - r->p) >= n, "truncated fixed field");
        for (size_t i = 0; i < n; i++) f->varint |= (uint64_t)r->p[i] << (8 * i);
        r->p += n;
        break;
    }
    case 2: {
        uint64_t n = tu_pb_read_varint(r);
        CHECK_MSG(n <= (uint64_t)(r->end - r->p), "truncated length-delimited field");
        f->bytes = r->p;
        f->len = (size_t)n;
        r->p += n;
        break;
    }
    default:
        CHECK_MSG(0, "unsupported wire type %d (field %d)", f->wire, f->field);
    }
    return 1;
}

char *tu_pb_strdup(const tu_pb_field *f) {
    CHECK_MSG(f->wire == 2, "field %d is not length-delimited", f->field);
    char *s = malloc(f->len + 1);
    CHECK(s != NULL);
    if (f->len > 0) memcpy(s, f->bytes, f->len);
    s[f->len] = '\0';
    CHECK_MSG(strlen(s) == f->len, "field %d holds a NUL", f->field);
    return s;
}

/* JSON ------------------------------------------------------------------ */

static const char *tu_json_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* Parses a JSON string at p (on its opening quote) into a malloc'd copy;
 * returns the position after it, or NULL. Escapes \uXXXX give ASCII only. */
static const char *tu_json_string(const char *p, char **out) {
    if (*p != '"') return NULL;
    p++;
    size_t cap = 16, used = 0;
    char *s = malloc(cap);
    CHECK(s != NULL);
    for (;;) {
        char c = *p++;
        if (c == '\0' || (unsigned char)c < 0x20) {
            free(s);
            return NULL;
        }
        if (c == '"') break;
        if (c == '\\') {
            char e = *p++;
            switch (e) {
            case '"': c = '"'; break;
            case '\\': c = '\\'; break;
            case '/': c = '/'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u': {
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    char h = *p++;
                    v <<= 4;
                    if (h >= '0' && h <= '9') v |= (unsigned)(h - '0');
                    else if (h >= 'a' && h <= 'f') v |= (unsigned)(h - 'a' + 10);
                    else if (h >= 'A' && h <= 'F') v |= (unsigned)(h - 'A' + 10);
                    else { free(s); return NULL; }
                }
                if (v == 0 || v > 0x7f) { free(s); return NULL; }
                c = (char)v;
                break;
            }
            default:
                free(s);
                return NULL;
            }
        }
        if (used + 2 > cap) {
            cap *= 2;
            s = realloc(s, cap);
            CHECK(s != NULL);
        }
        s[used++] = c;
    }
    s[used] = '\0';
    *out = s;
    return p;
}

static void tu_json_add(tu_json_map *m, char *key, char *value, int is_bool) {
    m->keys = realloc(m->keys, (m->count + 1) * sizeof *m->keys);
    m->values = realloc(m->values, (m->count + 1) * sizeof *m->values);
    m->is_bool = realloc(m->is_bool, (m->count + 1) * sizeof *m->is_bool);
    CHECK(m->keys != NULL && m->values != NULL && m->is_bool != NULL);
    m->keys[m->count] = key;
    m->values[m->count] = value;
    m->is_bool[m->count] = is_bool;
    m->count++;
}

int tu_json_parse_map(const char *text, tu_json_map *m) {
    memset(m, 0, sizeof *m);
    const char *p = tu_json_ws(text);
    if (*p++ != '{') return -1;
    p = tu_json_ws(p);
    if (*p == '}') {
        p++;
    } else {
        for (;;) {
            char *key = NULL, *value = NULL;
            int is_bool = 0;
            p = tu_json_string(tu_json_ws(p), &key);
            if (p == NULL) goto bad;
            p = tu_json_ws(p);
            if (*p++ != ':') { free(key); goto bad; }
            p = tu_json_ws(p);
            if (*p == '"') {
                p = tu_json_string(p, &value);
                if (p == NULL) { free(key); goto bad; }
            } else if (strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
                value = strdup(*p == 't' ? "true" : "false");
                CHECK(value != NULL);
                p += *p == 't' ? 4 : 5;
                is_bool = 1;
            } else {
                free(key);
                goto bad;
            }
            if (tu_json_get(m, key, NULL) != NULL) { free(key); free(value); goto bad; }
            tu_json_add(m, key, value, is_bool);
            p = tu_json_ws(p);
            if (*p == ',') { p++; continue; }
            if (*p++ == '}') break;
            goto bad;
        }
    }
    if (*tu_json_ws(p) != '\0') goto bad;
    return 0;
bad:
    tu_json_free(m);
    return -1;
}

const char *tu_json_get(const tu_json_map *m, const char *key, int *is_bool) {
    for (size_t i = 0; i < m->count; i++) {
        if (strcmp(m->keys[i], key) == 0) {
            if (is_bool) *is_bool = m->is_bool[i];
            return m->values[i];
        }
    }
    return NULL;
}

void tu_json_free(tu_json_map *m) {
    for (size_t i = 0; i < m->count; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    free(m->is_bool);
    memset(m, 0, sizeof *m);
}
