import NIOCore
import NIOConcurrencyHelpers
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// A gRPC server: listeners, registered methods, a worker pool for blocking handlers.
// @unchecked Sendable: mutable state guarded by `state`; options written only under it before start.
public final class Server: @unchecked Sendable {
    struct Registered {
        let cardinality: RPCCardinality
        let handler: ServerHandler
    }

    /// Fixed from the first `bindNow` or `start()` on; change them with `configure`.
    public private(set) var options: ServerOptions
    private var optionsFixed = false
    private(set) var registry: [String: Registered] = [:]
    /// Runs calls of methods not in `registry` (as bidirectional streams), if set.
    private(set) var fallback: Registered?
    private var endpoints: [Endpoint] = []
    private var listeners: [Channel] = []
    private var group: MultiThreadedEventLoopGroup?
    private var pool: WorkerPool?

    /// The server's one lifecycle state (guarded by `state`):
    /// idle (configurable; `bindNow` may bind early) → serving (`start`) → draining (a
    /// shutdown began: no new connections; `noNewCalls` once the listeners are closed and
    /// GOAWAY went out; calls in flight finishing) → stopped. `served`: whether it got to
    /// serving. A server shut down before it was bound or started goes straight to stopped.
    enum Lifecycle: Equatable {
        case idle
        case serving
        case draining(served: Bool, noNewCalls: Bool)
        case stopped(served: Bool)
    }

    private let state = Monitor()
    private var lifecycle = Lifecycle.idle
    /// `beginShutdown` threads still running (guarded by `state`; a box of its own, so a
    /// thread can count itself out after its server is gone).
    private final class ThreadCount { var value = 0 }
    private let shutdownThreads = ThreadCount()
    private var connections: [ObjectIdentifier: ServerConnection] = [:]
    /// Bytes of incomplete request messages all connections hold (see
    /// `ServerOptions.maxPartialMessageBytes`).
    let partialMessageBytes = ByteCounter()
    private var runningHandlers = 0
    private var acceptedConnections = 0
    private var refusedConnections = 0
    /// Connections accepted since start (for tests and diagnostics).
    var acceptedConnectionCount: Int { state.withLock { acceptedConnections } }
    /// Connections refused since start (maxConnections).
    var refusedConnectionCount: Int { state.withLock { refusedConnections } }
    /// Connections open now.
    var openConnectionCount: Int { state.withLock { connections.count } }

    public init(options: ServerOptions = ServerOptions()) {
        self.options = options
        LiveObjects.created(.server)
    }

    deinit {
        if !isStoppedLocked && (lifecycle != .idle || group != nil) { shutdown(grace: 0) }
        LiveObjects.destroyed(.server)
    }

    /// Changes the options: only before the first `bindNow` or `start()`, which fix them
    /// (else `RuntimeError(.invalidState)`, nothing changed). A throwing `change` changes
    /// nothing either.
    public func configure(_ change: (inout ServerOptions) throws -> Void) throws {
        try state.withLock {
            guard !optionsFixed, lifecycle == .idle else {
                throw RuntimeError(.invalidState, "server options must be set before start (and before binding)")
            }
            var o = options
            try change(&o)
            options = o
        }
    }

    /// Registers a handler for "/package.Service/Method". Before `start()`.
    public func register(_ method: String, cardinality: RPCCardinality, handler: ServerHandler) throws {
        try state.withLock {
            guard lifecycle == .idle else { throw RuntimeError(.invalidState, "cannot register methods after start") }
            guard method.hasPrefix("/"), method.dropFirst().contains("/") else {
                throw RuntimeError(.invalidArgument, "method path must look like /package.Service/Method, got '\(method)'")
            }
            registry[method] = Registered(cardinality: cardinality, handler: handler)
        }
    }

    /// The services ("package.Service") of the methods registered (with `register`), sorted.
    public var registeredServices: [String] {
        let paths = state.withLock { Array(registry.keys) }
        var names = Set<String>()
        for p in paths {
            let rest = p.dropFirst()
            if let slash = rest.lastIndex(of: "/") { names.insert(String(rest[..<slash])) }
        }
        return names.sorted()
    }

    /// Registers a handler for every method that has no handler of its own. Its calls
    /// run as bidirectional streams: the handler reads and answers as the method needs
    /// (and finishes with UNIMPLEMENTED for a method it does not know). Before `start()`,
    /// once.
    public func registerFallback(handler: ServerHandler) throws {
        try state.withLock {
            guard lifecycle == .idle else { throw RuntimeError(.invalidState, "cannot register methods after start") }
            guard fallback == nil else { throw RuntimeError(.invalidState, "a fallback handler is already registered") }
            fallback = Registered(cardinality: .bidiStreaming, handler: handler)
        }
    }

    /// Adds an address to listen on ("host:port", "[v6]:port", "unix:PATH"). Before `start()`.
    @discardableResult
    public func addListener(_ address: String) throws -> Int {
        let e: Endpoint
        do { e = try Endpoint.parse(address) } catch let err as EndpointError {
            throw RuntimeError(.invalidArgument, "invalid listen address: \(err.message)")
        }
        return try state.withLock {
            guard lifecycle == .idle else { throw RuntimeError(.invalidState, "cannot add listeners after start") }
            endpoints.append(e)
            return endpoints.count - 1
        }
    }

    /// Binds and listens on `address` now, before `start()`, and returns the bound port
    /// (0 for a unix socket). Connections wait in the listen backlog until `start()`.
    /// Options are fixed from the first call on. Throws `RuntimeError(.bind, ...)`.
    public func bindNow(_ address: String) throws -> Int {
        let e: Endpoint
        do { e = try Endpoint.parse(address) } catch let err as EndpointError {
            throw RuntimeError(.invalidArgument, "invalid listen address: \(err.message)")
        }
        try state.withLock {
            guard lifecycle == .idle else { throw RuntimeError(.invalidState, "cannot bind after start") }
            optionsFixed = true
        }
        let channel = try bind(e, makeBootstrap(ensureGroup(), autoRead: false, for: e))
        earlyListeners.append((e, channel))
        return channel.localAddress?.port ?? 0
    }

    private var earlyListeners: [(Endpoint, Channel)] = []

    private func ensureGroup() -> MultiThreadedEventLoopGroup {
        if let g = group { return g }
        let g = MultiThreadedEventLoopGroup(numberOfThreads: max(1, options.eventLoopThreads))
        group = g
        return g
    }

    private func makeBootstrap(_ group: MultiThreadedEventLoopGroup, autoRead: Bool, for e: Endpoint) -> ServerBootstrap {
        var b = ServerBootstrap(group: group)
            .serverChannelOption(NIOCore.ChannelOptions.backlog, value: 256)
            .serverChannelOption(NIOCore.ChannelOptions.socketOption(.so_reuseaddr), value: 1)
        if options.reusePort, case .host = e {   // TCP only: unix sockets have no SO_REUSEPORT
            b = b.serverChannelOption(NIOCore.ChannelOptions.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)),
                                      value: 1)
        }
        return b
            .serverChannelOption(NIOCore.ChannelOptions.autoRead, value: autoRead)
            // Out of file descriptors (EMFILE, ENFILE), accepting again at once would spin
            // the loop: the listener backs off (see `DescriptorLimitHandler`).
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DescriptorLimitHandler())
                }
            }
            .childChannelOption(NIOCore.ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [weak self] channel in
                guard let self = self else { return channel.close() }
                return self.accept(channel)
            }
    }

    private func bind(_ e: Endpoint, _ bootstrap: ServerBootstrap) throws -> Channel {
        do {
            switch e {
            case .host(let h, let p):
                return try bootstrap.bind(host: h, port: p).wait()
            case .unix(let path):
                // A socket file someone still listens on is busy; only a stale one is replaced.
                if unixSocketIsLive(path) {
                    throw RuntimeError(.bind, "address already in use (a server listens on \(path))")
                }
                return try bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).wait()
            }
        } catch {
            let reason = (error as? RuntimeError)?.message ?? "\(error)"
            throw RuntimeError(.bind, "cannot listen on \(e): \(reason)")
        }
    }

    /// Binds every listener and starts serving. Throws `RuntimeError(.bind, ...)` when an
    /// address cannot be bound (everything bound by this call is closed again).
    public func start() throws {
        try state.withLock {
            guard lifecycle == .idle else { throw RuntimeError(.invalidState, "server already started") }
            guard !endpoints.isEmpty || !earlyListeners.isEmpty else {
                throw RuntimeError(.invalidState, "no listen address added")
            }
            lifecycle = .serving
            optionsFixed = true
        }
        MallocTuning.applyOnce()
        let group = ensureGroup()
        let pool = WorkerPool(threads: options.maxWorkers + options.reserveWorkerCount)
        self.pool = pool
        var bound: [Channel] = []
        do {
            for e in endpoints { bound.append(try bind(e, makeBootstrap(group, autoRead: true, for: e))) }
        } catch {
            for c in bound { try? c.close().wait() }
            pool.shutdown()
            self.pool = nil
            state.withLock { lifecycle = .idle }
            throw error
        }
        listeners = bound
        // Waiting calls that ended are dropped, and with `workerWaitTimeout` those that waited
        // too long end: checked four times per wait, at most a second apart (a call ends
        // between the wait and 1.25 times it, or a second more).
        let every = TimeAmount.nanoseconds(Int64(max(0.005, min((options.workerWaitTimeout ?? 4) / 4, 1)) * 1e9))
        expiryTask = group.next().scheduleRepeatedTask(initialDelay: every, delay: every) { [weak self] _ in
            self?.expireWaitingCalls()
        }
        for (_, l) in earlyListeners {
            _ = l.setOption(NIOCore.ChannelOptions.autoRead, value: true)
        }
    }

    /// The port bound by listener `index` (0 for unix sockets), after `start()`.
    public func port(listener index: Int = 0) -> Int? {
        guard isStarted, index >= 0, index < listeners.count else { return nil }
        return listeners[index].localAddress?.port ?? 0
    }

    var acceptsCalls: Bool { state.withLock { lifecycle == .serving } }

    private func accept(_ channel: Channel) -> EventLoopFuture<Void> {
        let allowed: Bool = state.withLock {
            guard lifecycle == .serving else { return false }
            // Beyond the limit a connection is refused at once (it never gets a stream).
            if let m = options.maxConnections, connections.count >= m {
                refusedConnections += 1
                return false
            }
            return true
        }
        guard allowed else { return channel.close() }
        let conn = ServerConnection(server: self, channel: channel)
        let id = ObjectIdentifier(conn)
        state.withLock {
            connections[id] = conn
            acceptedConnections += 1
        }
        if let t = options.handshakeTimeout {
            // A peer that never completes the HTTP/2 handshake is closed.
            let task = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(max(0, min(t, 1e9)) * 1e9))) {
                [weak conn, weak channel] in
                guard let conn, !conn.session.receivedAFrame else { return }
                channel?.close(promise: nil)
            }
            channel.closeFuture.whenComplete { _ in task.cancel() }
        }
        conn.handler.onInactive = { [weak self, weak conn] in
            conn?.stopped()
            conn?.releaseAllPartial()
            self?.state.mutateAndNotify { _ = self?.connections.removeValue(forKey: id) }
        }
        return channel.pipeline.addHandler(conn.handler).map { conn.started() }
    }

    /// Runs a handler for a call (called on the event loop).
    func run(_ call: ServerCall, _ handler: ServerHandler) {
        let admitted: Bool = state.withLock {
            if let limit = options.maxConcurrentRPCs, runningHandlers >= limit { return false }
            runningHandlers += 1
            return true
        }
        guard admitted else {
            try? call.finish(Status(.resourceExhausted, "Concurrent RPC limit exceeded!"))
            return
        }
        switch handler {
        case .blocking(let body):
            admitBlocking(call, body)
        case .async(let body):
            Task {
                do {
                    try await body(call)
                    self.complete(call, thrown: nil)
                } catch {
                    self.complete(call, thrown: error)
                }
                self.handlerDone()
            }
        case .eventLoop(let body):
            call.whenEnded { [weak self] in self?.handlerDone() }
            do { try body(call) } catch { complete(call, thrown: error) }
        }
    }

    // MARK: workers for blocking handlers
    //
    // The pool has `maxWorkers` regular workers and `reserveWorkerCount` in reserve. A call
    // takes a regular worker while its connection holds fewer than `workersPerConnection`,
    // a reserve one only when its connection holds none (so that a peer holding every
    // regular worker does not starve the others); else it waits in `waitingCalls`, in
    // arrival order, until a worker it may take is freed, or `workerWaitTimeout` ends it.

    private enum WorkerSlot { case regular, reserve }
    private struct WaitingCall {
        let call: ServerCall
        let body: @Sendable (ServerCall) throws -> Void
        let connection: ServerConnection
        let since: UInt64
    }
    private let workerLock = NIOLock()
    private var regularWorkersHeld = 0
    private var reserveWorkersHeld = 0
    private var waitingCalls: [WaitingCall] = []

    /// Blocking calls waiting for a worker now.
    var callsWaitingForWorker: Int { workerLock.withLock { waitingCalls.count } }

    private func freeSlotLocked(for connection: ServerConnection) -> WorkerSlot? {
        if connection.workersHeld < options.workersPerConnection && regularWorkersHeld < options.maxWorkers {
            return .regular
        }
        if connection.workersHeld == 0 && reserveWorkersHeld < options.reserveWorkerCount { return .reserve }
        return nil
    }

    private func takeLocked(_ slot: WorkerSlot, _ connection: ServerConnection) {
        connection.workersHeld += 1
        switch slot {
        case .regular: regularWorkersHeld += 1
        case .reserve: reserveWorkersHeld += 1
        }
    }

    /// Runs a blocking call's handler on a worker it may take, or queues it (event loop).
    private func admitBlocking(_ call: ServerCall, _ body: @escaping @Sendable (ServerCall) throws -> Void) {
        let connection = call.connection
        let slot: WorkerSlot? = workerLock.withLock {
            if let slot = freeSlotLocked(for: connection) {
                takeLocked(slot, connection)
                return slot
            }
            waitingCalls.append(WaitingCall(call: call, body: body, connection: connection, since: monotonicNanos()))
            return nil
        }
        if let slot { submitBlocking(call, body, connection, slot) }
    }

    private func submitBlocking(_ call: ServerCall, _ body: @escaping @Sendable (ServerCall) throws -> Void,
                                _ connection: ServerConnection, _ slot: WorkerSlot) {
        let accepted = pool?.submit { [self] in
            self.invoke(call) { try body(call) }
            self.releaseWorker(slot, connection)
            self.handlerDone()
        } ?? false
        if !accepted {
            endUnrun(call, Status(.unavailable, "server shutting down"))
            releaseWorker(slot, connection)
        }
    }

    /// A worker is free again (any thread): the waiting calls that may take one now start,
    /// oldest first; waiting calls that ended meanwhile are dropped.
    private func releaseWorker(_ slot: WorkerSlot, _ connection: ServerConnection) {
        var starting: [(WaitingCall, WorkerSlot)] = []
        var dropped: [ServerCall] = []
        workerLock.withLock {
            connection.workersHeld -= 1
            switch slot {
            case .regular: regularWorkersHeld -= 1
            case .reserve: reserveWorkersHeld -= 1
            }
            var i = 0
            while i < waitingCalls.count {
                if regularWorkersHeld >= options.maxWorkers && reserveWorkersHeld >= options.reserveWorkerCount { break }
                let w = waitingCalls[i]
                if w.call.isCancelled {
                    dropped.append(w.call)
                    waitingCalls.remove(at: i)
                } else if let s = freeSlotLocked(for: w.connection) {
                    takeLocked(s, w.connection)
                    starting.append((w, s))
                    waitingCalls.remove(at: i)
                } else {
                    i += 1
                }
            }
        }
        for c in dropped { endUnrun(c, nil) }
        for (w, s) in starting { submitBlocking(w.call, w.body, w.connection, s) }
    }

    /// Ends a call whose handler never ran (`status` nil: it had ended already), and
    /// counts it out of the running handlers.
    private func endUnrun(_ call: ServerCall, _ status: Status?) {
        if let status { complete(call, thrown: RPCError(status)) }
        handlerDone()
    }

    /// What a call that found no worker within `workerWaitTimeout` is told.
    private func noWorkerStatus() -> Status {
        let o = options
        let seconds = formatSeconds(o.workerWaitTimeout ?? 0)
        return Status(.resourceExhausted,
                      "server busy: no worker free for this call within \(seconds) s (\(o.maxWorkers) workers + "
                      + "\(o.reserveWorkerCount) in reserve, at most \(o.workersPerConnection) for one connection); "
                      + "it was not run")
    }

    /// Ends the blocking calls that waited longer than `workerWaitTimeout` for a worker, and
    /// drops the waiting calls that ended (run periodically on an event loop).
    private func expireWaitingCalls() {
        let wait = options.workerWaitTimeout
        let now = monotonicNanos()
        let span = wait.map { UInt64(max(0, min($0, 1e9)) * 1e9) }
        let cutoff: UInt64? = span.map { now > $0 ? now - $0 : 0 }
        var expired: [ServerCall] = []
        var dropped: [ServerCall] = []
        workerLock.withLock {
            guard !waitingCalls.isEmpty else { return }
            waitingCalls.removeAll { w in
                if let cutoff, w.since < cutoff { expired.append(w.call); return true }
                if w.call.isCancelled { dropped.append(w.call); return true }
                return false
            }
        }
        if !expired.isEmpty {
            let status = noWorkerStatus()
            for c in expired { endUnrun(c, status) }
        }
        for c in dropped { endUnrun(c, nil) }
    }

    private var expiryTask: RepeatedTask?

    private func invoke(_ call: ServerCall, _ body: () throws -> Void) {
        do {
            try body()
            complete(call, thrown: nil)
        } catch {
            complete(call, thrown: error)
        }
    }

    /// Finishes a call whose handler returned or threw, if the handler did not finish it.
    func complete(_ call: ServerCall, thrown: Error?) {
        guard !call.isFinishQueued else { return }
        let status: Status
        var trailers: Metadata?
        switch thrown {
        case nil:
            if !call.cardinality.streamsResponses && call.responseCount == 0 && !call.isCancelled {
                status = Status(.internalError, "handler returned without a response")
            } else {
                status = .ok
            }
        case let e as RPCError:
            status = e.status
            // Keep trailing metadata set with setTrailingMetadata unless the error brings its own.
            trailers = e.trailers.isEmpty ? nil : e.trailers
        case let s as Status:
            status = s
        default:
            status = Status(.unknown, "Exception calling application: \(thrown!)")
        }
        try? call.finish(status, trailers: trailers)
    }

    private func handlerDone() {
        state.mutateAndNotify { runningHandlers -= 1 }
    }

    /// Graceful shutdown: stop accepting, send GOAWAY, let calls in flight run for up to
    /// `grace` seconds (nil: no limit), cancel the rest, wait for every handler to return.
    /// Idempotent; other callers wait for the first to finish.
    public func shutdown(grace: Double?) {
        shutdown(grace: grace, onShutdownThread: false)
    }

    /// `onShutdownThread`: called by a `beginShutdown` thread, which must not wait for
    /// the shutdown threads (itself among them) when another caller does the work.
    private func shutdown(grace: Double?, onShutdownThread: Bool) {
        // The first caller moves serving/idle → draining and does the work.
        // nil: another caller shuts it down; else whether it served.
        let served: Bool? = state.withLock { beginDrainingLocked() }
        if served != nil {
            for hook in state.withLock({ shutdownBeginHooks }) { hook() }
        }
        guard let served else {
            if onShutdownThread {
                _ = state.wait(until: { self.isStoppedLocked }, then: {})
            } else {
                wait()
            }
            return
        }
        guard let group = group else {
            state.mutateAndNotify { lifecycle = .stopped(served: served) }
            return
        }
        for l in listeners { try? l.close().wait() }
        for (_, l) in earlyListeners { try? l.close().wait() }
        // The socket files of unix listeners go with them.
        for case .unix(let path) in endpoints + earlyListeners.map({ $0.0 }) { unlink(path) }
        let conns = state.withLock { Array(connections.values) }
        for c in conns { c.eventLoop.execute { c.goAway() } }
        state.mutateAndNotify { lifecycle = .draining(served: served, noNewCalls: true) }
        let deadline = grace.map { monotonicNanos() + UInt64(max(0, $0) * 1e9) }
        // In-flight calls finish: handlers return and connections drain their last bytes
        // (a connection closes itself once GOAWAY is out and its last stream has closed).
        _ = state.wait(until: { self.runningHandlers == 0 && self.connections.isEmpty },
                       deadlineNanos: deadline, then: {})
        let remaining = state.withLock { Array(connections.values) }
        for c in remaining {
            try? c.eventLoop.submit { c.cancelAll() }.wait()
        }
        _ = state.wait(until: { self.runningHandlers == 0 }, then: {})
        for hook in state.withLock({ handlersDoneHooks }) { hook() }
        for c in remaining {
            try? c.eventLoop.submit { c.handler.context?.close(promise: nil) }.wait()
        }
        expiryTask?.cancel()
        pool?.shutdown()
        try? group.syncShutdownGracefully()
        state.mutateAndNotify { lifecycle = .stopped(served: served) }
    }

    private var handlersDoneHooks: [@Sendable () -> Void] = []
    private var shutdownBeginHooks: [@Sendable () -> Void] = []

    /// Runs `body` once, when the shutdown begins (of a server never started too), on the
    /// thread doing it, before the listeners close (`beginShutdown` returns after it ran):
    /// where what serves long-lived streams tells them (health `Watch` streams get
    /// NOT_SERVING and end). Keep it short; it must not wait for the shutdown.
    public func onShutdownBegin(_ body: @escaping @Sendable () -> Void) {
        state.withLock { shutdownBeginHooks.append(body) }
    }

    /// Runs `body` during the shutdown, on the thread doing it, once every handler has
    /// returned (every event-loop handler's call ended) and before the event loops stop:
    /// where what uses the server's event loops (channels on them) is closed.
    public func onHandlersDone(_ body: @escaping @Sendable () -> Void) {
        state.withLock { handlersDoneHooks.append(body) }
    }

    /// Starts `shutdown(grace:)` on a thread of its own and returns once the server takes
    /// no new calls (listeners closed, GOAWAY sent); `wait()` waits for the end. That
    /// thread then calls `whenStopped` (if given) once the server has stopped, before
    /// `wait()` returns. Any thread may call it, a handler of this server too.
    public func beginShutdown(grace: Double?, whenStopped: (@Sendable () -> Void)? = nil) {
        let state = self.state, threads = shutdownThreads
        state.withLock { threads.value += 1 }
        // Unowned(unsafe): a caller that drops the server while it shuts down waits in
        // deinit (shutdown → wait) until this thread is done with it; one that drops it
        // once `whenStopped` ran releases it (and its handlers) on its own thread, and this
        // thread touches only `state` and `threads` from then on.
        NativeThread.startOrRun(name: "gh-shutdown") { [unowned(unsafe) self] in
            self.shutdown(grace: grace, onShutdownThread: true)
            whenStopped?()
            state.mutateAndNotify { threads.value -= 1 }
        }
        _ = state.wait(until: { self.takesNoNewCalls }, then: {})
    }

    /// Gives up a reference to `server` without blocking, from any thread: one of its own
    /// handlers, a `whenStopped` of `beginShutdown` (on the shutdown thread), anywhere.
    /// A serving server begins `shutdown(grace: 0)` (calls in flight cancelled at once); a
    /// shutdown already under way keeps its grace. Either way the server takes no new
    /// calls once this returns. A `gh-shutdown` thread then waits until the server has
    /// stopped (every handler returned) and the `beginShutdown` threads are done (their
    /// `whenStopped` returned), runs `then`, and drops the reference last: the server is
    /// deinitialised on that thread when it was the last one — never on a handler, never
    /// while a shutdown thread still uses it.
    ///
    /// The reference is handed over retained (`Unmanaged.passRetained(server)`, or one a C
    /// handle held) so that the caller keeps none: were the caller's own reference
    /// released after that thread's, the caller's thread would deinitialise the server.
    /// Used for C handles (`gh_server_release`); a Swift host can also drop its server
    /// outside its handlers (see deinit), which blocks until it has stopped.
    public static func release(_ server: Unmanaged<Server>, then: @escaping () -> Void = {}) {
        do {
            // Borrowed: the handed-over reference keeps it until the thread below takes it.
            let s = server.takeUnretainedValue()
            s.beginShutdownForRelease()
        }
        NativeThread.startOrRun(name: "gh-shutdown") {
            do {
                // The reference handed over: dropped at the end of this scope. Nothing to
                // do but wait when a shutdown began (above or elsewhere): shutdown waits
                // for the end and for the `beginShutdown` threads; a server never started
                // goes to stopped here.
                let s = server.takeRetainedValue()
                s.shutdown(grace: 0)
                then()
            }
        }
    }

    /// `release`'s first step, on the caller's thread: a serving server begins a shutdown
    /// with grace 0; one already shutting down is waited for until it takes no new calls.
    /// A server never started has nothing to stop (the releasing thread shuts it down).
    private func beginShutdownForRelease() {
        let serving: Bool = state.withLock { lifecycle == .serving }
        if serving {
            beginShutdown(grace: 0)
        } else {
            _ = state.wait(until: { self.lifecycle == .idle || self.takesNoNewCalls }, then: {})
        }
    }

    /// Under `state`: idle/serving → draining; nil when a shutdown already began, else
    /// whether the server served.
    private func beginDrainingLocked() -> Bool? {
        switch lifecycle {
        case .draining, .stopped:
            return nil
        case .idle:
            lifecycle = .draining(served: false, noNewCalls: false)
            return false
        case .serving:
            lifecycle = .draining(served: true, noNewCalls: false)
            return true
        }
    }

    /// Under `state`: listeners closed and GOAWAY sent, or stopped.
    private var takesNoNewCalls: Bool {
        switch lifecycle {
        case .draining(_, let noNewCalls): return noNewCalls
        case .stopped: return true
        case .idle, .serving: return false
        }
    }

    private var isStoppedLocked: Bool {
        if case .stopped = lifecycle { return true }
        return false
    }

    /// Async variant of `shutdown(grace:)`.
    public func shutdown(grace: Double?) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            NativeThread.startOrRun(name: "gh-shutdown") { self.shutdown(grace: grace); c.resume() }
        }
    }

    /// Blocks until the server has been shut down (and a `beginShutdown` thread is done).
    public func wait() {
        _ = state.wait(until: { self.isStoppedLocked && self.shutdownThreads.value == 0 }, then: {})
    }

    /// Serving, or draining after it served.
    public var isRunning: Bool {
        state.withLock {
            switch lifecycle {
            case .serving, .draining(served: true, _): return true
            default: return false
            }
        }
    }

    /// Whether `start()` succeeded (also after a shutdown).
    public var isStarted: Bool {
        state.withLock {
            switch lifecycle {
            case .serving, .draining(served: true, _), .stopped(served: true): return true
            default: return false
            }
        }
    }

    /// Whether `bindNow` or `start()` ran (the options are fixed; there is something to
    /// shut down).
    public var isBound: Bool { state.withLock { optionsFixed } }
}

/// True when a process accepts connections on the Unix socket at `path`.
func unixSocketIsLive(_ path: String) -> Bool {
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return false }
    withUnsafeMutableBytes(of: &addr.sun_path) { dst in
        dst.copyBytes(from: bytes)
        dst[bytes.count] = 0
    }
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
    return rc == 0
}

/// A byte count shared by event loops.
// @unchecked Sendable: `value` guarded by `lock`.
final class ByteCounter: @unchecked Sendable {
    private let lock = NIOLock()
    private var value = 0
    /// Adds `delta`; returns the new total.
    func add(_ delta: Int) -> Int { lock.withLock { value += delta; return value } }
    var total: Int { lock.withLock { value } }
}

/// On a listener: an accept that failed for lack of descriptors (EMFILE, ENFILE) turns
/// the listener's reading off for `pause`, then on again (and off again while descriptors
/// still lack). In SwiftNIO such a listener keeps its read pending and retries at once for
/// as long as connections wait in its backlog (NIO's `AcceptBackoffHandler` only delays the
/// *next* read, so it does not stop that); turning autoRead off unregisters the read
/// interest, which does.
final class DescriptorLimitHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Channel
    private let pause: TimeAmount
    private var resume: Scheduled<Void>?

    init(pause: TimeAmount = .seconds(1)) {
        self.pause = pause
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let e = error as? IOError, e.errnoCode == EMFILE || e.errnoCode == ENFILE else {
            context.fireErrorCaught(error)
            return
        }
        guard resume == nil else { return }
        let channel = context.channel
        _ = channel.setOption(NIOCore.ChannelOptions.autoRead, value: false)
        resume = context.eventLoop.scheduleTask(in: pause) { [weak self] in
            self?.resume = nil
            _ = channel.setOption(NIOCore.ChannelOptions.autoRead, value: true)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        resume?.cancel()
        resume = nil
        context.fireChannelInactive()
    }
}

/// glibc's malloc serves blocks from 128 KiB up with mmap, but raises that threshold (up to
/// 32 MiB) each time such a block is freed: after the first large message, message buffers
/// of hundreds of KiB come from the per-thread arenas, and the arenas of the event loops and
/// workers keep what they once held. Under bench/soak.sh (messages up to 1 MiB) the C echo
/// server's RSS went from 46 MiB after warm-up to 84 MiB in 10 minutes; with the threshold
/// fixed it stayed at 27-31 MiB. So the first server started fixes it at 256 KiB (which also
/// turns the raising off), unless the host chose glibc's setting itself
/// (MALLOC_MMAP_THRESHOLD_, GLIBC_TUNABLES) or set GRPCHELPER_KEEP_MALLOC=1.
enum MallocTuning {
    static let threshold: Int32 = 256 * 1024

    private static let applied: Bool = {
        func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
        if env("GRPCHELPER_KEEP_MALLOC") == "1" || env("MALLOC_MMAP_THRESHOLD_") != nil
            || (env("GLIBC_TUNABLES") ?? "").contains("mmap_threshold") {
            return false
        }
        // mallopt is in malloc.h, which Swift's Glibc module leaves out: found at run time.
        guard let symbol = dlsym(nil, "mallopt") else { return false }
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        return mallopt(-3 /* M_MMAP_THRESHOLD */, threshold) == 1
    }()

    /// Sets the threshold the first time (any thread); later calls do nothing.
    static func applyOnce() { _ = applied }
}
