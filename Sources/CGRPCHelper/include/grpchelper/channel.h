/*
 * grpchelper/channel.h — part of the C ABI of libgrpchelper (include <grpchelper.h>;
 * the conventions stated there hold here too).
 *
 * The core gRPC client: channels (gh_channel) and calls (gh_call).
 */
#ifndef GRPCHELPER_CHANNEL_H
#define GRPCHELPER_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "types.h"
#include "metadata.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Channel (client)                                                         */
/* ------------------------------------------------------------------------ */

typedef struct gh_channel gh_channel;
typedef struct gh_call gh_call;

/* Creates a channel to |target| ("host:port", "[v6]:port", "unix:PATH";
 * copied). Connects lazily, on the first call; reconnects (with backoff) after
 * a drop. Release with gh_channel_free.
 * Threads: any thread. */
int gh_channel_new(gh_channel **out, const char *target);

/* Sets an integer option (GH_OPT_MAX_RECV_MESSAGE_SIZE,
 * GH_OPT_MAX_HEADER_LIST_SIZE, GH_OPT_DEFAULT_COMPRESSION,
 * GH_OPT_INITIAL_WINDOW_SIZE, GH_OPT_CALLBACK_THREADS,
 * GH_OPT_MAX_SEND_MESSAGE_SIZE, GH_OPT_PER_MESSAGE_DECOMPRESSION); any other option is
 * refused with GH_ERR_INVALID_ARGUMENT (GH_OPT_EVENT_LOOP_THREADS too: a
 * channel's one connection runs on one I/O thread). Only before the first
 * call on the channel is started (GH_ERR_INVALID_STATE after).
 * Threads: one thread at a time per channel. */
int gh_channel_set_int(gh_channel *ch, gh_opt option, int64_t value);

/* Sets a string option (GH_OPT_USER_AGENT_PREFIX, GH_OPT_USER_AGENT_SUFFIX:
 * the user-agent is "<prefix> grpchelper-swift/<version> <suffix>"); |value| is
 * copied. Only
 * before the first call on the channel is started.
 * Threads: one thread at a time per channel. */
int gh_channel_set_str(gh_channel *ch, gh_opt option, const char *value);

/* Connectivity states of a channel (gRPC's, grpcio's ChannelConnectivity). */
typedef enum {
    GH_CONNECTIVITY_IDLE = 0,              /* no connection, none being made */
    GH_CONNECTIVITY_CONNECTING = 1,        /* TCP, then the server's HTTP/2 settings */
    GH_CONNECTIVITY_READY = 2,             /* connected: calls start at once */
    GH_CONNECTIVITY_TRANSIENT_FAILURE = 3, /* the last attempt failed; backoff */
    GH_CONNECTIVITY_SHUTDOWN = 4           /* freed (a watch's last state) */
} gh_connectivity_state;

/* The channel's connectivity state (a gh_connectivity_state, >= 0), or a
 * negative gh_error (NULL |ch|). A new channel is IDLE; the connection being
 * lost or the server's GOAWAY make it IDLE again until something needs one.
 * |try_to_connect| nonzero: an IDLE channel starts connecting, and one in
 * TRANSIENT_FAILURE does once its reconnect backoff is over (as gRPC's
 * check with try_to_connect); the state returned is the one before. Like a
 * call, connecting fixes the channel's options.
 * Threads: any thread. */
int gh_channel_connectivity(gh_channel *ch, int try_to_connect);

/* |state| is a gh_connectivity_state. */
typedef void (*gh_connectivity_fn)(int state, void *user_data);

/* Watches the channel's connectivity: |fn| is called with the current state
 * at once, then with every new state, in order, one call at a time, on the
 * channel's callback threads, until gh_channel_unwatch_connectivity or
 * gh_channel_free (SHUTDOWN is then the last state delivered).
 * |try_to_connect| nonzero: while the watch lasts the channel keeps
 * connecting (from IDLE at once, after a failure at the end of each backoff),
 * as grpcio's subscribe(callback, try_to_connect=True). *|watch| gets the
 * watch's id (nonzero). |free_user_data| (may be NULL) is called with
 * |user_data| once the watch has ended and no call of |fn| runs, also when
 * this function fails. Fixes the channel's options, as a call does.
 * Threads: any thread. */
int gh_channel_watch_connectivity(gh_channel *ch, int try_to_connect,
                                  gh_connectivity_fn fn, void *user_data,
                                  gh_free_fn free_user_data, uint64_t *watch);

/* Ends a watch: no call of its |fn| starts after this returns (one running on
 * another thread may finish; its user_data is freed after it).
 * GH_ERR_INVALID_ARGUMENT for an id this channel does not watch with (or
 * one already ended).
 * Threads: any thread, also from the watch's own |fn|. */
int gh_channel_unwatch_connectivity(gh_channel *ch, uint64_t watch);

/* Cancels calls in flight, closes the connection and frees the channel. Calls
 * created on it must be freed too (before or after); one started after this
 * ends at once with GH_STATUS_CANCELLED ("channel closed"). NULL does nothing.
 * Queued completion callbacks have run when it returns, except when it is
 * called from one of this channel's own callbacks (allowed: the callback
 * threads then stop in the background).
 * Threads: one thread, once. */
void gh_channel_free(gh_channel *ch);

/* --- client calls --------------------------------------------------------- */

/* Creates a call of |method| ("/package.Service/Method"; copied) on |ch|. Set
 * its options, then start it with gh_call_start, gh_call_start_async or
 * gh_call_unary. Release with gh_call_free.
 * Threads: any thread. */
int gh_call_new(gh_channel *ch, const char *method, gh_call **out);

/* Per-call timeout in seconds (<= 0: none). Before start.
 * Threads: one thread at a time per call. */
int gh_call_set_timeout(gh_call *call, double seconds);

/* Request metadata (copied). Before start.
 * Threads: one thread at a time per call. */
int gh_call_set_metadata(gh_call *call, const gh_metadata *md);

/* Compression of the request messages (a gh_compression; DEFAULT: the
 * channel's). Before start.
 * Threads: one thread at a time per call. */
int gh_call_set_compression(gh_call *call, int compression);

/* Non-zero: if the server cannot be reached, keep trying until the deadline
 * instead of failing with UNAVAILABLE at once. Before start.
 * Threads: one thread at a time per call. */
int gh_call_set_wait_for_ready(gh_call *call, int enabled);

/* Starts the call (connecting if needed) for blocking use with gh_call_send,
 * gh_call_close_send, gh_call_recv and gh_call_wait. It does not block; if the
 * server cannot be reached, the failure is reported by recv/wait.
 * Threads: one thread at a time per call. */
int gh_call_start(gh_call *call);

/* Sends one request message (|data| copied; may be NULL when |len| is 0),
 * blocking while the server is not reading. |flags|: 0 or GH_WRITE_NO_COMPRESS.
 * GH_ERR_CLOSED if the call ended; GH_ERR_INVALID_STATE after
 * gh_call_close_send.
 * Threads: one thread at a time per call (may differ from the reading thread). */
int gh_call_send(gh_call *call, const uint8_t *data, size_t len, int flags);

/* Half-closes: no more request messages.
 * Threads: one thread at a time per call. */
int gh_call_close_send(gh_call *call);

/* Reads the next response message, blocking. Returns 1 with *data and *len set
 * (valid until the next gh_call_recv or gh_call_free), 0 when the response
 * stream ended, whatever the status (read it with gh_call_wait or
 * gh_call_status), or a negative gh_error (a NULL or unstarted call). Not with
 * gh_call_start_async.
 * Threads: one thread at a time per call (may differ from the sending thread). */
int gh_call_recv(gh_call *call, const uint8_t **data, size_t *len);

/* Blocks until the call has its status; returns the gh_status_code (>= 0).
 * Threads: any thread. */
int gh_call_wait(gh_call *call);

/* The status code, or -1 while the call is still running.
 * Threads: any thread. */
int gh_call_status(const gh_call *call);

/* The status message (UTF-8, "" if none), valid until gh_call_free. NULL while
 * the call is still running.
 * Threads: any thread. */
const char *gh_call_status_message(const gh_call *call);

/* The grpc-status-details-bin bytes: *data and *len valid until gh_call_free
 * (*data NULL, *len 0 when none). GH_ERR_INVALID_STATE while running.
 * Threads: any thread. */
int gh_call_status_details(const gh_call *call, const uint8_t **data,
                           size_t *len);

/* The response headers' metadata, blocking until they arrive or the call ends
 * (then empty for a trailers-only response). Valid until gh_call_free; do not
 * free. NULL for a NULL or not yet started call.
 * Threads: any thread. */
const gh_metadata *gh_call_initial_metadata(gh_call *call);

/* The trailing metadata, valid until gh_call_free; NULL while running.
 * Threads: any thread. */
const gh_metadata *gh_call_trailing_metadata(const gh_call *call);

/* Cancels the call: RST_STREAM(CANCEL) to the server, status CANCELLED
 * locally. No effect on a call that has ended.
 * Threads: any thread. */
int gh_call_cancel(gh_call *call);

/* Unary convenience: starts the call, sends |request| (copied), half-closes and
 * waits for the response. GH_OK with *response and *response_len set (valid until
 * gh_call_free) when the status is OK; GH_ERR_RPC otherwise (read the status
 * with gh_call_status / gh_call_status_message).
 * Threads: one thread at a time per call. */
int gh_call_unary(gh_call *call, const uint8_t *request, size_t request_len,
                  const uint8_t **response, size_t *response_len);

/* Completion callbacks. They run on the channel's callback threads, one at a
 * time per call, in order: every on_message, then on_done once. |data| is valid
 * only during the callback. The call stays valid until gh_call_free, which may
 * be called from on_done. */
typedef void (*gh_message_fn)(gh_call *call, const uint8_t *data, size_t len,
                              void *user_data);
typedef void (*gh_done_fn)(gh_call *call, int status_code, void *user_data);

/* Starts the call in callback mode: each response message is passed to
 * |on_message| (may be NULL), then |on_done| (may be NULL) gets the status.
 * Request messages are sent with gh_call_send / gh_call_close_send. For unary
 * and server-streaming calls use gh_call_start_unary_async.
 * Threads: one thread at a time per call. */
int gh_call_start_async(gh_call *call, gh_message_fn on_message,
                        gh_done_fn on_done, void *user_data);

/* Starts a call with one request (|request| copied) already sent and the
 * request stream closed, in callback mode as gh_call_start_async. Does not
 * block.
 * Threads: one thread at a time per call. */
int gh_call_start_unary_async(gh_call *call, const uint8_t *request,
                              size_t request_len, gh_message_fn on_message,
                              gh_done_fn on_done, void *user_data);

/* Frees the call, cancelling it if it is still running. NULL does nothing.
 * Once it returns, no callback of this call starts (on_done is not called for
 * the cancellation); a callback already running on another thread finishes.
 * May be called from the call's own on_message or on_done.
 * Threads: one thread, once. */
void gh_call_free(gh_call *call);

#ifdef __cplusplus
}
#endif

#endif /* GRPCHELPER_CHANNEL_H */
