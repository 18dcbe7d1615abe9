/*
 * rpc_server.c — grpc-helper's RpcServer usage example in C: the sample
 * service MyService (Protos/sample/my.proto) served by a manager whose load
 * hook uses the server's auto-client, among the built-in srv/config/log
 * services; serves until srv.shutdown or SIGINT/SIGTERM.
 *
 *   rpc_server -p 12345 -w /tmp/wks      (prints "serving on port N")
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpchelper.h>

#include "my_descriptors.h"
#include "rpc_sample.h"

/* The manager's state: the items, under a lock. */
static struct {
    pthread_mutex_t lock;
    sample_config items[SAMPLE_MAX_ITEMS];
    size_t count;
    gh_logs *logs; /* the server's (borrowed) */
} manager = {PTHREAD_MUTEX_INITIALIZER, {{{0}, {0}}}, 0, NULL};

static void log_info(const char *text) {
    if (manager.logs) gh_logs_write(manager.logs, "MySampleManager", GH_LOG_INFO, text);
}

/* MyStatus with every item. */
static int send_status(gh_server_call *call) {
    uint8_t buf[SAMPLE_MAX_ITEMS * (2 * SAMPLE_MAX_TEXT + 24)];
    size_t n = 0;
    pthread_mutex_lock(&manager.lock);
    for (size_t i = 0; i < manager.count; i++) {
        uint8_t item[2 * SAMPLE_MAX_TEXT + 16];
        size_t len = sample_encode_config(item, manager.items[i].name, manager.items[i].value);
        buf[n++] = 2 << 3 | 2;
        n += sample_put_varint(buf + n, len);
        memcpy(buf + n, item, len);
        n += len;
    }
    pthread_mutex_unlock(&manager.lock);
    return gh_server_call_send(call, buf, n, 0) == GH_OK ? GH_RC_OK : GH_RC_ERROR;
}

static int update(gh_server_call *call, void *user_data) {
    (void)user_data;
    const uint8_t *data;
    size_t len;
    sample_config c;
    if (gh_server_call_read(call, &data, &len) != 1 || !sample_decode_config(data, len, &c)) {
        gh_rpc_error("malformed MyConfig", NULL);
        return GH_RC_ERROR_PARAM_INVALID;
    }
    if (c.name[0] == '\0') {
        gh_rpc_error("empty name", NULL);
        return GH_RC_ERROR_PARAM_MISSING;
    }
    pthread_mutex_lock(&manager.lock);
    size_t i = 0;
    /* keep them sorted by name, as the other examples print them */
    while (i < manager.count && strcmp(manager.items[i].name, c.name) < 0) i++;
    if (i < manager.count && strcmp(manager.items[i].name, c.name) == 0) {
        manager.items[i] = c;
    } else if (manager.count < SAMPLE_MAX_ITEMS) {
        memmove(&manager.items[i + 1], &manager.items[i], (manager.count - i) * sizeof c);
        manager.items[i] = c;
        manager.count++;
    }
    pthread_mutex_unlock(&manager.lock);
    char line[2 * SAMPLE_MAX_TEXT + 8];
    snprintf(line, sizeof line, "%s = %s", c.name, c.value);
    log_info(line);
    return send_status(call);
}

static int list(gh_server_call *call, void *user_data) {
    (void)user_data;
    const uint8_t *data;
    size_t len;
    gh_server_call_read(call, &data, &len);
    return send_status(call);
}

/* The auto-client reaches every service of this server. */
static int load(gh_rpc_server *server, gh_rpc_client *client, void *user_data) {
    (void)user_data;
    manager.logs = gh_rpc_server_logs(server);
    uint8_t *info = NULL;
    size_t len = 0;
    if (gh_rpc_client_call(client, "srv", "info", NULL, 0, 0, &info, &len) != GH_OK) {
        int code = gh_last_result_code();
        gh_rpc_error(gh_last_error(), NULL);
        return code != GH_RC_OK ? code : GH_RC_ERROR;
    }
    gh_free(info);
    log_info("loaded: srv.info answered");
    return GH_RC_OK;
}

int main(int argc, char **argv) {
    gh_cli *cli = NULL;
    if (gh_cli_parse(argc, (const char *const *)argv, "Sample RpcServer", "1.0.0", 54321, NULL,
                     NULL, NULL, &cli) != GH_OK) {
        fprintf(stderr, "%s\n", gh_last_error());
        return 2;
    }
    int code = gh_cli_exit_code(cli);
    if (code >= 0) {
        fprintf(code == 0 ? stdout : stderr, "%s\n", gh_cli_message(cli));
        gh_cli_free(cli);
        return code;
    }
    gh_folders *folders = NULL;
    const char *const *config = NULL;
    size_t config_count = 0;
    gh_cli_folders(cli, &folders);
    gh_cli_config(cli, &config, &config_count);

    gh_rpc_service *my = NULL;
    gh_rpc_server *server = NULL;
    int rc = 1;
    if (gh_rpc_service_new("my", "MyService", "rpc-sample:1.0.0", 1, 1, &my) != GH_OK ||
        gh_rpc_service_add_method(my, "update", GH_UNARY, update, NULL, NULL) != GH_OK ||
        gh_rpc_service_add_method(my, "list", GH_UNARY, list, NULL, NULL) != GH_OK ||
        /* for reflection (grpcurl, grpchelper call): my.proto's descriptors */
        gh_rpc_service_add_descriptor_set(my, my_descriptor_set, sizeof my_descriptor_set) != GH_OK ||
        gh_rpc_service_set_manager(my, "MySampleManager", load, NULL, NULL, NULL) != GH_OK ||
        gh_rpc_server_new(gh_cli_port(cli), &my, 1, folders, config, config_count, NULL, 0, NULL,
                          0, GH_RPC_DEBUG_SIGNAL, &server) != GH_OK) {
        printf("error %d: %s\n", gh_last_result_code(), gh_last_error());
        goto out;
    }
    gh_rpc_server_handle_exit_signals(server);
    printf("serving on port %d\n", gh_rpc_server_port(server));
    fflush(stdout);
    /* Serves in its own threads until srv.shutdown or a signal. */
    gh_rpc_server_wait_shutdown(server, -1);
    rc = 0;
out:
    gh_rpc_server_free(server);
    gh_rpc_service_free(my);
    gh_folders_free(folders);
    gh_cli_free(cli);
    return rc;
}
