/*
 * grpchelper/cli.h — part of the C ABI of libgrpchelper (include <grpchelper.h>;
 * the conventions stated there hold here too).
 *
 * Helper layer: the RPC command-line options (gh_cli), as grpc-helper's
 * RpcCliParser.
 */
#ifndef GRPCHELPER_CLI_H
#define GRPCHELPER_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Command line                                                             */
/* ------------------------------------------------------------------------ */

typedef struct gh_cli gh_cli;

/* Parses |argc| / |argv| (argv[0] is the program name; borrowed for the call)
 * for the RPC options of grpc-helper's RpcCliParser: -h/--help, -V/--version,
 * --system PATH, --user PATH, -w/--workspace PATH, -p/--port PORT and
 * -c/--config NAME=VALUE (repeatable; the last of a name wins). Defaults:
 * |default_port| and the three folders (each may be NULL). |description| and
 * |version| (may be NULL: no -V) are shown by --help and -V.
 * Arguments that are not RPC options are kept, in order, for the host
 * (gh_cli_rest). Always fills *out (GH_OK) once the arguments are readable;
 * then gh_cli_exit_code says whether the host goes on (-1) or prints
 * gh_cli_message (to stdout when the code is 0: help, version; to stderr
 * otherwise: a malformed option, named in the message) and exits with it.
 * Threads: any thread. The handle is immutable. */
int gh_cli_parse(int argc, const char *const *argv, const char *description,
                 const char *version, int default_port,
                 const char *default_system, const char *default_user,
                 const char *default_workspace, gh_cli **out);

/* NULL does nothing.
 * Threads: any thread, once. */
void gh_cli_free(gh_cli *cli);

/* -1 when the program goes on; else the exit status: 0 after --help or -V,
 * 64 (EX_USAGE) after a usage error.
 * Threads: any thread. */
int gh_cli_exit_code(const gh_cli *cli);

/* The text to print when gh_cli_exit_code is not -1 (else ""). Valid until
 * gh_cli_free.
 * Threads: any thread. */
const char *gh_cli_message(const gh_cli *cli);

/* The listening port (-p, else the default; 0..65535, 0 asking for any free
 * port).
 * Threads: any thread. */
int gh_cli_port(const gh_cli *cli);

/* The folders (the options, else the defaults) as a new handle, released with
 * gh_folders_free.
 * Threads: any thread. */
int gh_cli_folders(const gh_cli *cli, gh_folders **out);

/* The -c options as "NAME=VALUE" strings, one per name, ready for
 * gh_config_set_new: *config (an array of *count strings) is valid until
 * gh_cli_free.
 * Threads: any thread. */
int gh_cli_config(const gh_cli *cli, const char *const **config,
                  size_t *count);

/* The arguments that are not RPC options, in order (argv[0] excluded): *argv
 * (an array of *argc strings) is valid until gh_cli_free.
 * Threads: any thread. */
int gh_cli_rest(const gh_cli *cli, int *argc, const char *const **argv);

#ifdef __cplusplus
}
#endif

#endif /* GRPCHELPER_CLI_H */
