/*
 * helper_host.c — a helper-layer host program in C: its own config items
 * (grouped in a struct, as a config holder), the RPC command-line options
 * parsed by gh_cli_parse (the host keeps its own arguments), a config set with
 * layered defaults and persisted user values, and a named logger writing to
 * the rolling logs.
 *
 *   helper_host -w /tmp/wks -c host-greeting=hi --times 2
 *   cat /tmp/wks/logs/helper-host/helper-host.log
 *
 * Prints the logger's file path on success; "error <code>: <message>" and exit
 * status 1 on a helper-layer error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpchelper.h>

/* This program's own configuration items: one struct, one array for the set. */
struct host_config {
    gh_config *greeting;
    gh_config *target;
};

static int fail(const char *what) {
    fprintf(stdout, "error %d: %s (%s)\n", gh_last_result_code(), gh_last_error(), what);
    return 1;
}

int main(int argc, char **argv) {
    gh_cli *cli = NULL;
    if (gh_cli_parse(argc, (const char *const *)argv, "Sample helper-layer host", "1.0.0", 12345,
                     "/etc/helper-host", "~/.config/helper-host", "./helper-host-wks",
                     &cli) != GH_OK) {
        fprintf(stderr, "%s\n", gh_last_error());
        return 2;
    }
    int code = gh_cli_exit_code(cli);
    if (code >= 0) { /* --help, -V, or a usage error */
        fprintf(code == 0 ? stdout : stderr, "%s\n", gh_cli_message(cli));
        gh_cli_free(cli);
        return code;
    }

    /* The host's own options, among the arguments gh_cli_parse left. */
    int times = 1;
    const char *set_target = NULL;
    int rest_argc = 0;
    const char *const *rest = NULL;
    gh_cli_rest(cli, &rest_argc, &rest);
    for (int i = 0; i < rest_argc; i++) {
        if (strcmp(rest[i], "--times") == 0 && i + 1 < rest_argc) {
            times = atoi(rest[++i]);
        } else if (strcmp(rest[i], "--set-target") == 0 && i + 1 < rest_argc) {
            set_target = rest[++i];
        } else {
            fprintf(stderr, "unknown argument: %s\n", rest[i]);
            gh_cli_free(cli);
            return 64;
        }
    }

    struct host_config config = {0};
    gh_config **statics = NULL;
    size_t static_count = 0;
    gh_folders *folders = NULL;
    gh_config_set *set = NULL;
    gh_logs *logs = NULL;
    int rc = 1;
    const char *const *cli_config = NULL;
    size_t cli_count = 0;

    if (gh_config_new("host-greeting", "Word to greet with", "hello", 0, GH_CONFIG_VALID_STRING,
                      NULL, NULL, NULL, &config.greeting) != GH_OK ||
        gh_config_new("host-target", "Who is greeted", "world", 0, GH_CONFIG_VALID_STRING, NULL,
                      NULL, NULL, &config.target) != GH_OK) {
        rc = fail("config items");
        goto out;
    }
    gh_config *user_items[] = {config.greeting, config.target};
    if (gh_config_static_items(&statics, &static_count) != GH_OK ||
        gh_cli_folders(cli, &folders) != GH_OK ||
        gh_cli_config(cli, &cli_config, &cli_count) != GH_OK ||
        gh_config_set_new((gh_config *const *)statics, static_count, user_items, 2, folders,
                          cli_config, cli_count, &set) != GH_OK) {
        rc = fail("config set");
        goto out;
    }
    if (set_target != NULL && gh_config_set_update(set, "host-target", set_target) != GH_OK) {
        rc = fail("set target");
        goto out;
    }
    if (gh_logs_new_from_config(set, &logs) != GH_OK) {
        rc = fail("logs");
        goto out;
    }
    for (size_t i = 0; i < gh_config_set_warning_count(set); i++) {
        gh_logs_write(logs, "helper-host", GH_LOG_WARNING, gh_config_set_warning(set, i));
    }
    char *greeting = gh_config_value(config.greeting);
    char *target = gh_config_value(config.target);
    for (int i = 1; i <= (times > 0 ? times : 1); i++) {
        char line[512];
        snprintf(line, sizeof line, "%s %s (%d) port=%d", greeting, target, i, gh_cli_port(cli));
        gh_logs_write(logs, "helper-host", GH_LOG_INFO, line);
    }
    gh_free(greeting);
    gh_free(target);
    printf("%s/helper-host/helper-host.log\n", gh_logs_folder(logs));
    rc = 0;

out:
    gh_logs_free(logs);
    gh_config_set_free(set);
    gh_folders_free(folders);
    for (size_t i = 0; i < static_count; i++) gh_config_free(statics[i]);
    gh_free(statics);
    gh_config_free(config.greeting);
    gh_config_free(config.target);
    gh_cli_free(cli);
    return rc;
}
