/*
 * test_helper_logs.c — the helper layer's rolling logs, through
 * <grpchelper.h> only:
 * - gh_logs_new: a relative folder is taken from the workspace of gh_folders
 *   (the current directory without one), gh_logs_folder is absolute; a folder
 *   that cannot be made (GH_RC_ERROR); bad unit / interval
 *   (GH_RC_ERROR_PARAM_INVALID); every unit in any case;
 * - gh_logs_write to <folder>/<name>/<name>.log and <folder>/root/root.log,
 *   read back and parsed: the header line "---------- New <name> logger
 *   instance for process <pid> ----------" (again when a new handle reopens
 *   the file), "YYYY-MM-DD hh:mm:ss.mmm [thread/name] LEVEL message" with the
 *   calling thread's name; gh_logs_write_record with thread, file, function and
 *   line (" - file:function:line"); invalid levels (GH_ERR_INVALID_ARGUMENT);
 * - gh_logs_enabled: root INFO by default; levels from loggers.json in the
 *   system < user < workspace layers, false disabling, dotted names inheriting
 *   from their parents, the root configurable; malformed loggers.json
 *   (GH_RC_ERROR_MODEL_INVALID naming it);
 * - gh_logs_get / set / reset on hand-encoded Filter / LoggerUpdate messages:
 *   empty requests, persistence in <workspace>/loggers.json ("DEBUG" / false),
 *   the effect on gh_logs_enabled and on what is written, reset removing the
 *   entry, "" reported as "root", undecodable requests;
 * - gh_logs_new_from_config over gh_config_static_items with
 *   "rpc-logs-folder=my-logs" from the command line;
 * - rollover with unit "S", interval 1, backup 1 (the only test that sleeps:
 *   the wall clock has to pass each one-second period);
 * - 8 threads writing at once: every line whole and present once;
 * - a host's level source (gh_logs_use_level_source, last: it is process-wide):
 *   refused without threshold / set (user_data freed); the layers applied to
 *   the host's table, the root's level read first; gh_logs_enabled asking it
 *   (also after the host changed a level itself); get / set / reset on the
 *   host's table (reset as grpc-helper: no level, the root its level from
 *   before the layers); the library's records handed to emit; logs made
 *   before it keep their own levels; gh_logs_write_handled to one file without
 *   a level check; uninstalling frees the user_data and detaches the logs made
 *   with it (their LoggerService operations fail with GH_RC_ERROR).
 * Everything happens below one mkdtemp folder, removed at the end.
 */
#define _GNU_SOURCE /* pthread_setname_np / pthread_getname_np */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <grpchelper.h>

#include "check.h"
#include "testutil.h"

_Static_assert(GH_LOG_TRACE == 5 && GH_LOG_DEBUG == 10 && GH_LOG_INFO == 20 &&
                   GH_LOG_NOTICE == 25 && GH_LOG_WARNING == 30 &&
                   GH_LOG_ERROR == 40 && GH_LOG_CRITICAL == 50,
               "gh_log_level");

static char *g_tmp;
/* The main thread's name in lines ("MainThread", as Python's). */
static char g_main_thread[64];

/* A fresh folder <g_tmp>/<name> (made). */
/* ------------------------------------------------------------------------ */
/* Log files                                                                */
/* ------------------------------------------------------------------------ */

typedef struct {
    struct tm tm;
    int ms;
    char thread[128];
    char name[128];
    char level[32];
    char *message; /* malloc'd */
} log_line;

typedef struct {
    size_t count;
    log_line *lines;
} log_file;

static int digits(const char *p, int n) {
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i])) return 0;
    }
    return 1;
}

static int num(const char *p, int n) {
    int v = 0;
    for (int i = 0; i < n; i++) v = v * 10 + (p[i] - '0');
    return v;
}

/* Parses "YYYY-MM-DD hh:mm:ss.mmm [thread/name] LEVEL message" (no newline);
 * fails the test if the line does not have that form. */
static void parse_line(const char *line, size_t len, log_line *out, const char *path) {
    memset(out, 0, sizeof *out);
    const char *p = line;
    CHECK_MSG(len > 26 && digits(p, 4) && p[4] == '-' && digits(p + 5, 2) &&
                  p[7] == '-' && digits(p + 8, 2) && p[10] == ' ' &&
                  digits(p + 11, 2) && p[13] == ':' && digits(p + 14, 2) &&
                  p[16] == ':' && digits(p + 17, 2) && p[19] == '.' &&
                  digits(p + 20, 3) && p[23] == ' ' && p[24] == '[',
              "%s: malformed line \"%.*s\"", path, (int)len, line);
    out->tm.tm_year = num(p, 4) - 1900;
    out->tm.tm_mon = num(p + 5, 2) - 1;
    out->tm.tm_mday = num(p + 8, 2);
    out->tm.tm_hour = num(p + 11, 2);
    out->tm.tm_min = num(p + 14, 2);
    out->tm.tm_sec = num(p + 17, 2);
    out->tm.tm_isdst = -1;
    out->ms = num(p + 20, 3);
    CHECK_MSG(out->tm.tm_mon >= 0 && out->tm.tm_mon < 12 && out->tm.tm_mday >= 1 &&
                  out->tm.tm_mday <= 31 && out->tm.tm_hour < 24 &&
                  out->tm.tm_min < 60 && out->tm.tm_sec <= 60,
              "%s: bad time in \"%.*s\"", path, (int)len, line);

    const char *end = line + len;
    const char *open = p + 25;
    const char *close = NULL;
    for (const char *q = open; q + 1 < end; q++) {
        if (q[0] == ']' && q[1] == ' ') {
            close = q;
            break;
        }
    }
    CHECK_MSG(close != NULL, "%s: no \"] \" in \"%.*s\"", path, (int)len, line);
    const char *slash = NULL;
    for (const char *q = open; q < close; q++) {
        if (*q == '/') slash = q;
    }
    CHECK_MSG(slash != NULL && slash > open && slash + 1 < close,
              "%s: no thread/name in \"%.*s\"", path, (int)len, line);
    CHECK((size_t)(slash - open) < sizeof out->thread);
    CHECK((size_t)(close - slash - 1) < sizeof out->name);
    memcpy(out->thread, open, (size_t)(slash - open));
    memcpy(out->name, slash + 1, (size_t)(close - slash - 1));

    const char *lv = close + 2;
    const char *sp = memchr(lv, ' ', (size_t)(end - lv));
    CHECK_MSG(sp != NULL && sp > lv && (size_t)(sp - lv) < sizeof out->level,
              "%s: no level in \"%.*s\"", path, (int)len, line);
    memcpy(out->level, lv, (size_t)(sp - lv));
    size_t mlen = (size_t)(end - sp - 1);
    out->message = malloc(mlen + 1);
    CHECK(out->message != NULL);
    memcpy(out->message, sp + 1, mlen);
    out->message[mlen] = '\0';

    /* A time of this run (local time): within a few minutes of now. */
    struct tm copy = out->tm;
    time_t t = mktime(&copy);
    time_t now = time(NULL);
    CHECK_MSG(t != (time_t)-1 && t <= now + 2 && t >= now - 600,
              "%s: time of \"%.*s\" is not now", path, (int)len, line);
}

/* Reads and parses a whole log file (which must exist, and end with a
 * newline). */
static void read_log(const char *path, log_file *f) {
    size_t len = 0;
    char *text = tu_read_file(path, &len);
    CHECK_MSG(text != NULL, "%s does not exist", path);
    CHECK_MSG(len == 0 || text[len - 1] == '\n', "%s does not end with a newline", path);
    memset(f, 0, sizeof *f);
    size_t cap = 0;
    for (char *p = text; p < text + len;) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        CHECK(nl != NULL);
        if (f->count == cap) {
            cap = cap ? cap * 2 : 16;
            f->lines = realloc(f->lines, cap * sizeof *f->lines);
            CHECK(f->lines != NULL);
        }
        parse_line(p, (size_t)(nl - p), &f->lines[f->count++], path);
        p = nl + 1;
    }
    free(text);
}

static void log_free(log_file *f) {
    for (size_t i = 0; i < f->count; i++) free(f->lines[i].message);
    free(f->lines);
    memset(f, 0, sizeof *f);
}

/* How many lines hold |message| exactly. */
static size_t count_message(const log_file *f, const char *message) {
    size_t n = 0;
    for (size_t i = 0; i < f->count; i++) {
        if (strcmp(f->lines[i].message, message) == 0) n++;
    }
    return n;
}

static const log_line *find_message(const log_file *f, const char *message) {
    for (size_t i = 0; i < f->count; i++) {
        if (strcmp(f->lines[i].message, message) == 0) return &f->lines[i];
    }
    return NULL;
}

static void check_line(const log_line *l, const char *thread, const char *name,
                       const char *level, const char *message) {
    CHECK(l != NULL);
    CHECK_STR(l->thread, thread);
    CHECK_STR(l->name, name);
    CHECK_STR(l->level, level);
    CHECK_STR(l->message, message);
}

/* The header line for |name| in this process. */
static void header_text(char *out, size_t size, const char *name) {
    int n = snprintf(out, size,
                     "---------- New %s logger instance for process %ld ----------",
                     name, (long)getpid());
    CHECK(n > 0 && (size_t)n < size);
}

/* <folder>/<name>/<name>.log */
static void log_path(char *out, size_t size, const gh_logs *logs, const char *name) {
    int n = snprintf(out, size, "%s/%s/%s.log", gh_logs_folder(logs), name, name);
    CHECK(n > 0 && (size_t)n < size);
}

static void read_named(const gh_logs *logs, const char *name, log_file *f) {
    char path[1024];
    log_path(path, sizeof path, logs, name);
    read_log(path, f);
}

/* ------------------------------------------------------------------------ */
/* Filter / LoggerUpdate encoding, LoggerStatus decoding                    */
/* ------------------------------------------------------------------------ */

typedef struct {
    char *name;
    int enabled;
    int level;
} logger_config;

#define MAX_LOGGERS 16

typedef struct {
    size_t count;
    logger_config items[MAX_LOGGERS];
} logger_status;

static void status_decode(uint8_t *data, size_t len, logger_status *st) {
    memset(st, 0, sizeof *st);
    tu_pb_reader r;
    tu_pb_field f;
    tu_pb_reader_init(&r, data, len);
    while (tu_pb_next(&r, &f)) {
        if (f.field == 1) { /* Result r */
            CHECK_EQ(f.wire, 2);
            continue;
        }
        CHECK_MSG(f.field == 2 && f.wire == 2, "unexpected LoggerStatus field %d",
                  f.field);
        CHECK(st->count < MAX_LOGGERS);
        logger_config *c = &st->items[st->count++];
        c->name = strdup("");
        tu_pb_reader ir;
        tu_pb_field g;
        tu_pb_reader_init(&ir, f.bytes, f.len);
        while (tu_pb_next(&ir, &g)) {
            switch (g.field) {
            case 1:
                free(c->name);
                c->name = tu_pb_strdup(&g);
                break;
            case 2:
                CHECK_EQ(g.wire, 0);
                c->enabled = g.varint != 0;
                break;
            case 3:
                CHECK_EQ(g.wire, 0);
                c->level = (int)g.varint;
                break;
            default:
                CHECK_MSG(0, "unexpected LoggerConfig field %d", g.field);
            }
        }
    }
    gh_free(data);
}

static void status_clear(logger_status *st) {
    for (size_t i = 0; i < st->count; i++) free(st->items[i].name);
    st->count = 0;
}

static void check_config(const logger_config *c, const char *name, int enabled,
                         int level) {
    CHECK_STR(c->name, name);
    CHECK_MSG(c->enabled == enabled && c->level == level,
              "logger %s: enabled %d level %d, expected enabled %d level %d", name,
              c->enabled, c->level, enabled, level);
}

typedef struct {
    const char *name;
    int enabled;
    int level;
} logger_setting;

/* LoggerUpdate { 1: repeated LoggerConfig { 1: name; 2: enabled; 3: level } } */
static tu_buf logger_update(const logger_setting *items, size_t n) {
    tu_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        tu_buf c = {0};
        tu_pb_string(&c, 1, items[i].name);
        if (items[i].enabled) tu_pb_varint(&c, 2, 1);
        if (items[i].level) tu_pb_varint(&c, 3, (uint64_t)items[i].level);
        tu_pb_message(&b, 1, &c);
        tu_buf_free(&c);
    }
    return b;
}

typedef int (*logs_op)(gh_logs *, const uint8_t *, size_t, uint8_t **, size_t *);

static void op_ok(logs_op op, gh_logs *logs, tu_buf req, logger_status *st) {
    uint8_t *resp = NULL;
    size_t len = 0;
    CHECK_OK(op(logs, req.data, req.len, &resp, &len));
    status_decode(resp, len, st);
    tu_buf_free(&req);
}

static void op_fails(logs_op op, gh_logs *logs, tu_buf req, int code) {
    uint8_t *resp = NULL;
    size_t len = 0;
    CHECK_RESULT(op(logs, req.data, req.len, &resp, &len), code);
    tu_buf_free(&req);
}

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})
#define SETTINGS(...) \
    ((const logger_setting[]){__VA_ARGS__}), \
        (sizeof((const logger_setting[]){__VA_ARGS__}) / sizeof(logger_setting))

/* ------------------------------------------------------------------------ */
/* Folders                                                                  */
/* ------------------------------------------------------------------------ */

static void write_loggers_json(const char *dir, const char *text) {
    char path[700];
    TU_PATH(path, "%s/loggers.json", dir);
    CHECK(mkdir(dir, 0755) == 0 || errno == EEXIST);
    tu_write_file(path, text);
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */
/* ------------------------------------------------------------------------ */

static gh_logs *g_named_logs;
static char g_named_thread[96];

static void *named_writer(void *arg) {
    (void)arg;
    CHECK(pthread_setname_np(pthread_self(), "gh-named") == 0);
    char self[64] = {0};
    CHECK(readlink("/proc/thread-self", self, sizeof self - 1) > 0);
    self[sizeof self - 1] = '\0';
    snprintf(g_named_thread, sizeof g_named_thread, "gh-named-%s", strrchr(self, '/') + 1);
    CHECK_OK(gh_logs_write(g_named_logs, "app", GH_LOG_INFO, "from a named thread"));
    CHECK_OK(gh_logs_write_record(g_named_logs, "app", NULL, GH_LOG_INFO, NULL, NULL, NULL,
                                  0, "record from a named thread"));
    return NULL;
}

static void test_write(void) {
    tu_layout l;
    tu_layout_new(&l, g_tmp, "write");
    gh_logs *logs = NULL;
    CHECK_OK(gh_logs_new("logs", "H", 1, 10, l.folders, &logs));
    CHECK(logs != NULL);
    char want[700];
    TU_PATH(want, "%s/logs", l.ws);
    CHECK_STR(gh_logs_folder(logs), want);
    CHECK(gh_logs_folder(logs)[0] == '/');

    /* Root: INFO by default. */
    CHECK_EQ(gh_logs_enabled(logs, "app", GH_LOG_DEBUG), 0);
    CHECK_EQ(gh_logs_enabled(logs, "app", GH_LOG_TRACE), 0);
    CHECK_EQ(gh_logs_enabled(logs, "app", GH_LOG_INFO), 1);
    CHECK_EQ(gh_logs_enabled(logs, "app", GH_LOG_NOTICE), 1);
    CHECK_EQ(gh_logs_enabled(logs, "app", GH_LOG_CRITICAL), 1);
    CHECK_EQ(gh_logs_enabled(logs, "", GH_LOG_DEBUG), 0);
    CHECK_EQ(gh_logs_enabled(logs, "", GH_LOG_INFO), 1);
    CHECK_EQ(gh_logs_enabled(logs, "root", GH_LOG_DEBUG), 0);
    CHECK_EQ(gh_logs_enabled(logs, "root", GH_LOG_WARNING), 1);
    CHECK_EQ(gh_logs_enabled(logs, "a.b.c", GH_LOG_INFO), 1);

    CHECK_OK(gh_logs_write(logs, "app", GH_LOG_INFO, "hello app"));
    CHECK_OK(gh_logs_write(logs, "app", GH_LOG_DEBUG, "not written"));
    CHECK_OK(gh_logs_write(logs, "app", GH_LOG_WARNING, "a warning"));
    CHECK_OK(gh_logs_write(logs, "app", GH_LOG_ERROR, "an error"));
    CHECK_OK(gh_logs_write(logs, "app", GH_LOG_CRITICAL, "critical"));
    CHECK_OK(gh_logs_write(logs, "app", 35, "level 35"));
    CHECK_OK(gh_logs_write(logs, "app", 19, "level 19 is below INFO"));
    CHECK_OK(gh_logs_write_record(logs, "app", NULL, GH_LOG_WARNING, "T1", "file.c", "fn", 42,
                                  "with source"));
    CHECK_OK(gh_logs_write_record(logs, "app", NULL, GH_LOG_INFO, "T2", NULL, NULL, 0,
                                  "without source"));
    CHECK_OK(gh_logs_write_record(logs, "app", NULL, GH_LOG_INFO, NULL, NULL, NULL, 0,
                                  "this thread"));
    CHECK_OK(gh_logs_write(logs, "svc.sub", GH_LOG_ERROR, "dotted name"));
    CHECK_OK(gh_logs_write(logs, "", GH_LOG_INFO, "to the root"));
    CHECK_OK(gh_logs_write(logs, "root", GH_LOG_INFO, "to root by name"));

    /* Invalid levels: nothing written. */
    static const int bad_levels[] = {0, 51, -1, 100};
    for (size_t i = 0; i < sizeof bad_levels / sizeof bad_levels[0]; i++) {
        CHECK_RC(gh_logs_write(logs, "app", bad_levels[i], "bad level"),
                 GH_ERR_INVALID_ARGUMENT);
        CHECK_RC(gh_logs_write_record(logs, "app", NULL, bad_levels[i], "T", "f.c", "fn", 1,
                                      "bad level"),
                 GH_ERR_INVALID_ARGUMENT);
    }

    /* A thread with a name of its own. */
    g_named_logs = logs;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, named_writer, NULL) == 0);
    CHECK(pthread_join(th, NULL) == 0);

    char header[200];
    log_file f;
    read_named(logs, "app", &f);
    CHECK_EQ(f.count, 11);
    header_text(header, sizeof header, "app");
    check_line(&f.lines[0], g_main_thread, "app", "INFO", header);
    check_line(&f.lines[1], g_main_thread, "app", "INFO", "hello app");
    check_line(&f.lines[2], g_main_thread, "app", "WARNING", "a warning");
    check_line(&f.lines[3], g_main_thread, "app", "ERROR", "an error");
    check_line(&f.lines[4], g_main_thread, "app", "CRITICAL", "critical");
    CHECK(strstr(f.lines[5].message, "level 35") != NULL);
    check_line(&f.lines[6], "T1", "app", "WARNING", "with source - file.c:fn:42");
    check_line(&f.lines[7], "T2", "app", "INFO", "without source");
    check_line(&f.lines[8], g_main_thread, "app", "INFO", "this thread");
    /* Other threads: their name and kernel thread id. */
    check_line(&f.lines[9], g_named_thread, "app", "INFO", "from a named thread");
    check_line(&f.lines[10], g_named_thread, "app", "INFO", "record from a named thread");
    CHECK_EQ(count_message(&f, "not written"), 0);
    CHECK_EQ(count_message(&f, "level 19 is below INFO"), 0);
    CHECK_EQ(count_message(&f, "bad level"), 0);
    /* times never go back */
    for (size_t i = 1; i < f.count; i++) {
        struct tm a = f.lines[i - 1].tm, b = f.lines[i].tm;
        double d = difftime(mktime(&b), mktime(&a)) * 1000.0 +
                   (f.lines[i].ms - f.lines[i - 1].ms);
        CHECK(d >= 0);
    }
    log_free(&f);

    read_named(logs, "svc.sub", &f);
    CHECK_EQ(f.count, 2);
    header_text(header, sizeof header, "svc.sub");
    check_line(&f.lines[0], g_main_thread, "svc.sub", "INFO", header);
    check_line(&f.lines[1], g_main_thread, "svc.sub", "ERROR", "dotted name");
    log_free(&f);

    /* The root file: its header, then every record once. */
    read_named(logs, "root", &f);
    header_text(header, sizeof header, "root");
    check_line(&f.lines[0], g_main_thread, "root", "INFO", header);
    CHECK_EQ(count_message(&f, header), 1);
    static const char *const all[] = {"hello app", "a warning", "an error", "critical",
                                      "with source - file.c:fn:42", "without source",
                                      "this thread", "dotted name", "to the root",
                                      "to root by name", "from a named thread"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        CHECK_MSG(count_message(&f, all[i]) == 1, "root.log: \"%s\" %zu times", all[i],
                  count_message(&f, all[i]));
    }
    check_line(find_message(&f, "dotted name"), g_main_thread, "svc.sub", "ERROR",
               "dotted name");
    check_line(find_message(&f, "to the root"), g_main_thread, "root", "INFO",
               "to the root");
    check_line(find_message(&f, "to root by name"), g_main_thread, "root", "INFO",
               "to root by name");
    CHECK_EQ(count_message(&f, "not written"), 0);
    CHECK_EQ(count_message(&f, "level 19 is below INFO"), 0);
    /* The headers of app and svc.sub too (as grpc-helper's, through propagation). */
    header_text(header, sizeof header, "app");
    CHECK_EQ(count_message(&f, header), 1);
    header_text(header, sizeof header, "svc.sub");
    CHECK_EQ(count_message(&f, header), 1);
    CHECK_EQ(f.count, 1 + 2 + 13);
    log_free(&f);
    /* One folder per logger; "" and "root" are the root's. */
    DIR *d = opendir(gh_logs_folder(logs));
    CHECK(d != NULL);
    int entries = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        CHECK_MSG(strcmp(e->d_name, "app") == 0 || strcmp(e->d_name, "root") == 0 ||
                      strcmp(e->d_name, "svc.sub") == 0,
                  "unexpected %s/%s", gh_logs_folder(logs), e->d_name);
        entries++;
    }
    closedir(d);
    CHECK_EQ(entries, 3);
    gh_logs_free(logs);

    /* A new handle reopens the file: a second header, records appended. */
    CHECK_OK(gh_logs_new("logs", "H", 1, 10, l.folders, &logs));
    CHECK_OK(gh_logs_write(logs, "app", GH_LOG_INFO, "again"));
    read_named(logs, "app", &f);
    CHECK_EQ(f.count, 13);
    header_text(header, sizeof header, "app");
    CHECK_EQ(count_message(&f, header), 2);
    check_line(&f.lines[11], g_main_thread, "app", "INFO", header);
    check_line(&f.lines[12], g_main_thread, "app", "INFO", "again");
    log_free(&f);
    gh_logs_free(logs);
    gh_logs_free(NULL);
    tu_layout_free(&l);
}

/* ------------------------------------------------------------------------ */
/* Folder, unit and interval rules                                          */
/* ------------------------------------------------------------------------ */

static void test_new_rules(void) {
    char base[512], path[700], file[700], cwd[4096], old_cwd[4096];
    tu_subdir(base, sizeof base, g_tmp, "rules");
    gh_logs *logs = NULL;

    /* Absolute folder. */
    TU_PATH(path, "%s/abs/logs", base);
    CHECK_OK(gh_logs_new(path, "H", 1, 10, NULL, &logs));
    CHECK_STR(gh_logs_folder(logs), path);
    CHECK_OK(gh_logs_write(logs, "abs", GH_LOG_INFO, "x"));
    TU_PATH(file, "%s/abs/abs.log", path);
    CHECK(tu_exists(file));
    gh_logs_free(logs);

    /* Relative without a workspace: the current directory. */
    CHECK(getcwd(old_cwd, sizeof old_cwd) != NULL);
    TU_PATH(path, "%s/cwd", base);
    CHECK(mkdir(path, 0755) == 0);
    CHECK(chdir(path) == 0);
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK_OK(gh_logs_new("rel-logs", "H", 1, 10, NULL, &logs));
    TU_PATH(file, "%s/rel-logs", cwd);
    CHECK_STR(gh_logs_folder(logs), file);
    gh_logs_free(logs);
    gh_folders *none = NULL;
    CHECK_OK(gh_folders_new(NULL, NULL, NULL, &none));
    CHECK_OK(gh_logs_new("rel-logs2", "H", 1, 10, none, &logs));
    TU_PATH(file, "%s/rel-logs2", cwd);
    CHECK_STR(gh_logs_folder(logs), file);
    gh_logs_free(logs);
    gh_folders_free(none);
    CHECK(chdir(old_cwd) == 0);

    /* A folder that cannot be created. */
    TU_PATH(file, "%s/plain-file", base);
    tu_write_file(file, "x");
    TU_PATH(path, "%s/logs", file);
    logs = NULL;
    CHECK_RESULT(gh_logs_new(path, "H", 1, 10, NULL, &logs), GH_RC_ERROR);
    CHECK(logs == NULL);

    /* Units and intervals. */
    TU_PATH(path, "%s/units", base);
    static const char *const units[] = {"S", "s", "M", "m", "H", "h", "D", "d",
                                        "MIDNIGHT", "midnight", "W0", "w6"};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        CHECK_OK(gh_logs_new(path, units[i], 2, 3, NULL, &logs));
        gh_logs_free(logs);
    }
    static const char *const bad_units[] = {"X", "", "W7", "hours", "SS"};
    for (size_t i = 0; i < sizeof bad_units / sizeof bad_units[0]; i++) {
        logs = NULL;
        CHECK_RESULT(gh_logs_new(path, bad_units[i], 1, 10, NULL, &logs),
                     GH_RC_ERROR_PARAM_INVALID);
        CHECK(logs == NULL);
    }
    CHECK_RESULT(gh_logs_new(path, "H", 0, 10, NULL, &logs), GH_RC_ERROR_PARAM_INVALID);
    CHECK_RESULT(gh_logs_new(path, "S", -1, 10, NULL, &logs), GH_RC_ERROR_PARAM_INVALID);
}

/* ------------------------------------------------------------------------ */
/* Levels from loggers.json                                                 */
/* ------------------------------------------------------------------------ */

static void test_layers(void) {
    tu_layout l;
    tu_layout_new(&l, g_tmp, "layers");
    write_loggers_json(l.sys, "{\"a\": \"DEBUG\", \"b\": \"ERROR\", \"c\": \"WARNING\", "
                              "\"off\": false, \"x.y\": \"ERROR\"}");
    write_loggers_json(l.user, "{\"b\": \"WARNING\", \"c\": \"ERROR\", \"d\": \"CRITICAL\"}");
    write_loggers_json(l.ws, "{\"c\": \"DEBUG\", \"d\": false}");
    gh_logs *logs = NULL;
    CHECK_OK(gh_logs_new("logs", "H", 1, 10, l.folders, &logs));

    static const struct {
        const char *name;
        int level;
        int enabled;
    } want[] = {
        /* system */
        {"a", GH_LOG_DEBUG, 1},
        {"a", GH_LOG_TRACE, 0},
        /* user over system */
        {"b", GH_LOG_INFO, 0},
        {"b", GH_LOG_WARNING, 1},
        /* workspace over user over system */
        {"c", GH_LOG_DEBUG, 1},
        /* false disables */
        {"off", GH_LOG_CRITICAL, 0},
        {"d", GH_LOG_CRITICAL, 0},
        /* dotted names inherit from their nearest parent */
        {"a.child", GH_LOG_DEBUG, 1},
        {"a.child.grand", GH_LOG_DEBUG, 1},
        {"b.child", GH_LOG_INFO, 0},
        {"b.child", GH_LOG_WARNING, 1},
        {"x.y.z", GH_LOG_WARNING, 0},
        {"x.y.z", GH_LOG_ERROR, 1},
        /* ... and not from a name that merely starts alike, nor from a child */
        {"ab", GH_LOG_DEBUG, 0},
        {"ab", GH_LOG_INFO, 1},
        {"x", GH_LOG_INFO, 1},
        /* the root stays INFO */
        {"other", GH_LOG_DEBUG, 0},
        {"other", GH_LOG_INFO, 1},
        {"", GH_LOG_INFO, 1},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        CHECK_MSG(gh_logs_enabled(logs, want[i].name, want[i].level) == want[i].enabled,
                  "gh_logs_enabled(\"%s\", %d) != %d", want[i].name, want[i].level,
                  want[i].enabled);
    }

    /* What is written follows. */
    CHECK_OK(gh_logs_write(logs, "a.child", GH_LOG_DEBUG, "debug of a.child"));
    CHECK_OK(gh_logs_write(logs, "b", GH_LOG_INFO, "info of b"));
    CHECK_OK(gh_logs_write(logs, "b", GH_LOG_WARNING, "warning of b"));
    CHECK_OK(gh_logs_write(logs, "off", GH_LOG_CRITICAL, "critical of off"));
    log_file f;
    read_named(logs, "root", &f);
    check_line(find_message(&f, "debug of a.child"), g_main_thread, "a.child", "DEBUG",
               "debug of a.child");
    CHECK(find_message(&f, "warning of b") != NULL);
    CHECK(find_message(&f, "info of b") == NULL);
    CHECK(find_message(&f, "critical of off") == NULL);
    log_free(&f);
    char path[1024];
    log_path(path, sizeof path, logs, "off");
    CHECK(!tu_exists(path));

    /* get reports the layers' settings. */
    logger_status st;
    op_ok(gh_logs_get, logs, tu_pb_filter(0, NAMES("a", "b", "off", "a.child", "")), &st);
    CHECK_EQ(st.count, 5);
    check_config(&st.items[0], "a", 1, GH_LOG_DEBUG);
    check_config(&st.items[1], "b", 1, GH_LOG_WARNING);
    CHECK_STR(st.items[2].name, "off");
    CHECK_EQ(st.items[2].enabled, 0);
    check_config(&st.items[3], "a.child", 1, 0);
    check_config(&st.items[4], "root", 1, GH_LOG_INFO);
    status_clear(&st);
    gh_logs_free(logs);

    /* The root's level from a layer ("root" or ""). */
    write_loggers_json(l.user, "{\"root\": \"WARNING\", \"b\": \"DEBUG\"}");
    CHECK_OK(gh_logs_new("logs", "H", 1, 10, l.folders, &logs));
    CHECK_EQ(gh_logs_enabled(logs, "other", GH_LOG_INFO), 0);
    CHECK_EQ(gh_logs_enabled(logs, "other", GH_LOG_WARNING), 1);
    CHECK_EQ(gh_logs_enabled(logs, "", GH_LOG_INFO), 0);
    CHECK_EQ(gh_logs_enabled(logs, "root", GH_LOG_INFO), 0);
    CHECK_EQ(gh_logs_enabled(logs, "b", GH_LOG_DEBUG), 1);
    CHECK_EQ(gh_logs_enabled(logs, "a", GH_LOG_DEBUG), 1);
    op_ok(gh_logs_get, logs, tu_pb_filter(0, NAMES("root")), &st);
    CHECK_EQ(st.count, 1);
    check_config(&st.items[0], "root", 1, GH_LOG_WARNING);
    status_clear(&st);
    gh_logs_free(logs);

    write_loggers_json(l.ws, "{\"\": \"ERROR\"}");
    CHECK_OK(gh_logs_new("logs", "H", 1, 10, l.folders, &logs));
    CHECK_EQ(gh_logs_enabled(logs, "other", GH_LOG_WARNING), 0);
    CHECK_EQ(gh_logs_enabled(logs, "other", GH_LOG_ERROR), 1);
    gh_logs_free(logs);
    tu_layout_free(&l);
}

static void test_malformed(void) {
    tu_layout l;
    tu_layout_new(&l, g_tmp, "malformed");
    CHECK(mkdir(l.ws, 0755) == 0);
    static const char *const bad[] = {
        "not json", "[\"DEBUG\"]", "{\"a\": 5}", "{\"a\": null}", "{\"a\": {\"b\": 1}}",
        "\"DEBUG\"",
    };
    const char *dirs[] = {l.sys, l.user, l.ws};
    for (size_t d = 0; d < 3; d++) {
        char path[700];
        TU_PATH(path, "%s/loggers.json", dirs[d]);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            tu_write_file(path, bad[i]);
            gh_logs *logs = NULL;
            const char *msg = CHECK_RESULT(gh_logs_new("logs", "H", 1, 10, l.folders, &logs),
                                           GH_RC_ERROR_MODEL_INVALID);
            CHECK_CONTAINS(msg, path);
            CHECK(logs == NULL);
        }
        unlink(path);
    }
    /* An empty object is fine. */
    char path[700];
    TU_PATH(path, "%s/loggers.json", l.user);
    tu_write_file(path, "{}");
    gh_logs *logs = NULL;
    CHECK_OK(gh_logs_new("logs", "H", 1, 10, l.folders, &logs));
    gh_logs_free(logs);
    tu_layout_free(&l);
}

/* ------------------------------------------------------------------------ */
/* get / set / reset                                                        */
/* ------------------------------------------------------------------------ */

static void read_loggers_json(const char *ws, tu_json_map *m) {
    char path[700];
    TU_PATH(path, "%s/loggers.json", ws);
    char *text = tu_read_file(path, NULL);
    CHECK_MSG(text != NULL, "%s does not exist", path);
    CHECK_MSG(tu_json_parse_map(text, m) == 0, "%s is not a JSON map: %s", path, text);
    free(text);
}

static void test_service(void) {
    tu_layout l;
    tu_layout_new(&l, g_tmp, "service");
    gh_logs *logs = NULL;
    CHECK_OK(gh_logs_new("logs", "H", 1, 10, l.folders, &logs));
    logger_status st;

    /* Empty requests. */
    op_fails(gh_logs_get, logs, tu_pb_filter(0, NULL), GH_RC_ERROR_PARAM_MISSING);
    op_fails(gh_logs_set, logs, logger_update(NULL, 0), GH_RC_ERROR_PARAM_MISSING);
    op_fails(gh_logs_reset, logs, tu_pb_filter(0, NULL), GH_RC_ERROR_PARAM_MISSING);
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    CHECK_RESULT(gh_logs_get(logs, NULL, 0, &resp, &resp_len), GH_RC_ERROR_PARAM_MISSING);

    /* Undecodable requests. */
    static const uint8_t garbage[] = {0x0a, 0x05, 'a'};
    CHECK_RC(gh_logs_get(logs, garbage, sizeof garbage, &resp, &resp_len),
             GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_logs_set(logs, garbage, sizeof garbage, &resp, &resp_len),
             GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_logs_reset(logs, garbage, sizeof garbage, &resp, &resp_len),
             GH_ERR_INVALID_ARGUMENT);

    /* Defaults. */
    op_ok(gh_logs_get, logs, tu_pb_filter(0, NAMES("svc", "", "root")), &st);
    CHECK_EQ(st.count, 3);
    check_config(&st.items[0], "svc", 1, 0);
    check_config(&st.items[1], "root", 1, GH_LOG_INFO);
    check_config(&st.items[2], "root", 1, GH_LOG_INFO);
    status_clear(&st);

    /* set: DEBUG for svc, disabled quiet; persisted. */
    CHECK_EQ(gh_logs_enabled(logs, "svc", GH_LOG_DEBUG), 0);
    op_ok(gh_logs_set, logs,
          logger_update(SETTINGS({"svc", 1, GH_LOG_DEBUG}, {"quiet", 0, 0})), &st);
    CHECK_EQ(st.count, 2);
    check_config(&st.items[0], "svc", 1, GH_LOG_DEBUG);
    CHECK_STR(st.items[1].name, "quiet");
    CHECK_EQ(st.items[1].enabled, 0);
    status_clear(&st);
    tu_json_map m;
    read_loggers_json(l.ws, &m);
    CHECK_EQ(m.count, 2);
    int is_bool = -1;
    CHECK_STR(tu_json_get(&m, "svc", &is_bool), "DEBUG");
    CHECK_EQ(is_bool, 0);
    CHECK_STR(tu_json_get(&m, "quiet", &is_bool), "false");
    CHECK_EQ(is_bool, 1);
    tu_json_free(&m);

    CHECK_EQ(gh_logs_enabled(logs, "svc", GH_LOG_DEBUG), 1);
    CHECK_EQ(gh_logs_enabled(logs, "svc.child", GH_LOG_DEBUG), 1);
    CHECK_EQ(gh_logs_enabled(logs, "quiet", GH_LOG_CRITICAL), 0);
    CHECK_OK(gh_logs_write(logs, "svc", GH_LOG_DEBUG, "svc debug"));
    CHECK_OK(gh_logs_write(logs, "quiet", GH_LOG_CRITICAL, "quiet critical"));
    log_file f;
    read_named(logs, "root", &f);
    check_line(find_message(&f, "svc debug"), g_main_thread, "svc", "DEBUG", "svc debug");
    CHECK(find_message(&f, "quiet critical") == NULL);
    log_free(&f);

    op_ok(gh_logs_get, logs, tu_pb_filter(0, NAMES("svc", "quiet", "", "unknown")), &st);
    CHECK_EQ(st.count, 4);
    check_config(&st.items[0], "svc", 1, GH_LOG_DEBUG);
    CHECK_STR(st.items[1].name, "quiet");
    CHECK_EQ(st.items[1].enabled, 0);
    check_config(&st.items[2], "root", 1, GH_LOG_INFO);
    check_config(&st.items[3], "unknown", 1, 0);
    status_clear(&st);

    /* The root's level. */
    op_ok(gh_logs_set, logs, logger_update(SETTINGS({"", 1, GH_LOG_WARNING})), &st);
    CHECK_EQ(st.count, 1);
    check_config(&st.items[0], "root", 1, GH_LOG_WARNING);
    status_clear(&st);
    CHECK_EQ(gh_logs_enabled(logs, "other", GH_LOG_INFO), 0);
    CHECK_EQ(gh_logs_enabled(logs, "svc", GH_LOG_DEBUG), 1);
    op_ok(gh_logs_reset, logs, tu_pb_filter(0, NAMES("root")), &st);
    CHECK_EQ(st.count, 1);
    check_config(&st.items[0], "root", 1, GH_LOG_INFO);
    status_clear(&st);
    CHECK_EQ(gh_logs_enabled(logs, "other", GH_LOG_INFO), 1);

    /* A new handle over the same folders restores the persisted settings. */
    gh_logs *again = NULL;
    CHECK_OK(gh_logs_new("logs", "H", 1, 10, l.folders, &again));
    CHECK_EQ(gh_logs_enabled(again, "svc", GH_LOG_DEBUG), 1);
    CHECK_EQ(gh_logs_enabled(again, "quiet", GH_LOG_CRITICAL), 0);
    CHECK_EQ(gh_logs_enabled(again, "other", GH_LOG_INFO), 1);
    gh_logs_free(again);

    /* reset: forgotten, removed from loggers.json. */
    op_ok(gh_logs_reset, logs, tu_pb_filter(0, NAMES("svc")), &st);
    CHECK_EQ(st.count, 1);
    check_config(&st.items[0], "svc", 1, 0);
    status_clear(&st);
    CHECK_EQ(gh_logs_enabled(logs, "svc", GH_LOG_DEBUG), 0);
    CHECK_EQ(gh_logs_enabled(logs, "svc", GH_LOG_INFO), 1);
    read_loggers_json(l.ws, &m);
    CHECK_EQ(m.count, 1);
    CHECK(tu_json_get(&m, "svc", NULL) == NULL);
    CHECK_STR(tu_json_get(&m, "quiet", NULL), "false");
    tu_json_free(&m);
    op_ok(gh_logs_reset, logs, tu_pb_filter(0, NAMES("quiet", "never-set")), &st);
    CHECK_EQ(st.count, 2);
    check_config(&st.items[0], "quiet", 1, 0);
    check_config(&st.items[1], "never-set", 1, 0);
    status_clear(&st);
    CHECK_EQ(gh_logs_enabled(logs, "quiet", GH_LOG_INFO), 1);
    /* nothing left in loggers.json (an empty object, or no file) */
    char path[700];
    TU_PATH(path, "%s/loggers.json", l.ws);
    if (tu_exists(path)) {
        read_loggers_json(l.ws, &m);
        CHECK_EQ(m.count, 0);
        tu_json_free(&m);
    }

    gh_logs_free(logs);
    CHECK_OK(gh_logs_new("logs", "H", 1, 10, l.folders, &logs));
    CHECK_EQ(gh_logs_enabled(logs, "quiet", GH_LOG_INFO), 1);
    CHECK_EQ(gh_logs_enabled(logs, "svc", GH_LOG_DEBUG), 0);
    gh_logs_free(logs);
    tu_layout_free(&l);
}

/* reset forgets a logger's setting — "level unset, enabled; the root back to
 * INFO" — also for loggers that a system or user loggers.json configures. */
static void test_reset_layered(void) {
    tu_layout l;
    tu_layout_new(&l, g_tmp, "reset-layered");
    write_loggers_json(l.sys, "{\"layered\": \"ERROR\", \"root\": \"ERROR\"}");
    gh_logs *logs = NULL;
    CHECK_OK(gh_logs_new("logs", "H", 1, 10, l.folders, &logs));
    CHECK_EQ(gh_logs_enabled(logs, "layered", GH_LOG_WARNING), 0);
    CHECK_EQ(gh_logs_enabled(logs, "other", GH_LOG_WARNING), 0);
    logger_status st;

    /* the root: back to the system layer's ERROR */
    op_ok(gh_logs_set, logs, logger_update(SETTINGS({"root", 1, GH_LOG_DEBUG})), &st);
    status_clear(&st);
    CHECK_EQ(gh_logs_enabled(logs, "other", GH_LOG_DEBUG), 1);
    op_ok(gh_logs_reset, logs, tu_pb_filter(0, NAMES("")), &st);
    CHECK_EQ(st.count, 1);
    CHECK_STR(st.items[0].name, "root");
    CHECK_MSG(st.items[0].enabled == 1 && st.items[0].level == GH_LOG_ERROR,
              "after reset, the root (ERROR in the system loggers.json) reports "
              "enabled %d level %d, expected enabled 1 level %d (ERROR)",
              st.items[0].enabled, st.items[0].level, GH_LOG_ERROR);
    status_clear(&st);
    CHECK_EQ(gh_logs_enabled(logs, "other", GH_LOG_WARNING), 0);
    CHECK_EQ(gh_logs_enabled(logs, "other", GH_LOG_ERROR), 1);

    /* a named logger: back to the system layer's ERROR, enabled */
    op_ok(gh_logs_set, logs, logger_update(SETTINGS({"layered", 0, GH_LOG_DEBUG})), &st);
    status_clear(&st);
    CHECK_EQ(gh_logs_enabled(logs, "layered", GH_LOG_CRITICAL), 0);
    op_ok(gh_logs_reset, logs, tu_pb_filter(0, NAMES("layered")), &st);
    CHECK_EQ(st.count, 1);
    CHECK_MSG(st.items[0].enabled == 1 && st.items[0].level == GH_LOG_ERROR,
              "after reset, \"layered\" (ERROR in the system loggers.json) reports "
              "enabled %d level %d, expected enabled 1 level %d (ERROR)",
              st.items[0].enabled, st.items[0].level, GH_LOG_ERROR);
    status_clear(&st);
    CHECK_EQ(gh_logs_enabled(logs, "layered", GH_LOG_ERROR), 1);
    CHECK_EQ(gh_logs_enabled(logs, "layered", GH_LOG_WARNING), 0);

    /* a logger no layer names: no level of its own, the root's applies */
    op_ok(gh_logs_set, logs, logger_update(SETTINGS({"unnamed", 1, GH_LOG_DEBUG})), &st);
    status_clear(&st);
    op_ok(gh_logs_reset, logs, tu_pb_filter(0, NAMES("unnamed")), &st);
    CHECK_EQ(st.count, 1);
    CHECK_EQ(st.items[0].enabled, 1);
    CHECK_EQ(st.items[0].level, 0);
    status_clear(&st);
    CHECK_EQ(gh_logs_enabled(logs, "unnamed", GH_LOG_WARNING), 0);
    CHECK_EQ(gh_logs_enabled(logs, "unnamed", GH_LOG_ERROR), 1);
    gh_logs_free(logs);
    tu_layout_free(&l);
}

/* ------------------------------------------------------------------------ */
/* gh_logs_new_from_config                                                  */
/* ------------------------------------------------------------------------ */

static void test_from_config(void) {
    tu_layout l;
    tu_layout_new(&l, g_tmp, "from-config");
    write_loggers_json(l.ws, "{\"cfg\": \"DEBUG\"}");
    gh_config **items = NULL;
    size_t n = 0;
    CHECK_OK(gh_config_static_items(&items, &n));
    const char *cli[] = {"rpc-logs-folder=my-logs"};
    gh_config_set *set = NULL;
    CHECK_OK(gh_config_set_new(items, n, NULL, 0, l.folders, cli, 1, &set));
    gh_logs *logs = NULL;
    CHECK_OK(gh_logs_new_from_config(set, &logs));
    char want[700];
    TU_PATH(want, "%s/my-logs", l.ws);
    CHECK_STR(gh_logs_folder(logs), want);
    /* the set's folders give the levels */
    CHECK_EQ(gh_logs_enabled(logs, "cfg", GH_LOG_DEBUG), 1);
    CHECK_OK(gh_logs_write(logs, "cfg", GH_LOG_DEBUG, "from config"));
    log_file f;
    read_named(logs, "cfg", &f);
    CHECK_EQ(f.count, 2);
    check_line(&f.lines[1], g_main_thread, "cfg", "DEBUG", "from config");
    log_free(&f);
    TU_PATH(want, "%s/my-logs/cfg/cfg.log", l.ws);
    CHECK(tu_exists(want));
    gh_logs_free(logs);

    /* An absolute rpc-logs-folder. */
    TU_PATH(want, "%s/abs-logs", l.base);
    CHECK_OK(gh_config_update(gh_config_set_item(set, "rpc-logs-folder"), want));
    CHECK_OK(gh_logs_new_from_config(set, &logs));
    CHECK_STR(gh_logs_folder(logs), want);
    gh_logs_free(logs);

    gh_config_set_free(set);
    for (size_t i = 0; i < n; i++) gh_config_free(items[i]);
    gh_free(items);
    tu_layout_free(&l);
}

/* ------------------------------------------------------------------------ */
/* Rollover                                                                 */
/* ------------------------------------------------------------------------ */

/* "roll.log.YYYY-MM-DD_hh-mm-ss" */
static int is_rolled_name(const char *name) {
    static const char prefix[] = "roll.log.";
    if (strncmp(name, prefix, sizeof prefix - 1) != 0) return 0;
    const char *s = name + sizeof prefix - 1;
    return strlen(s) == 19 && digits(s, 4) && s[4] == '-' && digits(s + 5, 2) &&
           s[7] == '-' && digits(s + 8, 2) && s[10] == '_' && digits(s + 11, 2) &&
           s[13] == '-' && digits(s + 14, 2) && s[16] == '-' && digits(s + 17, 2);
}

/* The folder holds roll.log and exactly one rolled file, whose path goes to
 * |rolled|; nothing else. */
static void check_one_backup(const char *dir, char *rolled, size_t size) {
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int current = 0, backups = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (strcmp(e->d_name, "roll.log") == 0) {
            current++;
        } else {
            CHECK_MSG(is_rolled_name(e->d_name), "unexpected file %s/%s", dir, e->d_name);
            backups++;
            int n = snprintf(rolled, size, "%s/%s", dir, e->d_name);
            CHECK(n > 0 && (size_t)n < size);
        }
    }
    closedir(d);
    CHECK_EQ(current, 1);
    CHECK_EQ(backups, 1);
}

static void test_rollover(void) {
    char base[512], dir[700], current[800], rolled[800];
    tu_subdir(base, sizeof base, g_tmp, "rollover");
    gh_logs *logs = NULL;
    CHECK_OK(gh_logs_new(base, "S", 1, 1, NULL, &logs));
    TU_PATH(dir, "%s/roll", base);
    TU_PATH(current, "%s/roll.log", dir);

    static const char *const records[] = {"first record", "second record",
                                          "third record", "fourth record"};
    CHECK_OK(gh_logs_write(logs, "roll", GH_LOG_INFO, records[0]));
    for (int i = 1; i < 4; i++) {
        /* Let the wall clock pass the one-second period (not synchronisation). */
        tu_sleep(1.1);
        CHECK_OK(gh_logs_write(logs, "roll", GH_LOG_INFO, records[i]));
        check_one_backup(dir, rolled, sizeof rolled);
        log_file f;
        read_log(rolled, &f);
        CHECK_MSG(count_message(&f, records[i - 1]) == 1, "%s lacks \"%s\"", rolled,
                  records[i - 1]);
        for (int j = 0; j < 4; j++) {
            if (j != i - 1) CHECK(count_message(&f, records[j]) == 0);
        }
        log_free(&f);
        read_log(current, &f);
        CHECK_EQ(count_message(&f, records[i]), 1);
        for (int j = 0; j < i; j++) CHECK(count_message(&f, records[j]) == 0);
        log_free(&f);
    }
    gh_logs_free(logs);
}

/* ------------------------------------------------------------------------ */
/* Threads                                                                  */
/* ------------------------------------------------------------------------ */

#define N_THREADS 8
#define N_RECORDS 100
#define PAD 300

static gh_logs *g_mt_logs;

static void record_text(char *out, size_t size, int t, int j) {
    int n = snprintf(out, size, "t%d r%d ", t, j);
    CHECK(n > 0 && (size_t)n + PAD < size);
    memset(out + n, 'a' + t, PAD);
    out[n + PAD] = '\0';
}

static void *mt_writer(void *arg) {
    int t = (int)(intptr_t)arg;
    char name[16], text[PAD + 64];
    snprintf(name, sizeof name, "writer-%d", t);
    for (int j = 0; j < N_RECORDS; j++) {
        record_text(text, sizeof text, t, j);
        if (j % 2) {
            CHECK_OK(gh_logs_write_record(g_mt_logs, "mt", NULL, GH_LOG_INFO, name, NULL, NULL,
                                          0, text));
        } else {
            CHECK_OK(gh_logs_write(g_mt_logs, "mt", GH_LOG_WARNING, text));
        }
    }
    return NULL;
}

static void test_threads(void) {
    char base[512];
    tu_subdir(base, sizeof base, g_tmp, "threads");
    CHECK_OK(gh_logs_new(base, "H", 1, 10, NULL, &g_mt_logs));
    pthread_t th[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        CHECK(pthread_create(&th[t], NULL, mt_writer, (void *)(intptr_t)t) == 0);
    }
    for (int t = 0; t < N_THREADS; t++) CHECK(pthread_join(th[t], NULL) == 0);

    static const char *const files[] = {"mt", "root"};
    for (size_t k = 0; k < 2; k++) {
        log_file f;
        read_named(g_mt_logs, files[k], &f);
        /* root.log also holds mt's header */
        size_t headers = k == 0 ? 1 : 2;
        CHECK_EQ(f.count, headers + N_THREADS * N_RECORDS);
        char header[200];
        header_text(header, sizeof header, files[k]);
        CHECK_STR(f.lines[0].message, header);
        static unsigned char seen[N_THREADS][N_RECORDS];
        memset(seen, 0, sizeof seen);
        for (size_t i = 1; i < f.count; i++) {
            const log_line *l = &f.lines[i];
            if (strstr(l->message, "---------- New ") == l->message) continue;
            int t = -1, j = -1;
            CHECK_MSG(sscanf(l->message, "t%d r%d ", &t, &j) == 2 && t >= 0 &&
                          t < N_THREADS && j >= 0 && j < N_RECORDS,
                      "bad record \"%s\"", l->message);
            char want[PAD + 64];
            record_text(want, sizeof want, t, j);
            CHECK_STR(l->message, want);
            CHECK_STR(l->name, "mt");
            if (j % 2) {
                char name[16];
                snprintf(name, sizeof name, "writer-%d", t);
                CHECK_STR(l->thread, name);
                CHECK_STR(l->level, "INFO");
            } else {
                CHECK_STR(l->level, "WARNING");
            }
            CHECK_MSG(!seen[t][j], "record t%d r%d twice", t, j);
            seen[t][j] = 1;
        }
        log_free(&f);
    }
    gh_logs_free(g_mt_logs);
    g_mt_logs = NULL;
}


/* ------------------------------------------------------------------------ */
/* A host's level source                                                    */
/* ------------------------------------------------------------------------ */

/* A C host's own logging system: own levels and enablement per name, Python's
 * rules (dotted inheritance, the root at WARNING), the records it took. */
typedef struct {
    char name[64];
    int level;
    int enabled;
} host_logger;

static struct {
    pthread_mutex_t mu;
    host_logger loggers[32];
    size_t count;
    int emitted;
    char last_name[64];
    char last_message[256];
    int last_level;
    int frees;
    int thresholds; /* calls of host_threshold */
} g_host = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Locked by the caller. */
static host_logger *host_find(const char *name, int make) {
    for (size_t i = 0; i < g_host.count; i++) {
        if (strcmp(g_host.loggers[i].name, name) == 0) return &g_host.loggers[i];
    }
    if (!make) return NULL;
    CHECK(g_host.count < 32 && strlen(name) < 64);
    host_logger *l = &g_host.loggers[g_host.count++];
    snprintf(l->name, sizeof l->name, "%s", name);
    l->level = 0;
    l->enabled = 1;
    return l;
}

static void host_reset_table(void) {
    pthread_mutex_lock(&g_host.mu);
    g_host.count = 0;
    host_find("", 1)->level = GH_LOG_WARNING;
    g_host.emitted = 0;
    pthread_mutex_unlock(&g_host.mu);
}

static void host_get(void *ud, const char *name, int *level, int *enabled) {
    CHECK(ud == &g_host);
    pthread_mutex_lock(&g_host.mu);
    host_logger *l = host_find(name, 0);
    *level = l ? l->level : 0;
    *enabled = l ? l->enabled : 1;
    pthread_mutex_unlock(&g_host.mu);
}

static int host_threshold(void *ud, const char *name) {
    CHECK(ud == &g_host);
    pthread_mutex_lock(&g_host.mu);
    host_logger *own = host_find(name, 0);
    int t = -1;
    if (own && !own->enabled) t = 1000;
    char n[64];
    snprintf(n, sizeof n, "%s", name);
    while (t < 0 && n[0]) {
        host_logger *l = host_find(n, 0);
        if (l && l->level > 0) t = l->level;
        char *dot = strrchr(n, '.');
        if (dot) *dot = 0; else n[0] = 0;
    }
    if (t < 0) t = host_find("", 1)->level;
    g_host.thresholds++;
    pthread_mutex_unlock(&g_host.mu);
    return t;
}

static void host_set(void *ud, const char *name, int level, int enabled) {
    CHECK(ud == &g_host);
    pthread_mutex_lock(&g_host.mu);
    host_logger *l = host_find(name, 1);
    if (level >= 0) l->level = level;
    if (enabled >= 0) l->enabled = enabled;
    pthread_mutex_unlock(&g_host.mu);
}

static int host_emit(void *ud, const char *name, int level, const char *thread,
                     const char *file, const char *function, int line,
                     const char *message) {
    (void)thread, (void)file, (void)function, (void)line;
    CHECK(ud == &g_host);
    pthread_mutex_lock(&g_host.mu);
    g_host.emitted++;
    snprintf(g_host.last_name, sizeof g_host.last_name, "%s", name);
    snprintf(g_host.last_message, sizeof g_host.last_message, "%s", message);
    g_host.last_level = level;
    pthread_mutex_unlock(&g_host.mu);
    return 1;
}

static void host_free(void *ud) {
    CHECK(ud == &g_host);
    g_host.frees++;
}

static int host_level(const char *name) {
    pthread_mutex_lock(&g_host.mu);
    host_logger *l = host_find(name, 0);
    int level = l ? l->level : 0;
    pthread_mutex_unlock(&g_host.mu);
    return level;
}

static void test_level_source(void) {
    tu_layout l;
    tu_layout_new(&l, g_tmp, "level-source");
    host_reset_table();
    gh_logs *before = NULL;
    CHECK_OK(gh_logs_new("before", "H", 1, 10, l.folders, &before));

    /* Refused without threshold or set: nothing changes, the user_data is freed. */
    CHECK_RC(gh_logs_use_level_source(host_get, NULL, host_set, NULL, &g_host, host_free),
             GH_ERR_INVALID_ARGUMENT);
    CHECK_EQ(g_host.frees, 1);
    CHECK_EQ(gh_logs_enabled(before, "x", GH_LOG_INFO), 1); /* the library's root INFO */

    write_loggers_json(l.user, "{\"root\": \"INFO\", \"svc\": \"DEBUG\", \"off\": false, "
                               "\"bad\": \"NOPE\", \"twice\": \"ERROR\"}");
    write_loggers_json(l.ws, "{\"twice\": true}");
    CHECK_OK(gh_logs_use_level_source(host_get, host_threshold, host_set, host_emit, &g_host,
                                      host_free));
    gh_logs *logs = NULL;
    CHECK_OK(gh_logs_new("logs", "H", 1, 10, l.folders, &logs));
    /* The layers, applied to the host (a later layer's value replaces an earlier one's). */
    CHECK_EQ(host_level(""), GH_LOG_INFO);
    CHECK_EQ(host_level("svc"), GH_LOG_DEBUG);
    CHECK_EQ(host_level("twice"), 0);
    CHECK_EQ(host_level("bad"), 0);
    CHECK_EQ(g_host.emitted, 1); /* the unknown level's warning: a record of the root */
    CHECK_STR(g_host.last_name, "");
    CHECK_EQ(g_host.last_level, GH_LOG_WARNING);
    CHECK(strstr(g_host.last_message, "Ignoring unknown level NOPE for logger bad") != NULL);

    /* Level decisions ask the host (logs made before it keep their own). */
    CHECK_EQ(gh_logs_enabled(logs, "svc.child", GH_LOG_DEBUG), 1);
    CHECK_EQ(gh_logs_enabled(logs, "other", GH_LOG_INFO), 1);
    CHECK_EQ(gh_logs_enabled(logs, "other", GH_LOG_DEBUG), 0);
    CHECK_EQ(gh_logs_enabled(logs, "off", GH_LOG_CRITICAL), 0);
    host_set(&g_host, "other", GH_LOG_ERROR, -1); /* the host changes it itself */
    CHECK_EQ(gh_logs_enabled(logs, "other", GH_LOG_WARNING), 0);
    CHECK_EQ(gh_logs_enabled(before, "other", GH_LOG_WARNING), 1);

    /* get / set / reset on the host's table. */
    logger_status st;
    op_ok(gh_logs_get, logs, tu_pb_filter(0, NAMES("", "svc", "off", "other", "unset")), &st);
    CHECK_EQ(st.count, 5);
    check_config(&st.items[0], "root", 1, GH_LOG_INFO);
    check_config(&st.items[1], "svc", 1, GH_LOG_DEBUG);
    check_config(&st.items[2], "off", 0, 0);
    check_config(&st.items[3], "other", 1, GH_LOG_ERROR);
    check_config(&st.items[4], "unset", 1, 0);
    status_clear(&st);
    op_ok(gh_logs_set, logs, logger_update(SETTINGS({"svc", 1, GH_LOG_ERROR}, {"new", 0, 0})), &st);
    status_clear(&st);
    CHECK_EQ(host_level("svc"), GH_LOG_ERROR);
    CHECK_EQ(gh_logs_enabled(logs, "new", GH_LOG_CRITICAL), 0);
    tu_json_map m;
    read_loggers_json(l.ws, &m);
    int is_bool = -1;
    CHECK_STR(tu_json_get(&m, "svc", &is_bool), "ERROR");
    CHECK_STR(tu_json_get(&m, "new", &is_bool), "false");
    tu_json_free(&m);
    op_ok(gh_logs_reset, logs, tu_pb_filter(0, NAMES("svc", "new", "")), &st);
    CHECK_EQ(st.count, 3);
    check_config(&st.items[0], "svc", 1, 0);
    check_config(&st.items[1], "new", 1, 0);
    check_config(&st.items[2], "root", 1, GH_LOG_WARNING); /* from before the layers */
    status_clear(&st);
    CHECK_EQ(host_level(""), GH_LOG_WARNING);

    /* The library's records go to the host, which writes them (here: keeps them). */
    int emitted = g_host.emitted;
    CHECK_OK(gh_logs_write(logs, "other", GH_LOG_ERROR, "to the host"));
    CHECK_OK(gh_logs_write(logs, "other", GH_LOG_WARNING, "below the host's level"));
    CHECK_EQ(g_host.emitted, emitted + 1);
    CHECK_STR(g_host.last_message, "to the host");
    CHECK_STR(g_host.last_name, "other");

    /* Handled records: one file, no level check, the record's own logger named. */
    CHECK_OK(gh_logs_write_handled(logs, "other", "other.child", GH_LOG_DEBUG, "T", "f.c",
                                   "fn", 7, "handled"));
    CHECK_RC(gh_logs_write_handled(logs, "other", NULL, 0, NULL, NULL, NULL, 0, "m"),
             GH_ERR_INVALID_ARGUMENT);
    log_file f;
    read_named(logs, "other", &f);
    CHECK_EQ(f.count, 1); /* no header: INFO is below the host's ERROR for "other" */
    check_line(&f.lines[0], "T", "other.child", "DEBUG", "handled - f.c:fn:7");
    log_free(&f);
    read_named(logs, "root", &f);
    CHECK(find_message(&f, "handled - f.c:fn:7") == NULL && find_message(&f, "to the host") == NULL);
    log_free(&f);

    /* Cached thresholds (0.5.0): the host is asked once per logger until it says its
     * levels changed; the library's own level changes drop the answers too. */
    CHECK_OK(gh_logs_cache_thresholds(1));
    int asked = g_host.thresholds;
    CHECK_EQ(gh_logs_enabled(logs, "cached", GH_LOG_ERROR), 1); /* the root's WARNING */
    CHECK_EQ(gh_logs_enabled(logs, "cached", GH_LOG_INFO), 0);
    CHECK_EQ(gh_logs_enabled(logs, "cached", GH_LOG_WARNING), 1);
    CHECK_EQ(g_host.thresholds, asked + 1);
    host_set(&g_host, "cached", GH_LOG_DEBUG, -1); /* unannounced: the answer kept */
    CHECK_EQ(gh_logs_enabled(logs, "cached", GH_LOG_INFO), 0);
    gh_logs_levels_changed();
    CHECK_EQ(gh_logs_enabled(logs, "cached", GH_LOG_INFO), 1);
    CHECK_EQ(g_host.thresholds, asked + 2);
    op_ok(gh_logs_set, logs, logger_update(SETTINGS({"cached", 1, GH_LOG_ERROR})), &st);
    status_clear(&st);
    CHECK_EQ(gh_logs_enabled(logs, "cached", GH_LOG_WARNING), 0); /* the set dropped it */
    CHECK_OK(gh_logs_cache_thresholds(0));
    host_set(&g_host, "cached", GH_LOG_DEBUG, -1);
    asked = g_host.thresholds;
    CHECK_EQ(gh_logs_enabled(logs, "cached", GH_LOG_INFO), 1); /* off: asked every time */
    CHECK_EQ(gh_logs_enabled(logs, "cached", GH_LOG_INFO), 1);
    CHECK_EQ(g_host.thresholds, asked + 2);
    gh_logs_levels_changed(); /* without a cache: nothing */

    /* Uninstalled: the source's user_data is freed, the logs made with it are detached. */
    CHECK_OK(gh_logs_use_level_source(NULL, NULL, NULL, NULL, NULL, NULL));
    CHECK_EQ(g_host.frees, 2);
    emitted = g_host.emitted;
    CHECK_EQ(gh_logs_enabled(logs, "other", GH_LOG_CRITICAL), 0);
    CHECK_OK(gh_logs_write(logs, "other", GH_LOG_CRITICAL, "dropped"));
    CHECK_EQ(g_host.emitted, emitted);
    op_fails(gh_logs_get, logs, tu_pb_filter(0, NAMES("svc")), GH_RC_ERROR);
    gh_logs *after = NULL;
    CHECK_OK(gh_logs_new("after", "H", 1, 10, l.folders, &after));
    CHECK_EQ(gh_logs_enabled(after, "svc", GH_LOG_INFO), 1); /* the library's levels again */
    /* Uninstalling with a user_data frees it at once. */
    CHECK_OK(gh_logs_use_level_source(NULL, NULL, NULL, NULL, &g_host, host_free));
    CHECK_EQ(g_host.frees, 3);
    gh_logs_free(after);
    gh_logs_free(logs);
    gh_logs_free(before);
    tu_layout_free(&l);
}

/* ------------------------------------------------------------------------ */

int main(void) {
    g_tmp = tu_tmpdir();
    snprintf(g_main_thread, sizeof g_main_thread, "MainThread");

    test_write();
    test_new_rules();
    test_layers();
    test_malformed();
    test_service();
    test_from_config();
    test_threads();
    test_rollover();
    test_reset_layered();
    test_level_source(); /* last: the source is process-wide */

    tu_rmtree(g_tmp);
    free(g_tmp);
    printf("test_helper_logs: OK\n");
    return 0;
}
