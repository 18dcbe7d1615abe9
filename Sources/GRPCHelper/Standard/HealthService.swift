// grpc.health.v1.Health (grpc/grpc doc/health-checking.md) for any core Server: Check and
// Watch, per-service statuses set by the host, NOT_SERVING from the start of a shutdown.
// Both methods run on the connection's event loop (`ServerHandler.eventLoop`): a Watch
// stream holds no worker thread however long it lasts.
import GRPCHelperCore
import NIOConcurrencyHelpers
import SwiftProtobuf

/// A service's serving status (grpc.health.v1.HealthCheckResponse.ServingStatus).
public enum HealthStatus: Int, Sendable, CaseIterable, CustomStringConvertible {
    case unknown = 0, serving = 1, notServing = 2
    /// Only in Watch answers: the server does not know the service (yet).
    case serviceUnknown = 3

    public var description: String {
        switch self {
        case .unknown: return "UNKNOWN"
        case .serving: return "SERVING"
        case .notServing: return "NOT_SERVING"
        case .serviceUnknown: return "SERVICE_UNKNOWN"
        }
    }
}

/// The health service of one server. Statuses: the one set for a service (`setStatus`);
/// otherwise, for the overall entry `""` and every service with a registered method, the
/// base status (`baseStatus`, SERVING unless told otherwise); any other service is
/// unknown (Check: NOT_FOUND; Watch: SERVICE_UNKNOWN until it gets a status). Once the
/// server's shutdown begins, every known service is NOT_SERVING for good (later sets are
/// ignored, as grpcio's `enter_graceful_shutdown`) and Watch streams end after telling it.
/// Thread-safe.
// @unchecked Sendable: mutable state guarded by `lock`.
public final class HealthService: @unchecked Sendable {
    public static let serviceName = "grpc.health.v1.Health"

    private let lock = NIOLock()
    private var explicit: [String: HealthStatus] = [:]
    private var base: HealthStatus
    private var terminal = false
    private weak var server: Server?
    /// The server's services, read once it started (registration ends there).
    private var served: Set<String>?
    private var watchers: [ObjectIdentifier: Watcher] = [:]

    /// `baseStatus`: the status of `""` and of the server's services until set otherwise.
    public init(baseStatus: HealthStatus = .serving) {
        base = baseStatus
    }

    /// Registers Check and Watch on `server` (before it starts) and follows its
    /// shutdown; the server keeps the service. Once per service object.
    public func add(to server: Server) throws {
        try lock.withLock {
            guard self.server == nil else {
                throw RuntimeError(.invalidState, "the health service is already added to a server")
            }
            self.server = server
        }
        // The server keeps the service (it holds the server weakly: no cycle).
        try server.register("/\(Self.serviceName)/Check", cardinality: .unary,
                            handler: .eventLoop { call in self.check(call) })
        try server.register("/\(Self.serviceName)/Watch", cardinality: .serverStreaming,
                            handler: .eventLoop { call in self.watch(call) })
        server.onShutdownBegin { self.enterGracefulShutdown() }
    }

    /// The status of `service` ("" : the server as a whole); nil when unknown.
    public func status(for service: String) -> HealthStatus? {
        lock.withLock { lookupLocked(service) }
    }

    /// Sets the status of `service` ("" : the server as a whole). Ignored once the
    /// shutdown began. Watch streams of the service get it.
    public func setStatus(_ status: HealthStatus, for service: String) {
        update { explicit[service] = status }
    }

    /// Forgets the status set for `service`: it follows the base status again when it is
    /// `""` or one of the server's services, else it is unknown.
    public func clearStatus(for service: String) {
        update { explicit[service] = nil }
    }

    /// The status of `""` and of the server's services that have none of their own.
    public var baseStatus: HealthStatus {
        get { lock.withLock { base } }
        set { update { base = newValue } }
    }

    /// Every known service NOT_SERVING from now on (later sets are ignored); the Watch
    /// streams get it and end (UNAVAILABLE: the server is shutting down) — at once, also
    /// those whose client is not reading. What the server's shutdown does first; a host
    /// may call it before.
    public func enterGracefulShutdown() {
        let all: [Watcher] = lock.withLock {
            terminal = true
            return Array(watchers.values)
        }
        for w in all { w.poke(shutdown: true) }
    }

    // MARK: internals

    private func update(_ change: () -> Void) {
        let all: [Watcher] = lock.withLock {
            if terminal { return [] }
            change()
            return Array(watchers.values)
        }
        for w in all { w.poke() }
    }

    /// What a Watch stream of `service` sends now, and whether it then ends.
    fileprivate func current(_ service: String) -> (HealthStatus, ends: Bool) {
        lock.withLock { (lookupLocked(service) ?? .serviceUnknown, terminal) }
    }

    private func lookupLocked(_ service: String) -> HealthStatus? {
        let known: HealthStatus?
        if let s = explicit[service] {
            known = s
        } else if service.isEmpty || servedLocked.contains(service) {
            known = base
        } else {
            known = nil
        }
        guard let k = known else { return nil }
        return terminal ? .notServing : k
    }

    /// The server's services: read again until it started (registration ends there),
    /// then kept.
    private var servedLocked: Set<String> {
        if let s = served { return s }
        guard let server else { return [] }
        let names = Set(server.registeredServices)
        if server.isStarted { served = names }
        return names
    }

    /// Takes the one request of a Check or Watch call (it has arrived: single-request
    /// methods start with it); finishes the call INVALID_ARGUMENT when it does not parse.
    private static func request(_ call: ServerCall, _ body: @escaping (String) -> Void) {
        var got = false
        call.receiveInline(onMessage: { bytes in
            guard !got else { return }
            got = true
            do {
                body(try Grpc_Health_V1_HealthCheckRequest(serializedBytes: bytes).service)
            } catch {
                try? call.finish(Status(.invalidArgument,
                                        "the request is not a grpc.health.v1.HealthCheckRequest: \(error)"))
            }
        }, onEnd: {
            if !got && !call.isCancelled {
                try? call.finish(Status(.invalidArgument, "no request message"))
            }
        })
    }

    static func response(_ status: HealthStatus) -> [UInt8] {
        var r = Grpc_Health_V1_HealthCheckResponse()
        r.status = Grpc_Health_V1_HealthCheckResponse.ServingStatus(rawValue: status.rawValue) ?? .unknown
        return (try? r.serializedBytes()) ?? []
    }

    private func check(_ call: ServerCall) {
        Self.request(call) { service in
            guard let s = self.status(for: service) else {
                try? call.finish(Status(.notFound, "unknown service \"\(service)\""))
                return
            }
            _ = try? call.sendNonBlocking(Self.response(s))
            try? call.finish(.ok)
        }
    }

    private func watch(_ call: ServerCall) {
        Self.request(call) { service in
            let w = Watcher(call: call, service: service, health: self)
            let id = ObjectIdentifier(w)
            self.lock.withLock { if !self.terminal { self.watchers[id] = w } }
            call.whenEnded { [weak self] in
                guard let self else { return }
                _ = self.lock.withLock { self.watchers.removeValue(forKey: id) }
            }
            w.poke()
        }
    }

    /// One Watch stream. A change only marks it (`poke`); the one thread draining it reads
    /// the status then (`current`), so what it sends last is always the service's status
    /// now, whatever the order of concurrent changes. It sends a status when it differs
    /// from the last one sent; a slow reader gets the latest once its stream has room
    /// (intermediate ones are dropped, as the specification allows); at the shutdown the
    /// stream ends at once, after its last status (queued even without room).
    // @unchecked Sendable: mutable state guarded by `lock`; `lastSent` and `finished`
    // only by the draining thread (one at a time: `busy`).
    private final class Watcher: @unchecked Sendable {
        let call: ServerCall
        let service: String
        private unowned let health: HealthService
        private let lock = NIOLock()
        private var dirty = true
        private var busy = false        // a thread is draining, or waiting for room
        private var waitingRoom = false // busy, waiting for onSendReady
        private var lastSent: HealthStatus?
        private var finished = false

        init(call: ServerCall, service: String, health: HealthService) {
            self.call = call
            self.service = service
            self.health = health
        }

        /// The status may have changed: send it unless a drain is under way (which will).
        /// At the shutdown a drain waiting for room is taken over: the last status is
        /// queued anyway and the stream ends now, not once the client reads.
        func poke(shutdown: Bool = false) {
            let go: Bool = lock.withLock {
                dirty = true
                if busy {
                    guard shutdown && waitingRoom else { return false }
                    waitingRoom = false
                    return true
                }
                busy = true
                return true
            }
            if go { drain() }
        }

        /// onSendReady after a drain stopped for room: it goes on, unless taken over.
        private func roomAgain() {
            let go: Bool = lock.withLock {
                guard waitingRoom else { return false }
                waitingRoom = false
                return true
            }
            if go { drain() }
        }

        private func drain() {
            while true {
                let more: Bool = lock.withLock {
                    if !dirty {
                        busy = false
                        return false
                    }
                    dirty = false
                    return true
                }
                guard more, !finished else { return }
                let (status, ends) = health.current(service)
                var room = true
                if status != lastSent {
                    lastSent = status
                    do {
                        room = try call.sendNonBlocking(HealthService.response(status))
                    } catch {
                        finished = true  // the call is over (busy stays set: nothing more to do)
                        return
                    }
                }
                if ends {
                    finished = true
                    try? call.finish(Status(.unavailable, "the server is shutting down"))
                    return
                }
                if !room {
                    // The rest once the stream has room (at once, here, if it has already).
                    lock.withLock {
                        dirty = true
                        waitingRoom = true
                    }
                    call.onSendReady { [self] in roomAgain() }
                    return
                }
            }
        }
    }
}
