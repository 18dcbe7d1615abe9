/*
 * grpchelper/events.h — part of the C ABI of libgrpchelper (include <grpchelper.h>;
 * the conventions stated there hold here too). Since 0.5.0.
 *
 * Helper layer: events (grpc-helper's Event messages and EventsListener). A
 * server made with GH_RPC_WITH_EVENTS serves the events service; a host sends
 * events to its listeners in-process with gh_rpc_server_send_event (rpc.h) and
 * clients send them with the service's "send" method; an events listener
 * receives them.
 */
#ifndef GRPCHELPER_EVENTS_H
#define GRPCHELPER_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "types.h"
#include "rpc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Events                                                                   */
/* ------------------------------------------------------------------------ */

/* Encodes an Event message (grpc-helper's: a name and properties, each a name
 * and a value) for gh_rpc_server_send_event or the events service's "send":
 * |count| properties from |property_names| and |property_values| (arrays and
 * strings borrowed for the call; both NULL when |count| is 0). The name is
 * not checked here (the server checks it). GH_OK with the message in *data /
 * *len, released with gh_free.
 * Threads: any thread. */
int gh_event_encode(const char *name, const char *const *property_names,
                    const char *const *property_values, size_t count,
                    uint8_t **data, size_t *len);

/* An event handed to a listener's callback. The handle and every string and
 * byte it gives are valid until the callback returns (copy what you keep). */
typedef struct gh_event gh_event;

/* The event's name (not NULL).
 * Threads: the callback's. */
const char *gh_event_name(const gh_event *event);

/* Its number of properties, in the order the sender gave them.
 * Threads: the callback's. */
size_t gh_event_property_count(const gh_event *event);

/* Property |index| (< gh_event_property_count): its name and value (either
 * output pointer may be NULL). An index out of range → GH_ERR_INVALID_ARGUMENT.
 * Threads: the callback's. */
int gh_event_property(const gh_event *event, size_t index, const char **name,
                      const char **value);

/* The value of the first property named |name|, or NULL when there is none.
 * Threads: the callback's. */
const char *gh_event_property_value(const gh_event *event, const char *name);

/* The event as an encoded Event message (borrowed, as the handle).
 * Threads: the callback's. */
int gh_event_encoded(const gh_event *event, const uint8_t **data, size_t *len);

/* A listener's callback: one call per event with a name (keep-alive events
 * are not given), in the order the server sent them, on the listener's own
 * thread (named "EventsListener"; it may block it, which only delays the
 * listener's next events). It may call gh_events_listener_interrupt on its own
 * listener (which then does not wait), not gh_events_listener_free. */
typedef void (*gh_event_fn)(const gh_event *event, void *user_data);

/* An events listener (grpc-helper's EventsListener). */
typedef struct gh_events_listener gh_events_listener;

/* Starts listening to the server of |client| (a gh_rpc_client; its stub named
 * "events" is used, or the events service's own, "EventService" with API
 * version 2, when it has none), on a thread of its own: to the |count| event
 * names |names| (borrowed for the call; none: every event), on a new queue, or
 * on the queue |client_id| (a persisted id to resume; 0: a new one).
 * The first message of each listen stream carries the queue's id
 * (gh_events_listener_client_id, gh_events_listener_wait_ready); a stream
 * that fails (connection lost, server restarting: ERROR_STREAM_SHUTDOWN) is
 * opened again with the same id after 0.5 s, doubling up to 30 s, so the
 * queue resumes with the events sent meanwhile; an id the server does not
 * know (ERROR_ITEM_UNKNOWN) starts a new queue at once. Messages go to the
 * client's log (the "EventsListener" logger).
 * |client| is borrowed: it must outlive the listener (free the listener
 * first). |free_user_data| (may be NULL) is called with |user_data| by
 * gh_events_listener_free (also when this function fails).
 * Threads: any thread. */
int gh_events_listener_new(gh_rpc_client *client, const char *const *names,
                           size_t count, uint32_t client_id,
                           gh_event_fn on_event, void *user_data,
                           gh_free_fn free_user_data,
                           gh_events_listener **out);

/* Waits until a listen stream has opened: 1, or 0 after |timeout| seconds
 * (< 0: no limit) or once the listener stopped before that.
 * Threads: any thread. */
int gh_events_listener_wait_ready(gh_events_listener *listener, double timeout);

/* The queue's id (the one given, then the server's), 0 while there is none.
 * Threads: any thread. */
uint32_t gh_events_listener_client_id(gh_events_listener *listener);

/* 1 while its thread runs, 0 once it stopped (interrupted).
 * Threads: any thread. */
int gh_events_listener_is_running(gh_events_listener *listener);

/* Stops listening: asks the server to interrupt the queue (the listen stream
 * ends; the server keeps the queue for rpc-event-retain-timeout seconds, so
 * that a later listener given its id resumes it), then waits up to |wait|
 * seconds for the listener's thread to end (not when called from its own
 * callback). Without an open stream (not connected yet, or waiting to
 * reconnect: the server already counts the queue as interrupted) no call is
 * made; when the interrupt call fails, the listener's own stream is cancelled
 * instead. Returns 1 once the
 * thread has ended (from its own callback: at once), 0 when it still runs
 * after |wait|, or the interrupt call's error (a negative gh_error, e.g.
 * GH_ERR_RESULT with GH_RC_ERROR_RPC), reported after the wait. A second call
 * only waits.
 * Threads: any thread, its own callback too. */
int gh_events_listener_interrupt(gh_events_listener *listener, double wait);

/* Stops the listener if it runs (as gh_events_listener_interrupt with a 30 s
 * wait, its error ignored), waits for its thread, calls free_user_data, and
 * frees it. NULL does nothing.
 * Threads: any thread but the listener's callback, once. */
void gh_events_listener_free(gh_events_listener *listener);

#ifdef __cplusplus
}
#endif

#endif /* GRPCHELPER_EVENTS_H */
