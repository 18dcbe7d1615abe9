/*
 * rpc_client.c — grpc-helper's RpcClient usage example in C: calls
 * MyService.update on the sample server (rpc_server.c and its Swift and Python
 * twins) and prints the items ("a=1 b=2"), or "error <code>: <message>" with
 * exit status 1; --shutdown then asks the server to stop (srv.shutdown).
 *
 *   rpc_client -p 12345 --name a --value 1 [--host H] [--shutdown]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpchelper.h>

#include "rpc_sample.h"

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *name = "", *value = "";
    int port = 54321, shutdown = 0;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-p") || !strcmp(argv[i], "--port")) && i + 1 < argc) {
            port = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--host") && i + 1 < argc) {
            host = argv[++i];
        } else if (!strcmp(argv[i], "--name") && i + 1 < argc) {
            name = argv[++i];
        } else if (!strcmp(argv[i], "--value") && i + 1 < argc) {
            value = argv[++i];
        } else if (!strcmp(argv[i], "--shutdown")) {
            shutdown = 1;
        } else {
            fprintf(stderr, "usage: %s -p PORT --name N --value V [--host H] [--shutdown]\n", argv[0]);
            return 64;
        }
    }
    if (strlen(name) >= SAMPLE_MAX_TEXT || strlen(value) >= SAMPLE_MAX_TEXT) {
        fprintf(stderr, "name or value too long\n");
        return 64;
    }

    gh_rpc_client *client = NULL;
    uint8_t request[2 * SAMPLE_MAX_TEXT + 16];
    uint8_t *response = NULL;
    size_t len = 0;
    int rc = 1;
    if (gh_rpc_client_new(host, port, 10, "rpc-sample", 1, &client) != GH_OK ||
        gh_rpc_client_add_stub(client, "my", "MyService", 1) != GH_OK ||
        gh_rpc_client_add_stub(client, "srv", "RpcServerService", 1) != GH_OK ||
        gh_rpc_client_call(client, "my", "update", request,
                           sample_encode_config(request, name, value), 0, &response,
                           &len) != GH_OK) {
        printf("error %d: %s\n", gh_last_result_code(), gh_last_error());
        goto out;
    }
    sample_status status;
    if (!sample_decode_status(response, len, &status)) {
        printf("error: malformed MyStatus\n");
        goto out;
    }
    for (size_t i = 0; i < status.count; i++) {
        printf("%s%s=%s", i ? " " : "", status.items[i].name, status.items[i].value);
    }
    printf("\n");
    if (shutdown) {
        /* ShutdownRequest { timeout: -1 }: no wait after the shutdown. */
        uint8_t req[12] = {1 << 3 | 0};
        size_t n = 1 + sample_put_varint(req + 1, (uint64_t)(int64_t)-1);
        uint8_t *r = NULL;
        size_t rlen = 0;
        if (gh_rpc_client_call(client, "srv", "shutdown", req, n, 0, &r, &rlen) != GH_OK) {
            printf("error %d: %s\n", gh_last_result_code(), gh_last_error());
            goto out;
        }
        gh_free(r);
    }
    rc = 0;
out:
    gh_free(response);
    gh_rpc_client_free(client);
    return rc;
}
