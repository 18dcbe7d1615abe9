/*
 * grpchelper/errors.h — part of the C ABI of libgrpchelper (include <grpchelper.h>;
 * the conventions stated there hold here too).
 *
 * Error codes (gh_error), the per-thread last error, memory handed to the caller,
 * and grpc-helper's ResultCode values (gh_result_code).
 */
#ifndef GRPCHELPER_ERRORS_H
#define GRPCHELPER_ERRORS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Errors and memory                                                        */
/* ------------------------------------------------------------------------ */

typedef enum {
    GH_OK = 0,
    /* An argument is NULL, out of range or malformed (bad target, bad metadata
     * key or value, unknown option, ...). */
    GH_ERR_INVALID_ARGUMENT = -501,
    /* The object is not in a state that allows this (e.g. a server option set
     * after start, a second finish, a message sent after finish). */
    GH_ERR_INVALID_STATE = -502,
    /* The call has ended (cancelled, deadline exceeded, finished, reset by the
     * peer); nothing more can be sent or read. */
    GH_ERR_CLOSED = -503,
    /* An address could not be bound or listened on (e.g. port in use). */
    GH_ERR_BIND = -504,
    /* The RPC ended with a non-OK status; read it with gh_call_status(). */
    GH_ERR_RPC = -505,
    /* Reserved for send-side message limits (not returned by this version). */
    GH_ERR_TOO_LARGE = -506,
    /* A helper-layer operation (config, logs, command line) failed with a
     * grpc-helper ResultCode: read it with gh_last_result_code() and the
     * message with gh_last_error(). */
    GH_ERR_RESULT = -507,
    /* Errors at or below GH_ERR_FATAL leave the handle usable only for *_free. */
    GH_ERR_FATAL = -900,
    GH_ERR_NOMEM = -901,
    GH_ERR_INTERNAL = -902
} gh_error;

/* Static English text for a gh_error code (never NULL).
 * Threads: any thread. */
const char *gh_strerror(int code);

/* Non-zero if |code| is fatal (at or below GH_ERR_FATAL).
 * Threads: any thread. */
int gh_is_fatal(int code);

/* The message of the latest failed gh_ function on the calling thread, or "" if
 * none. Valid until the next gh_ call on the same thread.
 * Threads: any thread (the text is per thread). */
const char *gh_last_error(void);

/* Releases memory that the library handed over to the caller (documented as
 * "release with gh_free"). NULL does nothing.
 * Threads: any thread. */
void gh_free(void *p);

/* Releases user data given with a callback, once the library no longer uses it
 * (the free_user_data arguments below). */
typedef void (*gh_free_fn)(void *user_data);

/* A copy of the NUL-terminated string |s| (borrowed for the call) in memory
 * the library can take over: for callbacks that return a string the library
 * releases (gh_rpc_dump_fn), from hosts that have no malloc of their own at
 * hand (e.g. Python's ctypes). Release with gh_free unless handed over.
 * NULL, or no memory: NULL.
 * Threads: any thread. */
char *gh_strdup(const char *s);

/* Since 0.6.0. Whether the calling thread is one of the library's own (its
 * worker, event-loop, callback and shutdown threads): 1, else 0. A host that
 * keeps per-thread state of its own for the library's callbacks (e.g. a
 * language runtime's thread state) may keep it on these threads only; the
 * library ends them at the end of their server's or channel's life.
 * Threads: any thread. */
int gh_thread_is_library(void);


/* grpc-helper's ResultCode values (the wire enum of grpc-helper-api). */
typedef enum {
    GH_RC_OK = 0,
    GH_RC_ERROR = 1,
    GH_RC_ARGS = 2,
    GH_RC_ERROR_PORT_BUSY = 10,
    GH_RC_ERROR_API_CLIENT_TOO_OLD = 11,
    GH_RC_ERROR_API_SERVER_TOO_OLD = 12,
    GH_RC_ERROR_RPC = 13,
    GH_RC_ERROR_PROXY_UNREGISTERED = 14,
    GH_RC_ERROR_STREAM_SHUTDOWN = 15,
    GH_RC_ERROR_PARAM_MISSING = 20,
    GH_RC_ERROR_PARAM_INVALID = 21,
    GH_RC_ERROR_PARAM_UNSUPPORTED = 22,
    GH_RC_ERROR_ITEM_UNKNOWN = 30,
    GH_RC_ERROR_ITEM_CONFLICT = 31,
    GH_RC_ERROR_ITEM_BUSY = 32,
    GH_RC_ERROR_ITEM_MULTIPLE = 33,
    GH_RC_ERROR_MODEL_INVALID = 40,
    GH_RC_ERROR_MODEL_SYNTAX = 41,
    GH_RC_ERROR_REQUEST_FAILED = 50,
    GH_RC_ERROR_REQUEST_TIMEOUT = 51,
    GH_RC_ERROR_REQUEST_UNSUPPORTED = 52,
    GH_RC_ERROR_STATE_UNREACHABLE = 60,
    GH_RC_ERROR_STATE_UNEXPECTED = 61,
    GH_RC_ERROR_CUSTOM = 100
} gh_result_code;

/* The ResultCode of the latest function that returned GH_ERR_RESULT on the
 * calling thread (its message is gh_last_error()), or GH_RC_OK if none did.
 * Valid until the next gh_ call on the same thread.
 * Threads: any thread (the value is per thread). */
int gh_last_result_code(void);

#ifdef __cplusplus
}
#endif

#endif /* GRPCHELPER_ERRORS_H */
