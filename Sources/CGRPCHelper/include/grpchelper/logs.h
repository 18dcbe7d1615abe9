/*
 * grpchelper/logs.h — part of the C ABI of libgrpchelper (include <grpchelper.h>;
 * the conventions stated there hold here too).
 *
 * Helper layer: rolling logs with per-logger levels (gh_logs), as grpc-helper's
 * RpcLogs.
 */
#ifndef GRPCHELPER_LOGS_H
#define GRPCHELPER_LOGS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Rolling logs                                                             */
/* ------------------------------------------------------------------------ */

/* Levels (Python logging's numbers; grpc-helper-api LoggerLevel for DEBUG
 * to CRITICAL). */
typedef enum {
    GH_LOG_TRACE = 5,
    GH_LOG_DEBUG = 10,
    GH_LOG_INFO = 20,
    GH_LOG_NOTICE = 25,
    GH_LOG_WARNING = 30,
    GH_LOG_ERROR = 40,
    GH_LOG_CRITICAL = 50
} gh_log_level;

typedef struct gh_logs gh_logs;

/* The rolling logs of a program. Each named logger writes to
 * <folder>/<name>/<name>.log, and every record also goes to
 * <folder>/root/root.log (the root logger's file). Lines read
 * "YYYY-MM-DD hh:mm:ss.mmm [thread/name] LEVEL message", with
 * " - file:function:line" when the source is known; the thread is
 * "MainThread" for the main thread, else its name and kernel id
 * ("worker-4242"). A header line is written (in the file and in the root
 * file) when the process opens a file. Files roll over every |interval| |unit|
 * (S, M, H, D, MIDNIGHT, W0..W6, any case: Python's TimedRotatingFileHandler
 * units), keeping |backup| old files (0: all). Levels per logger come in
 * layers from loggers.json in the system, user and workspace folders of
 * |folders| (may be NULL); name → level name ("DEBUG", ...) or false
 * (disabled). A logger without a level takes its nearest dotted parent's, and
 * finally the root's (name "" or "root"; INFO unless configured). Names that
 * map to one file ("a/b" and "a_b": a slash becomes "_") share it. A file that
 * cannot be written (its folder removed, ...) is reopened, its folder made
 * again, on the next record; records are lost meanwhile (reported once on
 * stderr), never an error of the caller.
 * |folder| is copied; a relative one is taken from the workspace (the current
 * directory without one).
 * Errors (GH_ERR_RESULT): a bad unit or interval → GH_RC_ERROR_PARAM_INVALID;
 * a malformed loggers.json → GH_RC_ERROR_MODEL_INVALID naming it; a folder
 * that cannot be created → GH_RC_ERROR.
 * Threads: any thread. Logs are thread-safe. */
int gh_logs_new(const char *folder, const char *unit, int interval, int backup,
                const gh_folders *folders, gh_logs **out);

/* The same, with folder, unit, interval and backup from the set's
 * rpc-logs-folder, rpc-logs-interval-unit, rpc-logs-interval and
 * rpc-logs-backup items and the set's folders (borrowed for the call).
 * Threads: any thread. */
int gh_logs_new_from_config(const gh_config_set *set, gh_logs **out);

/* Closes the files. No gh_logs_* call may run on it concurrently or after.
 * NULL does nothing.
 * Threads: any thread, once. */
void gh_logs_free(gh_logs *logs);

/* The logs folder (absolute). Valid until gh_logs_free.
 * Threads: any thread. */
const char *gh_logs_folder(const gh_logs *logs);

/* 1 if a record of |level| from logger |name| would be written, else 0 (also
 * for a NULL |logs|). With a host's level source, its threshold decides.
 * Threads: any thread. */
int gh_logs_enabled(const gh_logs *logs, const char *name, int level);

/* Writes |message| from logger |name| at |level| (a gh_log_level or any
 * 1..50 number) if enabled, naming the calling thread (see gh_logs_new).
 * Strings are borrowed for the call.
 * Threads: any thread. */
int gh_logs_write(gh_logs *logs, const char *name, int level,
                  const char *message);

/* As gh_logs_write, for bindings that forward their language's log records:
 * |name| is the logger whose file gets the record (and the root file);
 * |record_name| (NULL: |name|) the logger that made it, when it reached
 * |name|'s handler by propagation (a child, or another library's logger at the
 * root): its level and enablement decide, and its name is on the line. With
 * the record's thread name, source file, function and line (|thread|, |file|,
 * |function| may be NULL; |line| 0: unknown).
 * Threads: any thread. */
int gh_logs_write_record(gh_logs *logs, const char *name,
                         const char *record_name, int level,
                         const char *thread, const char *file,
                         const char *function, int line, const char *message);

/* A host whose own logging system keeps logger levels (the Python binding:
 * Python's logging module) gives the library its levels, so that the program has
 * one source of truth. Names are UTF-8; "" is the root logger.
 * - get: the logger's own level into *|level| (0: none, it inherits) and
 *   whether it is enabled into *|enabled| (1 or 0);
 * - threshold: the lowest level a record of the logger needs to be written
 *   (a value above GH_LOG_CRITICAL when none is: the logger is disabled);
 * - set: sets the logger's own level (|level| < 0: unchanged) and enablement
 *   (|enabled| < 0: unchanged, else 1 or 0);
 * - emit (may be NULL): takes a record the library made (one that passed
 *   threshold), to route it through the host's logging, whose handlers write
 *   it with gh_logs_write_handled; returns 1 if taken, 0 to have the library
 *   write it itself (to the logger's file and the root file). |file|,
 *   |function| may be NULL, |line| 0: unknown.
 * The strings passed are borrowed for the callback. */
typedef void (*gh_log_level_get_fn)(void *user_data, const char *name,
                                    int *level, int *enabled);
typedef int (*gh_log_threshold_fn)(void *user_data, const char *name);
typedef void (*gh_log_level_set_fn)(void *user_data, const char *name,
                                    int level, int enabled);
typedef int (*gh_log_emit_fn)(void *user_data, const char *name, int level,
                              const char *thread, const char *file,
                              const char *function, int line,
                              const char *message);

/* Installs the host's level source for the logs made from now on
 * (gh_logs_new, gh_logs_new_from_config, gh_rpc_server_new); logs made before
 * keep theirs. Such logs keep no levels of their own:
 * - every level decision (gh_logs_enabled, the records the library writes,
 *   the header line of a file: an INFO record) asks |threshold|;
 * - at start the loggers.json layers (system, user, workspace; a later layer's
 *   value for a name replaces an earlier one) are applied with |set|, after
 *   the root's own level was read with |get| (what reset gives the root back);
 *   an unknown level name is skipped with a warning record;
 * - the LoggerService operations (gh_logs_get/set/reset and the server's log
 *   service) read with |get| and apply with |set|: set persists first, then
 *   applies; reset removes the workspace setting and applies no level of its
 *   own (the root: its level from before the layers) and enabled, as
 *   grpc-helper;
 * - the library's own records go to |emit| when given.
 * Passing NULL |get| uninstalls (|user_data| then goes to |free_user_data|
 * at once, if given). The source replaced or uninstalled is detached: this
 * call waits until none of its callbacks is running, then calls its
 * |free_user_data| (if not NULL) with its user_data; logs made with it then
 * write no record of their own and their LoggerService operations fail
 * (GH_ERR_RESULT, GH_RC_ERROR). Meant to be called once at start-up and once
 * with NULL before the host's runtime goes away.
 * The callbacks run on any thread that logs or serves the LoggerService
 * (never on an event-loop thread), concurrently; they must not call
 * gh_logs_use_level_source.
 * Errors: GH_ERR_INVALID_ARGUMENT when |get| is given without |threshold| or
 * |set| (nothing changes; |free_user_data| is called with |user_data|).
 * Threads: any thread (not from one of the source's callbacks). */
int gh_logs_use_level_source(gh_log_level_get_fn get,
                             gh_log_threshold_fn threshold,
                             gh_log_level_set_fn set, gh_log_emit_fn emit,
                             void *user_data, gh_free_fn free_user_data);

/* Since 0.5.0. With |enable| non-zero, the library keeps the answers of the
 * level source's |threshold| (see gh_logs_use_level_source), by logger name,
 * instead of asking the host at every level decision: a host that can tell
 * when its levels change (a logger's level, its enablement, a global
 * switch) and calls gh_logs_levels_changed then saves a callback per record
 * or per managed call (for a Python host: a thread state and the GIL each
 * time). The answers are dropped by gh_logs_levels_changed, by the library's
 * own level changes (the LoggerService set and reset, the loggers.json
 * layers) and when caching is turned off; a source installed later starts
 * empty. Process-wide: for the installed source and those installed after.
 * 0 (the default, as before 0.5.0): every decision asks the host.
 * Returns GH_OK.
 * Threads: any thread. */
int gh_logs_cache_thresholds(int enable);

/* Since 0.5.0. The host's logger levels or enablement changed: the cached
 * threshold answers (gh_logs_cache_thresholds) are dropped, so the next
 * decisions ask the host again. Does nothing without a source or a cache.
 * Cheap (no callback); safe from the source's own callbacks.
 * Threads: any thread. */
void gh_logs_levels_changed(void);

/* For a host whose logging routes records (see gh_logs_use_level_source):
 * writes a record that logger |name|'s handler received to |name|'s file only
 * ("" or "root": the root file), with no level check (the host decided).
 * |record_name| (NULL: |name|) is the logger that made it, named on the line;
 * the other arguments as gh_logs_write_record.
 * Threads: any thread. */
int gh_logs_write_handled(gh_logs *logs, const char *name,
                          const char *record_name, int level,
                          const char *thread, const char *file,
                          const char *function, int line,
                          const char *message);

/* The LoggerService operations, on encoded messages (as the config set's):
 * - get: Filter → LoggerStatus, the named loggers' configuration ("" is the
 *   root, reported as "root"; a logger without a level reports LVL_UNKNOWN);
 * - set: LoggerUpdate → LoggerStatus, sets level and enablement and persists
 *   them in the workspace's loggers.json (atomically);
 * - reset: Filter → LoggerStatus, forgets the workspace setting: back to
 *   what the system and user loggers.json give (else no level of its own and
 *   enabled; the root at INFO), removed from the workspace's loggers.json.
 * With a host's level source (gh_logs_use_level_source), levels are the
 * host's: see there.
 * Errors (GH_ERR_RESULT): an empty request → GH_RC_ERROR_PARAM_MISSING.
 * Threads: any thread. */
int gh_logs_get(gh_logs *logs, const uint8_t *request, size_t request_len,
                uint8_t **response, size_t *response_len);
int gh_logs_set(gh_logs *logs, const uint8_t *request, size_t request_len,
                uint8_t **response, size_t *response_len);
int gh_logs_reset(gh_logs *logs, const uint8_t *request, size_t request_len,
                  uint8_t **response, size_t *response_len);

#ifdef __cplusplus
}
#endif

#endif /* GRPCHELPER_LOGS_H */
