/*
 * consumer.c — a program built against an *installed* libgrpchelper (by the
 * install-consumer test, through pkg-config and through find_package). It
 * checks the header and library versions agree, then makes one unary call to
 * an in-process server, proving the installed library and the Swift runtime
 * load without LD_LIBRARY_PATH.
 */
#include <stdio.h>
#include <string.h>

#include <grpchelper.h>

static void echo(gh_server_call *call, void *user_data) {
    (void)user_data;
    const uint8_t *data = NULL;
    size_t len = 0;
    if (gh_server_call_read(call, &data, &len) == 1 &&
        gh_server_call_send(call, data, len, 0) == GH_OK) {
        gh_server_call_finish(call, GH_STATUS_OK, NULL, NULL, 0);
    }
}

static int fail(const char *what, int rc) {
    fprintf(stderr, "consumer: %s: %d %s (%s)\n", what, rc, gh_strerror(rc),
            gh_last_error());
    return 1;
}

int main(void) {
    const gh_info *info = gh_version(GH_VERSION_NUM);
    if (info == NULL || strcmp(info->version_str, GH_VERSION_STR) != 0) {
        fprintf(stderr, "consumer: library version does not match header %s\n",
                GH_VERSION_STR);
        return 1;
    }

    gh_server *server = NULL;
    int rc = gh_server_new(&server);
    if (rc != GH_OK) return fail("gh_server_new", rc);
    int port = 0;
    if ((rc = gh_server_add_listener(server, "127.0.0.1:0")) != GH_OK ||
        (rc = gh_server_register(server, "/consumer.Echo/Unary", GH_UNARY, echo,
                                 NULL, NULL)) != GH_OK ||
        (rc = gh_server_start(server)) != GH_OK ||
        (rc = gh_server_port(server, 0, &port)) != GH_OK) {
        int code = fail("server setup", rc);
        gh_server_free(server);
        return code;
    }

    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    gh_channel *ch = NULL;
    gh_call *call = NULL;
    const uint8_t *resp = NULL;
    size_t resp_len = 0;
    int result = 0;
    if ((rc = gh_channel_new(&ch, target)) != GH_OK ||
        (rc = gh_call_new(ch, "/consumer.Echo/Unary", &call)) != GH_OK ||
        (rc = gh_call_set_timeout(call, 10)) != GH_OK ||
        (rc = gh_call_unary(call, (const uint8_t *)"installed", 9, &resp,
                            &resp_len)) != GH_OK) {
        result = fail("unary call", rc);
    } else if (resp_len != 9 || memcmp(resp, "installed", 9) != 0) {
        fprintf(stderr, "consumer: wrong response\n");
        result = 1;
    }
    gh_call_free(call);
    gh_channel_free(ch);
    gh_server_shutdown(server, 5);
    gh_server_free(server);
    if (result == 0) printf("consumer: libgrpchelper %s OK\n", info->version_str);
    return result;
}
