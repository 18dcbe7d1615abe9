/*
 * grpchelper/config.h — part of the C ABI of libgrpchelper (include <grpchelper.h>;
 * the conventions stated there hold here too).
 *
 * Helper layer: config items (gh_config), folders (gh_folders) and config sets
 * (gh_config_set), as grpc-helper's Config, Folders and ConfigSet.
 */
#ifndef GRPCHELPER_CONFIG_H
#define GRPCHELPER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Config items                                                             */
/* ------------------------------------------------------------------------ */

/* Validators (grpc-helper-api ConfigValidator). */
typedef enum {
    GH_CONFIG_VALID_STRING = 0,
    GH_CONFIG_VALID_CUSTOM = 1,
    GH_CONFIG_VALID_INT = 2,
    GH_CONFIG_VALID_POS_INT = 3,
    GH_CONFIG_VALID_FLOAT = 4,
    GH_CONFIG_VALID_POS_FLOAT = 5
} gh_config_validator;

typedef struct gh_config gh_config;

/* A custom validator: returns GH_RC_OK if |value| is valid for the item
 * |name|, else a ResultCode (GH_RC_ERROR_PARAM_INVALID, best) after writing a
 * NUL-terminated message of at most |message_size| bytes (including the NUL)
 * into |message|. |name| and |value| are valid during the call. It runs on the
 * thread that validates (gh_config_update, a config set's constructor or
 * set operation, ...), possibly on several threads at once. A negative return
 * is reported as GH_RC_ERROR; codes above GH_RC_ERROR_CUSTOM pass through. */
typedef int (*gh_config_validate_fn)(void *user_data, const char *name,
                                     const char *value, char *message,
                                     size_t message_size);

/* A configuration item (grpc-helper's Config). |name| must match
 * [a-z][a-z0-9-]* (else GH_ERR_RESULT, GH_RC_ERROR_PARAM_INVALID);
 * |validator| is a gh_config_validator; GH_CONFIG_VALID_CUSTOM needs |custom|
 * (else GH_ERR_RESULT, GH_RC_ERROR_PARAM_MISSING), which is ignored with the
 * other validators. Strings are copied; |description| and |default_value| may
 * be NULL (""). |user_data| is passed to |custom|; |free_user_data| (may be
 * NULL) is called with it once the item is gone (freed here and released by
 * every config set holding it), also when this function fails. The default
 * value is validated when the item joins a config set (a layer may replace it
 * first). On success *out is a new reference, released with gh_config_free.
 * Threads: any thread. Items are thread-safe. */
int gh_config_new(const char *name, const char *description,
                  const char *default_value, int can_be_empty, int validator,
                  gh_config_validate_fn custom, void *user_data,
                  gh_free_fn free_user_data, gh_config **out);

/* Releases the caller's reference. Config sets that hold the item keep theirs.
 * NULL does nothing.
 * Threads: any thread, once per reference. */
void gh_config_free(gh_config *config);

/* The item's name. Valid until gh_config_free.
 * Threads: any thread. */
const char *gh_config_name(const gh_config *config);

/* The current value, as a NUL-terminated copy released with gh_free (NULL only
 * when out of memory).
 * Threads: any thread. */
char *gh_config_value(const gh_config *config);

/* The default value (hard-coded, or the last config-set layer that gave one),
 * as a copy released with gh_free.
 * Threads: any thread. */
char *gh_config_default_value(const gh_config *config);

/* The current value as an integer / a float (read as Python's int() and
 * float() read strings). GH_ERR_RESULT (GH_RC_ERROR_PARAM_INVALID) if it is
 * not one; *out is untouched then.
 * Threads: any thread. */
int gh_config_int_value(const gh_config *config, int64_t *out);
int gh_config_float_value(const gh_config *config, double *out);

/* The item as the config service reports it: an encoded ConfigItem message
 * (name, description, value, default_value, can_be_empty, validator) in
 * *data / *len, released with gh_free.
 * Threads: any thread. */
int gh_config_describe(const gh_config *config, uint8_t **data, size_t *len);

/* Checks |value| (borrowed for the call) with the item's rules: empty while
 * not allowed → GH_ERR_RESULT GH_RC_ERROR_PARAM_MISSING; not of the
 * validator's kind → GH_RC_ERROR_PARAM_INVALID naming the item and the value;
 * a custom validator's own code and message.
 * Threads: any thread. */
int gh_config_validate(const gh_config *config, const char *value);

/* Validates, then sets the current value (unchanged on error). This does not
 * persist anything: a config set's user items are changed and persisted with
 * gh_config_set_update or gh_config_set_set.
 * Threads: any thread. */
int gh_config_update(gh_config *config, const char *value);

/* Sets the current value back to the default.
 * Threads: any thread. */
int gh_config_reset(gh_config *config);

/* The built-in static items of an RPC server (rpc-max-workers,
 * rpc-shutdown-grace, rpc-shutdown-timeout, rpc-logs-folder, rpc-logs-backup,
 * rpc-logs-interval-unit, rpc-logs-interval, rpc-main-host, rpc-main-port,
 * rpc-client-timeout, rpc-event-retain-timeout, rpc-event-keepalive-timeout;
 * since 0.5.0 rpc-event-queue-max, the undelivered events an event queue keeps,
 * its oldest dropped beyond, default 10000),
 * new items on each call. *items is an array of *count new references: free
 * each with gh_config_free, then the array with gh_free.
 * Threads: any thread. */
int gh_config_static_items(gh_config ***items, size_t *count);

/* ------------------------------------------------------------------------ */
/* Folders                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct gh_folders gh_folders;

/* Folders of a helper-layer program (grpc-helper's Folders): system
 * (read-only defaults), user (per-user defaults), workspace (persisted state,
 * logs). Any may be NULL (absent). Paths are copied; a leading "~" is
 * expanded. Nothing is created here.
 * Threads: any thread. Folders are immutable. */
int gh_folders_new(const char *system, const char *user, const char *workspace,
                   gh_folders **out);

/* NULL does nothing.
 * Threads: any thread, once. */
void gh_folders_free(gh_folders *folders);

/* The system folder, or NULL when absent. Never created. Valid until
 * gh_folders_free.
 * Threads: any thread. */
const char *gh_folders_system(const gh_folders *folders);

/* The user / workspace folder in *path (NULL when absent), created with its
 * parents on first use (GH_ERR_RESULT GH_RC_ERROR if that fails). *path is
 * valid until gh_folders_free.
 * Threads: any thread. */
int gh_folders_user(const gh_folders *folders, const char **path);
int gh_folders_workspace(const gh_folders *folders, const char **path);

/* ------------------------------------------------------------------------ */
/* Config sets                                                              */
/* ------------------------------------------------------------------------ */

typedef struct gh_config_set gh_config_set;

/* The configuration of a program: static and user items (arrays of
 * |static_count| and |user_count| handles, borrowed for the call; the set takes
 * its own references). Default values in layers, each overriding the previous:
 * the hard-coded default; config.json in the system folder; config.json in the
 * user folder; the environment ("my-item" → MY_ITEM); |cli_config|, an array
 * of |cli_count| "NAME=VALUE" strings (the command line's -c options, see
 * gh_cli_config). Then the user items' persisted values (the workspace's
 * config.json) are restored; one that no longer validates falls back to its
 * default with a warning (gh_config_set_warning). |folders| (may be NULL: no
 * folders) is borrowed for the call.
 * Errors (GH_ERR_RESULT): an item in both lists or twice →
 * GH_RC_ERROR_MODEL_INVALID; a config.json that is not a JSON object of
 * strings → GH_RC_ERROR_MODEL_INVALID naming the file; an invalid default →
 * the validator's code, naming the item and the layer it came from; a
 * malformed |cli_config| string → GH_RC_ERROR_PARAM_INVALID.
 * Threads: any thread. Sets are thread-safe. */
int gh_config_set_new(gh_config *const *static_items, size_t static_count,
                      gh_config *const *user_items, size_t user_count,
                      const gh_folders *folders, const char *const *cli_config,
                      size_t cli_count, gh_config_set **out);

/* NULL does nothing.
 * Threads: any thread, once. */
void gh_config_set_free(gh_config_set *set);

/* A static or user item by name (borrowed: valid until gh_config_set_free),
 * or NULL if the set has none of that name.
 * Threads: any thread. */
gh_config *gh_config_set_item(gh_config_set *set, const char *name);

/* The number of warnings raised while loading, and the |index|-th text
 * (valid until gh_config_set_free; NULL when out of range).
 * Threads: any thread. */
size_t gh_config_set_warning_count(const gh_config_set *set);
const char *gh_config_set_warning(const gh_config_set *set, size_t index);

/* The ConfigService operations, on encoded messages (request borrowed for the
 * call; the response, released with gh_free, in *response / *response_len):
 * - get: Filter → ConfigStatus, the user items named (empty: all);
 * - set: ConfigUpdate → ConfigStatus, validates every item first and applies
 *   none if one fails, then persists the non-default user values in the
 *   workspace's config.json (atomically);
 * - reset: Filter → ConfigStatus, back to the defaults, persisted.
 * Errors (GH_ERR_RESULT, nothing applied): an empty list (set, reset) or an
 * empty name → GH_RC_ERROR_PARAM_MISSING; an unknown or static name →
 * GH_RC_ERROR_ITEM_UNKNOWN unless the request's ignore_unknown; a bad value →
 * its validator's error. A request that does not decode →
 * GH_ERR_INVALID_ARGUMENT.
 * Threads: any thread (operations are serialized per set). */
int gh_config_set_get(gh_config_set *set, const uint8_t *request,
                      size_t request_len, uint8_t **response,
                      size_t *response_len);
int gh_config_set_set(gh_config_set *set, const uint8_t *request,
                      size_t request_len, uint8_t **response,
                      size_t *response_len);
int gh_config_set_reset(gh_config_set *set, const uint8_t *request,
                        size_t request_len, uint8_t **response,
                        size_t *response_len);

/* Sets one user item and persists, as gh_config_set_set with one item.
 * Threads: any thread. */
int gh_config_set_update(gh_config_set *set, const char *name,
                         const char *value);

#ifdef __cplusplus
}
#endif

#endif /* GRPCHELPER_CONFIG_H */
