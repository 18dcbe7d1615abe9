import NIOConcurrencyHelpers
import NIOPosix

/// A channel's connectivity state, as gRPC's (grpcio's ChannelConnectivity).
public enum ConnectivityState: Int, Sendable, CustomStringConvertible {
    /// No connection, none being made (a new channel; after the connection was lost or the
    /// server sent GOAWAY, until something needs one).
    case idle = 0
    /// Connecting (TCP, then the server's HTTP/2 settings).
    case connecting = 1
    /// Connected: calls start at once.
    case ready = 2
    /// The last attempt failed; the next waits for the reconnect backoff.
    case transientFailure = 3
    /// The channel is closed (the last state).
    case shutdown = 4

    public var description: String {
        switch self {
        case .idle: return "IDLE"
        case .connecting: return "CONNECTING"
        case .ready: return "READY"
        case .transientFailure: return "TRANSIENT_FAILURE"
        case .shutdown: return "SHUTDOWN"
        }
    }
}

/// One watch of a channel's connectivity: its states delivered in order, one at a time, on
/// the channel's callback threads; `onEnd` once it has ended and no delivery runs.
// @unchecked Sendable: mutable state guarded by `lock`.
final class ConnectivityWatcher: @unchecked Sendable {
    let tryToConnect: Bool
    private let handler: @Sendable (ConnectivityState) -> Void
    private let pool: NIOThreadPool
    private let lock = NIOLock()
    private var pending: [ConnectivityState] = []
    private var running = false
    private var ended = false
    private var onEnd: (@Sendable () -> Void)?

    init(tryToConnect: Bool, pool: NIOThreadPool, handler: @escaping @Sendable (ConnectivityState) -> Void,
         onEnd: (@Sendable () -> Void)?) {
        self.tryToConnect = tryToConnect
        self.pool = pool
        self.handler = handler
        self.onEnd = onEnd
    }

    /// Queues a state (nothing once ended).
    func post(_ state: ConnectivityState) {
        let start: Bool = lock.withLock {
            if ended { return false }
            pending.append(state)
            if running { return false }
            running = true
            return true
        }
        if start { submit() }
    }

    /// Ends the watch. `deliverPending`: what was posted is still delivered (the channel's
    /// SHUTDOWN); else no delivery starts after this returns. `onEnd` runs here when nothing
    /// is running, else after the delivery in progress.
    func end(deliverPending: Bool) {
        let done: (@Sendable () -> Void)?? = lock.withLock {
            if ended { return nil }
            ended = true
            if !deliverPending { pending.removeAll() }
            if running { return .some(nil) }   // the runner calls onEnd
            defer { onEnd = nil }
            return .some(onEnd)
        }
        if let d = done, let d = d { d() }
    }

    private func submit() {
        pool.submit { _ in
            CallbackThread.markCurrent()
            self.run()
        }
    }

    private func run() {
        while true {
            let next: ConnectivityState? = lock.withLock {
                if pending.isEmpty {
                    running = false
                    return nil
                }
                return pending.removeFirst()
            }
            guard let state = next else { break }
            handler(state)
        }
        let done: (@Sendable () -> Void)? = lock.withLock {
            guard ended, !running else { return nil }
            defer { onEnd = nil }
            return onEnd
        }
        done?()
    }
}

/// gRPC's connection backoff (doc/connection-backoff.md): the first retry comes `initial`
/// seconds after the failed attempt began; each later wait is `multiplier` times the last
/// (at most `maximum`), spread by ±`jitter` of itself, and also counted from the start of
/// the attempt it follows (an attempt that took longer is followed at once).
public struct ReconnectBackoff: Sendable {
    public let initial: Double
    public let maximum: Double
    public let multiplier = 1.6
    public let jitter = 0.2
    /// The wait before jitter, for the attempt after the next failure.
    private var current: Double
    private var failures = 0

    public init(initial: Double = 1, maximum: Double = 120) {
        self.initial = max(0, initial)
        self.maximum = max(self.initial, maximum)
        current = self.initial
    }

    /// The seconds to wait after an attempt that failed; `random` in [0, 1) places the
    /// jitter (0: -20 %, 0.5: none). The first wait has no jitter.
    public mutating func nextDelay(random: Double) -> Double {
        failures += 1
        if failures == 1 { return current }
        current = min(current * multiplier, maximum)
        return current * (1 - jitter + 2 * jitter * min(max(random, 0), 1))
    }

    /// When (monotonic nanoseconds) the attempt after one that began at `start` and failed
    /// may begin.
    public mutating func nextAttempt(after start: UInt64, random: Double) -> UInt64 {
        let delay = UInt64(min(nextDelay(random: random), 1e9) * 1e9)
        return start > UInt64.max - delay ? UInt64.max : start + delay
    }

    /// A connection succeeded: the next failure starts over from `initial`.
    public mutating func reset() {
        current = initial
        failures = 0
    }
}
