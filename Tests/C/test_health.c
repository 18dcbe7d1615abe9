/*
 * test_health.c — grpc.health.v1.Health from C, over real sockets with the
 * library's own channel (requests and answers encoded by hand, as a C host
 * without protobuf would):
 * - gh_server_enable_health: Check answers SERVING for "" and for a service
 *   with a registered method, NOT_FOUND (naming it) for any other; a status
 *   set with gh_server_set_health (from the test thread and from a handler)
 *   shows in Check and gh_server_get_health; gh_server_clear_health goes back;
 *   GH_HEALTH_SERVICE_UNKNOWN and out-of-range values cannot be set; enabling
 *   twice or after start, and the other functions on a server without health,
 *   give GH_ERR_INVALID_STATE;
 * - Watch: the status at once, then each change; a service unknown yet gives
 *   SERVICE_UNKNOWN, then its status once set; at gh_server_begin_shutdown
 *   (grace 60) every stream gets NOT_SERVING and ends UNAVAILABLE at once (the
 *   server stops without waiting the grace); later sets are ignored;
 * - an RPC server serves it by default: SERVING for "" and its services once
 *   made, gh_rpc_server_set_health / get / clear, NOT_SERVING from the shutdown.
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

#define CHECK_PATH "/grpc.health.v1.Health/Check"
#define WATCH_PATH "/grpc.health.v1.Health/Watch"
#define ECHO_SERVICE "grpchelper.test.Echo"
#define M_FLIP "/grpchelper.test.Health/Flip"

static char *g_tmp;

/* HealthCheckRequest { 1: string service }. */
static tu_buf request(const char *service) {
    tu_buf b = {0};
    if (service[0] != '\0') tu_pb_string(&b, 1, service);
    return b;
}

/* HealthCheckResponse { 1: ServingStatus status } → the status. */
static int decode_status(const uint8_t *data, size_t len) {
    tu_pb_reader r;
    tu_pb_field f;
    int status = 0;
    tu_pb_reader_init(&r, data, len);
    while (tu_pb_next(&r, &f)) {
        if (f.field == 1 && f.wire == 0) status = (int)f.varint;
    }
    return status;
}

/* Check: the serving status (>= 0), or -(gRPC status code) of a failed call;
 * the failed call's message into |msg| when given. */
static int check(gh_channel *ch, const char *service, char *msg, size_t msg_size) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, CHECK_PATH, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    tu_buf req = request(service);
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    int rc = gh_call_unary(call, req.data, req.len, &resp, &resp_len);
    int out;
    if (rc == GH_OK) {
        out = decode_status(resp, resp_len);
    } else {
        CHECK_EQ(rc, GH_ERR_RPC);
        out = -gh_call_status(call);
        if (msg) snprintf(msg, msg_size, "%s", gh_call_status_message(call));
    }
    tu_buf_free(&req);
    gh_call_free(call);
    return out;
}

static gh_call *watch(gh_channel *ch, const char *service) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, WATCH_PATH, &call));
    CHECK_OK(gh_call_set_timeout(call, 60));
    CHECK_OK(gh_call_start(call));
    tu_buf req = request(service);
    CHECK_OK(gh_call_send(call, req.data, req.len, 0));
    CHECK_OK(gh_call_close_send(call));
    tu_buf_free(&req);
    return call;
}

/* The next status of a Watch stream; -1 once it ended. */
static int next_status(gh_call *call) {
    const uint8_t *data = NULL;
    size_t len = 0;
    int rc = gh_call_recv(call, &data, &len);
    CHECK(rc >= 0);
    return rc == 1 ? decode_status(data, len) : -1;
}

/* A handler that sets ECHO_SERVICE's status (the request's one byte) on its own
 * server (the user data) and answers that byte. */
static void flip(gh_server_call *call, void *user_data) {
    gh_server *server = user_data;
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_EQ(gh_server_call_read(call, &data, &len), 1);
    CHECK_EQ(len, (size_t)1);
    uint8_t status = data[0];
    CHECK_OK(gh_server_set_health(server, ECHO_SERVICE, (gh_health_status)status));
    CHECK_OK(gh_server_call_send(call, &status, 1, 0));
    CHECK_OK(gh_server_call_finish(call, GH_STATUS_OK, NULL, NULL, 0));
}

static void flip_via_handler(gh_channel *ch, gh_health_status status) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, M_FLIP, &call));
    uint8_t b = (uint8_t)status;
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    CHECK_OK(gh_call_unary(call, &b, 1, &resp, &resp_len));
    CHECK_EQ(resp_len, (size_t)1);
    gh_call_free(call);
}

static void test_core_server(void) {
    /* Without health: every health function is refused. */
    gh_server *plain = NULL;
    CHECK_OK(gh_server_new(&plain));
    gh_health_status st = GH_HEALTH_UNKNOWN;
    CHECK_RC(gh_server_set_health(plain, "", GH_HEALTH_SERVING), GH_ERR_INVALID_STATE);
    CHECK_RC(gh_server_clear_health(plain, ""), GH_ERR_INVALID_STATE);
    CHECK_RC(gh_server_get_health(plain, "", &st), GH_ERR_INVALID_STATE);
    CHECK_CONTAINS(gh_last_error(), "gh_server_enable_health");
    gh_server_free(plain);

    gh_server *s = NULL;
    CHECK_OK(gh_server_new(&s));
    CHECK_OK(gh_server_add_listener(s, "127.0.0.1:0"));
    CHECK_OK(gh_server_register(s, TU_UNARY, GH_UNARY, tu_echo_unary, NULL, NULL));
    CHECK_OK(gh_server_register(s, M_FLIP, GH_UNARY, flip, s, NULL));
    CHECK_OK(gh_server_enable_health(s));
    CHECK_RC(gh_server_enable_health(s), GH_ERR_INVALID_STATE);
    int port = tu_server_start(s);
    gh_channel *ch = tu_channel_new(port);
    char msg[256];

    CHECK_EQ(check(ch, "", NULL, 0), GH_HEALTH_SERVING);
    CHECK_EQ(check(ch, ECHO_SERVICE, NULL, 0), GH_HEALTH_SERVING);
    CHECK_EQ(check(ch, "grpchelper.test.Nope", msg, sizeof msg), -GH_STATUS_NOT_FOUND);
    CHECK_CONTAINS(msg, "grpchelper.test.Nope");
    CHECK_OK(gh_server_get_health(s, ECHO_SERVICE, &st));
    CHECK_EQ(st, GH_HEALTH_SERVING);
    CHECK_OK(gh_server_get_health(s, "grpchelper.test.Nope", &st));
    CHECK_EQ(st, GH_HEALTH_SERVICE_UNKNOWN);

    /* Set, get, clear; values that cannot be set. */
    CHECK_OK(gh_server_set_health(s, ECHO_SERVICE, GH_HEALTH_NOT_SERVING));
    CHECK_EQ(check(ch, ECHO_SERVICE, NULL, 0), GH_HEALTH_NOT_SERVING);
    CHECK_OK(gh_server_get_health(s, ECHO_SERVICE, &st));
    CHECK_EQ(st, GH_HEALTH_NOT_SERVING);
    CHECK_OK(gh_server_set_health(s, "extra", GH_HEALTH_UNKNOWN));
    CHECK_EQ(check(ch, "extra", NULL, 0), GH_HEALTH_UNKNOWN);
    CHECK_OK(gh_server_clear_health(s, ECHO_SERVICE));
    CHECK_OK(gh_server_clear_health(s, "extra"));
    CHECK_EQ(check(ch, ECHO_SERVICE, NULL, 0), GH_HEALTH_SERVING);
    CHECK_EQ(check(ch, "extra", NULL, 0), -GH_STATUS_NOT_FOUND);
    CHECK_RC(gh_server_set_health(s, "", GH_HEALTH_SERVICE_UNKNOWN), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_set_health(s, "", (gh_health_status)7), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_set_health(s, NULL, GH_HEALTH_SERVING), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_get_health(s, "", NULL), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_enable_health(s), GH_ERR_INVALID_STATE);   /* started */

    /* Watch: now, then each change (set from a handler too). */
    gh_call *w = watch(ch, ECHO_SERVICE);
    gh_call *all = watch(ch, "");
    gh_call *later = watch(ch, "grpchelper.test.Later");
    CHECK_EQ(next_status(w), GH_HEALTH_SERVING);
    CHECK_EQ(next_status(all), GH_HEALTH_SERVING);
    CHECK_EQ(next_status(later), GH_HEALTH_SERVICE_UNKNOWN);
    flip_via_handler(ch, GH_HEALTH_NOT_SERVING);
    CHECK_EQ(next_status(w), GH_HEALTH_NOT_SERVING);
    flip_via_handler(ch, GH_HEALTH_SERVING);
    CHECK_EQ(next_status(w), GH_HEALTH_SERVING);
    CHECK_OK(gh_server_set_health(s, "grpchelper.test.Later", GH_HEALTH_SERVING));
    CHECK_EQ(next_status(later), GH_HEALTH_SERVING);

    /* The shutdown: NOT_SERVING, then the streams end at once, not after the grace. */
    CHECK_OK(gh_server_begin_shutdown(s, 60, NULL, NULL));
    gh_call *calls[] = {w, all, later};
    for (size_t i = 0; i < 3; i++) {
        CHECK_EQ(next_status(calls[i]), GH_HEALTH_NOT_SERVING);
        CHECK_EQ(next_status(calls[i]), -1);
        CHECK_EQ(gh_call_wait(calls[i]), GH_STATUS_UNAVAILABLE);
        CHECK_CONTAINS(gh_call_status_message(calls[i]), "shutting down");
        gh_call_free(calls[i]);
    }
    CHECK_OK(gh_server_wait(s));
    CHECK_OK(gh_server_set_health(s, ECHO_SERVICE, GH_HEALTH_SERVING));   /* ignored */
    CHECK_OK(gh_server_get_health(s, ECHO_SERVICE, &st));
    CHECK_EQ(st, GH_HEALTH_NOT_SERVING);
    gh_channel_free(ch);
    gh_server_free(s);
}

static void test_rpc_server(void) {
    gh_rpc_service *svc = NULL;
    CHECK_OK(gh_rpc_service_new("sample", "pkg.SampleService", "sample:1.0", 1, 1, &svc));
    CHECK_OK(gh_rpc_service_add_method(svc, "ok", GH_UNARY, NULL, NULL, NULL));
    tu_layout l;
    tu_layout_new(&l, g_tmp, "rpc");
    const char *cli[] = {"rpc-shutdown-grace=30"};
    gh_rpc_server *server = NULL;
    CHECK_OK(gh_rpc_server_new(0, &svc, 1, l.folders, cli, 1, NULL, 0, NULL, 0, 0, &server));
    gh_channel *ch = tu_channel_new(gh_rpc_server_port(server));
    const char *served[] = {"", "RpcServerService", "ConfigService", "LoggerService",
                            "pkg.SampleService"};
    for (size_t i = 0; i < sizeof served / sizeof served[0]; i++) {
        CHECK_MSG(check(ch, served[i], NULL, 0) == GH_HEALTH_SERVING, "%s", served[i]);
    }
    CHECK_EQ(check(ch, "EventService", NULL, 0), -GH_STATUS_NOT_FOUND);   /* no events */
    gh_health_status st = GH_HEALTH_UNKNOWN;
    CHECK_OK(gh_rpc_server_set_health(server, "pkg.SampleService", GH_HEALTH_NOT_SERVING));
    CHECK_EQ(check(ch, "pkg.SampleService", NULL, 0), GH_HEALTH_NOT_SERVING);
    CHECK_OK(gh_rpc_server_get_health(server, "pkg.SampleService", &st));
    CHECK_EQ(st, GH_HEALTH_NOT_SERVING);
    CHECK_OK(gh_rpc_server_clear_health(server, "pkg.SampleService"));
    CHECK_EQ(check(ch, "pkg.SampleService", NULL, 0), GH_HEALTH_SERVING);
    CHECK_RC(gh_rpc_server_set_health(server, "", (gh_health_status)-1), GH_ERR_INVALID_ARGUMENT);

    gh_call *w = watch(ch, "");
    CHECK_EQ(next_status(w), GH_HEALTH_SERVING);
    CHECK_OK(gh_rpc_server_shutdown(server));     /* grace 30: the Watch must not hold it */
    CHECK_EQ(next_status(w), GH_HEALTH_NOT_SERVING);
    CHECK_EQ(next_status(w), -1);
    CHECK_EQ(gh_call_wait(w), GH_STATUS_UNAVAILABLE);
    CHECK_OK(gh_rpc_server_get_health(server, "", &st));
    CHECK_EQ(st, GH_HEALTH_NOT_SERVING);
    gh_call_free(w);
    gh_channel_free(ch);
    gh_rpc_server_free(server);
    gh_rpc_service_free(svc);
    tu_layout_free(&l);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    g_tmp = tu_tmpdir();
    test_core_server();
    printf("core server: OK\n");
    test_rpc_server();
    printf("rpc server: OK\n");
    tu_rmtree(g_tmp);
    free(g_tmp);
    printf("test_health: OK\n");
    return 0;
}
