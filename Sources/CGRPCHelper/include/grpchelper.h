/*
 * grpchelper.h — the stable C ABI of libgrpchelper.
 *
 * libgrpchelper is a gRPC implementation (server and client) written in Swift on
 * libnghttp2, zlib and SwiftNIO. This header is its C interface; it is an ABI
 * promise: functions are only ever added, never changed or removed, and enum
 * values are only ever appended.
 *
 * Conventions
 * - Every name starts with gh_ / GH_. Handles are opaque (incomplete structs).
 * - Functions that can fail return int: GH_OK (0) or a negative gh_error code.
 *   The text of the latest error on the calling thread is gh_last_error().
 *   Function results are never gRPC status codes; a call's status is read with
 *   gh_call_status().
 * - Constructors fill an out-pointer on success and leave it untouched on
 *   failure. Destructors (*_free) accept NULL.
 * - Ownership is stated per argument with three phrases: "copied" (the library
 *   keeps its own copy, the caller keeps theirs), "borrowed for the call" (the
 *   library uses it only during the call), and "valid until ..." (memory owned by
 *   the library, to be used by the caller only until the named event). Memory
 *   that the library hands over to the caller is released with gh_free().
 * - Every function has a "Threads:" line. "Any thread" means it may be called
 *   from any thread, concurrently with other calls on the same handle.
 * - Callbacks never run on an I/O (event-loop) thread: server handlers run on the
 *   server's worker pool; client completion callbacks run on the channel's
 *   callback threads. Each callback receives the user_data given with it.
 *
 * Parts (each may be included alone; this header includes them all)
 *   grpchelper/version.h   version macros, gh_version
 *   grpchelper/errors.h    gh_error, gh_last_error, gh_free, gh_result_code
 *   grpchelper/types.h     status codes, cardinality, compression, options
 *   grpchelper/metadata.h  gh_metadata
 *   grpchelper/server.h    gh_server, gh_server_call
 *   grpchelper/channel.h   gh_channel, gh_call
 *   grpchelper/config.h    gh_config, gh_folders, gh_config_set (helper layer)
 *   grpchelper/cli.h       gh_cli (helper layer)
 *   grpchelper/logs.h      gh_logs (helper layer)
 *   grpchelper/rpc.h       gh_rpc_server, gh_rpc_service, gh_rpc_client
 *   grpchelper/events.h    gh_event, gh_events_listener (0.5.0)
 */
#ifndef GRPCHELPER_H
#define GRPCHELPER_H

#include "grpchelper/version.h"
#include "grpchelper/errors.h"
#include "grpchelper/types.h"
#include "grpchelper/metadata.h"
#include "grpchelper/server.h"
#include "grpchelper/channel.h"
#include "grpchelper/config.h"
#include "grpchelper/cli.h"
#include "grpchelper/logs.h"
#include "grpchelper/rpc.h"
#include "grpchelper/events.h"

#endif /* GRPCHELPER_H */
