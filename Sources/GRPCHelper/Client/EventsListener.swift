// grpc-helper's EventsListener for Swift (and, through GRPCHelperC, for C): listens to a
// server's `events` service on a thread of its own, hands every real event (never a
// keep-alive) to a callback, remembers its queue's client_id and resumes it after a dropped
// connection or a server restart.
import Foundation
import GRPCHelperCore
import Logging

/// A listener of a server's events (grpc-helper's EventsListener).
///
/// It listens on a thread of its own ("EventsListener") from `init` on:
/// - the first message of each listen stream carries the queue's id (`clientID`, `isReady`);
/// - every event with a name is given to `onEvent`, in order, on that thread (keep-alives
///   are not);
/// - a stream that fails (connection lost, server restarting: ERROR_STREAM_SHUTDOWN, any
///   failed status) is opened again with the same id after 0.5 s, doubling up to 30 s, so
///   that the queue resumes with the events sent meanwhile (the server keeps an interrupted
///   queue for rpc-event-retain-timeout seconds, and across its restarts);
/// - an id the server no longer knows (ERROR_ITEM_UNKNOWN) starts a new queue at once;
/// - `interrupt()` stops it (the server keeps the queue, as for any interrupt).
///
/// The client's `events` stub is used (its service name and API version), or the events
/// service's own (`EventService`, API version 2) when the client has none.
// @unchecked Sendable: mutable state guarded by `cond`.
public final class EventsListener: @unchecked Sendable {
    /// grpc-helper's first retry delay (seconds), doubled at each failure in a row.
    public static let retryDelay = 0.5
    /// The longest retry delay (seconds). (grpc-helper's own listener doubles without a
    /// bound: after ten failures in a row it would wait over four minutes.)
    public static let maxRetryDelay = 30.0

    public let client: RpcClient
    public let names: [String]
    private let stub: RpcStub
    private let logger: Logger
    /// Dropped by `close()` (so that what it holds goes then).
    private var onEvent: (@Sendable (RpcEvent) -> Void)?
    private let cond = NSCondition()
    private var id: UInt32?
    private var ready = false
    private var stopping = false
    private var running = true
    private var current: ClientCall?
    /// Whether `current` has received its first message (the server's queue is listening).
    private var streamOpen = false
    /// The listening thread (not the Thread itself: it holds this listener while it runs).
    private var thread: ObjectIdentifier?

    /// Starts listening to the events named (none: every event), on a new queue or, with
    /// `clientID`, on that queue (a persisted id to resume).
    public init(client: RpcClient, names: [String] = [], clientID: UInt32? = nil, logger: Logger? = nil,
                onEvent: @escaping @Sendable (RpcEvent) -> Void) {
        self.client = client
        self.names = names
        stub = client["events"] ?? client.stub("EventService", apiVersion: UInt32(RpcEventApiVersion.eventApiCurrent.rawValue))
        self.logger = logger ?? Logger(label: "EventsListener")
        self.onEvent = onEvent
        id = clientID.flatMap { $0 == 0 ? nil : $0 }
        let t = Thread { [self] in run() }
        t.name = "EventsListener"
        thread = ObjectIdentifier(t)
        t.start()
    }

    /// The queue's id: the one given, then the server's (nil until the first stream opened).
    public var clientID: UInt32? { cond.withLock { id } }

    /// Whether a listen stream has opened (its first message came).
    public var isReady: Bool { cond.withLock { ready } }

    /// Whether its thread still runs (until interrupted).
    public var isRunning: Bool { cond.withLock { running } }

    /// Waits until a listen stream has opened: true, or false after `timeout` seconds (or
    /// once the listener was interrupted before that).
    public func waitReady(timeout: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        cond.lock()
        defer { cond.unlock() }
        while !ready && running && cond.wait(until: deadline) {}
        return ready
    }

    /// Stops listening: asks the server to interrupt the queue (it ends the listen stream
    /// and keeps the queue for rpc-event-retain-timeout seconds), then waits up to `wait`
    /// seconds for the listening thread to end (not when called from `onEvent`). Without an
    /// open stream (not connected yet, or waiting to reconnect: the server already counts the
    /// queue as interrupted) no call is made; when the interrupt call fails, the listener's
    /// own stream is cancelled instead, and the call's error is thrown after the wait. Returns whether the thread has ended. A second call does nothing
    /// more than waiting.
    @discardableResult
    public func interrupt(wait: Double = 30) throws -> Bool {
        let (first, queueID, call): (Bool, UInt32?, ClientCall?) = cond.withLock {
            defer { stopping = true; cond.broadcast() }
            // Only a stream that is open has a queue listening on the server to interrupt
            // (between streams, the server already counts the queue as interrupted).
            return (!stopping, streamOpen ? id : nil, current)
        }
        var failure: Error?
        if first {
            logger.debug(">> Interrupting event listener #\(queueID.map(String.init) ?? "-")")
            if let q = queueID {
                var r = RpcEventInterrupt()
                r.clientID = q
                do {
                    _ = try client.unary(stub.path("interrupt"), try r.serializedBytes(), apiVersion: stub.apiVersion,
                                         callTimeout: max(1, wait))
                } catch {
                    failure = error
                }
            }
            if queueID == nil || failure != nil { call?.cancel() }
        }
        var ended = true
        if ObjectIdentifier(Thread.current) != cond.withLock({ thread }) {
            let deadline = Date(timeIntervalSinceNow: wait)
            cond.lock()
            while running && cond.wait(until: deadline) {}
            ended = !running
            cond.unlock()
        }
        if let f = failure { throw f }
        return ended
    }

    /// Interrupts the listener (its error ignored), waits up to `wait` seconds for its
    /// thread to end, then drops the callback (and what it holds) unless the thread still
    /// runs. Not from the callback. Returns whether the thread has ended.
    @discardableResult
    public func close(wait: Double = 30) -> Bool {
        let ended = (try? interrupt(wait: wait)) ?? !isRunning
        if ended || !isRunning {
            let f: (@Sendable (RpcEvent) -> Void)? = cond.withLock { defer { onEvent = nil }; return onEvent }
            _ = f   // released here, on the caller's thread
            return true
        }
        return false
    }

    // MARK: the listening thread

    private func run() {
        var delay = EventsListener.retryDelay
        defer {
            cond.withLock {
                running = false
                current = nil
                cond.broadcast()
            }
            logger.debug("Event listener #\(clientID.map(String.init) ?? "-"): end of listening loop")
        }
        while !cond.withLock({ stopping }) {
            do {
                if try listenOnce(resetDelay: { delay = EventsListener.retryDelay }) { return }
            } catch let e as RpcException where e.code == .errorItemUnknown {
                let old = cond.withLock { () -> UInt32? in defer { id = nil }; return id }
                if old != nil {
                    logger.warning("Event listening ID #\(old!) is unknown, ask for a new one")
                    continue
                }
                logger.error("Error occurred in event listener internal loop: \(e.message)")
            } catch {
                let text = (error as? RpcException)?.code == .errorStreamShutdown ? "event service restarting" : "\(error)"
                logger.error("Error occurred in event listener #\(clientID.map(String.init) ?? "-") internal loop: \(text)")
            }
            // Wait before trying again (interrupt wakes it).
            logger.warning("Retry in \(delay)s")
            let deadline = Date(timeIntervalSinceNow: delay)
            cond.lock()
            while !stopping && cond.wait(until: deadline) {}
            cond.unlock()
            delay = min(delay * 2, EventsListener.maxRetryDelay)
        }
    }

    /// One listen stream, to its end: true when it ended normally (interrupted), false when
    /// the listener was stopped before it opened; throws when it failed.
    private func listenOnce(resetDelay: () -> Void) throws -> Bool {
        var filter = RpcEventFilter()
        filter.names = names
        filter.clientID = clientID ?? 0
        let call = client.channel.makeCall(stub.path("listen"),
                                           options: CallOptions(metadata: client.identity.metadata(apiVersion: stub.apiVersion)))
        let stop: Bool = cond.withLock {
            if !stopping { current = call }
            return stopping
        }
        if stop { return false }
        defer { cond.withLock { current = nil; streamOpen = false } }
        call.start()
        try? call.send(try filter.serializedBytes())
        call.closeSend()
        var first = true
        while true {
            let message: [UInt8]?
            do { message = try call.receive() } catch let e as RPCError { throw streamError(e.status) }
            guard let m = message else {
                let status = call.waitStatus()
                if !status.isOK { throw streamError(status) }
                return true                       // interrupted: the stream's normal end
            }
            let s = try RpcEventStatus(serializedBytes: m)
            if s.r.code != .ok {
                throw RpcException(s.r.msg, code: s.r.code)
            }
            resetDelay()
            if first {
                first = false
                let newID = s.clientID
                let wasReady: Bool = cond.withLock {
                    defer { id = newID; ready = true; streamOpen = true; cond.broadcast() }
                    return ready
                }
                if !wasReady { logger.debug("Event listener #\(newID) is ready") }
            }
            if !s.event.name.isEmpty, let f = cond.withLock({ onEvent }) {
                f(s.event)
            }
        }
    }

    private func streamError(_ status: Status) -> RpcException {
        RpcException("RPC error (on \(stub.path("listen")) @ \(client.target)): \(status.code): \(status.message)",
                     code: .errorRpc)
    }
}

extension NSCondition {
    fileprivate func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}
