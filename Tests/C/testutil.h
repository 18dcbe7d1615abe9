/*
 * testutil.h — shared helpers for the libgrpchelper C tests: in-process server
 * setup, a few stock handlers, a monotonic clock, a waitable counter and a
 * message list; for the helper-layer tests, result checks, temporary folders,
 * file helpers, a tiny protobuf encoder/decoder and a flat JSON reader. Uses
 * only the public API (<grpchelper.h>).
 */
#ifndef GH_TEST_UTIL_H
#define GH_TEST_UTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

/* ------------------------------------------------------------------------ */
/* Helper-layer tests: results, temporary folders, files, protobuf, JSON    */
/* ------------------------------------------------------------------------ */

/* CHECK_RESULT(expr, code): expr (a gh_ function returning int) must fail with
 * GH_ERR_RESULT, gh_last_result_code() == code and a non-empty gh_last_error().
 * Evaluates to a per-thread copy of that message (valid until the next
 * CHECK_RESULT on the thread). */
#define CHECK_RESULT(expr, code) \
    tu_check_result_((expr), (code), #expr, #code, __FILE__, __LINE__)
const char *tu_check_result_(int rc, int code, const char *expr,
                             const char *code_text, const char *file, int line);

/* CHECK_CONTAINS(s, part): the string s contains part. */
#define CHECK_CONTAINS(s, part) \
    tu_check_contains_((s), (part), #s, __FILE__, __LINE__)
void tu_check_contains_(const char *s, const char *part, const char *expr,
                        const char *file, int line);

/* A new folder mkdtemp("/tmp/gh-c-helper-XXXXXX") (malloc'd path). */
char *tu_tmpdir(void);

/* Removes |path| and everything below it (nftw, symlinks not followed). */
void tu_rmtree(const char *path);

/* Makes the folder <root>/<name> (it must not exist) into |out|. */
void tu_subdir(char *out, size_t size, const char *root, const char *name);

/* A helper-layer folder tree <root>/<name>/{sys,user,ws}: sys and user made,
 * ws not; the config.json path of each; a gh_folders handle over the three. */
typedef struct {
    char base[512];
    char sys[600];
    char user[600];
    char ws[600];
    char sys_json[700];
    char user_json[700];
    char ws_json[700];
    gh_folders *folders;
} tu_layout;

void tu_layout_new(tu_layout *l, const char *root, const char *name);
void tu_layout_free(tu_layout *l);

/* snprintf into a char array that must be large enough. */
#define TU_PATH(buf, ...)                                                   \
    do {                                                                    \
        int tu_n_ = snprintf((buf), sizeof(buf), __VA_ARGS__);              \
        CHECK(tu_n_ >= 0 && (size_t)tu_n_ < sizeof(buf));                   \
    } while (0)

/* The whole file as a malloc'd NUL-terminated string (length in *len if not
 * NULL), or NULL if it does not exist. */
char *tu_read_file(const char *path, size_t *len);

/* Creates or replaces |path| with |text|. */
void tu_write_file(const char *path, const char *text);

/* 1 if |path| exists (any type) / is a directory, else 0. */
int tu_exists(const char *path);
int tu_is_dir(const char *path);

/* A growable byte buffer, used to encode protobuf messages. */
typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
} tu_buf;

void tu_buf_free(tu_buf *b);
/* Protobuf encoding: a varint field (wire type 0), a length-delimited field
 * (wire type 2) from bytes / a string / another encoded message. */
void tu_pb_varint(tu_buf *b, int field, uint64_t value);
void tu_pb_bytes(tu_buf *b, int field, const void *data, size_t len);
void tu_pb_string(tu_buf *b, int field, const char *s);
void tu_pb_message(tu_buf *b, int field, const tu_buf *message);
/* A grpc-helper Filter { 1: repeated string names; 2: bool ignore_unknown }
 * from |names| (ending with NULL; NULL: none). */
tu_buf tu_pb_filter(int ignore_unknown, const char *const *names);

/* Protobuf decoding: walks the fields of an encoded message. */
typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} tu_pb_reader;

typedef struct {
    int field;
    int wire;               /* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
    uint64_t varint;        /* wire 0 (and the raw value of wires 1 and 5) */
    const uint8_t *bytes;   /* wire 2 */
    size_t len;             /* wire 2 */
} tu_pb_field;

void tu_pb_reader_init(tu_pb_reader *r, const uint8_t *data, size_t len);
/* The next field in *f: 1, or 0 at the end. A malformed message fails. */
int tu_pb_next(tu_pb_reader *r, tu_pb_field *f);
/* A malloc'd NUL-terminated copy of a length-delimited field. */
char *tu_pb_strdup(const tu_pb_field *f);

/* A flat JSON object whose values are strings or booleans (what config.json
 * and loggers.json hold), parsed strictly. */
typedef struct {
    size_t count;
    char **keys;
    char **values;   /* strings; "true" / "false" for booleans */
    int *is_bool;
} tu_json_map;

/* Parses |text|; returns 0 on success, -1 if it is not such an object (then
 * *m is empty). */
int tu_json_parse_map(const char *text, tu_json_map *m);
/* The value of |key| (NULL if absent); *is_bool set when not NULL. */
const char *tu_json_get(const tu_json_map *m, const char *key, int *is_bool);
void tu_json_free(tu_json_map *m);

#endif /* GH_TEST_UTIL_H */
