/*
 * test_rpc_server.c — the managed RPC server and client (grpc-helper's
 * RpcServer and RpcClient: gh_rpc_service_*, gh_rpc_server_*, gh_rpc_client_*,
 * gh_rpc_responses_*, gh_rpc_result_code, gh_rpc_error) through
 * <grpchelper.h> only, over real sockets (port 0 → gh_rpc_server_port), with
 * hand-encoded messages:
 * - a sample service "sample" / test.Sample ("sample:1.2.3", API 1..2) of C
 *   handlers: "ok" (the Filter's names joined into ResultStatus r.msg), "fail"
 *   (gh_rpc_error, then a code from the request: the error response holding
 *   only r with that code, message and stack, status OK; gh_rpc_result_code;
 *   raise_errors; codes ≥ GH_RC_ERROR_CUSTOM returned even when raising; an
 *   error after the single response was sent ignored; logged with its stack in
 *   the manager's log file, <logs>/<logger>/<logger>.log, the logger named as
 *   the service when NULL), "stream" (one response per name, then the error as
 *   the last message), "whoami" (the metadata client, user, host, ip and
 *   api_version; empty names not sent), "hold" (waits until its call ends) and
 *   "missing" (fn NULL: UNIMPLEMENTED → GH_RC_ERROR_RPC naming the method and
 *   the target); strings given to gh_rpc_service_* copied;
 * - free_user_data of methods and managers called once, when the service and
 *   every server serving it are freed (either order, two servers), at once
 *   when gh_rpc_service_add_method / set_manager fail;
 * - the load hook, on the thread of gh_rpc_server_new: the auto-client (srv.info
 *   lists srv, config, log and the user services; a user service answers; it
 *   stays usable until gh_rpc_server_free), gh_rpc_server_port / is_running /
 *   logs / config inside load; a failing load (its code and message from
 *   gh_rpc_server_new, the shutdown hook called, the user data freed, the port
 *   free again); the shutdown hook once per server shutdown, while calls are
 *   still pending;
 * - srv.info through a client and gh_rpc_server_info (names, versions
 *   "grpchelper:<GH_VERSION_STR>" and "sample:1.2.3", API versions, unknown
 *   names → GH_RC_ERROR_ITEM_UNKNOWN, ignore_unknown);
 * - API versions both ways (stubs of 0..4 on services of API 1..2, 2..3 and on
 *   ConfigService), the handler never reached on a version error;
 * - config and log services through a client (user and static items passed as
 *   gh_config, gh_rpc_server_config on the same set; log.get of "" → root,
 *   log.set seen through gh_rpc_server_logs);
 * - gh_rpc_client_stream with raise_errors 1 and 0, an unimplemented streaming
 *   method, a version error, gh_rpc_responses_free cancelling the call;
 * - a call's deadline, gh_rpc_client_free with a call running, 8 threads
 *   calling through one client, rpc-max-workers;
 * - gh_rpc_server_new errors: the config set's and the logs', a busy port (a
 *   plain socket, another server), GH_RPC_WITH_EVENTS;
 * - gh_rpc_server_shutdown with a call in flight (rpc-shutdown-grace 0.3: the
 *   call cancelled after the grace, a second caller waiting for the first,
 *   then at once); srv.shutdown by RPC with timeout -1 and 1;
 * - gh_rpc_server_begin_shutdown from outside (returns with a call held, no new
 *   calls, the end once the call is cancelled; idempotent) and from one of the
 *   server's handlers (answered), then gh_rpc_server_wait_shutdown;
 *   gh_rpc_server_release from a handler, from the main thread with a call
 *   held (nothing freed until it ends) and after a shutdown: the user data
 *   freed on the library's gh-rpc-shutdown thread (counted with a condition
 *   variable), the port free again;
 * - the client's retry on UNAVAILABLE (timing bounds, unary and streaming, a
 *   server that appears later), timeout 0, unknown stubs;
 * - the SIGUSR2 debug dump (GH_RPC_DEBUG_SIGNAL) naming a held call, with the
 *   text of gh_rpc_server_set_dump_fn (replaced, on the signal thread);
 * - gh_rpc_server_handle_exit_signals in forked children (SIGTERM, SIGINT,
 *   twice → status 1), and the default dispositions without the opt-ins.
 * - proxied services: forwarding to a registered backend, a backend
 *   registering itself (gh_rpc_service_set_proxied), and the config service of
 *   a main server merged with its proxied server's (get, conflicts, set and
 *   reset on both, names checked against the merged items).
 * Everything happens below one mkdtemp folder, removed at the end.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpchelper.h>

#include "check.h"
#include "testutil.h"

_Static_assert(GH_RPC_WITH_EVENTS == 0x1 && GH_RPC_DEBUG_SIGNAL == 0x2, "flags");
_Static_assert(GH_RC_ERROR_API_CLIENT_TOO_OLD == 11 &&
                   GH_RC_ERROR_API_SERVER_TOO_OLD == 12 && GH_RC_ERROR_RPC == 13,
               "result codes");

#define SAMPLE_SERVICE "test.Sample"
#define SAMPLE_VERSION "sample:1.2.3"
#define NEW_SERVICE "test.SampleNew"
#define NEW_VERSION "sample-new:0.1"
#define BUILTIN_VERSION "grpchelper:" GH_VERSION_STR
/* The code "stream" fails with after its messages. */
#define STREAM_CODE GH_RC_ERROR_ITEM_BUSY

static char *g_tmp;

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NO_NAMES ((const char *const *)NULL)

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */
/* ------------------------------------------------------------------------ */

/* ResultStatus { 1: Result { 1: code; 2: msg } }. */
static tu_buf result_status(int code, const char *msg) {
    tu_buf r = {0}, b = {0};
    if (code != 0) tu_pb_varint(&r, 1, (uint64_t)code);
    if (msg != NULL && msg[0] != '\0') tu_pb_string(&r, 2, msg);
    tu_pb_message(&b, 1, &r);
    tu_buf_free(&r);
    return b;
}

/* The length-delimited fields |field| of a message, up to |max|; returns how
 * many there are. */
static size_t pb_subs(const uint8_t *data, size_t len, int field,
                      const uint8_t **ptrs, size_t *lens, size_t max) {
    tu_pb_reader r;
    tu_pb_field f;
    size_t n = 0;
    tu_pb_reader_init(&r, data, len);
    while (tu_pb_next(&r, &f)) {
        if (f.field != field) continue;
        CHECK_MSG(f.wire == 2, "field %d is not length-delimited", field);
        if (n < max) {
            ptrs[n] = f.bytes;
            lens[n] = f.len;
        }
        n++;
    }
    return n;
}

/* The last |field| of a message in *out (it must have wire type |wire|): 1,
 * or 0 when absent. */
static int pb_last(const uint8_t *data, size_t len, int field, int wire, tu_pb_field *out) {
    tu_pb_reader r;
    tu_pb_field f;
    int found = 0;
    tu_pb_reader_init(&r, data, len);
    while (tu_pb_next(&r, &f)) {
        if (f.field != field) continue;
        CHECK_MSG(f.wire == wire, "field %d has wire type %d", field, f.wire);
        *out = f;
        found = 1;
    }
    return found;
}

/* The last string |field| of a message, malloc'd ("" when absent). */
static char *pb_str(const uint8_t *data, size_t len, int field) {
    tu_pb_field f;
    if (pb_last(data, len, field, 2, &f)) return tu_pb_strdup(&f);
    char *s = strdup("");
    CHECK(s != NULL);
    return s;
}

/* The last varint |field| of a message (0 when absent). */
static uint64_t pb_num(const uint8_t *data, size_t len, int field) {
    tu_pb_field f;
    return pb_last(data, len, field, 0, &f) ? f.varint : 0;
}

/* The Result r (field 1) of a response. */
typedef struct {
    int present;
    int code;
    char *msg;
    char *stack;
} result_t;

static void result_of(const uint8_t *data, size_t len, result_t *res) {
    const uint8_t *p = NULL;
    size_t l = 0;
    size_t n = pb_subs(data, len, 1, &p, &l, 1);
    CHECK(n <= 1);
    res->present = n == 1;
    res->code = n ? (int)pb_num(p, l, 1) : 0;
    res->msg = n ? pb_str(p, l, 2) : strdup("");
    res->stack = n ? pb_str(p, l, 3) : strdup("");
    CHECK(res->msg != NULL && res->stack != NULL);
}

static void result_clear(result_t *res) {
    free(res->msg);
    free(res->stack);
    memset(res, 0, sizeof *res);
}

/* The request names of a Filter (copies). */
#define MAX_NAMES 16
typedef struct {
    size_t count;
    char *names[MAX_NAMES];
    int ignore_unknown;
} names_t;

static void names_decode(const uint8_t *data, size_t len, names_t *out) {
    memset(out, 0, sizeof *out);
    tu_pb_reader r;
    tu_pb_field f;
    tu_pb_reader_init(&r, data, len);
    while (tu_pb_next(&r, &f)) {
        if (f.field == 1) {
            CHECK(out->count < MAX_NAMES);
            out->names[out->count++] = tu_pb_strdup(&f);
        } else if (f.field == 2) {
            out->ignore_unknown = f.varint != 0;
        }
    }
}

static void names_free(names_t *n) {
    for (size_t i = 0; i < n->count; i++) free(n->names[i]);
    memset(n, 0, sizeof *n);
}

/* The names joined with ",", malloc'd. */
static char *names_join(const names_t *n) {
    size_t total = 1;
    for (size_t i = 0; i < n->count; i++) total += strlen(n->names[i]) + 1;
    char *s = calloc(1, total);
    CHECK(s != NULL);
    for (size_t i = 0; i < n->count; i++) {
        if (i > 0) strcat(s, ",");
        strcat(s, n->names[i]);
    }
    return s;
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of the ServiceInfo items (field 2) of a MultiServiceInfo, sorted
 * and joined with ",", malloc'd. */
static char *info_names(const uint8_t *data, size_t len) {
    const uint8_t *p[MAX_NAMES];
    size_t l[MAX_NAMES];
    size_t n = pb_subs(data, len, 2, p, l, MAX_NAMES);
    CHECK(n <= MAX_NAMES);
    names_t names = {0};
    for (size_t i = 0; i < n; i++) names.names[names.count++] = pb_str(p[i], l[i], 1);
    qsort(names.names, names.count, sizeof names.names[0], compare_strings);
    char *s = names_join(&names);
    names_free(&names);
    return s;
}

/* ------------------------------------------------------------------------ */
/* The sample service                                                       */
/* ------------------------------------------------------------------------ */

typedef enum { LOAD_CHECK, LOAD_FAIL } load_mode;

typedef struct {
    atomic_int method_frees;
    atomic_int manager_frees;
    atomic_int loads;
    atomic_int shutdowns;
    atomic_int ok_calls;
    atomic_int hold_cancelled;
    tu_counter held;            /* hold calls entered */
    tu_counter hold_done;       /* hold calls returned */
    tu_counter shutdown_hooks;  /* shutdown hook calls */
    tu_counter stream_cancelled; /* "stream" calls cancelled at "wait" */
    load_mode load;
    pthread_t new_thread;       /* the thread that calls gh_rpc_server_new */
    /* What the last load hook saw. */
    int load_on_new_thread;
    gh_rpc_client *auto_client; /* valid until gh_rpc_server_free, as: */
    gh_logs *load_logs;
    gh_config_set *load_config;
    int load_port;
    int load_running;
    int load_has_logs;
    int load_has_config;
    char load_grace[32];
    char load_info[256];
    char load_ok[64];
    /* What the last shutdown hook saw: hold calls returned by then. */
    long hold_done_at_shutdown;
} sample_state;

static void state_init(sample_state *st, load_mode load) {
    memset(st, 0, sizeof *st);
    atomic_init(&st->method_frees, 0);
    atomic_init(&st->manager_frees, 0);
    atomic_init(&st->loads, 0);
    atomic_init(&st->shutdowns, 0);
    atomic_init(&st->ok_calls, 0);
    atomic_init(&st->hold_cancelled, 0);
    tu_counter_init(&st->held);
    tu_counter_init(&st->hold_done);
    tu_counter_init(&st->shutdown_hooks);
    tu_counter_init(&st->stream_cancelled);
    st->load = load;
    st->new_thread = pthread_self();
}

static void state_destroy(sample_state *st) {
    tu_counter_destroy(&st->held);
    tu_counter_destroy(&st->hold_done);
    tu_counter_destroy(&st->shutdown_hooks);
    tu_counter_destroy(&st->stream_cancelled);
}

static void method_free(void *p) { atomic_fetch_add(&((sample_state *)p)->method_frees, 1); }
static void manager_free(void *p) { atomic_fetch_add(&((sample_state *)p)->manager_frees, 1); }

/* The free_user_data calls so far: |methods| of methods, |managers| of
 * managers. */
#define CHECK_FREES(st, methods, managers) \
    check_frees_((st), (methods), (managers), __LINE__)
static void check_frees_(sample_state *st, int methods, int managers, int line) {
    int m = atomic_load(&st->method_frees), g = atomic_load(&st->manager_frees);
    CHECK_MSG(m == methods && g == managers,
              "line %d: %d method and %d manager free_user_data calls, expected %d and %d",
              line, m, g, methods, managers);
}

/* Reads the single request of a handler's call as a Filter. */
static void read_names(gh_server_call *call, names_t *out) {
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_EQ(gh_server_call_read(call, &data, &len), 1);
    names_decode(data, len, out);
}

static int send_status(gh_server_call *call, int code, const char *msg) {
    tu_buf b = result_status(code, msg);
    int rc = gh_server_call_send(call, b.data, b.len, 0);
    tu_buf_free(&b);
    return rc;
}

/* "ok": ResultStatus with r.msg = the names joined with ",". */
static int sample_ok(gh_server_call *call, void *user_data) {
    sample_state *st = user_data;
    atomic_fetch_add(&st->ok_calls, 1);
    names_t n;
    read_names(call, &n);
    char *joined = names_join(&n);
    CHECK_OK(send_status(call, 0, joined));
    free(joined);
    names_free(&n);
    return GH_RC_OK;
}

/* "fail": names = [code, message, stack ("-": NULL), "send-first"?]. */
static int sample_fail(gh_server_call *call, void *user_data) {
    (void)user_data;
    names_t n;
    read_names(call, &n);
    CHECK(n.count >= 2);
    int code = atoi(n.names[0]);
    if (n.count >= 4 && strcmp(n.names[3], "send-first") == 0) {
        CHECK_OK(send_status(call, 0, "sent"));
    }
    const char *stack = n.count >= 3 && strcmp(n.names[2], "-") != 0 ? n.names[2] : NULL;
    gh_rpc_error(n.names[1], stack);
    names_free(&n);
    return code;
}

/* "stream": one ResultStatus per name (r.msg = the name), then STREAM_CODE;
 * at a name "wait", waits (bounded) until the client cancels the call. */
static int sample_stream(gh_server_call *call, void *user_data) {
    sample_state *st = user_data;
    names_t n;
    read_names(call, &n);
    for (size_t i = 0; i < n.count; i++) {
        if (strcmp(n.names[i], "wait") == 0) {
            CHECK_EQ(gh_server_call_wait_done(call, TU_WAIT_LIMIT), 1);
            CHECK(gh_server_call_is_cancelled(call));
            tu_counter_add(&st->stream_cancelled, 1);
            names_free(&n);
            return GH_RC_OK;
        }
        CHECK_OK(send_status(call, 0, n.names[i]));
    }
    char msg[64];
    snprintf(msg, sizeof msg, "stream failed after %zu", n.count);
    names_free(&n);
    gh_rpc_error(msg, "stream stack");
    return STREAM_CODE;
}

/* "whoami": r.msg = "client|user|host|ip|api_version" from the request
 * metadata ("-" for a key not sent). */
static int sample_whoami(gh_server_call *call, void *user_data) {
    (void)user_data;
    names_t n;
    read_names(call, &n);
    names_free(&n);
    static const char *const keys[] = {"client", "user", "host", "ip", "api_version"};
    char out[1024] = "";
    const gh_metadata *md = gh_server_call_request_metadata(call);
    for (size_t i = 0; i < 5; i++) {
        const uint8_t *v[2];
        size_t l[2];
        size_t count = tu_md_values(md, keys[i], v, l, 2);
        CHECK_MSG(count <= 1, "metadata %s sent %zu times", keys[i], count);
        if (i > 0) strcat(out, "|");
        if (count == 0) {
            strcat(out, "-");
        } else {
            CHECK(strlen(out) + l[0] + 2 < sizeof out);
            strncat(out, (const char *)v[0], l[0]);
        }
    }
    CHECK_OK(send_status(call, 0, out));
    return GH_RC_OK;
}

/* "hold": waits (bounded) until its call ends, cancelled by the client or a
 * shutdown. */
static int sample_hold(gh_server_call *call, void *user_data) {
    sample_state *st = user_data;
    tu_counter_add(&st->held, 1);
    CHECK_EQ(gh_server_call_wait_done(call, TU_WAIT_LIMIT), 1);
    if (gh_server_call_is_cancelled(call)) atomic_fetch_add(&st->hold_cancelled, 1);
    tu_counter_add(&st->hold_done, 1);
    return GH_RC_OK;
}

/* The manager's load hook (see sample_state). */
static int sample_load(gh_rpc_server *server, gh_rpc_client *client, void *user_data) {
    sample_state *st = user_data;
    atomic_fetch_add(&st->loads, 1);
    CHECK(server != NULL && client != NULL);
    st->load_on_new_thread = pthread_equal(pthread_self(), st->new_thread);
    st->auto_client = client;
    st->load_port = gh_rpc_server_port(server);
    st->load_running = gh_rpc_server_is_running(server);
    gh_logs *logs = gh_rpc_server_logs(server);
    st->load_logs = logs;
    st->load_has_logs = logs != NULL;
    if (logs != NULL) {
        CHECK_OK(gh_logs_write(logs, "SampleManager", GH_LOG_INFO, "loading sample"));
    }
    gh_config_set *cfg = gh_rpc_server_config(server);
    st->load_config = cfg;
    st->load_has_config = cfg != NULL;
    if (cfg != NULL) {
        gh_config *grace = gh_config_set_item(cfg, "rpc-shutdown-grace");
        CHECK(grace != NULL);
        char *v = gh_config_value(grace);
        snprintf(st->load_grace, sizeof st->load_grace, "%s", v);
        gh_free(v);
    }
    if (st->load == LOAD_FAIL) {
        gh_rpc_error("sample load refused", "load stack");
        return GH_RC_ERROR_STATE_UNEXPECTED;
    }
    /* The auto-client: stubs of every service, named as the services. */
    uint8_t *resp = NULL;
    size_t len = 0;
    tu_buf req = tu_pb_filter(0, NO_NAMES);
    CHECK_OK(gh_rpc_client_call(client, "srv", "info", req.data, req.len, TU_WAIT_LIMIT,
                                &resp, &len));
    tu_buf_free(&req);
    char *names = info_names(resp, len);
    snprintf(st->load_info, sizeof st->load_info, "%s", names);
    free(names);
    gh_free(resp);
    req = tu_pb_filter(0, NAMES("from", "load"));
    CHECK_OK(gh_rpc_client_call(client, "sample", "ok", req.data, req.len, TU_WAIT_LIMIT,
                                &resp, &len));
    tu_buf_free(&req);
    result_t r;
    result_of(resp, len, &r);
    CHECK_EQ(r.code, 0);
    snprintf(st->load_ok, sizeof st->load_ok, "%s", r.msg);
    result_clear(&r);
    gh_free(resp);
    return GH_RC_OK;
}

static void sample_shutdown(void *user_data) {
    sample_state *st = user_data;
    atomic_fetch_add(&st->shutdowns, 1);
    st->hold_done_at_shutdown = tu_counter_get(&st->hold_done);
    tu_counter_add(&st->shutdown_hooks, 1);
}

/* The methods of the sample service; every one with |st| and method_free. */
#define SAMPLE_METHODS 7

/* The sample service; its manager (logger "SampleManager", load and shutdown
 * hooks) when |with_manager|. */
static gh_rpc_service *sample_service(sample_state *st, int with_manager) {
    gh_rpc_service *s = NULL;
    CHECK_OK(gh_rpc_service_new("sample", SAMPLE_SERVICE, SAMPLE_VERSION, 1, 2, &s));
    CHECK(s != NULL);
    CHECK_OK(gh_rpc_service_add_method(s, "ok", GH_UNARY, sample_ok, st, method_free));
    CHECK_OK(gh_rpc_service_add_method(s, "fail", GH_UNARY, sample_fail, st, method_free));
    CHECK_OK(gh_rpc_service_add_method(s, "stream", GH_SERVER_STREAMING, sample_stream, st,
                                       method_free));
    CHECK_OK(gh_rpc_service_add_method(s, "whoami", GH_UNARY, sample_whoami, st, method_free));
    CHECK_OK(gh_rpc_service_add_method(s, "hold", GH_UNARY, sample_hold, st, method_free));
    CHECK_OK(gh_rpc_service_add_method(s, "missing", GH_UNARY, NULL, st, method_free));
    CHECK_OK(gh_rpc_service_add_method(s, "missing-stream", GH_SERVER_STREAMING, NULL, st,
                                       method_free));
    if (with_manager) {
        CHECK_OK(gh_rpc_service_set_manager(s, "SampleManager", sample_load, sample_shutdown,
                                            st, manager_free));
    }
    return s;
}

/* ------------------------------------------------------------------------ */
/* Servers and clients                                                      */
/* ------------------------------------------------------------------------ */

static const char *const g_grace_cli[] = {"rpc-shutdown-grace=0.3"};

/* A server on |port| (0: any) with |services|, folders in a new layout
 * <g_tmp>/<name>, |cli| (NULL: rpc-shutdown-grace 0.3) and |flags|. */
static gh_rpc_server *server_new_cli(tu_layout *l, const char *name, int port,
                                     gh_rpc_service *const *services, size_t count,
                                     const char *const *cli, size_t cli_count, int flags) {
    tu_layout_new(l, g_tmp, name);
    gh_rpc_server *server = NULL;
    if (cli == NULL) {
        cli = g_grace_cli;
        cli_count = 1;
    }
    CHECK_OK(gh_rpc_server_new(port, services, count, l->folders, cli, cli_count, NULL, 0,
                               NULL, 0, flags, &server));
    CHECK(server != NULL);
    int bound = gh_rpc_server_port(server);
    CHECK_MSG(bound > 0 && bound < 65536 && (port == 0 || bound == port), "port %d", bound);
    return server;
}

static gh_rpc_server *server_new(tu_layout *l, const char *name, int port,
                                 gh_rpc_service *const *services, size_t count, int flags) {
    return server_new_cli(l, name, port, services, count, NULL, 0, flags);
}

/* A client of 127.0.0.1:|port| with the stubs srv (1), config (2), log (1),
 * sample (2). */
static gh_rpc_client *client_new(int port, double timeout, const char *name,
                                 int raise_errors) {
    gh_rpc_client *c = NULL;
    CHECK_OK(gh_rpc_client_new("127.0.0.1", port, timeout, name, raise_errors, &c));
    CHECK(c != NULL);
    CHECK_OK(gh_rpc_client_add_stub(c, "srv", "RpcServerService", 1));
    CHECK_OK(gh_rpc_client_add_stub(c, "config", "ConfigService", 2));
    CHECK_OK(gh_rpc_client_add_stub(c, "log", "LoggerService", 1));
    CHECK_OK(gh_rpc_client_add_stub(c, "sample", SAMPLE_SERVICE, 2));
    return c;
}

/* A unary call with |req| (freed), a deadline of TU_WAIT_LIMIT. */
static int rpc(gh_rpc_client *c, const char *stub, const char *method, tu_buf req,
               uint8_t **resp, size_t *len) {
    *resp = NULL;
    *len = 0;
    int rc = gh_rpc_client_call(c, stub, method, req.data, req.len, TU_WAIT_LIMIT, resp, len);
    tu_buf_free(&req);
    return rc;
}

/* A call that must succeed with a response without error: its r.msg
 * (malloc'd). */
static char *rpc_msg(gh_rpc_client *c, const char *stub, const char *method, tu_buf req) {
    uint8_t *resp = NULL;
    size_t len = 0;
    CHECK_OK(rpc(c, stub, method, req, &resp, &len));
    result_t r;
    result_of(resp, len, &r);
    CHECK_EQ(r.code, GH_RC_OK);
    CHECK_EQ(gh_rpc_result_code(resp, len), GH_RC_OK);
    char *msg = strdup(r.msg);
    CHECK(msg != NULL);
    result_clear(&r);
    gh_free(resp);
    return msg;
}

static void check_ok_call(gh_rpc_client *c, const char *stub, const char *const *names,
                          const char *want) {
    char *msg = rpc_msg(c, stub, "ok", tu_pb_filter(0, names));
    CHECK_STR(msg, want);
    free(msg);
}

/* A call that must fail with GH_ERR_RESULT |code|: the message (per thread,
 * as CHECK_RESULT's). */
static const char *rpc_fails(gh_rpc_client *c, const char *stub, const char *method,
                             tu_buf req, int code) {
    uint8_t *resp = NULL;
    size_t len = 0;
    const char *msg = CHECK_RESULT(rpc(c, stub, method, req, &resp, &len), code);
    CHECK(resp == NULL);
    return msg;
}

/* A call that must answer (raise_errors 0) with an error result of |code|:
 * the Result (cleared by the caller). */
static void rpc_error_result(gh_rpc_client *c, const char *stub, const char *method,
                             tu_buf req, int code, result_t *r) {
    uint8_t *resp = NULL;
    size_t len = 0;
    CHECK_OK(rpc(c, stub, method, req, &resp, &len));
    CHECK_EQ(gh_rpc_result_code(resp, len), code);
    result_of(resp, len, r);
    CHECK(r->present);
    CHECK_EQ(r->code, code);
    /* an error response holds only r */
    const uint8_t *p[4];
    size_t l[4];
    tu_pb_reader rd;
    tu_pb_field f;
    tu_pb_reader_init(&rd, resp, len);
    while (tu_pb_next(&rd, &f)) CHECK_EQ(f.field, 1);
    CHECK_EQ(pb_subs(resp, len, 1, p, l, 4), 1);
    gh_free(resp);
}

/* A TCP socket bound to |addr|:0 (host order) in *fd; its port. */
static int bound_socket(uint32_t addr, int *fd) {
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(*fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(addr);
    CHECK(bind(*fd, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t al = sizeof a;
    CHECK(getsockname(*fd, (struct sockaddr *)&a, &al) == 0);
    return ntohs(a.sin_port);
}

/* A port on 127.0.0.1 where nothing listens (bound, then released). */
static int free_port(void) {
    int fd = -1;
    int port = bound_socket(INADDR_LOOPBACK, &fd);
    close(fd);
    return port;
}

/* A client call on a thread of its own. */
typedef struct {
    gh_rpc_client *client;
    const char *stub;
    const char *method;
    const char *const *names;
    int stream;
    pthread_t thread;
    int rc;
    int result_code;
    char message[1024];
    double elapsed;
    char *msg; /* r.msg of a successful call */
} async_call;

static void *async_call_run(void *p) {
    async_call *a = p;
    tu_buf req = tu_pb_filter(0, a->names);
    double t0 = tu_now();
    if (a->stream) {
        gh_rpc_responses *rs = NULL;
        a->rc = gh_rpc_client_stream(a->client, a->stub, a->method, req.data, req.len,
                                     TU_WAIT_LIMIT, &rs);
        a->result_code = gh_last_result_code();
        snprintf(a->message, sizeof a->message, "%s", gh_last_error());
        gh_rpc_responses_free(rs);
    } else {
        uint8_t *resp = NULL;
        size_t len = 0;
        a->rc = gh_rpc_client_call(a->client, a->stub, a->method, req.data, req.len,
                                   TU_WAIT_LIMIT, &resp, &len);
        a->result_code = gh_last_result_code();
        snprintf(a->message, sizeof a->message, "%s", gh_last_error());
        if (a->rc == GH_OK) {
            result_t r;
            result_of(resp, len, &r);
            a->msg = strdup(r.msg);
            result_clear(&r);
        }
        gh_free(resp);
    }
    a->elapsed = tu_now() - t0;
    tu_buf_free(&req);
    return NULL;
}

static void async_start(async_call *a, gh_rpc_client *client, const char *stub,
                        const char *method, const char *const *names, int stream) {
    memset(a, 0, sizeof *a);
    a->client = client;
    a->stub = stub;
    a->method = method;
    a->names = names;
    a->stream = stream;
    CHECK(pthread_create(&a->thread, NULL, async_call_run, a) == 0);
}

static void async_join(async_call *a) { CHECK(pthread_join(a->thread, NULL) == 0); }

/* The call ended with GH_ERR_RESULT |code|, naming |part|. */
static void async_check_fails(const async_call *a, int code, const char *part) {
    CHECK_MSG(a->rc == GH_ERR_RESULT && a->result_code == code,
              "rc %d, result code %d (expected %d): %s", a->rc, a->result_code, code,
              a->message);
    CHECK_CONTAINS(a->message, part);
}

/* ------------------------------------------------------------------------ */
/* free_user_data, load and shutdown hooks                                  */
/* ------------------------------------------------------------------------ */

static void test_user_data(void) {
    sample_state st;
    state_init(&st, LOAD_CHECK);

    /* One service, two servers: freed once the service and both servers are. */
    gh_rpc_service *svc = sample_service(&st, 1);
    tu_layout l1, l2;
    gh_rpc_server *s1 = server_new(&l1, "user-data-1", 0, &svc, 1, 0);
    gh_rpc_server *s2 = server_new(&l2, "user-data-2", 0, &svc, 1, 0);
    CHECK_EQ(atomic_load(&st.loads), 2);
    CHECK(gh_rpc_server_port(s1) != gh_rpc_server_port(s2));
    gh_rpc_service_free(svc);
    CHECK_FREES(&st, 0, 0);
    /* the servers keep what they need */
    for (int i = 0; i < 2; i++) {
        gh_rpc_client *c = client_new(gh_rpc_server_port(i ? s2 : s1), 0, NULL, 1);
        check_ok_call(c, "sample", NAMES("after", "free"), "after,free");
        gh_rpc_client_free(c);
    }
    gh_rpc_server_free(s1);
    CHECK_EQ(atomic_load(&st.shutdowns), 1);
    CHECK_FREES(&st, 0, 0);
    gh_rpc_server_free(s2);
    CHECK_EQ(atomic_load(&st.shutdowns), 2);
    CHECK_FREES(&st, SAMPLE_METHODS, 1);
    tu_layout_free(&l1);
    tu_layout_free(&l2);

    /* The server freed first: the service's free releases them. The shutdown
     * hook runs once per server shutdown, not again at free. */
    state_destroy(&st);
    state_init(&st, LOAD_CHECK);
    svc = sample_service(&st, 1);
    s1 = server_new(&l1, "user-data-3", 0, &svc, 1, 0);
    CHECK_OK(gh_rpc_server_shutdown(s1));
    CHECK_EQ(atomic_load(&st.shutdowns), 1);
    CHECK_OK(gh_rpc_server_shutdown(s1));
    gh_rpc_server_free(s1);
    CHECK_EQ(atomic_load(&st.shutdowns), 1);
    CHECK_FREES(&st, 0, 0);
    gh_rpc_service_free(svc);
    CHECK_FREES(&st, SAMPLE_METHODS, 1);
    tu_layout_free(&l1);

    /* A service that no server used; one without a manager. */
    state_destroy(&st);
    state_init(&st, LOAD_CHECK);
    svc = sample_service(&st, 1);
    gh_rpc_service_free(svc);
    CHECK_FREES(&st, SAMPLE_METHODS, 1);
    svc = sample_service(&st, 0);
    gh_rpc_service_free(svc);
    CHECK_FREES(&st, 2 * SAMPLE_METHODS, 1);
    CHECK_EQ(atomic_load(&st.loads), 0);
    CHECK_EQ(atomic_load(&st.shutdowns), 0);

    /* Failing calls free at once. */
    state_destroy(&st);
    state_init(&st, LOAD_CHECK);
    CHECK_OK(gh_rpc_service_new("one", "test.One", "one:1", 1, 1, &svc));
    CHECK(gh_rpc_service_add_method(svc, "bad", (gh_cardinality)42, sample_ok, &st,
                                    method_free) < 0);
    CHECK_FREES(&st, 1, 0);
    CHECK(gh_rpc_service_add_method(NULL, "m", GH_UNARY, sample_ok, &st, method_free) < 0);
    CHECK_FREES(&st, 2, 0);
    CHECK(gh_rpc_service_add_method(svc, NULL, GH_UNARY, sample_ok, &st, method_free) < 0);
    CHECK_FREES(&st, 3, 0);
    CHECK(gh_rpc_service_set_manager(NULL, NULL, NULL, NULL, &st, manager_free) < 0);
    CHECK_FREES(&st, 3, 1);
    gh_rpc_service_free(svc);
    CHECK_FREES(&st, 3, 1);
    state_destroy(&st);

    gh_rpc_service_free(NULL);
    gh_rpc_server_free(NULL);
    gh_rpc_client_free(NULL);
    gh_rpc_responses_free(NULL);
}

/* ------------------------------------------------------------------------ */
/* The main server: load, info, versions, errors, config/log, streams       */
/* ------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    const char *version;
    unsigned supported;
    unsigned current;
} svc_want;

static const svc_want g_all_services[] = {
    {"srv", BUILTIN_VERSION, 1, 1},
    {"config", BUILTIN_VERSION, 1, 2},
    {"log", BUILTIN_VERSION, 1, 1},
    {"sample", SAMPLE_VERSION, 1, 2},
    {"sample-new", NEW_VERSION, 2, 3},
};

static const svc_want *want_service(const char *name) {
    for (size_t i = 0; i < sizeof g_all_services / sizeof g_all_services[0]; i++) {
        if (strcmp(g_all_services[i].name, name) == 0) return &g_all_services[i];
    }
    CHECK_MSG(0, "no service %s", name);
    return NULL;
}

/* A MultiServiceInfo (freed) must list |names| (in any order), each once and
 * as g_all_services describes it, without an error result. */
static void check_info(uint8_t *resp, size_t len, const char *const *names) {
    result_t r;
    result_of(resp, len, &r);
    CHECK_EQ(r.code, GH_RC_OK);
    result_clear(&r);
    const uint8_t *p[MAX_NAMES];
    size_t l[MAX_NAMES];
    size_t n = pb_subs(resp, len, 2, p, l, MAX_NAMES);
    size_t want = 0;
    while (names[want] != NULL) want++;
    CHECK_EQ(n, want);
    for (size_t i = 0; i < n; i++) {
        char *name = pb_str(p[i], l[i], 1);
        size_t listed = 0;
        for (size_t j = 0; j < want; j++) listed += strcmp(names[j], name) == 0;
        CHECK_MSG(listed == 1, "srv.info lists %s", name);
        const svc_want *w = want_service(name);
        char *version = pb_str(p[i], l[i], 2);
        CHECK_STR(version, w->version);
        CHECK_EQ(pb_num(p[i], l[i], 3), w->current);
        CHECK_EQ(pb_num(p[i], l[i], 4), w->supported);
        CHECK_EQ(pb_num(p[i], l[i], 5), 0); /* not a proxy */
        free(name);
        free(version);
    }
    gh_free(resp);
}

#define ALL_SERVICES NAMES("srv", "config", "log", "sample", "sample-new")

static void info_through_client(gh_rpc_client *c, tu_buf req, const char *const *names) {
    uint8_t *resp = NULL;
    size_t len = 0;
    CHECK_OK(rpc(c, "srv", "info", req, &resp, &len));
    check_info(resp, len, names);
}

static void info_direct(gh_rpc_server *server, tu_buf req, const char *const *names) {
    uint8_t *resp = NULL;
    size_t len = 0;
    CHECK_OK(gh_rpc_server_info(server, req.data, req.len, &resp, &len));
    tu_buf_free(&req);
    check_info(resp, len, names);
}

static void test_info(gh_rpc_server *server, gh_rpc_client *c, gh_rpc_client *c0) {
    info_through_client(c, tu_pb_filter(0, NO_NAMES), ALL_SERVICES);
    info_direct(server, tu_pb_filter(0, NO_NAMES), ALL_SERVICES);
    info_through_client(c, tu_pb_filter(0, NAMES("sample", "srv")), NAMES("sample", "srv"));
    info_direct(server, tu_pb_filter(0, NAMES("sample-new", "log")),
                NAMES("sample-new", "log"));
    info_through_client(c, tu_pb_filter(1, NAMES("nope", "config")), NAMES("config"));
    info_direct(server, tu_pb_filter(1, NAMES("config", "nope")), NAMES("config"));
    info_direct(server, tu_pb_filter(1, NAMES("nope")), (const char *const[]){NULL});

    /* grpc-helper's text, which names none */
    const char *msg = rpc_fails(c, "srv", "info", tu_pb_filter(0, NAMES("srv", "nope")),
                                GH_RC_ERROR_ITEM_UNKNOWN);
    CHECK_CONTAINS(msg, "At least one of the required service names is unknown");
    result_t r;
    rpc_error_result(c0, "srv", "info", tu_pb_filter(0, NAMES("nope")),
                     GH_RC_ERROR_ITEM_UNKNOWN, &r);
    CHECK_STR(r.msg, "At least one of the required service names is unknown");
    result_clear(&r);
    tu_buf req = tu_pb_filter(0, NAMES("nope"));
    uint8_t *resp = NULL;
    size_t len = 0;
    msg = CHECK_RESULT(gh_rpc_server_info(server, req.data, req.len, &resp, &len),
                       GH_RC_ERROR_ITEM_UNKNOWN);
    CHECK_STR(msg, "At least one of the required service names is unknown");
    tu_buf_free(&req);
}

static void test_versions(gh_rpc_server *server, sample_state *st, gh_rpc_client *c0) {
    int port = gh_rpc_server_port(server);
    gh_rpc_client *c = client_new(port, 0, "versions", 1);
    static const struct {
        const char *stub;
        const char *service;
        unsigned version;
        int code;
    } cases[] = {
        {"sample0", SAMPLE_SERVICE, 0, GH_RC_OK}, /* no version: no check */
        {"sample1", SAMPLE_SERVICE, 1, GH_RC_OK},
        {"sample2", SAMPLE_SERVICE, 2, GH_RC_OK},
        {"sample3", SAMPLE_SERVICE, 3, GH_RC_ERROR_API_SERVER_TOO_OLD},
        {"new0", NEW_SERVICE, 0, GH_RC_OK},
        {"new1", NEW_SERVICE, 1, GH_RC_ERROR_API_CLIENT_TOO_OLD},
        {"new2", NEW_SERVICE, 2, GH_RC_OK},
        {"new3", NEW_SERVICE, 3, GH_RC_OK},
        {"new4", NEW_SERVICE, 4, GH_RC_ERROR_API_SERVER_TOO_OLD},
        {"config0", "ConfigService", 0, GH_RC_OK},
        {"config1", "ConfigService", 1, GH_RC_OK},
        {"config2", "ConfigService", 2, GH_RC_OK},
        {"config3", "ConfigService", 3, GH_RC_ERROR_API_SERVER_TOO_OLD},
    };
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(gh_rpc_client_add_stub(c, cases[i].stub, cases[i].service, cases[i].version));
        CHECK_OK(gh_rpc_client_add_stub(c0, cases[i].stub, cases[i].service, cases[i].version));
    }
    for (size_t i = 0; i < n; i++) {
        int is_config = strcmp(cases[i].service, "ConfigService") == 0;
        const char *method = is_config ? "get" : "ok";
        const char *const *names = is_config ? NAMES("my-item") : NAMES("v");
        int before = atomic_load(&st->ok_calls);
        if (cases[i].code == GH_RC_OK) {
            uint8_t *resp = NULL;
            size_t len = 0;
            CHECK_OK(rpc(c, cases[i].stub, method, tu_pb_filter(0, names), &resp, &len));
            CHECK_EQ(gh_rpc_result_code(resp, len), GH_RC_OK);
            gh_free(resp);
            CHECK_EQ(atomic_load(&st->ok_calls), before + !is_config);
            continue;
        }
        rpc_fails(c, cases[i].stub, method, tu_pb_filter(0, names), cases[i].code);
        /* raise_errors 0: the error response */
        result_t r;
        rpc_error_result(c0, cases[i].stub, method, tu_pb_filter(0, names), cases[i].code, &r);
        CHECK(r.msg[0] != '\0');
        result_clear(&r);
        /* the handler was not reached */
        CHECK_EQ(atomic_load(&st->ok_calls), before);
    }
    gh_rpc_client_free(c);
}

static void test_errors(gh_rpc_client *c, gh_rpc_client *c0, int port) {
    /* raise_errors 1: GH_ERR_RESULT with the handler's code and message */
    const char *msg = rpc_fails(c, "sample", "fail",
                                tu_pb_filter(0, NAMES("50", "boom", "frame 1\nframe 2")),
                                GH_RC_ERROR_REQUEST_FAILED);
    CHECK_CONTAINS(msg, "boom");
    rpc_fails(c, "sample", "fail", tu_pb_filter(0, NAMES("1", "plain error", "-")),
              GH_RC_ERROR);
    rpc_fails(c, "sample", "fail", tu_pb_filter(0, NAMES("99", "just below custom", "-")),
              99);

    /* raise_errors 0: the error response, with the stack given */
    result_t r;
    rpc_error_result(c0, "sample", "fail",
                     tu_pb_filter(0, NAMES("50", "boom", "frame 1\nframe 2")),
                     GH_RC_ERROR_REQUEST_FAILED, &r);
    CHECK_STR(r.msg, "boom");
    CHECK_STR(r.stack, "frame 1\nframe 2");
    result_clear(&r);
    rpc_error_result(c0, "sample", "fail", tu_pb_filter(0, NAMES("61", "no stack", "-")),
                     GH_RC_ERROR_STATE_UNEXPECTED, &r);
    CHECK_STR(r.msg, "no stack");
    result_clear(&r);

    /* Codes at or above GH_RC_ERROR_CUSTOM are returned even with raise_errors. */
    static const int custom[] = {GH_RC_ERROR_CUSTOM, GH_RC_ERROR_CUSTOM + 1, 4242};
    for (size_t i = 0; i < 3; i++) {
        char code[16];
        snprintf(code, sizeof code, "%d", custom[i]);
        for (int raise = 1; raise >= 0; raise--) {
            rpc_error_result(raise ? c : c0, "sample", "fail",
                             tu_pb_filter(0, NAMES(code, "custom", "custom stack")),
                             custom[i], &r);
            CHECK_STR(r.msg, "custom");
            CHECK_STR(r.stack, "custom stack");
            result_clear(&r);
        }
    }

    /* An error after the single response was sent: the response stands. */
    char *sent = rpc_msg(c, "sample", "fail",
                         tu_pb_filter(0, NAMES("50", "too late", "-", "send-first")));
    CHECK_STR(sent, "sent");
    free(sent);

    /* UNIMPLEMENTED: a failed status, whatever raise_errors. */
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    for (int raise = 1; raise >= 0; raise--) {
        msg = rpc_fails(raise ? c : c0, "sample", "missing", tu_pb_filter(0, NO_NAMES),
                        GH_RC_ERROR_RPC);
        CHECK_CONTAINS(msg, "/" SAMPLE_SERVICE "/missing");
        CHECK_CONTAINS(msg, target);
    }

    /* gh_rpc_result_code on any bytes */
    CHECK_EQ(gh_rpc_result_code(NULL, 0), GH_RC_OK);
    static const uint8_t garbage[] = {0x0f, 0x01};
    CHECK_EQ(gh_rpc_result_code(garbage, sizeof garbage), GH_RC_OK);
    tu_buf b = result_status(GH_RC_ERROR_ITEM_CONFLICT, "x");
    CHECK_EQ(gh_rpc_result_code(b.data, b.len), GH_RC_ERROR_ITEM_CONFLICT);
    tu_buf_free(&b);
    b = result_status(0, "fine");
    CHECK_EQ(gh_rpc_result_code(b.data, b.len), GH_RC_OK);
    tu_buf_free(&b);
    tu_pb_string(&b, 2, "no result"); /* a message without r */
    CHECK_EQ(gh_rpc_result_code(b.data, b.len), GH_RC_OK);
    tu_buf_free(&b);

    /* Unknown stubs. */
    uint8_t *resp = NULL;
    size_t len = 0;
    CHECK_RC(gh_rpc_client_call(c, "nope", "ok", NULL, 0, 0, &resp, &len),
             GH_ERR_INVALID_ARGUMENT);
    gh_rpc_responses *rs = NULL;
    CHECK_RC(gh_rpc_client_stream(c, "nope", "stream", NULL, 0, 0, &rs),
             GH_ERR_INVALID_ARGUMENT);
    CHECK(rs == NULL);
}

/* ConfigStatus / LoggerStatus: the items (field 2) with their name (1) and
 * one more field. */
static void check_config_item(uint8_t *resp, size_t len, const char *name, const char *value) {
    const uint8_t *p[4];
    size_t l[4];
    CHECK_EQ(gh_rpc_result_code(resp, len), GH_RC_OK);
    CHECK_EQ(pb_subs(resp, len, 2, p, l, 4), 1);
    char *n = pb_str(p[0], l[0], 1), *v = pb_str(p[0], l[0], 3);
    CHECK_STR(n, name);
    CHECK_STR(v, value);
    free(n);
    free(v);
    gh_free(resp);
}

static void check_logger(uint8_t *resp, size_t len, const char *name, int enabled, int level) {
    const uint8_t *p[4];
    size_t l[4];
    CHECK_EQ(gh_rpc_result_code(resp, len), GH_RC_OK);
    CHECK_EQ(pb_subs(resp, len, 2, p, l, 4), 1);
    char *n = pb_str(p[0], l[0], 1);
    CHECK_STR(n, name);
    free(n);
    CHECK_EQ(pb_num(p[0], l[0], 2), enabled);
    CHECK_EQ(pb_num(p[0], l[0], 3), level);
    gh_free(resp);
}

static void test_config_log(gh_rpc_server *server, gh_rpc_client *c, gh_config *item,
                            gh_config *stat, const tu_layout *l) {
    uint8_t *resp = NULL;
    size_t len = 0;
    CHECK_OK(rpc(c, "config", "get", tu_pb_filter(0, NAMES("my-item")), &resp, &len));
    check_config_item(resp, len, "my-item", "v0");

    /* ConfigUpdate { 1: ConfigItemUpdate { 1: name; 2: value } } */
    tu_buf upd = {0}, it = {0};
    tu_pb_string(&it, 1, "my-item");
    tu_pb_string(&it, 2, "v1");
    tu_pb_message(&upd, 1, &it);
    tu_buf_free(&it);
    CHECK_OK(rpc(c, "config", "set", upd, &resp, &len));
    check_config_item(resp, len, "my-item", "v1");
    char *v = gh_config_value(item);
    CHECK_STR(v, "v1");
    gh_free(v);
    char *persisted = tu_read_file(l->ws_json, NULL);
    CHECK(persisted != NULL);
    CHECK_CONTAINS(persisted, "\"my-item\"");
    CHECK_CONTAINS(persisted, "\"v1\"");
    free(persisted);

    /* the server's config set is the one served */
    gh_config_set *set = gh_rpc_server_config(server);
    CHECK(set != NULL);
    gh_config *mine = gh_config_set_item(set, "my-item");
    CHECK(mine != NULL);
    v = gh_config_value(mine);
    CHECK_STR(v, "v1");
    gh_free(v);
    gh_config *grace = gh_config_set_item(set, "rpc-shutdown-grace");
    CHECK(grace != NULL);
    v = gh_config_value(grace);
    CHECK_STR(v, "0.3");
    gh_free(v);
    CHECK_OK(gh_config_set_update(set, "my-item", "v2"));
    CHECK_OK(rpc(c, "config", "get", tu_pb_filter(0, NAMES("my-item")), &resp, &len));
    check_config_item(resp, len, "my-item", "v2");

    CHECK_OK(rpc(c, "config", "reset", tu_pb_filter(0, NAMES("my-item")), &resp, &len));
    check_config_item(resp, len, "my-item", "v0");
    rpc_fails(c, "config", "get", tu_pb_filter(0, NAMES("nope")), GH_RC_ERROR_ITEM_UNKNOWN);
    /* static items are not served */
    rpc_fails(c, "config", "get", tu_pb_filter(0, NAMES("rpc-shutdown-grace")),
              GH_RC_ERROR_ITEM_UNKNOWN);
    rpc_fails(c, "config", "get", tu_pb_filter(0, NAMES("my-static")),
              GH_RC_ERROR_ITEM_UNKNOWN);
    gh_config *s = gh_config_set_item(set, "my-static");
    CHECK(s != NULL);
    v = gh_config_value(s);
    CHECK_STR(v, "s0");
    gh_free(v);
    v = gh_config_value(stat);
    CHECK_STR(v, "s0");
    gh_free(v);

    /* log: "" is the root */
    CHECK_OK(rpc(c, "log", "get", tu_pb_filter(0, NAMES("")), &resp, &len));
    check_logger(resp, len, "root", 1, GH_LOG_INFO);
    rpc_fails(c, "log", "get", tu_pb_filter(0, NO_NAMES), GH_RC_ERROR_PARAM_MISSING);
    gh_logs *logs = gh_rpc_server_logs(server);
    CHECK(logs != NULL);
    CHECK_EQ(gh_logs_enabled(logs, "SampleManager", GH_LOG_DEBUG), 0);
    /* LoggerUpdate { 1: LoggerConfig { 1: name; 2: enabled; 3: level } } */
    upd = (tu_buf){0};
    it = (tu_buf){0};
    tu_pb_string(&it, 1, "SampleManager");
    tu_pb_varint(&it, 2, 1);
    tu_pb_varint(&it, 3, GH_LOG_DEBUG);
    tu_pb_message(&upd, 1, &it);
    tu_buf_free(&it);
    CHECK_OK(rpc(c, "log", "set", upd, &resp, &len));
    check_logger(resp, len, "SampleManager", 1, GH_LOG_DEBUG);
    CHECK_EQ(gh_logs_enabled(logs, "SampleManager", GH_LOG_DEBUG), 1);
    CHECK_OK(rpc(c, "log", "reset", tu_pb_filter(0, NAMES("SampleManager")), &resp, &len));
    gh_free(resp);
    CHECK_EQ(gh_logs_enabled(logs, "SampleManager", GH_LOG_DEBUG), 0);
}

/* The next response of |rs| must be a ResultStatus without error and r.msg
 * |want|. */
static void next_msg(gh_rpc_responses *rs, const char *want) {
    uint8_t *data = NULL;
    size_t len = 0;
    CHECK_EQ(gh_rpc_responses_next(rs, &data, &len), 1);
    result_t r;
    result_of(data, len, &r);
    CHECK_EQ(r.code, GH_RC_OK);
    CHECK_STR(r.msg, want);
    result_clear(&r);
    gh_free(data);
}

static gh_rpc_responses *stream(gh_rpc_client *c, const char *stub, const char *method,
                                const char *const *names) {
    tu_buf req = tu_pb_filter(0, names);
    gh_rpc_responses *rs = NULL;
    CHECK_OK(gh_rpc_client_stream(c, stub, method, req.data, req.len, TU_WAIT_LIMIT, &rs));
    CHECK(rs != NULL);
    tu_buf_free(&req);
    return rs;
}

static void test_streams(gh_rpc_client *c, gh_rpc_client *c0, int port, sample_state *st) {
    uint8_t *data = NULL;
    size_t len = 0;

    /* raise_errors 1: the good messages, then GH_ERR_RESULT with the code */
    gh_rpc_responses *rs = stream(c, "sample", "stream", NAMES("a", "b", "c"));
    next_msg(rs, "a");
    next_msg(rs, "b");
    next_msg(rs, "c");
    const char *msg = CHECK_RESULT(gh_rpc_responses_next(rs, &data, &len), STREAM_CODE);
    CHECK_CONTAINS(msg, "stream failed after 3");
    gh_rpc_responses_free(rs);

    /* raise_errors 0: the error as the last message, then the end */
    for (int n = 2; n >= 0; n -= 2) {
        const char *const *names = n == 2 ? NAMES("x", "y") : NO_NAMES;
        rs = stream(c0, "sample", "stream", names);
        if (n == 2) {
            next_msg(rs, "x");
            next_msg(rs, "y");
        }
        CHECK_EQ(gh_rpc_responses_next(rs, &data, &len), 1);
        CHECK_EQ(gh_rpc_result_code(data, len), STREAM_CODE);
        result_t r;
        result_of(data, len, &r);
        char want[64];
        snprintf(want, sizeof want, "stream failed after %d", n);
        CHECK_STR(r.msg, want);
        CHECK_STR(r.stack, "stream stack");
        result_clear(&r);
        gh_free(data);
        CHECK_EQ(gh_rpc_responses_next(rs, &data, &len), 0);
        gh_rpc_responses_free(rs);
    }

    /* An error before any good message: raise_errors 1 fails at the first. */
    rs = stream(c, "sample", "stream", NO_NAMES);
    CHECK_RESULT(gh_rpc_responses_next(rs, &data, &len), STREAM_CODE);
    gh_rpc_responses_free(rs);

    /* A version error arrives as the first (error) message. */
    CHECK_OK(gh_rpc_client_add_stub(c, "sample-v3", SAMPLE_SERVICE, 3));
    rs = stream(c, "sample-v3", "stream", NAMES("a"));
    CHECK_RESULT(gh_rpc_responses_next(rs, &data, &len), GH_RC_ERROR_API_SERVER_TOO_OLD);
    gh_rpc_responses_free(rs);

    /* An unimplemented streaming method: a failed status before the first
     * message fails the call (as a unary one) with GH_RC_ERROR_RPC. */
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    for (int raise = 1; raise >= 0; raise--) {
        tu_buf req = tu_pb_filter(0, NO_NAMES);
        rs = NULL;
        msg = CHECK_RESULT(gh_rpc_client_stream(raise ? c : c0, "sample", "missing-stream",
                                                req.data, req.len, TU_WAIT_LIMIT, &rs),
                           GH_RC_ERROR_RPC);
        tu_buf_free(&req);
        CHECK(rs == NULL);
        CHECK_CONTAINS(msg, "/" SAMPLE_SERVICE "/missing-stream");
        CHECK_CONTAINS(msg, target);
    }

    /* Freed before the end: the call is cancelled. */
    rs = stream(c, "sample", "stream", NAMES("1", "wait"));
    next_msg(rs, "1");
    gh_rpc_responses_free(rs);
    CHECK(tu_counter_wait(&st->stream_cancelled, 1, TU_WAIT_LIMIT));
}

/* "whoami": the client's metadata. */
static void test_metadata(int port) {
    char host[256] = "";
    CHECK(gethostname(host, sizeof host - 1) == 0);
    struct passwd *pw = getpwuid(getuid());
    CHECK(pw != NULL && pw->pw_name != NULL);
    char want[1024];

    gh_rpc_client *c = client_new(port, 0, "meta-client", 1);
    CHECK_OK(gh_rpc_client_add_stub(c, "sample-nov", SAMPLE_SERVICE, 0));
    CHECK_OK(gh_rpc_client_add_stub(c, "sample-v1", SAMPLE_SERVICE, 1));
    char *msg = rpc_msg(c, "sample", "whoami", tu_pb_filter(0, NO_NAMES));
    snprintf(want, sizeof want, "meta-client|%s|%s|127.0.0.1|2", pw->pw_name, host);
    CHECK_STR(msg, want);
    free(msg);
    msg = rpc_msg(c, "sample-v1", "whoami", tu_pb_filter(0, NO_NAMES));
    snprintf(want, sizeof want, "meta-client|%s|%s|127.0.0.1|1", pw->pw_name, host);
    CHECK_STR(msg, want);
    free(msg);
    msg = rpc_msg(c, "sample-nov", "whoami", tu_pb_filter(0, NO_NAMES));
    snprintf(want, sizeof want, "meta-client|%s|%s|127.0.0.1|-", pw->pw_name, host);
    CHECK_STR(msg, want);
    free(msg);
    gh_rpc_client_free(c);

    /* No name, or an empty one: no client key. */
    for (int i = 0; i < 2; i++) {
        c = client_new(port, 0, i ? "" : NULL, 1);
        msg = rpc_msg(c, "sample", "whoami", tu_pb_filter(0, NO_NAMES));
        snprintf(want, sizeof want, "-|%s|%s|127.0.0.1|2", pw->pw_name, host);
        CHECK_STR(msg, want);
        free(msg);
        gh_rpc_client_free(c);
    }
}

/* 8 threads calling through one client at once. */
#define N_THREADS 8
#define N_CALLS 20

typedef struct {
    gh_rpc_client *client;
    int index;
} caller_arg;

static void *caller(void *p) {
    caller_arg *a = p;
    for (int i = 0; i < N_CALLS; i++) {
        char name[32], want[40];
        snprintf(name, sizeof name, "t%d-%d", a->index, i);
        snprintf(want, sizeof want, "%s,x", name);
        check_ok_call(a->client, "sample", NAMES(name, "x"), want);
    }
    return NULL;
}

static void test_concurrent(int port, sample_state *st) {
    gh_rpc_client *c = client_new(port, 0, "concurrent", 1);
    int before = atomic_load(&st->ok_calls);
    pthread_t th[N_THREADS];
    caller_arg args[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        args[i] = (caller_arg){c, i};
        CHECK(pthread_create(&th[i], NULL, caller, &args[i]) == 0);
    }
    for (int i = 0; i < N_THREADS; i++) CHECK(pthread_join(th[i], NULL) == 0);
    CHECK_EQ(atomic_load(&st->ok_calls), before + N_THREADS * N_CALLS);
    gh_rpc_client_free(c);
}

/* A call's deadline, and a client freed while a call runs: the call fails,
 * its handler sees the cancellation. */
static void test_call_end(int port, sample_state *st) {
    gh_rpc_client *c = client_new(port, 0, "deadline", 1);
    int cancelled = atomic_load(&st->hold_cancelled);
    long done = tu_counter_get(&st->hold_done);
    uint8_t *resp = NULL;
    size_t len = 0;
    tu_buf req = tu_pb_filter(0, NO_NAMES);
    double t0 = tu_now();
    const char *msg = CHECK_RESULT(gh_rpc_client_call(c, "sample", "hold", req.data, req.len,
                                                      0.3, &resp, &len),
                                   GH_RC_ERROR_RPC);
    double elapsed = tu_now() - t0;
    tu_buf_free(&req);
    CHECK_CONTAINS(msg, "/" SAMPLE_SERVICE "/hold");
    CHECK_MSG(elapsed >= 0.25 && elapsed < 5, "a 0.3 s deadline ended after %.3f s", elapsed);
    CHECK(tu_counter_wait(&st->hold_done, done + 1, TU_WAIT_LIMIT));
    CHECK_EQ(atomic_load(&st->hold_cancelled), cancelled + 1);

    async_call hold;
    long held = tu_counter_get(&st->held);
    async_start(&hold, c, "sample", "hold", NO_NAMES, 0);
    CHECK(tu_counter_wait(&st->held, held + 1, TU_WAIT_LIMIT));
    t0 = tu_now();
    gh_rpc_client_free(c);
    async_join(&hold);
    elapsed = tu_now() - t0;
    CHECK_MSG(elapsed < 5, "the call ended %.3f s after gh_rpc_client_free", elapsed);
    async_check_fails(&hold, GH_RC_ERROR_RPC, "/" SAMPLE_SERVICE "/hold");
    CHECK(tu_counter_wait(&st->hold_done, done + 2, TU_WAIT_LIMIT));
    CHECK_EQ(atomic_load(&st->hold_cancelled), cancelled + 2);
}

/* The second service: API 2..3, a manager without hooks (its logger: the
 * service's name). */
static gh_rpc_service *new_service(sample_state *st) {
    /* Strings are copied: these buffers are wiped once used. */
    char name[32] = "sample-new", service[32] = NEW_SERVICE, version[32] = NEW_VERSION;
    char ok[8] = "ok", fail[8] = "fail";
    gh_rpc_service *s = NULL;
    CHECK_OK(gh_rpc_service_new(name, service, version, 2, 3, &s));
    CHECK_OK(gh_rpc_service_add_method(s, ok, GH_UNARY, sample_ok, st, method_free));
    CHECK_OK(gh_rpc_service_add_method(s, fail, GH_UNARY, sample_fail, st, method_free));
    CHECK_OK(gh_rpc_service_set_manager(s, NULL, NULL, NULL, st, manager_free));
    memset(name, 'x', sizeof name - 1);
    memset(service, 'x', sizeof service - 1);
    memset(version, 'x', sizeof version - 1);
    memset(ok, 'x', sizeof ok - 1);
    memset(fail, 'x', sizeof fail - 1);
    return s;
}

/* A file's text contains every part. */
static void check_file_contains(const char *path, const char *const *parts) {
    char *text = tu_read_file(path, NULL);
    CHECK_MSG(text != NULL, "%s does not exist", path);
    for (size_t i = 0; parts[i] != NULL; i++) {
        CHECK_MSG(strstr(text, parts[i]) != NULL, "%s does not contain \"%s\"", path, parts[i]);
    }
    free(text);
}

static void test_main_server(void) {
    sample_state st;
    state_init(&st, LOAD_CHECK);
    gh_rpc_service *services[2] = {sample_service(&st, 1), new_service(&st)};
    gh_config *item = NULL, *stat = NULL;
    CHECK_OK(gh_config_new("my-item", "a user item", "v0", 0, GH_CONFIG_VALID_STRING, NULL,
                           NULL, NULL, &item));
    CHECK_OK(gh_config_new("my-static", "a static item", "s0", 0, GH_CONFIG_VALID_STRING, NULL,
                           NULL, NULL, &stat));
    tu_layout l;
    tu_layout_new(&l, g_tmp, "main");
    gh_rpc_server *server = NULL;
    CHECK_OK(gh_rpc_server_new(0, services, 2, l.folders, g_grace_cli, 1, &stat, 1, &item, 1,
                               0, &server));
    CHECK(server != NULL);
    int port = gh_rpc_server_port(server);
    CHECK(port > 0 && port < 65536);
    gh_rpc_service_free(services[0]);
    gh_rpc_service_free(services[1]);

    /* What the load hook saw. */
    CHECK_EQ(atomic_load(&st.loads), 1);
    CHECK(st.load_on_new_thread);
    CHECK_EQ(st.load_port, port);
    CHECK_EQ(st.load_running, 1);
    CHECK(st.load_has_logs);
    CHECK_MSG(st.load_has_config, "gh_rpc_server_config returned NULL inside the load hook");
    CHECK_STR(st.load_grace, "0.3");
    CHECK_STR(st.load_info, "config,log,sample,sample-new,srv");
    CHECK_STR(st.load_ok, "from,load");
    CHECK_EQ(gh_rpc_server_is_running(server), 1);
    CHECK_EQ(gh_rpc_server_wait_shutdown(server, 0), 0);
    /* the handles given to and got in load stay usable until gh_rpc_server_free */
    CHECK(st.auto_client != NULL);
    check_ok_call(st.auto_client, "sample", NAMES("auto"), "auto");
    check_ok_call(st.auto_client, "sample-new", NAMES("auto-new"), "auto-new");
    CHECK_OK(gh_logs_write(st.load_logs, "SampleManager", GH_LOG_INFO, "after load"));
    CHECK(gh_config_set_item(st.load_config, "my-item") != NULL);
    char logs_folder[1024];
    CHECK(gh_rpc_server_logs(server) != NULL);
    snprintf(logs_folder, sizeof logs_folder, "%s", gh_logs_folder(gh_rpc_server_logs(server)));

    gh_rpc_client *c = client_new(port, 5, "main-client", 1);
    gh_rpc_client *c0 = client_new(port, 5, "main-client-0", 0);
    CHECK_OK(gh_rpc_client_add_stub(c, "sample-new", NEW_SERVICE, 3));
    check_ok_call(c, "sample", NAMES("a", "b", "c"), "a,b,c");
    check_ok_call(c, "sample", NO_NAMES, "");
    check_ok_call(c, "sample-new", NAMES("new"), "new");

    test_info(server, c, c0);
    test_versions(server, &st, c0);
    test_errors(c, c0, port);
    test_config_log(server, c, item, stat, &l);
    test_streams(c, c0, port, &st);
    test_metadata(port);
    test_concurrent(port, &st);
    test_call_end(port, &st);
    /* an error of the second service, for its log file */
    rpc_fails(c, "sample-new", "fail", tu_pb_filter(0, NAMES("50", "new boom", "new stack")),
              GH_RC_ERROR_REQUEST_FAILED);

    gh_rpc_client_free(c);
    gh_rpc_client_free(c0);
    CHECK_FREES(&st, 0, 0);
    CHECK_EQ(atomic_load(&st.shutdowns), 0);
    gh_rpc_server_free(server);
    CHECK_EQ(atomic_load(&st.shutdowns), 1);
    CHECK_FREES(&st, SAMPLE_METHODS + 2, 2);
    CHECK_EQ(atomic_load(&st.loads), 1);

    /* The managers' logs: errors with their stacks; the second service's logger
     * is named as the service. */
    char path[1200];
    TU_PATH(path, "%s/SampleManager/SampleManager.log", logs_folder);
    check_file_contains(path, NAMES("loading sample", "after load", "boom", "frame 1",
                                    "frame 2", "custom stack"));
    TU_PATH(path, "%s/sample-new/sample-new.log", logs_folder);
    check_file_contains(path, NAMES("new boom", "new stack"));

    gh_config_free(item);
    gh_config_free(stat);
    tu_layout_free(&l);
    state_destroy(&st);
}

/* ------------------------------------------------------------------------ */
/* gh_rpc_server_options: the long form of gh_rpc_server_new               */
/* ------------------------------------------------------------------------ */

static char *config_value_of(gh_rpc_server *server, const char *name) {
    gh_config *item = gh_config_set_item(gh_rpc_server_config(server), name);
    CHECK_MSG(item != NULL, "no config item %s", name);
    char *v = gh_config_value(item);
    CHECK(v != NULL);
    return v;
}

static void test_options(void) {
    sample_state st;
    state_init(&st, LOAD_CHECK);
    tu_layout l;
    tu_layout_new(&l, g_tmp, "options");
    gh_rpc_server_options *o = NULL;

    /* Bad arguments are refused by the setter that takes them. */
    CHECK_RC(gh_rpc_server_options_new(NULL), GH_ERR_INVALID_ARGUMENT);
    CHECK_OK(gh_rpc_server_options_new(&o));
    CHECK(o != NULL);
    CHECK_RC(gh_rpc_server_options_set_port(o, -1), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_rpc_server_options_set_port(o, 65536), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_rpc_server_options_set_port(NULL, 0), GH_ERR_INVALID_ARGUMENT);
    CHECK_RESULT(gh_rpc_server_options_add_cli_config(o, "no-equal-sign"),
                 GH_RC_ERROR_PARAM_INVALID);
    CHECK_RESULT(gh_rpc_server_options_add_cli_config(o, "=value"), GH_RC_ERROR_PARAM_INVALID);
    CHECK_RC(gh_rpc_server_options_add_cli_config(o, NULL), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_rpc_server_options_add_service(o, NULL), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_rpc_server_options_add_static_item(o, NULL), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_rpc_server_options_add_user_item(o, NULL), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_rpc_server_new_with_options(o, NULL), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_rpc_server_new_with_options(NULL, NULL), GH_ERR_INVALID_ARGUMENT);

    /* Every argument of the short form; the handles are kept by the options. */
    gh_rpc_service *svc = sample_service(&st, 0);
    gh_config *item = NULL, *stat = NULL;
    CHECK_OK(gh_config_new("my-item", "a user item", "v0", 0, GH_CONFIG_VALID_STRING, NULL,
                           NULL, NULL, &item));
    CHECK_OK(gh_config_new("my-static", "a static item", "s0", 0, GH_CONFIG_VALID_STRING, NULL,
                           NULL, NULL, &stat));
    CHECK_OK(gh_rpc_server_options_set_port(o, 0));
    CHECK_OK(gh_rpc_server_options_add_service(o, svc));
    CHECK_OK(gh_rpc_server_options_set_folders(o, l.folders));
    CHECK_OK(gh_rpc_server_options_add_cli_config(o, "rpc-shutdown-grace=0.3"));
    CHECK_OK(gh_rpc_server_options_add_cli_config(o, "my-static=first"));
    CHECK_OK(gh_rpc_server_options_add_cli_config(o, "my-static=last"));
    CHECK_OK(gh_rpc_server_options_add_static_item(o, stat));
    CHECK_OK(gh_rpc_server_options_add_user_item(o, item));
    CHECK_OK(gh_rpc_server_options_set_flags(o, 0));
    gh_rpc_service_free(svc);
    gh_config_free(item);
    gh_config_free(stat);
    CHECK_FREES(&st, 0, 0);

    /* One options handle makes several servers. */
    gh_rpc_server *a = NULL, *b = NULL;
    CHECK_OK(gh_rpc_server_new_with_options(o, &a));
    CHECK_OK(gh_rpc_server_new_with_options(o, &b));
    CHECK(a != NULL && b != NULL);
    int pa = gh_rpc_server_port(a), pb = gh_rpc_server_port(b);
    CHECK(pa > 0 && pb > 0 && pa != pb);
    gh_rpc_server *both[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        char *v = config_value_of(both[i], "my-static");
        CHECK_STR(v, "last"); /* the last -c value of a name wins */
        gh_free(v);
        v = config_value_of(both[i], "my-item");
        CHECK_STR(v, "v0");
        gh_free(v);
        v = config_value_of(both[i], "rpc-shutdown-grace");
        CHECK_STR(v, "0.3");
        gh_free(v);
        gh_rpc_client *c = client_new(gh_rpc_server_port(both[i]), 5, "options-client", 1);
        check_ok_call(c, "sample", NAMES("x", "y"), "x,y");
        gh_rpc_client_free(c);
    }
    /* The options may go first: the servers keep what they need. */
    gh_rpc_server_options_free(o);
    CHECK_FREES(&st, 0, 0);
    gh_rpc_server_free(a);
    CHECK_FREES(&st, 0, 0);
    gh_rpc_server_free(b);
    CHECK_FREES(&st, SAMPLE_METHODS, 0);

    /* Flags as the short form's: with the events service, srv.info lists it. */
    CHECK_OK(gh_rpc_server_options_new(&o));
    CHECK_OK(gh_rpc_server_options_set_folders(o, l.folders));
    CHECK_OK(gh_rpc_server_options_add_cli_config(o, "rpc-shutdown-grace=0.3"));
    CHECK_OK(gh_rpc_server_options_set_flags(o, GH_RPC_WITH_EVENTS));
    gh_rpc_server *with_events = NULL;
    CHECK_OK(gh_rpc_server_new_with_options(o, &with_events));
    CHECK(with_events != NULL);
    tu_buf req = tu_pb_filter(0, NAMES("events"));
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    CHECK_OK(gh_rpc_server_info(with_events, req.data, req.len, &resp, &resp_len));
    tu_buf_free(&req);
    CHECK(memmem(resp, resp_len, "events", 6) != NULL);
    gh_free(resp);
    /* In-process sends: Event { 1: name } */
    tu_buf ev = {0};
    tu_pb_string(&ev, 1, "pushed");
    CHECK_OK(gh_rpc_server_send_event(with_events, ev.data, ev.len));
    tu_buf_free(&ev);
    tu_pb_string(&ev, 1, "a b");
    CHECK_RESULT(gh_rpc_server_send_event(with_events, ev.data, ev.len), GH_RC_ERROR_PARAM_INVALID);
    tu_buf_free(&ev);
    CHECK_RESULT(gh_rpc_server_send_event(with_events, NULL, 0), GH_RC_ERROR_PARAM_MISSING);
    static const uint8_t garbage[] = {0x0a, 0x05, 'a'};
    CHECK_RC(gh_rpc_server_send_event(with_events, garbage, sizeof garbage), GH_ERR_INVALID_ARGUMENT);
    gh_rpc_server_free(with_events);
    gh_rpc_server_options_free(o);
    gh_rpc_server_options_free(NULL);

    tu_layout_free(&l);
    state_destroy(&st);
}

/* ------------------------------------------------------------------------ */
/* gh_rpc_server_new errors                                                 */
/* ------------------------------------------------------------------------ */

static void test_new_errors(void) {
    sample_state st;
    state_init(&st, LOAD_CHECK);
    gh_rpc_service *svc = sample_service(&st, 1);
    tu_layout l;
    tu_layout_new(&l, g_tmp, "new-errors");
    gh_rpc_server *server = NULL;

    /* The config set's and the logs' errors. */
    char file[700];
    TU_PATH(file, "%s/a-file", g_tmp);
    tu_write_file(file, "not a folder");
    char below_file[800];
    TU_PATH(below_file, "rpc-logs-folder=%s/logs", file);
    static const struct {
        const char *cli;
        int code;
    } bad[] = {
        {"rpc-max-workers=many", GH_RC_ERROR_PARAM_INVALID},
        {"rpc-shutdown-grace=-1", GH_RC_ERROR_PARAM_INVALID},
        {"no-equal-sign", GH_RC_ERROR_PARAM_INVALID},
        {"rpc-logs-interval-unit=fortnight", GH_RC_ERROR_PARAM_INVALID},
        {NULL, GH_RC_ERROR}, /* a logs folder below a file */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *cli = bad[i].cli ? bad[i].cli : below_file;
        CHECK_RESULT(gh_rpc_server_new(0, &svc, 1, l.folders, &cli, 1, NULL, 0, NULL, 0, 0,
                                       &server),
                     bad[i].code);
        CHECK(server == NULL);
    }
    CHECK_EQ(atomic_load(&st.loads), 0);

    /* A port held by a plain listening socket. */
    int fd = -1;
    int held = bound_socket(INADDR_ANY, &fd);
    CHECK(listen(fd, 4) == 0);
    CHECK_RESULT(gh_rpc_server_new(held, &svc, 1, l.folders, NULL, 0, NULL, 0, NULL, 0, 0,
                                   &server),
                 GH_RC_ERROR_PORT_BUSY);
    CHECK(server == NULL);
    close(fd);

    /* A port held by another managed server. */
    tu_layout l2;
    gh_rpc_server *first = server_new(&l2, "new-errors-first", 0, NULL, 0, 0);
    CHECK_RESULT(gh_rpc_server_new(gh_rpc_server_port(first), &svc, 1, l.folders, NULL, 0,
                                   NULL, 0, NULL, 0, 0, &server),
                 GH_RC_ERROR_PORT_BUSY);
    CHECK(server == NULL);
    CHECK_EQ(atomic_load(&st.loads), 0);
    gh_rpc_server_free(first);
    tu_layout_free(&l2);
    gh_rpc_service_free(svc);
    CHECK_FREES(&st, SAMPLE_METHODS, 1);
    state_destroy(&st);

    /* A failing load hook: its code and message, the server shut down (the
     * shutdown hook called), the port free again. */
    state_init(&st, LOAD_FAIL);
    svc = sample_service(&st, 1);
    const char *msg = CHECK_RESULT(gh_rpc_server_new(0, &svc, 1, l.folders, g_grace_cli, 1,
                                                     NULL, 0, NULL, 0, 0, &server),
                                   GH_RC_ERROR_STATE_UNEXPECTED);
    CHECK_CONTAINS(msg, "sample load refused");
    CHECK(server == NULL);
    CHECK_EQ(atomic_load(&st.loads), 1);
    CHECK_EQ(atomic_load(&st.shutdowns), 1);
    CHECK(st.load_port > 0);
    gh_rpc_service_free(svc);
    CHECK_FREES(&st, SAMPLE_METHODS, 1);
    /* its port is free again */
    server = server_new(&l2, "new-errors-again", st.load_port, NULL, 0, 0);
    gh_rpc_client *c = client_new(st.load_port, 5, NULL, 1);
    info_through_client(c, tu_pb_filter(0, NO_NAMES), NAMES("srv", "config", "log"));
    gh_rpc_client_free(c);
    gh_rpc_server_free(server);
    tu_layout_free(&l2);
    tu_layout_free(&l);
    state_destroy(&st);
}

/* A server of the sample service (with its manager; the service handle freed
 * at once) in a layout <g_tmp>/<name>, |cli| as server_new_cli's, and a client
 * of it (timeout 0, raise_errors 1). */
typedef struct {
    sample_state st;
    tu_layout l;
    gh_rpc_server *server;
    gh_rpc_client *client;
} fixture;

static void fixture_new(fixture *f, const char *name, const char *const *cli,
                        size_t cli_count, int flags) {
    state_init(&f->st, LOAD_CHECK);
    gh_rpc_service *svc = sample_service(&f->st, 1);
    f->server = server_new_cli(&f->l, name, 0, &svc, 1, cli, cli_count, flags);
    gh_rpc_service_free(svc);
    f->client = client_new(gh_rpc_server_port(f->server), 0, name, 1);
}

/* Frees the client and the server, which was shut down once; the sample's
 * user data is freed. */
static void fixture_free(fixture *f) {
    gh_rpc_client_free(f->client);
    gh_rpc_server_free(f->server);
    CHECK_EQ(atomic_load(&f->st.shutdowns), 1);
    CHECK_FREES(&f->st, SAMPLE_METHODS, 1);
    tu_layout_free(&f->l);
    state_destroy(&f->st);
}

/* ------------------------------------------------------------------------ */
/* Shutdown                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct {
    gh_rpc_server *server;
    pthread_t thread;
    int rc;
    double done_at;
} shutdown_arg;

static void *shutdown_run(void *p) {
    shutdown_arg *a = p;
    a->rc = gh_rpc_server_shutdown(a->server);
    a->done_at = tu_now();
    return NULL;
}

static void test_shutdown_api(void) {
    fixture f;
    fixture_new(&f, "shutdown-api", NULL, 0, 0);
    async_call hold;
    async_start(&hold, f.client, "sample", "hold", NO_NAMES, 0);
    CHECK(tu_counter_wait(&f.st.held, 1, TU_WAIT_LIMIT));
    CHECK_EQ(gh_rpc_server_is_running(f.server), 1);

    /* One thread shuts down; once its shutdown hook ran, a second caller waits
     * for it. */
    shutdown_arg first = {f.server, 0, -1, 0};
    double t0 = tu_now();
    CHECK(pthread_create(&first.thread, NULL, shutdown_run, &first) == 0);
    CHECK(tu_counter_wait(&f.st.shutdown_hooks, 1, TU_WAIT_LIMIT));
    CHECK_EQ(f.st.hold_done_at_shutdown, 0); /* the hook ran while the call was pending */
    CHECK_EQ(gh_rpc_server_is_running(f.server), 0);
    CHECK_OK(gh_rpc_server_shutdown(f.server));
    double second = tu_now() - t0;
    CHECK_EQ(gh_rpc_server_wait_shutdown(f.server, 0), 1);
    CHECK(pthread_join(first.thread, NULL) == 0);
    CHECK_OK(first.rc);
    double elapsed = first.done_at - t0;
    CHECK_MSG(elapsed >= 0.25 && elapsed < 5, "shutdown took %.3f s (grace 0.3)", elapsed);
    CHECK_MSG(second >= 0.25, "the second shutdown returned after %.3f s", second);

    /* The held call was cancelled after the grace. */
    async_join(&hold);
    async_check_fails(&hold, GH_RC_ERROR_RPC, "/" SAMPLE_SERVICE "/hold");
    CHECK_EQ(atomic_load(&f.st.hold_cancelled), 1);
    CHECK_EQ(gh_rpc_server_is_running(f.server), 0);
    CHECK_EQ(gh_rpc_server_wait_shutdown(f.server, 0), 1);
    CHECK_EQ(gh_rpc_server_wait_shutdown(f.server, -1), 1);

    /* Idempotent: at once. */
    t0 = tu_now();
    CHECK_OK(gh_rpc_server_shutdown(f.server));
    elapsed = tu_now() - t0;
    CHECK_MSG(elapsed < 0.2, "a shutdown after the end took %.3f s", elapsed);
    CHECK_EQ(atomic_load(&f.st.shutdowns), 1);

    /* No more calls. */
    uint8_t *resp = NULL;
    size_t len = 0;
    CHECK_RESULT(rpc(f.client, "srv", "info", tu_pb_filter(0, NO_NAMES), &resp, &len),
                 GH_RC_ERROR_RPC);
    fixture_free(&f);
}

/* rpc-max-workers 2: two handlers at a time. */
static void test_max_workers(void) {
    static const char *const cli[] = {"rpc-shutdown-grace=0.3", "rpc-max-workers=2"};
    fixture f;
    fixture_new(&f, "max-workers", cli, 2, 0);
    async_call hold[3];
    for (int i = 0; i < 3; i++) async_start(&hold[i], f.client, "sample", "hold", NO_NAMES, 0);
    CHECK(tu_counter_wait(&f.st.held, 2, TU_WAIT_LIMIT));
    /* the third waits for a worker (a bounded wait for what must not come) */
    CHECK_EQ(tu_counter_wait(&f.st.held, 3, 0.5), 0);
    CHECK_OK(gh_rpc_server_shutdown(f.server));
    for (int i = 0; i < 3; i++) {
        async_join(&hold[i]);
        async_check_fails(&hold[i], GH_RC_ERROR_RPC, "/" SAMPLE_SERVICE "/hold");
    }
    fixture_free(&f);
}

/* ShutdownRequest { 1: int32 timeout } */
static tu_buf shutdown_request(int timeout) {
    tu_buf b = {0};
    tu_pb_varint(&b, 1, (uint64_t)(int64_t)timeout);
    return b;
}

static void test_shutdown_rpc(void) {
    for (int timeout = -1; timeout <= 1; timeout += 2) {
        fixture f;
        fixture_new(&f, timeout < 0 ? "shutdown-rpc-now" : "shutdown-rpc-1s", NULL, 0, 0);
        double t0 = tu_now();
        free(rpc_msg(f.client, "srv", "shutdown", shutdown_request(timeout)));
        CHECK_EQ(gh_rpc_server_is_running(f.server), 0);
        if (timeout >= 0) CHECK_EQ(gh_rpc_server_wait_shutdown(f.server, 0.2), 0);
        CHECK_EQ(gh_rpc_server_wait_shutdown(f.server, 10), 1);
        double elapsed = tu_now() - t0;
        if (timeout >= 0) {
            CHECK_MSG(elapsed >= timeout && elapsed < 10,
                      "shutdown with timeout %d finished after %.3f s", timeout, elapsed);
        }
        CHECK_EQ(atomic_load(&f.st.shutdowns), 1);
        CHECK_EQ(gh_rpc_server_wait_shutdown(f.server, 0), 1);
        CHECK_OK(gh_rpc_server_shutdown(f.server));
        fixture_free(&f);
    }
}

/* ------------------------------------------------------------------------ */
/* Begin-shutdown and release: any thread, the server's handlers too        */
/* ------------------------------------------------------------------------ */

/* The "ctl" service (test.Ctl, API 1..1) and its manager, every one with a
 * ctl_state and ctl_free:
 * - "begin": gh_rpc_server_begin_shutdown of its own server, then answers;
 * - "release": gh_rpc_server_release of its own server, then answers;
 * - "wait" (server streaming): sends "waiting", then waits (bounded) until
 *   its call ends (the client frees its responses: cancelled);
 * - the manager's shutdown hook counts. */
#define CTL_SERVICE "test.Ctl"
#define CTL_FREES 4 /* three methods and the manager */

typedef struct {
    gh_rpc_server *server; /* set once gh_rpc_server_new returned it */
    atomic_int begin_rc;   /* what "begin" got */
    tu_counter waiting;    /* "wait" calls entered */
    tu_counter wait_done;  /* "wait" calls returned */
    tu_counter shutdowns;  /* shutdown hook calls */
    tu_counter frees;      /* free_user_data calls */
    atomic_int frees_off_library; /* free_user_data calls not on gh-rpc-shutdown */
} ctl_state;

static void ctl_init(ctl_state *c) {
    memset(c, 0, sizeof *c);
    atomic_init(&c->begin_rc, 1);
    tu_counter_init(&c->waiting);
    tu_counter_init(&c->wait_done);
    tu_counter_init(&c->shutdowns);
    tu_counter_init(&c->frees);
    atomic_init(&c->frees_off_library, 0);
}

static void ctl_destroy(ctl_state *c) {
    tu_counter_destroy(&c->waiting);
    tu_counter_destroy(&c->wait_done);
    tu_counter_destroy(&c->shutdowns);
    tu_counter_destroy(&c->frees);
}

/* The calling thread's name (Linux: its comm). */
static void thread_name(char *out, size_t size) {
    out[0] = '\0';
    FILE *f = fopen("/proc/thread-self/comm", "r");
    if (f == NULL) return;
    if (fgets(out, (int)size, f) == NULL) out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
}

/* free_user_data: on the library's releasing thread (gh-rpc-shutdown) when
 * the server was given up with gh_rpc_server_release. */
static void ctl_free(void *user_data) {
    ctl_state *c = user_data;
    char name[32];
    thread_name(name, sizeof name);
    if (strncmp(name, "gh-rpc-shutdown", 15) != 0) atomic_fetch_add(&c->frees_off_library, 1);
    tu_counter_add(&c->frees, 1);
}

static void ctl_read(gh_server_call *call) {
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_EQ(gh_server_call_read(call, &data, &len), 1);
}

static int ctl_begin(gh_server_call *call, void *user_data) {
    ctl_state *c = user_data;
    ctl_read(call);
    atomic_store(&c->begin_rc, gh_rpc_server_begin_shutdown(c->server));
    /* the server takes no new calls; this one goes on */
    CHECK_EQ(gh_rpc_server_is_running(c->server), 0);
    CHECK_OK(send_status(call, 0, "begun"));
    return GH_RC_OK;
}

static int ctl_release(gh_server_call *call, void *user_data) {
    ctl_state *c = user_data;
    ctl_read(call);
    gh_rpc_server_release(c->server); /* the handle is gone; the call goes on */
    c->server = NULL;
    CHECK_OK(send_status(call, 0, "released"));
    return GH_RC_OK;
}

static int ctl_wait(gh_server_call *call, void *user_data) {
    ctl_state *c = user_data;
    ctl_read(call);
    CHECK_OK(send_status(call, 0, "waiting"));
    tu_counter_add(&c->waiting, 1);
    CHECK_EQ(gh_server_call_wait_done(call, TU_WAIT_LIMIT), 1);
    tu_counter_add(&c->wait_done, 1);
    return GH_RC_OK;
}

static void ctl_shutdown(void *user_data) { tu_counter_add(&((ctl_state *)user_data)->shutdowns, 1); }

static const char *const g_ctl_cli[] = {"rpc-shutdown-grace=5"};

/* A server of the ctl service (its handle freed at once: the server holds the
 * user data alone), rpc-shutdown-grace 5 (a held "wait" call keeps a shutdown
 * from finishing until it is cancelled), and a client of it. */
static gh_rpc_server *ctl_server(tu_layout *l, const char *name, ctl_state *c,
                                 gh_rpc_client **client) {
    gh_rpc_service *s = NULL;
    CHECK_OK(gh_rpc_service_new("ctl", CTL_SERVICE, "ctl:1.0", 1, 1, &s));
    CHECK_OK(gh_rpc_service_add_method(s, "begin", GH_UNARY, ctl_begin, c, ctl_free));
    CHECK_OK(gh_rpc_service_add_method(s, "release", GH_UNARY, ctl_release, c, ctl_free));
    CHECK_OK(gh_rpc_service_add_method(s, "wait", GH_SERVER_STREAMING, ctl_wait, c, ctl_free));
    CHECK_OK(gh_rpc_service_set_manager(s, "Ctl", NULL, ctl_shutdown, c, ctl_free));
    gh_rpc_server *server = server_new_cli(l, name, 0, &s, 1, g_ctl_cli, 1, 0);
    gh_rpc_service_free(s);
    c->server = server;
    CHECK_OK(gh_rpc_client_new("127.0.0.1", gh_rpc_server_port(server), 0, name, 1, client));
    CHECK_OK(gh_rpc_client_add_stub(*client, "ctl", CTL_SERVICE, 1));
    return server;
}

/* A "wait" call, held until gh_rpc_responses_free. */
static gh_rpc_responses *ctl_hold(ctl_state *c, gh_rpc_client *client) {
    gh_rpc_responses *rs = stream(client, "ctl", "wait", NO_NAMES);
    next_msg(rs, "waiting");
    CHECK(tu_counter_wait(&c->waiting, 1, TU_WAIT_LIMIT));
    return rs;
}

/* Every user data freed, on the library's releasing thread. */
static void ctl_check_freed_by_library(ctl_state *c) {
    CHECK(tu_counter_wait(&c->frees, CTL_FREES, TU_WAIT_LIMIT));
    CHECK_EQ(tu_counter_get(&c->frees), CTL_FREES);
    CHECK_EQ(atomic_load(&c->frees_off_library), 0);
}

/* A managed server (in a new layout |name|) can listen on |port| again. */
static void check_port_free(int port, const char *name) {
    tu_layout l;
    gh_rpc_server *again = server_new(&l, name, port, NULL, 0, 0);
    gh_rpc_server_free(again);
    tu_layout_free(&l);
}

static void test_begin_shutdown(void) {
    /* From outside, with a call held: returns at once, takes no new calls; the
     * shutdown hook runs on the library's thread, the end waits for the call. */
    ctl_state c;
    ctl_init(&c);
    tu_layout l;
    gh_rpc_client *client = NULL;
    gh_rpc_server *server = ctl_server(&l, "begin-outside", &c, &client);
    gh_rpc_responses *held = ctl_hold(&c, client);
    CHECK_OK(gh_rpc_server_begin_shutdown(server));
    CHECK_EQ(gh_rpc_server_is_running(server), 0);
    CHECK(tu_counter_wait(&c.shutdowns, 1, TU_WAIT_LIMIT));
    CHECK_EQ(gh_rpc_server_wait_shutdown(server, 0), 0); /* the held call */
    CHECK_OK(gh_rpc_server_begin_shutdown(server));      /* idempotent */
    uint8_t *resp = NULL;
    size_t len = 0;
    CHECK_RESULT(rpc(client, "ctl", "begin", tu_pb_filter(0, NO_NAMES), &resp, &len),
                 GH_RC_ERROR_RPC); /* no new calls */
    gh_rpc_responses_free(held);   /* cancels the held call: the shutdown ends */
    CHECK(tu_counter_wait(&c.wait_done, 1, TU_WAIT_LIMIT));
    CHECK_EQ(gh_rpc_server_wait_shutdown(server, TU_WAIT_LIMIT), 1);
    CHECK_OK(gh_rpc_server_begin_shutdown(server)); /* after the end too */
    CHECK_OK(gh_rpc_server_shutdown(server));       /* at once */
    CHECK_EQ(tu_counter_get(&c.shutdowns), 1);
    CHECK_EQ(tu_counter_get(&c.frees), 0);
    int port = gh_rpc_server_port(server);
    gh_rpc_client_free(client);
    gh_rpc_server_free(server);
    CHECK_EQ(tu_counter_get(&c.frees), CTL_FREES); /* by gh_rpc_server_free, before it returned */
    check_port_free(port, "port-again-1");
    tu_layout_free(&l);
    ctl_destroy(&c);

    /* From one of its handlers: the call is answered (the shutdown waits for the
     * handler, which did not wait for it). */
    ctl_init(&c);
    server = ctl_server(&l, "begin-handler", &c, &client);
    char *msg = rpc_msg(client, "ctl", "begin", tu_pb_filter(0, NO_NAMES));
    CHECK_STR(msg, "begun");
    free(msg);
    CHECK_OK(atomic_load(&c.begin_rc));
    CHECK_EQ(gh_rpc_server_wait_shutdown(server, TU_WAIT_LIMIT), 1);
    CHECK_EQ(gh_rpc_server_is_running(server), 0);
    CHECK_EQ(tu_counter_get(&c.shutdowns), 1);
    gh_rpc_client_free(client);
    gh_rpc_server_free(server);
    CHECK_EQ(tu_counter_get(&c.frees), CTL_FREES);
    tu_layout_free(&l);
    ctl_destroy(&c);

    CHECK_RC(gh_rpc_server_begin_shutdown(NULL), GH_ERR_INVALID_ARGUMENT);
}

static void test_release(void) {
    /* From one of its handlers: the call is answered; the library shuts the
     * server down and frees it on its own thread. */
    ctl_state c;
    ctl_init(&c);
    tu_layout l;
    gh_rpc_client *client = NULL;
    gh_rpc_server *server = ctl_server(&l, "release-handler", &c, &client);
    int port = gh_rpc_server_port(server);
    char *msg = rpc_msg(client, "ctl", "release", tu_pb_filter(0, NO_NAMES));
    CHECK_STR(msg, "released");
    free(msg);
    ctl_check_freed_by_library(&c);
    CHECK_EQ(tu_counter_get(&c.shutdowns), 1);
    gh_rpc_client_free(client);
    check_port_free(port, "port-again-2");
    tu_layout_free(&l);
    ctl_destroy(&c);

    /* From the main thread with a call held: returns at once; nothing is freed
     * until the shutdown has finished (the held call cancelled). */
    ctl_init(&c);
    server = ctl_server(&l, "release-main", &c, &client);
    port = gh_rpc_server_port(server);
    gh_rpc_responses *held = ctl_hold(&c, client);
    gh_rpc_server_release(server);
    CHECK(tu_counter_wait(&c.shutdowns, 1, TU_WAIT_LIMIT));
    CHECK_EQ(tu_counter_get(&c.frees), 0);
    CHECK_EQ(tu_counter_get(&c.wait_done), 0);
    gh_rpc_responses_free(held);
    ctl_check_freed_by_library(&c);
    CHECK_EQ(tu_counter_get(&c.wait_done), 1);
    gh_rpc_client_free(client);
    check_port_free(port, "port-again-3");
    tu_layout_free(&l);
    ctl_destroy(&c);

    /* After a shutdown (nothing left to wait for): still freed on the library's
     * thread, never on the caller's. */
    ctl_init(&c);
    server = ctl_server(&l, "release-after", &c, &client);
    CHECK_OK(gh_rpc_server_shutdown(server));
    gh_rpc_server_release(server);
    ctl_check_freed_by_library(&c);
    CHECK_EQ(tu_counter_get(&c.shutdowns), 1);
    gh_rpc_client_free(client);
    tu_layout_free(&l);
    ctl_destroy(&c);

    gh_rpc_server_release(NULL); /* does nothing */
}

/* ------------------------------------------------------------------------ */
/* Client retry                                                             */
/* ------------------------------------------------------------------------ */

static void test_retry(void) {
    int port = free_port();
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);

    /* Retried until the timeout (1.2 s), then GH_RC_ERROR_RPC naming the
     * method and target; unary and streaming calls at once. */
    gh_rpc_client *c = client_new(port, 1.2, "retry", 1);
    async_call unary, streaming;
    async_start(&unary, c, "srv", "info", NO_NAMES, 0);
    async_start(&streaming, c, "sample", "stream", NAMES("a"), 1);
    async_join(&unary);
    async_join(&streaming);
    async_check_fails(&unary, GH_RC_ERROR_RPC, "/RpcServerService/info");
    async_check_fails(&unary, GH_RC_ERROR_RPC, target);
    async_check_fails(&streaming, GH_RC_ERROR_RPC, "/" SAMPLE_SERVICE "/stream");
    async_check_fails(&streaming, GH_RC_ERROR_RPC, target);
    CHECK_MSG(unary.elapsed >= 1.2 && unary.elapsed < 4, "unary retried %.3f s", unary.elapsed);
    CHECK_MSG(streaming.elapsed >= 1.2 && streaming.elapsed < 4, "stream retried %.3f s",
              streaming.elapsed);
    gh_rpc_client_free(c);

    /* Timeout 0: no retry. */
    c = client_new(port, 0, "no-retry", 1);
    async_start(&unary, c, "srv", "info", NO_NAMES, 0);
    async_join(&unary);
    async_check_fails(&unary, GH_RC_ERROR_RPC, "/RpcServerService/info");
    CHECK_MSG(unary.elapsed < 0.5, "no retry took %.3f s", unary.elapsed);
    async_start(&streaming, c, "sample", "stream", NAMES("a"), 1);
    async_join(&streaming);
    async_check_fails(&streaming, GH_RC_ERROR_RPC, target);
    CHECK_MSG(streaming.elapsed < 0.5, "no retry took %.3f s", streaming.elapsed);
    gh_rpc_client_free(c);

    /* A server that appears while the client retries: the call succeeds. Its
     * service has no manager. */
    sample_state st;
    state_init(&st, LOAD_CHECK);
    gh_rpc_service *svc = sample_service(&st, 0);
    port = free_port();
    c = client_new(port, 10, "late", 1);
    async_start(&unary, c, "sample", "ok", NAMES("late"), 0);
    /* Not a synchronisation: the scenario needs the server to come late. */
    tu_sleep(0.7);
    tu_layout l;
    gh_rpc_server *server = server_new(&l, "retry-late", port, &svc, 1, 0);
    gh_rpc_service_free(svc);
    async_join(&unary);
    CHECK_MSG(unary.rc == GH_OK, "late server: rc %d: %s", unary.rc, unary.message);
    CHECK_MSG(unary.elapsed >= 0.7 && unary.elapsed < 5, "late server: %.3f s", unary.elapsed);
    CHECK_STR(unary.msg, "late");
    free(unary.msg);
    gh_rpc_client_free(c);
    gh_rpc_server_free(server);
    CHECK_EQ(atomic_load(&st.loads), 0);
    CHECK_FREES(&st, SAMPLE_METHODS, 0);
    tu_layout_free(&l);
    state_destroy(&st);
}

/* ------------------------------------------------------------------------ */
/* Debug dump                                                               */
/* ------------------------------------------------------------------------ */

/* The name of a dump file: RpcServerDump-YYYYMMDDhhmmss.txt. */
static int is_dump_name(const char *name) {
    if (strncmp(name, "RpcServerDump-", 14) != 0) return 0;
    for (int i = 14; i < 28; i++) {
        if (name[i] < '0' || name[i] > '9') return 0;
    }
    return strcmp(name + 28, ".txt") == 0;
}

/* A dump file in |folder| holding every part and none of |absent|: 1. */
static int find_dump(const char *folder, const char *const *parts, const char *const *absent) {
    DIR *dir = opendir(folder);
    if (dir == NULL) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(dir)) != NULL) {
        if (!is_dump_name(e->d_name)) continue;
        char path[1400];
        TU_PATH(path, "%s/%s", folder, e->d_name);
        char *text = tu_read_file(path, NULL);
        if (text == NULL) continue;
        found = 1;
        for (size_t i = 0; found && parts[i] != NULL; i++) {
            found = strstr(text, parts[i]) != NULL;
        }
        for (size_t i = 0; found && absent[i] != NULL; i++) {
            CHECK_MSG(strstr(text, absent[i]) == NULL, "%s holds \"%s\"", path, absent[i]);
        }
        free(text);
    }
    closedir(dir);
    return found;
}

/* gh_rpc_server_set_dump_fn's functions and their user data. */
typedef struct {
    pthread_t main;
    atomic_int calls;
    atomic_int on_main;
    atomic_int frees;
} dump_state;

static char *dump_text(void *user_data, const char *text) {
    dump_state *d = user_data;
    atomic_fetch_add(&d->calls, 1);
    if (pthread_equal(pthread_self(), d->main)) atomic_fetch_add(&d->on_main, 1);
    char *s = malloc(strlen(text) + 1);
    CHECK(s != NULL);
    strcpy(s, text);
    return s;
}

static char *dump_first(void *user_data) { return dump_text(user_data, "first dump text"); }
static char *dump_second(void *user_data) { return dump_text(user_data, "second dump text"); }
static void dump_free(void *user_data) {
    atomic_fetch_add(&((dump_state *)user_data)->frees, 1);
}

static void test_debug_dump(void) {
    fixture f;
    fixture_new(&f, "dump", NULL, 0, GH_RPC_DEBUG_SIGNAL);
    dump_state ds;
    ds.main = pthread_self();
    atomic_init(&ds.calls, 0);
    atomic_init(&ds.on_main, 0);
    atomic_init(&ds.frees, 0);
    /* a failing call frees at once */
    CHECK(gh_rpc_server_set_dump_fn(NULL, dump_first, &ds, dump_free) < 0);
    CHECK_EQ(atomic_load(&ds.frees), 1);
    /* a later call replaces the function */
    CHECK_OK(gh_rpc_server_set_dump_fn(f.server, dump_first, &ds, dump_free));
    CHECK_OK(gh_rpc_server_set_dump_fn(f.server, dump_second, &ds, dump_free));
    char folder[1024];
    snprintf(folder, sizeof folder, "%s", gh_logs_folder(gh_rpc_server_logs(f.server)));

    async_call hold;
    async_start(&hold, f.client, "sample", "hold", NO_NAMES, 0);
    CHECK(tu_counter_wait(&f.st.held, 1, TU_WAIT_LIMIT));
    CHECK(raise(SIGUSR2) == 0);
    /* Written by a watcher thread: poll the logs folder (20 ms steps, 5 s). */
    const char *const parts[] = {"Threads:", "Pending RPC calls:", "/" SAMPLE_SERVICE "/hold",
                                 "second dump text", NULL};
    int found = 0;
    for (int i = 0; i < 250 && !found; i++) {
        found = find_dump(folder, parts, NAMES("first dump text"));
        if (!found) tu_sleep(0.02);
    }
    CHECK_MSG(found, "no RpcServerDump-*.txt with the held call in %s", folder);
    CHECK_EQ(atomic_load(&ds.calls), 1);
    CHECK_EQ(atomic_load(&ds.on_main), 0); /* on the library's signal thread */

    CHECK_OK(gh_rpc_server_shutdown(f.server));
    async_join(&hold);
    async_check_fails(&hold, GH_RC_ERROR_RPC, "/" SAMPLE_SERVICE "/hold");
    fixture_free(&f);
    CHECK_EQ(atomic_load(&ds.frees), 3);
}

/* ------------------------------------------------------------------------ */
/* Exit signals (forked children, before the parent uses the library)      */
/* ------------------------------------------------------------------------ */

typedef enum {
    CHILD_SIGTERM,       /* opt-in, SIGTERM: graceful shutdown, exit 0 */
    CHILD_SIGINT,        /* opt-in, SIGINT: graceful shutdown, exit 0 */
    CHILD_TWICE,         /* opt-in, SIGTERM twice: status 1 */
    CHILD_NO_OPT_IN,     /* no opt-in: SIGTERM kills */
    CHILD_NO_DEBUG_FLAG, /* no GH_RPC_DEBUG_SIGNAL: SIGUSR2 kills */
} child_kind;

/* The child's own failures exit 3 (CHECK's 1 is CHILD_TWICE's success). */
#define CHILD_CHECK(cond)                                                    \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: child CHECK failed: %s (%s)\n", __FILE__, \
                    __LINE__, #cond, gh_last_error());                       \
            _exit(3);                                                        \
        }                                                                    \
    } while (0)

static void child_main(child_kind kind, const char *marker) {
    alarm(30); /* a hung child dies */
    tu_layout l;
    char name[32];
    snprintf(name, sizeof name, "child-%d", (int)kind);
    tu_layout_new(&l, g_tmp, name);
    gh_rpc_server *server = NULL;
    CHILD_CHECK(gh_rpc_server_new(0, NULL, 0, l.folders, NULL, 0, NULL, 0, NULL, 0, 0,
                                  &server) == GH_OK);
    if (kind != CHILD_NO_OPT_IN && kind != CHILD_NO_DEBUG_FLAG) {
        CHILD_CHECK(gh_rpc_server_handle_exit_signals(server) == GH_OK);
    }
    CHILD_CHECK(gh_rpc_server_is_running(server) == 1);
    tu_write_file(marker, "raised");
    switch (kind) {
    case CHILD_SIGTERM:
    case CHILD_SIGINT:
        CHILD_CHECK(raise(kind == CHILD_SIGTERM ? SIGTERM : SIGINT) == 0);
        CHILD_CHECK(gh_rpc_server_wait_shutdown(server, 10) == 1);
        CHILD_CHECK(gh_rpc_server_is_running(server) == 0);
        gh_rpc_server_free(server);
        tu_layout_free(&l);
        _exit(0);
    case CHILD_TWICE:
        CHILD_CHECK(raise(SIGTERM) == 0);
        CHILD_CHECK(raise(SIGTERM) == 0);
        break;
    case CHILD_NO_OPT_IN:
        CHILD_CHECK(raise(SIGTERM) == 0);
        break;
    case CHILD_NO_DEBUG_FLAG:
        CHILD_CHECK(raise(SIGUSR2) == 0);
        break;
    }
    /* Ended by the signal (or by the alarm). */
    for (;;) pause();
}

/* Runs |kind| in a child; its wait status. */
static int run_child(child_kind kind) {
    char marker[600];
    TU_PATH(marker, "%s/marker-%d", g_tmp, (int)kind);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) child_main(kind, marker);
    int status = 0;
    pid_t got = 0;
    /* Bounded: 20 ms steps, 40 s. */
    for (int i = 0; i < 2000 && got == 0; i++) {
        got = waitpid(pid, &status, WNOHANG);
        if (got == 0) tu_sleep(0.02);
    }
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        CHECK_MSG(0, "child %d did not end", (int)kind);
    }
    CHECK(got == pid);
    CHECK_MSG(tu_exists(marker), "child %d failed before raising (status 0x%x)", (int)kind,
              status);
    return status;
}

static void test_exit_signals(void) {
    int st = run_child(CHILD_SIGTERM);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM child: status 0x%x", st);
    st = run_child(CHILD_SIGINT);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGINT child: status 0x%x", st);
    st = run_child(CHILD_TWICE);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 1, "twice child: status 0x%x", st);
    st = run_child(CHILD_NO_OPT_IN);
    CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "no opt-in child: status 0x%x", st);
    st = run_child(CHILD_NO_DEBUG_FLAG);
    CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR2, "no debug flag child: status 0x%x",
              st);
}

/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* Proxied services                                                          */
/* ------------------------------------------------------------------------ */

/* gh_rpc_service_set_proxy: listed as proxied by srv.info; while no backend
 * registered, calls answer GH_RC_ERROR_PROXY_UNREGISTERED after
 * rpc-client-timeout (here 0.2 s); no hooks needed. */
static void test_proxied(void) {
    gh_rpc_service *s = NULL;
    CHECK_OK(gh_rpc_service_new("sample", SAMPLE_SERVICE, "remote:0.1", 1, 2, &s));
    CHECK_OK(gh_rpc_service_add_method(s, "ok", GH_UNARY, NULL, NULL, NULL));
    CHECK_OK(gh_rpc_service_set_proxy(s, 1));
    tu_layout l;
    static const char *const cli[] = {"rpc-shutdown-grace=0.3", "rpc-client-timeout=0.2"};
    gh_rpc_server *server = server_new_cli(&l, "proxied", 0, &s, 1, cli, 2, 0);
    gh_rpc_service_free(s);
    gh_rpc_client *c = client_new(gh_rpc_server_port(server), 5, "proxy-tester", 1);
    uint8_t *resp = NULL;
    size_t len = 0;
    tu_buf req = tu_pb_filter(0, NAMES("sample"));
    CHECK_OK(gh_rpc_client_call(c, "srv", "info", req.data, req.len, TU_WAIT_LIMIT, &resp, &len));
    tu_buf_free(&req);
    /* MultiServiceInfo { 2: ServiceInfo { 5: is_proxy } }: the item ends with 0x28 0x01. */
    CHECK(len >= 2 && resp[len - 2] == (5 << 3 | 0) && resp[len - 1] == 1);
    gh_free(resp);
    const char *msg = rpc_fails(c, "sample", "ok", tu_pb_filter(0, NO_NAMES),
                                GH_RC_ERROR_PROXY_UNREGISTERED);
    CHECK_CONTAINS(msg, "Proxy didn't registered in time for method call");
    gh_rpc_client_free(c);
    gh_rpc_server_free(server);
    tu_layout_free(&l);
}

/* A proxied manager's load hook: it has the client of the main server. */
static int g_proxied_load_had_client;
static int proxied_load(gh_rpc_server *server, gh_rpc_client *client, void *user_data) {
    (void)client;
    (void)user_data;
    g_proxied_load_had_client = gh_rpc_server_proxy_client(server, "sample") != NULL;
    return GH_RC_OK;
}

/* Forwarding to a registered backend (srv.proxy_register through the C
 * client): unary results and error results untouched, the caller's identity
 * marked "(proxied)" with its api_version, a server stream then its error
 * result, a cancel and a deadline reaching the backend's handler; srv.info's
 * proxy fields; after srv.proxy_forget, ERROR_PROXY_UNREGISTERED once
 * rpc-client-timeout (0.3 s) has passed. */
static void test_proxy_forwarding(void) {
    sample_state st;
    state_init(&st, LOAD_CHECK);
    gh_rpc_service *real = sample_service(&st, 0);
    tu_layout lb, lp;
    gh_rpc_server *backend = server_new(&lb, "proxy-backend", 0, &real, 1, 0);
    gh_rpc_service_free(real);
    gh_rpc_service *declared = NULL;
    CHECK_OK(gh_rpc_service_new("sample", SAMPLE_SERVICE, "declared:0", 1, 2, &declared));
    CHECK_OK(gh_rpc_service_add_method(declared, "ok", GH_UNARY, NULL, NULL, NULL));
    CHECK_OK(gh_rpc_service_add_method(declared, "fail", GH_UNARY, NULL, NULL, NULL));
    CHECK_OK(gh_rpc_service_add_method(declared, "stream", GH_SERVER_STREAMING, NULL, NULL, NULL));
    CHECK_OK(gh_rpc_service_add_method(declared, "whoami", GH_UNARY, NULL, NULL, NULL));
    CHECK_OK(gh_rpc_service_add_method(declared, "hold", GH_UNARY, NULL, NULL, NULL));
    CHECK_OK(gh_rpc_service_set_proxy(declared, 1));
    static const char *const cli[] = {"rpc-shutdown-grace=0.3", "rpc-client-timeout=0.3"};
    gh_rpc_server *proxy = server_new_cli(&lp, "proxy-main", 0, &declared, 1, cli, 2, 0);
    gh_rpc_service_free(declared);
    gh_rpc_client *c = client_new(gh_rpc_server_port(proxy), 5, "c-proxy", 1);
    gh_rpc_client *c0 = client_new(gh_rpc_server_port(proxy), 5, "c-proxy", 0);

    /* ProxyRegisterRequest { 1: names, 2: version, 3: host, 4: port } */
    tu_buf reg = {0};
    tu_pb_string(&reg, 1, "sample");
    tu_pb_string(&reg, 2, "sample:9.9");
    tu_pb_string(&reg, 3, "127.0.0.1");
    tu_pb_varint(&reg, 4, (uint64_t)gh_rpc_server_port(backend));
    free(rpc_msg(c, "srv", "proxy_register", reg));
    uint8_t *resp = NULL;
    size_t len = 0;
    CHECK_OK(rpc(c, "srv", "info", tu_pb_filter(0, NAMES("sample")), &resp, &len));
    const uint8_t *item[2];
    size_t item_len[2];
    CHECK_EQ(pb_subs(resp, len, 2, item, item_len, 2), 1);
    CHECK_EQ(pb_num(item[0], item_len[0], 7), (uint64_t)gh_rpc_server_port(backend));
    char *text = pb_str(item[0], item_len[0], 6);
    CHECK_STR(text, "127.0.0.1");
    free(text);
    text = pb_str(item[0], item_len[0], 2);
    CHECK_STR(text, "sample:9.9");
    free(text);
    gh_free(resp);

    check_ok_call(c, "sample", NAMES("a", "b"), "a,b");
    CHECK_EQ(atomic_load(&st.ok_calls), 1);
    char *who = rpc_msg(c, "sample", "whoami", tu_pb_filter(0, NO_NAMES));
    CHECK_MSG(strncmp(who, "c-proxy(proxied)|", 17) == 0 && strcmp(who + strlen(who) - 2, "|2") == 0,
              "whoami: %s", who);
    free(who);
    result_t r;
    rpc_error_result(c0, "sample", "fail", tu_pb_filter(0, NAMES("20", "refused here", "-")), 20, &r);
    CHECK_STR(r.msg, "refused here");
    result_clear(&r);
    gh_rpc_responses *rs = stream(c, "sample", "stream", NAMES("x", "y"));
    next_msg(rs, "x");
    next_msg(rs, "y");
    uint8_t *data = NULL;
    CHECK_RESULT(gh_rpc_responses_next(rs, &data, &len), STREAM_CODE);
    gh_rpc_responses_free(rs);
    /* A cancel and a deadline reach the backend's handlers. */
    rs = stream(c, "sample", "stream", NAMES("first", "wait"));
    next_msg(rs, "first");
    gh_rpc_responses_free(rs);
    CHECK_EQ(tu_counter_wait(&st.stream_cancelled, 1, TU_WAIT_LIMIT), 1);
    tu_buf hold = tu_pb_filter(0, NO_NAMES);
    CHECK(gh_rpc_client_call(c, "sample", "hold", hold.data, hold.len, 0.3, &resp, &len) != GH_OK);
    tu_buf_free(&hold);
    CHECK_EQ(tu_counter_wait(&st.hold_done, 1, TU_WAIT_LIMIT), 1);
    CHECK_EQ(atomic_load(&st.hold_cancelled), 1);

    const char *msg = NULL;
    /* A C backend that registers itself (gh_rpc_service_set_proxied) replaces the
     * registration; its load hook has the proxy client; freed, it forgets. */
    sample_state st2;
    state_init(&st2, LOAD_CHECK);
    gh_rpc_service *self_reg = sample_service(&st2, 0);
    const char *proxied_names[] = {"sample"};
    CHECK_OK(gh_rpc_service_set_proxied(self_reg, proxied_names, 1, "c-backend:1.0", 0));
    CHECK_OK(gh_rpc_service_add_proxy_stub(self_reg, "sample", SAMPLE_SERVICE, 2));
    CHECK_OK(gh_rpc_service_set_manager(self_reg, "SelfRegistering", proxied_load, NULL, NULL, NULL));
    char main_port[64];
    snprintf(main_port, sizeof main_port, "rpc-main-port=%d", gh_rpc_server_port(proxy));
    const char *const reg_cli[] = {"rpc-shutdown-grace=0.3", "rpc-main-host=127.0.0.1", main_port};
    tu_layout ls;
    gh_rpc_server *self_backend = server_new_cli(&ls, "proxy-self", 0, &self_reg, 1, reg_cli, 3, 0);
    CHECK_EQ(g_proxied_load_had_client, 1);
    CHECK(gh_rpc_server_proxy_client(self_backend, "sample") != NULL);
    CHECK(gh_rpc_server_proxy_client(self_backend, "srv") == NULL);
    CHECK(gh_rpc_server_proxy_client(self_backend, "nope") == NULL);
    CHECK_OK(rpc(c, "srv", "info", tu_pb_filter(0, NAMES("sample")), &resp, &len));
    CHECK_EQ(pb_subs(resp, len, 2, item, item_len, 2), 1);
    CHECK_EQ(pb_num(item[0], item_len[0], 7), (uint64_t)gh_rpc_server_port(self_backend));
    text = pb_str(item[0], item_len[0], 2);
    CHECK_STR(text, "c-backend:1.0");
    free(text);
    gh_free(resp);
    check_ok_call(c, "sample", NAMES("via", "self"), "via,self");
    CHECK_EQ(atomic_load(&st2.ok_calls), 1);
    gh_rpc_server_free(self_backend);
    gh_rpc_service_free(self_reg);
    tu_layout_free(&ls);
    CHECK_OK(rpc(c, "srv", "info", tu_pb_filter(0, NAMES("sample")), &resp, &len));
    CHECK_EQ(pb_subs(resp, len, 2, item, item_len, 2), 1);
    CHECK_EQ(pb_num(item[0], item_len[0], 7), 0);
    gh_free(resp);

    /* A backend that cannot reach its main server fails to start, its port freed. */
    gh_rpc_service *lost = sample_service(&st2, 0);
    CHECK_OK(gh_rpc_service_set_proxied(lost, proxied_names, 1, "c-backend:1.0", 0));
    int nobody = free_port();
    int wanted = free_port();
    snprintf(main_port, sizeof main_port, "rpc-main-port=%d", nobody);
    const char *const lost_cli[] = {"rpc-main-host=127.0.0.1", main_port, "rpc-client-timeout=0.3"};
    tu_layout_new(&ls, g_tmp, "proxy-lost");
    gh_rpc_server *none = NULL;
    msg = CHECK_RESULT(gh_rpc_server_new(wanted, &lost, 1, ls.folders, lost_cli, 3, NULL, 0, NULL, 0, 0, &none),
                       GH_RC_ERROR_RPC);
    CHECK_CONTAINS(msg, "proxy_register");
    CHECK(none == NULL);
    gh_rpc_service_free(lost);
    tu_layout_free(&ls);
    none = server_new(&ls, "proxy-lost-again", wanted, NULL, 0, 0);   /* the port is free */
    gh_rpc_server_free(none);
    tu_layout_free(&ls);
    state_destroy(&st2);

    /* Forgotten: port 0; calls wait rpc-client-timeout, then ERROR_PROXY_UNREGISTERED. */
    free(rpc_msg(c, "srv", "proxy_forget", tu_pb_filter(0, NAMES("sample"))));
    msg = rpc_fails(c, "sample", "ok", tu_pb_filter(0, NO_NAMES), GH_RC_ERROR_PROXY_UNREGISTERED);
    CHECK_CONTAINS(msg, "Proxy didn't registered in time for method call");
    msg = rpc_fails(c, "srv", "proxy_forget", tu_pb_filter(0, NAMES("config")), GH_RC_ERROR_PARAM_INVALID);
    CHECK_CONTAINS(msg, "At least one of the required services is not a proxy");
    gh_rpc_client_free(c);
    gh_rpc_client_free(c0);
    gh_rpc_server_free(proxy);
    gh_rpc_server_free(backend);
    tu_layout_free(&lp);
    tu_layout_free(&lb);
    state_destroy(&st);
}

/* The items of a ConfigStatus { 2: ConfigItem { 1: name; 3: value } } as
 * "name=value,..." (malloc'd); the response released. */
static char *config_values(uint8_t *resp, size_t len) {
    const uint8_t *p[MAX_NAMES];
    size_t l[MAX_NAMES];
    CHECK_EQ(gh_rpc_result_code(resp, len), GH_RC_OK);
    size_t n = pb_subs(resp, len, 2, p, l, MAX_NAMES);
    CHECK(n <= MAX_NAMES);
    names_t pairs = {0};
    for (size_t i = 0; i < n; i++) {
        char *name = pb_str(p[i], l[i], 1), *value = pb_str(p[i], l[i], 3);
        CHECK(asprintf(&pairs.names[pairs.count++], "%s=%s", name, value) > 0);
        free(name);
        free(value);
    }
    gh_free(resp);
    char *s = names_join(&pairs);
    names_free(&pairs);
    return s;
}

/* config.get / reset of |names| through |c| (raising): config_values. */
static char *config_call(gh_rpc_client *c, const char *method, int ignore_unknown,
                         const char *const *names) {
    uint8_t *resp = NULL;
    size_t len = 0;
    CHECK_OK(rpc(c, "config", method, tu_pb_filter(ignore_unknown, names), &resp, &len));
    return config_values(resp, len);
}

#define CHECK_CONFIG(c, method, names, want)                 \
    do {                                                     \
        char *got_ = config_call((c), (method), 0, (names)); \
        CHECK_STR(got_, (want));                             \
        free(got_);                                          \
    } while (0)

/* ConfigUpdate { 1: ConfigItemUpdate { 1: name; 2: value } } from "name",
 * "value", ... (NULL-terminated). */
static tu_buf config_update(const char *const *pairs) {
    tu_buf b = {0};
    for (size_t i = 0; pairs[i] != NULL; i += 2) {
        tu_buf it = {0};
        tu_pb_string(&it, 1, pairs[i]);
        tu_pb_string(&it, 2, pairs[i + 1]);
        tu_pb_message(&b, 1, &it);
        tu_buf_free(&it);
    }
    return b;
}

static char *config_set(gh_rpc_client *c, const char *const *pairs) {
    uint8_t *resp = NULL;
    size_t len = 0;
    CHECK_OK(rpc(c, "config", "set", config_update(pairs), &resp, &len));
    return config_values(resp, len);
}

static gh_config *int_item(const char *name, const char *value) {
    gh_config *item = NULL;
    CHECK_OK(gh_config_new(name, "an int item", value, 0, GH_CONFIG_VALID_INT, NULL, NULL, NULL,
                           &item));
    return item;
}

static void check_item_value(gh_config *item, const char *want) {
    char *v = gh_config_value(item);
    CHECK_STR(v, want);
    gh_free(v);
}

/* The config service of a main server with a registered proxied server (a C
 * backend registering itself with gh_rpc_service_set_proxied), as
 * grpc-helper's: get merges the items of both by name (the main server's
 * first; equal values one entry, different ones GH_RC_ERROR_ITEM_CONFLICT
 * with its text), set and reset apply on both servers for the names they
 * hold (seen on the backend directly and on the items' own handles), names
 * are checked against the merged items; without the backend (forgotten when
 * freed), the main server's own items only. */
static void test_proxy_config(void) {
    gh_config *main_items[2] = {int_item("shared", "1"), int_item("main-only", "2")};
    gh_config *back_items[2] = {int_item("shared", "1"), int_item("backend-only", "3")};
    gh_rpc_service *declared = NULL;
    CHECK_OK(gh_rpc_service_new("sample", SAMPLE_SERVICE, "declared:0", 1, 2, &declared));
    CHECK_OK(gh_rpc_service_add_method(declared, "ok", GH_UNARY, NULL, NULL, NULL));
    CHECK_OK(gh_rpc_service_set_proxy(declared, 1));
    static const char *const cli[] = {"rpc-shutdown-grace=0.3", "rpc-client-timeout=5"};
    tu_layout lm, lb;
    tu_layout_new(&lm, g_tmp, "config-main");
    gh_rpc_server *main_server = NULL;
    CHECK_OK(gh_rpc_server_new(0, &declared, 1, lm.folders, cli, 2, NULL, 0, main_items, 2, 0,
                               &main_server));
    gh_rpc_service_free(declared);
    int main_port = gh_rpc_server_port(main_server);
    gh_rpc_client *c = client_new(main_port, 5, "c-config", 1);
    /* No backend yet: the main server's own items. */
    CHECK_CONFIG(c, "get", NO_NAMES, "shared=1,main-only=2");

    sample_state st;
    state_init(&st, LOAD_CHECK);
    gh_rpc_service *real = sample_service(&st, 0);
    const char *proxied_names[] = {"sample"};
    CHECK_OK(gh_rpc_service_set_proxied(real, proxied_names, 1, "c-backend:1.0", 0));
    char main_port_cli[64];
    snprintf(main_port_cli, sizeof main_port_cli, "rpc-main-port=%d", main_port);
    const char *const back_cli[] = {"rpc-shutdown-grace=0.3", "rpc-main-host=127.0.0.1",
                                    main_port_cli};
    tu_layout_new(&lb, g_tmp, "config-backend");
    gh_rpc_server *backend = NULL;
    CHECK_OK(gh_rpc_server_new(0, &real, 1, lb.folders, back_cli, 3, NULL, 0, back_items, 2, 0,
                               &backend));
    gh_rpc_service_free(real);
    gh_rpc_client *b = client_new(gh_rpc_server_port(backend), 5, "c-config", 1);

    /* get: merged by name, the main server's items first. */
    CHECK_CONFIG(c, "get", NO_NAMES, "shared=1,main-only=2,backend-only=3");
    CHECK_CONFIG(c, "get", NAMES("backend-only", "shared"), "shared=1,backend-only=3");
    CHECK_CONFIG(c, "get", NAMES("backend-only"), "backend-only=3");

    /* set: on each server holding the item. */
    char *got = config_set(c, NAMES("shared", "5", "backend-only", "6"));
    CHECK_STR(got, "shared=5,backend-only=6");
    free(got);
    CHECK_CONFIG(b, "get", NO_NAMES, "shared=5,backend-only=6");
    check_item_value(back_items[1], "6");
    check_item_value(main_items[0], "5");
    check_item_value(main_items[1], "2");
    char *persisted = tu_read_file(lb.ws_json, NULL);
    CHECK(persisted != NULL);
    CHECK_CONTAINS(persisted, "\"backend-only\"");
    free(persisted);

    /* Different values of one name: a conflict, unless the filter leaves it out. */
    free(config_set(b, NAMES("shared", "7")));
    const char *msg = rpc_fails(c, "config", "get", tu_pb_filter(0, NO_NAMES),
                                GH_RC_ERROR_ITEM_CONFLICT);
    CHECK_CONTAINS(msg, "Proxied values conflict for config item shared: 7 != 5");
    msg = rpc_fails(c, "config", "get", tu_pb_filter(0, NAMES("shared")), GH_RC_ERROR_ITEM_CONFLICT);
    CHECK_CONTAINS(msg, "Proxied values conflict for config item shared: 7 != 5");
    CHECK_CONFIG(c, "get", NAMES("main-only", "backend-only"), "main-only=2,backend-only=6");

    /* Names checked against the merged items. */
    msg = rpc_fails(c, "config", "get", tu_pb_filter(0, NAMES("backend-only", "nope")),
                    GH_RC_ERROR_ITEM_UNKNOWN);
    CHECK_CONTAINS(msg, "Unknown config item names in filter request: nope");
    got = config_call(c, "get", 1, NAMES("nope", "backend-only"));
    CHECK_STR(got, "backend-only=6");
    free(got);
    msg = rpc_fails(c, "config", "set", config_update(NAMES("backend-only", "8", "nope", "1")),
                    GH_RC_ERROR_ITEM_UNKNOWN);
    CHECK_CONTAINS(msg, "Unknown config item names in filter request: nope");
    CHECK_CONFIG(b, "get", NAMES("backend-only"), "backend-only=6");     /* nothing set */
    msg = rpc_fails(c, "config", "reset", tu_pb_filter(0, NO_NAMES), GH_RC_ERROR_PARAM_MISSING);
    CHECK_CONTAINS(msg, "Input request list is empty");

    /* reset: the defaults on both servers (the conflict gone). */
    CHECK_CONFIG(c, "reset", NAMES("shared", "backend-only"), "shared=1,backend-only=3");
    CHECK_CONFIG(b, "get", NO_NAMES, "shared=1,backend-only=3");
    check_item_value(main_items[0], "1");
    check_item_value(back_items[1], "3");
    CHECK_CONFIG(c, "get", NO_NAMES, "shared=1,main-only=2,backend-only=3");

    /* The backend freed (it forgets itself): the main server's own items again. */
    gh_rpc_client_free(b);
    gh_rpc_server_free(backend);
    CHECK_CONFIG(c, "get", NO_NAMES, "shared=1,main-only=2");
    msg = rpc_fails(c, "config", "get", tu_pb_filter(0, NAMES("backend-only")),
                    GH_RC_ERROR_ITEM_UNKNOWN);
    CHECK_CONTAINS(msg, "Unknown config item names in filter request: backend-only");

    gh_rpc_client_free(c);
    gh_rpc_server_free(main_server);
    for (int i = 0; i < 2; i++) {
        gh_config_free(main_items[i]);
        gh_config_free(back_items[i]);
    }
    tu_layout_free(&lm);
    tu_layout_free(&lb);
    state_destroy(&st);
}

/* gh_rpc_client_call_metadata: the identity and the stub's API version, for
 * calls made with the core API (request streams). */
static void test_call_metadata(void) {
    gh_rpc_client *c = client_new(1, 0, "md-tester", 1);
    gh_metadata *md = NULL;
    CHECK_OK(gh_rpc_client_call_metadata(c, "sample", &md));
    int seen = 0;
    for (size_t i = 0; i < gh_metadata_count(md); i++) {
        const char *key;
        const uint8_t *value;
        size_t len;
        CHECK_OK(gh_metadata_get(md, i, &key, &value, &len));
        CHECK(len > 0); /* empty values are left out */
        if (strcmp(key, "client") == 0) {
            CHECK_BYTES_STR(value, len, "md-tester");
            seen |= 1;
        } else if (strcmp(key, "api_version") == 0) {
            CHECK_BYTES_STR(value, len, "2");
            seen |= 2;
        } else if (strcmp(key, "ip") == 0) {
            CHECK_BYTES_STR(value, len, "127.0.0.1");
            seen |= 4;
        } else {
            CHECK(strcmp(key, "user") == 0 || strcmp(key, "host") == 0);
        }
    }
    CHECK_EQ(seen, 7);
    gh_metadata_free(md);
    CHECK_RC(gh_rpc_client_call_metadata(c, "nope", &md), GH_ERR_INVALID_ARGUMENT);
    gh_rpc_client_free(c);
}

/* ------------------------------------------------------------------------ */
/* Managed request-streaming and bidi methods; the server's own auto-client  */
/* ------------------------------------------------------------------------ */

/* "chat" (bidi): one ResultStatus per request as it arrives, r.msg "re:<names>";
 * a request whose first name is "fail" → the error result ERROR_ITEM_CONFLICT. */
static int chat_handler(gh_server_call *call, void *user_data) {
    (void)user_data;
    const uint8_t *data = NULL;
    size_t len = 0;
    while (gh_server_call_read(call, &data, &len) == 1) {
        names_t n;
        names_decode(data, len, &n);
        if (n.count > 0 && strcmp(n.names[0], "fail") == 0) {
            names_free(&n);
            gh_rpc_error("chat refused", NULL);
            return GH_RC_ERROR_ITEM_CONFLICT;
        }
        char *joined = names_join(&n);
        char msg[256];
        snprintf(msg, sizeof msg, "re:%s", joined);
        free(joined);
        names_free(&n);
        CHECK_OK(send_status(call, 0, msg));
    }
    return GH_RC_OK;
}

/* "gather" (client streaming): every request's names, one ResultStatus. */
static int gather_handler(gh_server_call *call, void *user_data) {
    (void)user_data;
    char all[512] = "";
    const uint8_t *data = NULL;
    size_t len = 0;
    while (gh_server_call_read(call, &data, &len) == 1) {
        names_t n;
        names_decode(data, len, &n);
        char *joined = names_join(&n);
        if (joined[0]) {
            if (all[0]) strncat(all, ",", sizeof all - strlen(all) - 1);
            strncat(all, joined, sizeof all - strlen(all) - 1);
        }
        free(joined);
        names_free(&n);
    }
    CHECK_OK(send_status(call, 0, all));
    return GH_RC_OK;
}

/* A core call to the "streams" service with the api_version metadata. */
static gh_call *streams_call(gh_channel *ch, const char *method) {
    char path[128];
    snprintf(path, sizeof path, "/test.Streams/%s", method);
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, path, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    gh_metadata *md = NULL;
    CHECK_OK(gh_metadata_new(&md));
    CHECK_OK(gh_metadata_add(md, "api_version", "1"));
    CHECK_OK(gh_call_set_metadata(call, md));
    gh_metadata_free(md);
    CHECK_OK(gh_call_start(call));
    return call;
}

static void send_names(gh_call *call, const char *const *names) {
    tu_buf req = tu_pb_filter(0, names);
    CHECK_OK(gh_call_send(call, req.data, req.len, 0));
    tu_buf_free(&req);
}

static void recv_result(gh_call *call, int code, const char *msg) {
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_EQ(gh_call_recv(call, &data, &len), 1);
    result_t r;
    result_of(data, len, &r);
    CHECK_EQ(r.code, code);
    CHECK_STR(r.msg, msg);
    result_clear(&r);
}

static void test_streaming_methods_and_auto_client(void) {
    gh_rpc_service *svc = NULL;
    CHECK_OK(gh_rpc_service_new("streams", "test.Streams", "streams:1.0", 1, 1, &svc));
    CHECK_OK(gh_rpc_service_add_method(svc, "chat", GH_BIDI_STREAMING, chat_handler, NULL, NULL));
    CHECK_OK(gh_rpc_service_add_method(svc, "gather", GH_CLIENT_STREAMING, gather_handler, NULL,
                                       NULL));
    CHECK_OK(gh_rpc_service_set_manager(svc, "StreamsManager", NULL, NULL, NULL, NULL));
    tu_layout l;
    gh_rpc_server *server = server_new_cli(&l, "streams", 0, &svc, 1, NULL, 0, 0);
    gh_rpc_service_free(svc);
    int port = gh_rpc_server_port(server);
    gh_channel *ch = tu_channel_new(port);

    /* bidi: each answer read before the next request is sent */
    gh_call *chat = streams_call(ch, "chat");
    send_names(chat, NAMES("x"));
    recv_result(chat, 0, "re:x");
    send_names(chat, NAMES("y", "z"));
    recv_result(chat, 0, "re:y,z");
    CHECK_OK(gh_call_close_send(chat));
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_EQ(gh_call_recv(chat, &data, &len), 0);
    CHECK_EQ(gh_call_wait(chat), GH_STATUS_OK);
    gh_call_free(chat);

    /* an error result after a good answer: the last message, status OK */
    chat = streams_call(ch, "chat");
    send_names(chat, NAMES("ok"));
    recv_result(chat, 0, "re:ok");
    send_names(chat, NAMES("fail"));
    recv_result(chat, GH_RC_ERROR_ITEM_CONFLICT, "chat refused");
    CHECK_EQ(gh_call_recv(chat, &data, &len), 0);
    CHECK_EQ(gh_call_wait(chat), GH_STATUS_OK);
    gh_call_free(chat);

    /* client streaming */
    gh_call *gather = streams_call(ch, "gather");
    send_names(gather, NAMES("a"));
    send_names(gather, NAMES("b", "c"));
    CHECK_OK(gh_call_close_send(gather));
    recv_result(gather, 0, "a,b,c");
    CHECK_EQ(gh_call_wait(gather), GH_STATUS_OK);
    gh_call_free(gather);
    gh_channel_free(ch);

    /* the server's own auto-client: every served service, the same handle each time */
    gh_rpc_client *auto_client = gh_rpc_server_client(server);
    CHECK(auto_client != NULL);
    CHECK(gh_rpc_server_client(server) == auto_client);
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    tu_buf req = tu_pb_filter(0, NO_NAMES);
    CHECK_OK(gh_rpc_client_call(auto_client, "srv", "info", req.data, req.len, TU_WAIT_LIMIT,
                                &resp, &resp_len));
    tu_buf_free(&req);
    CHECK(resp_len > 0);
    CHECK(memmem(resp, resp_len, "streams", 7) != NULL);
    gh_free(resp);
    CHECK(gh_rpc_server_client(NULL) == NULL);

    gh_rpc_server_free(server);
    tu_layout_free(&l);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    g_tmp = tu_tmpdir();

    /* First: the children fork from a process whose library has no threads. */
    test_exit_signals();
    printf("exit signals: OK\n");
    test_user_data();
    printf("user data: OK\n");
    test_main_server();
    printf("main server: OK\n");
    test_streaming_methods_and_auto_client();
    printf("streaming methods and auto-client: OK\n");
    test_new_errors();
    printf("new errors: OK\n");
    test_options();
    printf("options: OK\n");
    test_shutdown_api();
    printf("shutdown api: OK\n");
    test_shutdown_rpc();
    printf("shutdown rpc: OK\n");
    test_max_workers();
    printf("max workers: OK\n");
    test_begin_shutdown();
    printf("begin shutdown: OK\n");
    test_release();
    printf("release: OK\n");
    test_retry();
    printf("retry: OK\n");
    test_debug_dump();
    printf("debug dump: OK\n");
    test_proxied();
    test_proxy_forwarding();
    printf("proxied: OK\n");
    test_proxy_config();
    printf("proxy config: OK\n");
    test_call_metadata();
    printf("call metadata: OK\n");

    tu_rmtree(g_tmp);
    free(g_tmp);
    printf("test_rpc_server: OK\n");
    return 0;
}
