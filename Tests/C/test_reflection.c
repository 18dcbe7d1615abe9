/*
 * test_reflection.c — server reflection from C, over real sockets with the
 * library's own channel (descriptors and requests encoded by hand, as a C host
 * without protobuf would; a real host registers what protoc
 * --descriptor_set_out writes):
 * - gh_server_enable_reflection + gh_server_add_descriptor_set: list_services
 *   gives the described and served services (cdemo.Pinger and the two
 *   reflection services), in order; file_containing_symbol gives the file back
 *   byte for byte, for the service, a method and a message; an unknown symbol
 *   gives an error_response NOT_FOUND on the same stream; v1alpha answers too;
 * - gh_server_add_file_descriptor adds one file; malformed bytes and a file
 *   without a name are GH_ERR_INVALID_ARGUMENT; enabling twice or after start,
 *   and adding to a server without reflection, GH_ERR_INVALID_STATE;
 * - an RPC server describes its own services and a service's
 *   gh_rpc_service_add_descriptor_set files.
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

#define V1 "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
#define V1ALPHA "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
#define M_PING "/cdemo.Pinger/Ping"

static char *g_tmp;

/* FileDescriptorProto { 1 name, 2 package, 4 message_type { 1 name },
 * 6 service { 1 name, 2 method { 1 name, 2 input_type, 3 output_type } },
 * 12 syntax } of package |pkg| with message Ping and service Pinger.Ping. */
static tu_buf demo_file(const char *name, const char *pkg) {
    char type[128];
    snprintf(type, sizeof type, ".%s.Ping", pkg);
    tu_buf msg = {0}, method = {0}, service = {0}, file = {0};
    tu_pb_string(&msg, 1, "Ping");
    tu_pb_string(&method, 1, "Ping");
    tu_pb_string(&method, 2, type);
    tu_pb_string(&method, 3, type);
    tu_pb_string(&service, 1, "Pinger");
    tu_pb_message(&service, 2, &method);
    tu_pb_string(&file, 1, name);
    tu_pb_string(&file, 2, pkg);
    tu_pb_message(&file, 4, &msg);
    tu_pb_message(&file, 6, &service);
    tu_pb_string(&file, 12, "proto3");
    tu_buf_free(&msg);
    tu_buf_free(&method);
    tu_buf_free(&service);
    return file;
}

/* FileDescriptorSet { 1: file }. */
static tu_buf set_of(const tu_buf *file) {
    tu_buf set = {0};
    tu_pb_message(&set, 1, file);
    return set;
}

/* One request of a reflection stream: field |field| (string) = |value|; the
 * answer (a copy) in *out. */
static void ask(gh_call *call, int field, const char *value, tu_buf *out) {
    tu_buf req = {0};
    tu_pb_string(&req, 1, "localhost");
    tu_pb_string(&req, field, value);
    CHECK_OK(gh_call_send(call, req.data, req.len, 0));
    tu_buf_free(&req);
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_EQ(gh_call_recv(call, &data, &len), 1);
    out->data = malloc(len ? len : 1);
    CHECK(out->data != NULL);
    memcpy(out->data, data, len);
    out->len = out->cap = len;
}

/* The first length-delimited field |field| of |msg|, or NULL. */
static const uint8_t *field_bytes(const uint8_t *msg, size_t len, int field, size_t *out_len) {
    tu_pb_reader r;
    tu_pb_field f;
    tu_pb_reader_init(&r, msg, len);
    while (tu_pb_next(&r, &f)) {
        if (f.field == field && f.wire == 2) {
            *out_len = f.len;
            return f.bytes;
        }
    }
    return NULL;
}

/* list_services' names joined by ",". */
static void services(gh_call *call, char *out, size_t size) {
    tu_buf resp;
    ask(call, 7, "", &resp);
    size_t list_len = 0;
    const uint8_t *list = field_bytes(resp.data, resp.len, 6, &list_len);
    CHECK(list != NULL);
    out[0] = '\0';
    tu_pb_reader r;
    tu_pb_field f;
    tu_pb_reader_init(&r, list, list_len);
    while (tu_pb_next(&r, &f)) {
        size_t name_len = 0;
        const uint8_t *name = field_bytes(f.bytes, f.len, 1, &name_len);
        CHECK(name != NULL);
        if (out[0]) strncat(out, ",", size - strlen(out) - 1);
        strncat(out, (const char *)name, name_len < size - strlen(out) - 1 ? name_len : size - strlen(out) - 1);
    }
    tu_buf_free(&resp);
}

/* file_containing_symbol: 1 when the answer's first file equals |file|, or the
 * error_response's code negated. */
static int symbol_file_is(gh_call *call, const char *symbol, const tu_buf *file) {
    tu_buf resp;
    ask(call, 4, symbol, &resp);
    int out;
    size_t n = 0;
    const uint8_t *fdr = field_bytes(resp.data, resp.len, 4, &n);
    if (fdr != NULL) {
        size_t flen = 0;
        const uint8_t *first = field_bytes(fdr, n, 1, &flen);
        out = first != NULL && flen == file->len && memcmp(first, file->data, flen) == 0;
    } else {
        const uint8_t *err = field_bytes(resp.data, resp.len, 7, &n);
        CHECK(err != NULL);
        tu_pb_reader r;
        tu_pb_field f;
        tu_pb_reader_init(&r, err, n);
        out = 0;
        while (tu_pb_next(&r, &f)) {
            if (f.field == 1 && f.wire == 0) out = -(int)f.varint;
        }
    }
    tu_buf_free(&resp);
    return out;
}

static gh_call *open_stream(gh_channel *ch, const char *path) {
    gh_call *call = NULL;
    CHECK_OK(gh_call_new(ch, path, &call));
    CHECK_OK(gh_call_set_timeout(call, TU_WAIT_LIMIT));
    CHECK_OK(gh_call_start(call));
    return call;
}

static void close_stream(gh_call *call) {
    CHECK_OK(gh_call_close_send(call));
    const uint8_t *d;
    size_t l;
    CHECK_EQ(gh_call_recv(call, &d, &l), 0);
    CHECK_EQ(gh_call_wait(call), GH_STATUS_OK);
    gh_call_free(call);
}

static void test_core_server(void) {
    tu_buf file = demo_file("cdemo/ping.proto", "cdemo");
    tu_buf set = set_of(&file);
    tu_buf other = demo_file("other/ping.proto", "other");

    gh_server *plain = NULL;
    CHECK_OK(gh_server_new(&plain));
    CHECK_RC(gh_server_add_descriptor_set(plain, set.data, set.len), GH_ERR_INVALID_STATE);
    CHECK_CONTAINS(gh_last_error(), "gh_server_enable_reflection");
    gh_server_free(plain);

    gh_server *s = NULL;
    CHECK_OK(gh_server_new(&s));
    CHECK_OK(gh_server_add_listener(s, "127.0.0.1:0"));
    CHECK_OK(gh_server_register(s, M_PING, GH_UNARY, tu_echo_unary, NULL, NULL));
    CHECK_OK(gh_server_enable_reflection(s));
    CHECK_RC(gh_server_enable_reflection(s), GH_ERR_INVALID_STATE);
    CHECK_OK(gh_server_add_descriptor_set(s, set.data, set.len));
    static const uint8_t garbage[] = {0x0a, 0x09, 0x01};
    CHECK_RC(gh_server_add_descriptor_set(s, garbage, sizeof garbage), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_add_file_descriptor(s, garbage, sizeof garbage), GH_ERR_INVALID_ARGUMENT);
    static const uint8_t unnamed[] = {0x12, 0x01, 'x'};   /* package "x", no name */
    CHECK_RC(gh_server_add_file_descriptor(s, unnamed, sizeof unnamed), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_server_add_descriptor_set(s, NULL, 3), GH_ERR_INVALID_ARGUMENT);
    int port = tu_server_start(s);
    CHECK_RC(gh_server_enable_reflection(s), GH_ERR_INVALID_STATE);
    gh_channel *ch = tu_channel_new(port);

    char names[512];
    gh_call *v1 = open_stream(ch, V1);
    services(v1, names, sizeof names);
    CHECK_STR(names, "cdemo.Pinger,grpc.reflection.v1.ServerReflection,"
                     "grpc.reflection.v1alpha.ServerReflection");
    CHECK_EQ(symbol_file_is(v1, "cdemo.Pinger", &file), 1);
    CHECK_EQ(symbol_file_is(v1, "cdemo.Pinger.Ping", &file), 1);
    CHECK_EQ(symbol_file_is(v1, "cdemo.Ping", &file), 1);
    CHECK_EQ(symbol_file_is(v1, "cdemo.Nope", &file), -GH_STATUS_NOT_FOUND);
    /* Described after start (not served: not listed, but resolved). */
    CHECK_OK(gh_server_add_file_descriptor(s, other.data, other.len));
    CHECK_EQ(symbol_file_is(v1, "other.Pinger", &other), 1);
    services(v1, names, sizeof names);
    CHECK(strstr(names, "other.Pinger") == NULL);
    close_stream(v1);

    gh_call *alpha = open_stream(ch, V1ALPHA);
    CHECK_EQ(symbol_file_is(alpha, "cdemo.Pinger", &file), 1);
    close_stream(alpha);

    gh_channel_free(ch);
    tu_server_stop(s);
    tu_buf_free(&file);
    tu_buf_free(&set);
    tu_buf_free(&other);
}

static void test_rpc_server(void) {
    tu_buf file = demo_file("cdemo/ping.proto", "cdemo");
    tu_buf set = set_of(&file);
    gh_rpc_service *svc = NULL;
    CHECK_OK(gh_rpc_service_new("ping", "cdemo.Pinger", "cdemo:1.0", 1, 1, &svc));
    CHECK_OK(gh_rpc_service_add_method(svc, "Ping", GH_UNARY, NULL, NULL, NULL));
    CHECK_OK(gh_rpc_service_add_descriptor_set(svc, set.data, set.len));
    static const uint8_t garbage[] = {0xff};
    CHECK_RC(gh_rpc_service_add_descriptor_set(svc, garbage, sizeof garbage), GH_ERR_INVALID_ARGUMENT);
    CHECK_RC(gh_rpc_service_add_file_descriptor(svc, garbage, sizeof garbage), GH_ERR_INVALID_ARGUMENT);
    tu_layout l;
    tu_layout_new(&l, g_tmp, "rpc");
    gh_rpc_server *server = NULL;
    CHECK_OK(gh_rpc_server_new(0, &svc, 1, l.folders, NULL, 0, NULL, 0, NULL, 0, 0, &server));
    gh_channel *ch = tu_channel_new(gh_rpc_server_port(server));
    char names[512];
    gh_call *v1 = open_stream(ch, V1);
    services(v1, names, sizeof names);
    CHECK_STR(names, "ConfigService,LoggerService,RpcServerService,cdemo.Pinger,grpc.health.v1.Health,"
                     "grpc.reflection.v1.ServerReflection,grpc.reflection.v1alpha.ServerReflection");
    CHECK_EQ(symbol_file_is(v1, "cdemo.Pinger", &file), 1);
    CHECK_EQ(symbol_file_is(v1, "EventService", &file), 0);   /* described (not served): a file */
    close_stream(v1);
    gh_channel_free(ch);
    CHECK_OK(gh_rpc_server_shutdown(server));
    gh_rpc_server_free(server);
    gh_rpc_service_free(svc);
    tu_layout_free(&l);
    tu_buf_free(&file);
    tu_buf_free(&set);
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
    printf("test_reflection: OK\n");
    return 0;
}
