/*
 * test_helper_cli.c — gh_cli_parse, the RPC command-line options of the
 * helper layer, through <grpchelper.h> only:
 * - defaults: the port and the three folders (or none) when no option is
 *   given; exit code -1 and "" as the message when the host goes on;
 * - every option: --system, --user, -w/--workspace, -p/--port, -c/--config
 *   (repeated, the last of a name wins, "x=y=z" keeps "y=z", "k=" is empty);
 * - the host's own arguments ("--verbose", "file.txt", ...) in gh_cli_rest, in
 *   order, without argv[0];
 * - -h/--help → 0 and a message listing the options and the description;
 *   -V/--version → 0 and the version; -V without a version → usage error;
 * - malformed -c ("novalue", "=v", names not [a-z][a-z0-9-]*) and -p ("x", "65536", missing) → 64
 *   with a message naming the bad value;
 * - gh_cli_folders / gh_cli_config feeding gh_config_set_new (a -c value
 *   becomes the item's default; the -w workspace receives config.json);
 * - parses from several threads at once, each with its own defaults.
 * Folders live below one mkdtemp folder, removed at the end.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <grpchelper.h>

#include "check.h"
#include "testutil.h"

#define DESCRIPTION "Frobnicates the widgets of the C test"
#define VERSION "7.8.9-ctest"
#define DEFAULT_PORT 4242

static char *g_tmp;
static char g_sys[512], g_user[512], g_ws[512];

#define ARGV(...) ((const char *const[]){"/usr/bin/prog", __VA_ARGS__})
#define ARGC(...) ((int)(sizeof ARGV(__VA_ARGS__) / sizeof(const char *)))

/* gh_cli_parse with the test's description, version and default folders. */
static gh_cli *parse_with(int argc, const char *const *argv, const char *version) {
    gh_cli *cli = NULL;
    CHECK_OK(gh_cli_parse(argc, argv, DESCRIPTION, version, DEFAULT_PORT, g_sys,
                          g_user, g_ws, &cli));
    CHECK(cli != NULL);
    CHECK(gh_cli_message(cli) != NULL);
    return cli;
}

static gh_cli *parse(int argc, const char *const *argv) {
    return parse_with(argc, argv, VERSION);
}

/* parse() of "/usr/bin/prog" followed by the arguments. */
#define PARSE(...) parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))

/* The host goes on: -1 and "". */
static void check_goes_on(const gh_cli *cli) {
    CHECK_EQ(gh_cli_exit_code(cli), -1);
    CHECK_STR(gh_cli_message(cli), "");
}

/* gh_cli_rest must be exactly |want| (NULL-terminated). */
static void check_rest(const gh_cli *cli, const char *const *want) {
    int argc = -1;
    const char *const *argv = NULL;
    CHECK_OK(gh_cli_rest(cli, &argc, &argv));
    int n = 0;
    while (want[n] != NULL) n++;
    CHECK_EQ(argc, n);
    for (int i = 0; i < n; i++) CHECK_STR(argv[i], want[i]);
}

/* gh_cli_config must hold exactly the NULL-terminated strings of |want|, in
 * any order. */
static void check_config(const gh_cli *cli, const char *const *want) {
    const char *const *config = NULL;
    size_t count = 99;
    CHECK_OK(gh_cli_config(cli, &config, &count));
    size_t n = 0;
    while (want[n] != NULL) n++;
    CHECK_EQ(count, n);
    for (size_t i = 0; i < n; i++) {
        size_t found = 0;
        for (size_t j = 0; j < count; j++) {
            CHECK(config[j] != NULL);
            if (strcmp(config[j], want[i]) == 0) found++;
        }
        CHECK_MSG(found == 1, "\"%s\" appears %zu times in gh_cli_config", want[i],
                  found);
    }
}

/* The folders of |cli| must be |sys|, |user|, |ws| (NULL: absent). Creates the
 * user and workspace folders (they are under g_tmp). */
static void check_folders(const gh_cli *cli, const char *sys, const char *user,
                          const char *ws) {
    gh_folders *f = NULL;
    CHECK_OK(gh_cli_folders(cli, &f));
    CHECK(f != NULL);
    if (sys) CHECK_STR(gh_folders_system(f), sys);
    else CHECK(gh_folders_system(f) == NULL);
    const char *p = "unset";
    CHECK_OK(gh_folders_user(f, &p));
    if (user) CHECK_STR(p, user);
    else CHECK(p == NULL);
    p = "unset";
    CHECK_OK(gh_folders_workspace(f, &p));
    if (ws) CHECK_STR(p, ws);
    else CHECK(p == NULL);
    gh_folders_free(f);
}

/* |msg| holds |value| as a word of its own (not inside a longer word). */
static void check_names_value(const char *msg, const char *value) {
    size_t n = strlen(value);
    for (const char *p = strstr(msg, value); p != NULL; p = strstr(p + 1, value)) {
        int before = p == msg ? ' ' : (unsigned char)p[-1];
        int after = (unsigned char)p[n];
        if (!isalnum(before) && !isalnum(after)) return;
    }
    CHECK_MSG(0, "the message does not name \"%s\": %s", value, msg);
}

/* ------------------------------------------------------------------------ */

static void test_defaults(void) {
    const char *const argv[] = {"prog"};
    gh_cli *cli = parse(1, argv);
    check_goes_on(cli);
    CHECK_EQ(gh_cli_port(cli), DEFAULT_PORT);
    check_rest(cli, (const char *const[]){NULL});
    check_config(cli, (const char *const[]){NULL});
    check_folders(cli, g_sys, g_user, g_ws);
    gh_cli_free(cli);

    /* No default folders: none. */
    cli = NULL;
    CHECK_OK(gh_cli_parse(1, argv, NULL, NULL, 1, NULL, NULL, NULL, &cli));
    check_goes_on(cli);
    CHECK_EQ(gh_cli_port(cli), 1);
    check_folders(cli, NULL, NULL, NULL);
    gh_cli_free(cli);
    gh_cli_free(NULL);
}

static void test_options(void) {
    char sys[600], user[600], ws[600], ws2[600];
    TU_PATH(sys, "%s/opt-sys", g_tmp);
    TU_PATH(user, "%s/opt-user", g_tmp);
    TU_PATH(ws, "%s/opt-ws", g_tmp);
    TU_PATH(ws2, "%s/opt-ws2", g_tmp);

    gh_cli *cli = PARSE("--system", sys, "--user", user, "-w", ws, "-p", "1234",
                             "-c", "a=1", "--config", "b=2", "-c", "a=3", "-c",
                             "x=y=z", "-c", "k=");
    check_goes_on(cli);
    CHECK_EQ(gh_cli_port(cli), 1234);
    check_folders(cli, sys, user, ws);
    check_config(cli, (const char *const[]){"a=3", "b=2", "x=y=z", "k=", NULL});
    check_rest(cli, (const char *const[]){NULL});
    gh_cli_free(cli);

    /* Long forms, and options overriding only their own default. */
    cli = PARSE("--workspace", ws2, "--port", "65535");
    check_goes_on(cli);
    CHECK_EQ(gh_cli_port(cli), 65535);
    check_folders(cli, g_sys, g_user, ws2);
    gh_cli_free(cli);

    /* "--opt=value" forms. */
    cli = PARSE("--port=99", "--config=k=v", "--system=/x/sys");
    check_goes_on(cli);
    CHECK_EQ(gh_cli_port(cli), 99);
    check_config(cli, (const char *const[]){"k=v", NULL});
    gh_folders *f = NULL;
    CHECK_OK(gh_cli_folders(cli, &f));
    CHECK_STR(gh_folders_system(f), "/x/sys");
    gh_folders_free(f);
    gh_cli_free(cli);
}

static void test_rest(void) {
    gh_cli *cli = PARSE("--verbose", "file.txt");
    check_goes_on(cli);
    check_rest(cli, (const char *const[]){"--verbose", "file.txt", NULL});
    CHECK_EQ(gh_cli_port(cli), DEFAULT_PORT);
    gh_cli_free(cli);

    /* Mixed with RPC options: the host's arguments keep their order. */
    cli = PARSE("--verbose", "-p", "77", "file.txt", "-c", "n=v", "-x", "second");
    check_goes_on(cli);
    CHECK_EQ(gh_cli_port(cli), 77);
    check_config(cli, (const char *const[]){"n=v", NULL});
    check_rest(cli, (const char *const[]){"--verbose", "file.txt", "-x", "second", NULL});
    gh_cli_free(cli);
}

static void test_help_and_version(void) {
    static const char *const help[] = {"-h", "--help"};
    for (size_t i = 0; i < 2; i++) {
        const char *argv[] = {"prog", help[i]};
        gh_cli *cli = parse(2, argv);
        CHECK_EQ(gh_cli_exit_code(cli), 0);
        const char *msg = gh_cli_message(cli);
        CHECK_CONTAINS(msg, DESCRIPTION);
        static const char *const options[] = {"--system", "--user", "-w",
                                              "--workspace", "-p", "--port",
                                              "-c", "--config", "-V", "--help"};
        for (size_t j = 0; j < sizeof options / sizeof options[0]; j++) {
            CHECK_CONTAINS(msg, options[j]);
        }
        gh_cli_free(cli);
    }

    static const char *const version[] = {"-V", "--version"};
    for (size_t i = 0; i < 2; i++) {
        const char *argv[] = {"prog", version[i]};
        gh_cli *cli = parse(2, argv);
        CHECK_EQ(gh_cli_exit_code(cli), 0);
        const char *msg = gh_cli_message(cli);
        size_t n = strlen(msg);
        while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) n--;
        CHECK_MSG(n == strlen(VERSION) && strncmp(msg, VERSION, n) == 0,
                  "%s: message \"%s\", expected \"%s\"", version[i], msg, VERSION);
        gh_cli_free(cli);
    }

    /* -V without a version: a usage error. */
    const char *argv[] = {"prog", "-V"};
    gh_cli *cli = parse_with(2, argv, NULL);
    CHECK_EQ(gh_cli_exit_code(cli), 64);
    CHECK(gh_cli_message(cli)[0] != '\0');
    gh_cli_free(cli);
}

static void test_usage_errors(void) {
    static const struct {
        const char *option, *value;
    } bad[] = {
        {"-c", "novalue"}, {"--config", "=v"}, {"-c", "Foo=1"},
        {"-c", "my item=1"}, {"-c", "9a=1"},
        {"-p", "x"},       {"--port", "65536"}, {"-p", "1.5"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *argv[] = {"prog", "--verbose", bad[i].option, bad[i].value};
        gh_cli *cli = parse(4, argv);
        CHECK_MSG(gh_cli_exit_code(cli) == 64, "%s %s: exit code %d", bad[i].option,
                  bad[i].value, gh_cli_exit_code(cli));
        check_names_value(gh_cli_message(cli), bad[i].value);
        gh_cli_free(cli);
    }
    /* A missing value. */
    static const char *const missing[] = {"-p", "--port", "-c", "--config", "-w",
                                          "--workspace", "--system", "--user"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        const char *argv[] = {"prog", missing[i]};
        gh_cli *cli = parse(2, argv);
        CHECK_MSG(gh_cli_exit_code(cli) == 64, "%s: exit code %d", missing[i],
                  gh_cli_exit_code(cli));
        CHECK(gh_cli_message(cli)[0] != '\0');
        gh_cli_free(cli);
    }
}

/* -c values become defaults of a config set over the command line's folders. */
static void test_feeding_config_set(void) {
    char sys[600], user[600], ws[600], sys_json[700], ws_json[700];
    TU_PATH(sys, "%s/feed-sys", g_tmp);
    TU_PATH(user, "%s/feed-user", g_tmp);
    TU_PATH(ws, "%s/feed-ws", g_tmp);
    TU_PATH(sys_json, "%s/config.json", sys);
    TU_PATH(ws_json, "%s/config.json", ws);
    CHECK(mkdir(sys, 0755) == 0);
    tu_write_file(sys_json, "{\"feed-item\": \"sys\", \"feed-other\": \"sys\"}");

    const char *const argv[] = {"prog", "--system", sys, "--user", user,
                                "--workspace", ws, "-c", "feed-item=ignored",
                                "-c", "rpc-main-port=1234", "-c", "feed-item=fromcli",
                                "-c", "feed-eq=y=z", "host-arg"};
    gh_cli *cli = parse((int)(sizeof argv / sizeof argv[0]), argv);
    check_goes_on(cli);
    check_rest(cli, (const char *const[]){"host-arg", NULL});

    gh_config **stat = NULL;
    size_t n_stat = 0;
    CHECK_OK(gh_config_static_items(&stat, &n_stat));
    gh_config *user_items[3] = {NULL, NULL, NULL};
    CHECK_OK(gh_config_new("feed-item", NULL, "hard", 0, GH_CONFIG_VALID_STRING,
                           NULL, NULL, NULL, &user_items[0]));
    CHECK_OK(gh_config_new("feed-other", NULL, "hard", 0, GH_CONFIG_VALID_STRING,
                           NULL, NULL, NULL, &user_items[1]));
    CHECK_OK(gh_config_new("feed-eq", NULL, "hard", 0, GH_CONFIG_VALID_STRING,
                           NULL, NULL, NULL, &user_items[2]));

    gh_folders *folders = NULL;
    CHECK_OK(gh_cli_folders(cli, &folders));
    const char *const *config = NULL;
    size_t n_config = 0;
    CHECK_OK(gh_cli_config(cli, &config, &n_config));
    CHECK_EQ(n_config, 3);
    gh_config_set *set = NULL;
    CHECK_OK(gh_config_set_new(stat, n_stat, user_items, 3, folders, config, n_config,
                               &set));

    static const struct {
        const char *name, *value;
    } want[] = {
        {"feed-item", "fromcli"},
        {"feed-other", "sys"},
        {"feed-eq", "y=z"},
        {"rpc-main-port", "1234"},
        {"rpc-main-host", "localhost"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        gh_config *c = gh_config_set_item(set, want[i].name);
        CHECK_MSG(c != NULL, "%s", want[i].name);
        char *v = gh_config_value(c);
        char *d = gh_config_default_value(c);
        CHECK_MSG(strcmp(v, want[i].value) == 0 && strcmp(d, want[i].value) == 0,
                  "%s: value \"%s\", default \"%s\", expected \"%s\"", want[i].name,
                  v, d, want[i].value);
        gh_free(v);
        gh_free(d);
    }
    int64_t port = 0;
    CHECK_OK(gh_config_int_value(gh_config_set_item(set, "rpc-main-port"), &port));
    CHECK_EQ(port, 1234);

    /* The workspace of the command line receives the persisted values. */
    CHECK_OK(gh_config_set_update(set, "feed-other", "changed"));
    char *text = tu_read_file(ws_json, NULL);
    CHECK_MSG(text != NULL, "%s missing", ws_json);
    tu_json_map m;
    CHECK(tu_json_parse_map(text, &m) == 0);
    CHECK_EQ(m.count, 1);
    CHECK_STR(tu_json_get(&m, "feed-other", NULL), "changed");
    tu_json_free(&m);
    free(text);

    gh_config_set_free(set);
    gh_folders_free(folders);
    for (size_t i = 0; i < 3; i++) gh_config_free(user_items[i]);
    for (size_t i = 0; i < n_stat; i++) gh_config_free(stat[i]);
    gh_free(stat);
    gh_cli_free(cli);
}

/* ------------------------------------------------------------------------ */
/* Several threads at once                                                  */
/* ------------------------------------------------------------------------ */

#define N_THREADS 4
#define N_ROUNDS 6

static void *parse_thread(void *arg) {
    int k = (int)(intptr_t)arg;
    char description[64], version[32], port[16], ws[600];
    snprintf(description, sizeof description, "Description of thread %d", k);
    snprintf(version, sizeof version, "%d.0.%d", k, k);
    snprintf(port, sizeof port, "%d", 2000 + k);
    TU_PATH(ws, "%s/thread-ws-%d", g_tmp, k);
    for (int r = 0; r < N_ROUNDS; r++) {
        gh_cli *cli = NULL;
        switch (r % 3) {
        case 0: {
            const char *argv[] = {"prog", "-p", port, "arg"};
            CHECK_OK(gh_cli_parse(4, argv, description, version, 1000 + k, NULL, NULL,
                                  ws, &cli));
            check_goes_on(cli);
            CHECK_EQ(gh_cli_port(cli), 2000 + k);
            check_rest(cli, (const char *const[]){"arg", NULL});
            break;
        }
        case 1: {
            const char *argv[] = {"prog", "--help"};
            CHECK_OK(gh_cli_parse(2, argv, description, version, 1000 + k, NULL, NULL,
                                  ws, &cli));
            CHECK_EQ(gh_cli_exit_code(cli), 0);
            CHECK_CONTAINS(gh_cli_message(cli), description);
            break;
        }
        default: {
            const char *argv[] = {"prog", "-V"};
            CHECK_OK(gh_cli_parse(2, argv, description, version, 1000 + k, NULL, NULL,
                                  ws, &cli));
            CHECK_EQ(gh_cli_exit_code(cli), 0);
            CHECK_CONTAINS(gh_cli_message(cli), version);
            break;
        }
        }
        gh_cli_free(cli);
        const char *argv[] = {"prog"};
        CHECK_OK(gh_cli_parse(1, argv, description, version, 1000 + k, NULL, NULL, ws,
                              &cli));
        CHECK_EQ(gh_cli_port(cli), 1000 + k);
        gh_folders *f = NULL;
        CHECK_OK(gh_cli_folders(cli, &f));
        CHECK(gh_folders_system(f) == NULL);
        gh_folders_free(f);
        gh_cli_free(cli);
    }
    return NULL;
}

static void test_threads(void) {
    pthread_t th[N_THREADS];
    for (int k = 0; k < N_THREADS; k++) {
        CHECK(pthread_create(&th[k], NULL, parse_thread, (void *)(intptr_t)k) == 0);
    }
    for (int k = 0; k < N_THREADS; k++) CHECK(pthread_join(th[k], NULL) == 0);
}

/* ------------------------------------------------------------------------ */

int main(void) {
    g_tmp = tu_tmpdir();
    TU_PATH(g_sys, "%s/default-sys", g_tmp);
    TU_PATH(g_user, "%s/default-user", g_tmp);
    TU_PATH(g_ws, "%s/default-ws", g_tmp);

    test_defaults();
    test_options();
    test_rest();
    test_help_and_version();
    test_usage_errors();
    test_feeding_config_set();
    test_threads();

    tu_rmtree(g_tmp);
    free(g_tmp);
    printf("test_helper_cli: OK\n");
    return 0;
}
