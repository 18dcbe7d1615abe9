/*
 * events_example.c — events in C (twins in Swift and Python; checked by
 * examples/run_events_example.sh):
 *
 *   events_example serve -p 12345 -w /tmp/wks   an RpcServer with events, pushing "tick"s
 *   events_example listen -p 12345 --names greeting --count 2
 *   events_example send -p 12345 --name greeting --prop who=alice [--shutdown]
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpchelper.h>

#define MAX_ITEMS 16

static int fail(void) {
    printf("error %d: %s\n", gh_last_result_code(), gh_last_error());
    return 1;
}

/* An RpcServer made with events; the host pushes a "tick" (n = 1, 2, ...)
 * in-process every 0.1 s until the server stops (srv.shutdown or a signal). */
static int serve(int argc, char **argv) {
    gh_cli *cli = NULL;
    if (gh_cli_parse(argc, (const char *const *)argv, "Events sample", "1.0.0", 12345, NULL, NULL,
                     NULL, &cli) != GH_OK) {
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
    gh_rpc_server *server = NULL;
    int rc = 1;
    if (gh_rpc_server_new(gh_cli_port(cli), NULL, 0, folders, config, config_count, NULL, 0, NULL, 0,
                          GH_RPC_WITH_EVENTS, &server) != GH_OK) {
        rc = fail();
        goto out;
    }
    gh_rpc_server_handle_exit_signals(server);
    printf("serving on port %d\n", gh_rpc_server_port(server));
    fflush(stdout);
    for (int n = 1; !gh_rpc_server_wait_shutdown(server, 0.1); n++) {
        char value[16];
        snprintf(value, sizeof value, "%d", n);
        const char *name = "n", *v = value;
        uint8_t *event = NULL;
        size_t len = 0;
        if (gh_event_encode("tick", &name, &v, 1, &event, &len) == GH_OK) {
            gh_rpc_server_send_event(server, event, len);
            gh_free(event);
        }
    }
    rc = 0;
out:
    gh_rpc_server_free(server);
    gh_folders_free(folders);
    gh_cli_free(cli);
    return rc;
}

static gh_rpc_client *client(int port) {
    gh_rpc_client *c = NULL;
    if (gh_rpc_client_new("127.0.0.1", port, 10, "events-sample", 1, &c) != GH_OK ||
        gh_rpc_client_add_stub(c, "events", "EventService", 2) != GH_OK ||
        gh_rpc_client_add_stub(c, "srv", "RpcServerService", 1) != GH_OK) {
        gh_rpc_client_free(c);
        return NULL;
    }
    return c;
}

/* What the listener's callback shares with main. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int left;
    int started; /* the "ready" line is out */
} printer;

/* Runs on the listener's thread, once per event (never for keep-alives); waits until
 * the "ready" line is out (an event may come before it is printed). */
static void print_event(const gh_event *event, void *user_data) {
    printer *p = user_data;
    pthread_mutex_lock(&p->mu);
    while (!p->started) pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    printf("%s", gh_event_name(event));
    for (size_t i = 0; i < gh_event_property_count(event); i++) {
        const char *name, *value;
        gh_event_property(event, i, &name, &value);
        printf(" %s=%s", name, value);
    }
    printf("\n");
    fflush(stdout);
    pthread_mutex_lock(&p->mu);
    if (--p->left == 0) pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static int listen_events(int port, char *names, int count) {
    const char *list[MAX_ITEMS];
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(names, ",", &save); t != NULL && n < MAX_ITEMS; t = strtok_r(NULL, ",", &save))
        list[n++] = t;
    printer p = {.left = count};
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    gh_rpc_client *c = client(port);
    gh_events_listener *listener = NULL;
    int rc = 1;
    if (c == NULL || gh_events_listener_new(c, list, n, 0, print_event, &p, NULL, &listener) != GH_OK) {
        rc = fail();
        goto out;
    }
    if (gh_events_listener_wait_ready(listener, 30) != 1) goto out;
    printf("ready %u\n", gh_events_listener_client_id(listener));
    fflush(stdout);
    pthread_mutex_lock(&p.mu);
    p.started = 1;
    pthread_cond_broadcast(&p.cv);
    pthread_mutex_unlock(&p.mu);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    pthread_mutex_lock(&p.mu);
    while (p.left > 0 && pthread_cond_timedwait(&p.cv, &p.mu, &deadline) == 0) {}
    rc = p.left > 0 ? 1 : 0;
    pthread_mutex_unlock(&p.mu);
    gh_events_listener_interrupt(listener, 30);
out:
    /* A callback still waiting for the "ready" line must not hold the listener's end. */
    pthread_mutex_lock(&p.mu);
    p.started = 1;
    pthread_cond_broadcast(&p.cv);
    pthread_mutex_unlock(&p.mu);
    gh_events_listener_free(listener);   /* before its client */
    gh_rpc_client_free(c);
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.mu);
    return rc;
}

static int send_event(int port, const char *name, char **props, size_t n, int shutdown) {
    const char *names[MAX_ITEMS], *values[MAX_ITEMS];
    for (size_t i = 0; i < n; i++) {
        char *eq = strchr(props[i], '=');
        names[i] = props[i];
        values[i] = "";
        if (eq != NULL) {
            *eq = '\0';
            values[i] = eq + 1;
        }
    }
    gh_rpc_client *c = client(port);
    if (c == NULL) return fail();
    int rc = 0;
    uint8_t *event = NULL, *response = NULL;
    size_t len = 0, response_len = 0;
    if (name != NULL) {
        if (gh_event_encode(name, names, values, n, &event, &len) != GH_OK ||
            gh_rpc_client_call(c, "events", "send", event, len, 0, &response, &response_len) != GH_OK) {
            rc = fail();
        } else {
            printf("sent\n");
        }
        gh_free(event);
        gh_free(response);
    }
    if (rc == 0 && shutdown) {
        /* ShutdownRequest{timeout: -1}: field 1, varint -1 (ten bytes, as int32 is sign-extended) */
        static const uint8_t no_wait[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
        response = NULL;
        if (gh_rpc_client_call(c, "srv", "shutdown", no_wait, sizeof no_wait, 0, &response, &response_len) != GH_OK)
            rc = fail();
        gh_free(response);
    }
    gh_rpc_client_free(c);
    return rc;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "serve") == 0) return serve(argc - 1, argv + 1);
    int port = 12345, count = 1, shutdown = 0;
    char *names = NULL, *props[MAX_ITEMS];
    const char *name = NULL;
    size_t n = 0;
    int listen = argc >= 2 && strcmp(argv[1], "listen") == 0;
    int send = argc >= 2 && strcmp(argv[1], "send") == 0;
    for (int i = 2; i < argc && (listen || send); i++) {
        if ((!strcmp(argv[i], "-p") || !strcmp(argv[i], "--port")) && i + 1 < argc) {
            port = atoi(argv[++i]);
        } else if (listen && !strcmp(argv[i], "--names") && i + 1 < argc) {
            names = argv[++i];
        } else if (listen && !strcmp(argv[i], "--count") && i + 1 < argc) {
            count = atoi(argv[++i]);
        } else if (send && !strcmp(argv[i], "--name") && i + 1 < argc) {
            name = argv[++i];
        } else if (send && !strcmp(argv[i], "--prop") && i + 1 < argc && n < MAX_ITEMS) {
            props[n++] = argv[++i];
        } else if (send && !strcmp(argv[i], "--shutdown")) {
            shutdown = 1;
        } else {
            listen = send = 0;
        }
    }
    if (listen) {
        char empty[] = "";
        return listen_events(port, names != NULL ? names : empty, count);
    }
    if (send) return send_event(port, name, props, n, shutdown);
    fprintf(stderr, "usage: %s serve [RPC options] | listen -p PORT [--names A,B] [--count K] |"
                    " send -p PORT [--name N] [--prop k=v]... [--shutdown]\n", argv[0]);
    return 64;
}
