import CNghttp2
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Channel settings.
public struct ChannelOptions: Sendable {
    /// Largest response message accepted (after decompression, when it is on).
    public var maxReceiveMessageSize = 4 * 1024 * 1024
    /// Largest request message sent (before compression); a larger one ends the call
    /// RESOURCE_EXHAUSTED ("CLIENT: Sent message larger than max (N vs. M)"), as gRPC's.
    public var maxSendMessageSize = Int.max
    /// Compressed response messages are decompressed (false: handed over as they came,
    /// compressed, as gRPC's per-message decompression off).
    public var decompressMessages = true
    /// Largest response header list accepted.
    public var maxHeaderListSize = 16 * 1024
    /// Request compression when a call names none.
    public var defaultCompression = CompressionAlgorithm.identity
    /// HTTP/2 initial stream window.
    public var initialWindowSize = 1 << 20
    /// Threads that run completion callbacks.
    public var callbackThreads = 4
    /// Callback-mode calls run their callbacks on the channel's event loop, inline (as
    /// each message arrives), not on the callback threads: callbacks that never block, on
    /// a channel sharing a server connection's loop (one thread forwards a call).
    /// Connectivity watches still use the callback threads.
    public var inlineCallbacks = false
    /// Put before the library's own user-agent.
    public var userAgentPrefix: String?
    /// Put after the library's own user-agent.
    public var userAgentSuffix: String?
    /// Connect timeout in seconds.
    public var connectTimeout: Double = 20
    /// Seconds from a failed connection attempt's start to the next (gRPC's
    /// grpc.initial_reconnect_backoff_ms); each next wait is 1.6 times longer, ±20 %.
    public var initialReconnectBackoff: Double = 1
    /// The longest wait between attempts before its ±20 % (grpc.max_reconnect_backoff_ms).
    public var maxReconnectBackoff: Double = 120
    /// Keepalive: seconds without anything read from the server before a PING is sent
    /// while a call is open (grpc.keepalive_time_ms); nil: never (gRPC's client default).
    /// A server that answers GOAWAY "too_many_pings" makes the channel ping half as often.
    public var keepaliveTime: Double?
    /// Seconds the PING's acknowledgement may take; then the connection is closed and its
    /// calls end UNAVAILABLE (grpc.keepalive_timeout_ms: 20 s).
    public var keepaliveTimeout: Double = 20
    /// Ping also while no call is open (grpc.keepalive_permit_without_calls).
    public var keepalivePermitWithoutCalls = false
    public init() {}
}

/// One HTTP/2 connection of a channel (event loop only).
// @unchecked Sendable: confined to its channel's event loop (other threads only hop there).
final class ClientConnection: @unchecked Sendable {
    let session: H2Session
    let handler: H2ConnectionHandler
    var channel: Channel?
    var draining = false
    var lostConnection = false
    /// Why the connection was lost, when known (the calls' UNAVAILABLE message says it).
    var lostReason: String?
    /// `lostReason`, or why this side closed the connection.
    var lostBecause: String? { lostReason ?? handler.closeReason }
    /// The server's first SETTINGS frame has arrived (possibly before `connected`).
    var settingsReceived = false
    /// Called (inside nghttp2's receive) when the first SETTINGS frame arrives.
    var onFirstSettings: (() -> Void)?
    /// Closes the connection if the server's SETTINGS do not arrive in time.
    var handshakeTimeout: Scheduled<Void>?

    init(options: ChannelOptions) {
        LiveObjects.created(.clientConnection)
        session = H2Session(isServer: false, maxHeaderListSize: options.maxHeaderListSize,
                            maxConcurrentStreams: nil, initialWindowSize: options.initialWindowSize)
        handler = H2ConnectionHandler(session: session)
        // Weak: the session lives on in the NIO handler after a drained connection is gone.
        session.onSettings = { [weak self] in
            guard let self = self, !self.settingsReceived else { return }
            self.settingsReceived = true
            self.onFirstSettings?()
        }
    }

    deinit { LiveObjects.destroyed(.clientConnection) }

    func open(_ call: ClientCall, authority: String) -> Bool {
        let stream = H2Stream(session: session)
        stream.delegate = call
        guard session.submitRequest(stream, call.requestHeaders(authority: authority)) else { return false }
        call.attached(stream, self)
        call.applyPending()
        return true
    }
}

/// A client channel to one target: lazy connect, one multiplexed HTTP/2 connection,
/// reconnect with exponential backoff, wait-for-ready.
// @unchecked Sendable: connection state touched only on `eventLoop`; the rest guarded by its monitor.
public final class GRPCChannel: @unchecked Sendable {
    public let target: String
    public let options: ChannelOptions
    let endpoint: Endpoint
    let authority: String
    let userAgent: String
    /// The channel's own event loop thread (nil: it shares a loop it was given).
    private let group: MultiThreadedEventLoopGroup?
    let eventLoop: EventLoop
    let callbackPool: NIOThreadPool

    // Event-loop state.
    private enum State {
        case idle
        case connecting
        /// Connected; waiting for the server's SETTINGS (its MAX_CONCURRENT_STREAMS
        /// among them) before opening streams, as gRPC does.
        case handshaking(ClientConnection)
        case ready(ClientConnection)
        case backoff(untilNanos: UInt64, error: String)
    }
    private var state = State.idle { didSet { stateChanged() } }
    private var waiting: [ClientCall] = []
    private var backoff: ReconnectBackoff
    /// The keepalive interval for new connections (event loop): `options.keepaliveTime`,
    /// doubled each time a server answers "too_many_pings".
    private var keepaliveTime: Double?
    /// When the current connection attempt began (event loop).
    private var attemptStartNanos: UInt64 = 0
    private var retryTask: Scheduled<Void>?
    private var closed = false { didSet { stateChanged() } }
    private let closeState = Monitor()
    private var closeStarted = false

    /// Connectivity: the state last published (read from any thread), the watches, and how
    /// many of them keep the channel connecting.
    private struct Watching {
        var published = ConnectivityState.idle
        var watchers: [UInt64: ConnectivityWatcher] = [:]
        var nextID: UInt64 = 0
        var connecting = 0
    }
    private let watching = NIOLockedValueBox(Watching())

    /// Creates a channel to "host:port", "[v6]:port" or "unix:PATH", on an event loop
    /// thread of its own, or on `eventLoop` (e.g. a server call's `eventLoop`) when given:
    /// then the loop's owner keeps it running until the channel is closed.
    public init(target: String, options: ChannelOptions = ChannelOptions(), eventLoop shared: EventLoop? = nil) throws {
        do { endpoint = try Endpoint.parseTarget(target) } catch let e as EndpointError {
            throw RuntimeError(.invalidArgument, "invalid target: \(e.message)")
        }
        self.target = target
        self.options = options
        self.backoff = ReconnectBackoff(initial: options.initialReconnectBackoff, maximum: options.maxReconnectBackoff)
        self.keepaliveTime = options.keepaliveTime
        switch endpoint {
        case .host: authority = endpoint.description
        case .unix: authority = "localhost"
        }
        userAgent = (options.userAgentPrefix.map { $0 + " " } ?? "") + GRPCHelperVersion.userAgent
            + (options.userAgentSuffix.map { " " + $0 } ?? "")
        if let shared {
            group = nil
            eventLoop = shared
        } else {
            let g = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            group = g
            eventLoop = g.next()
        }
        callbackPool = NIOThreadPool(numberOfThreads: max(1, options.callbackThreads))
        callbackPool.start()
        LiveObjects.created(.channel)
    }

    deinit {
        if group == nil && eventLoop.inEventLoop && !closeState.withLock({ closeStarted }) {
            // Dropped on its shared loop without close(): closed here, at once.
            closeOnEventLoop()
            endWatches()
            callbackPool.shutdownGracefully { _ in }
        } else {
            close()
        }
        LiveObjects.destroyed(.channel)
    }

    /// Creates a call; start it with `start()` (or use the convenience functions).
    public func makeCall(_ method: String, options: CallOptions = CallOptions()) -> ClientCall {
        ClientCall(channel: self, method: method, options: options)
    }

    /// Cancels every call, closes the connection and stops the channel's threads. Idempotent.
    public func close() {
        let first: Bool = closeState.withLock {
            if closeStarted { return false }
            closeStarted = true
            return true
        }
        guard first else { return }
        if group == nil && eventLoop.inEventLoop {
            // On the shared loop (e.g. from an inline callback, inside its connection's
            // read): the closing runs on the loop's next turn; nothing blocks here.
            eventLoop.execute {
                self.closeOnEventLoop()
                self.endWatches()
                self.callbackPool.shutdownGracefully { _ in }
            }
            return
        }
        _ = try? eventLoop.submit { self.closeOnEventLoop() }.wait()
        endWatches()
        if CallbackThread.isCurrent {
            // Closed from a completion callback: the pool cannot wait for its own thread.
            let pool = callbackPool, group = group
            NativeThread.startOrRun(name: "gh-channel-close") {
                try? pool.syncShutdownGracefully()
                try? group?.syncShutdownGracefully()
            }
        } else {
            try? callbackPool.syncShutdownGracefully()
            try? group?.syncShutdownGracefully()
        }
    }

    /// close(), on the event loop: every call cancelled, the connection closed.
    private func closeOnEventLoop() {
        if closed { return }
        closed = true
        retryTask?.cancel()
        let w = waiting
        waiting.removeAll()
        for c in w { c.fail(Status(.cancelled, "channel closed")) }
        if case .ready(let conn) = state {
            for (_, s) in conn.session.streams {
                (s.delegate as? ClientCall)?.fail(Status(.cancelled, "channel closed"))
            }
            conn.channel?.close(promise: nil)
        } else if case .handshaking(let conn) = state {
            conn.handshakeTimeout?.cancel()
            conn.channel?.close(promise: nil)
        }
        state = .idle
    }

    /// SHUTDOWN was posted to the watches (closed's didSet): delivered, then they end.
    private func endWatches() {
        let watchers = watching.withLockedValue { w -> [ConnectivityWatcher] in
            defer { w.watchers.removeAll(); w.connecting = 0 }
            return Array(w.watchers.values)
        }
        for watcher in watchers { watcher.end(deliverPending: true) }
    }

    /// Runs `body` on the channel's event loop. Returns false, scheduling nothing, once
    /// `close()` has begun (its event-loop threads may be gone): what was scheduled before
    /// runs before close's own work, so close sees every call started in time.
    func execute(_ body: @escaping @Sendable () -> Void) -> Bool {
        closeState.withLock {
            if closeStarted { return false }
            eventLoop.execute(body)
            return true
        }
    }

    // MARK: event loop

    func startOnEventLoop(_ call: ClientCall) {
        if closed {
            call.fail(Status(.cancelled, "channel closed"))
            return
        }
        switch state {
        case .ready(let conn) where !conn.draining && !conn.lostConnection:
            if !conn.open(call, authority: authority) {
                call.fail(Status(.unavailable, "cannot open a stream on the connection"))
            }
        case .ready, .idle:
            waiting.append(call)
            connect()
        case .connecting, .handshaking:
            waiting.append(call)
        case .backoff(let until, let error):
            if monotonicNanos() >= until {
                waiting.append(call)
                connect()
            } else if call.options.waitForReady {
                // Waits for the end of the backoff, then connects (again).
                waiting.append(call)
                scheduleRetry(at: until)
            } else {
                call.fail(Status(.unavailable, "failed to connect to \(target): \(error)"))
            }
        }
    }

    private func connect() {
        state = .connecting
        attemptStartNanos = monotonicNanos()
        let conn = ClientConnection(options: options)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.nanoseconds(Int64(options.connectTimeout * 1e9)))
            .channelOption(NIOCore.ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { ch in ch.pipeline.addHandler(conn.handler) }
        let future: EventLoopFuture<Channel>
        switch endpoint {
        case .host(let h, let p): future = bootstrap.connect(host: h, port: p)
        case .unix(let path): future = bootstrap.connect(unixDomainSocketPath: path)
        }
        future.whenComplete { result in
            switch result {
            case .success(let ch): self.connected(conn, ch)
            case .failure(let err): self.connectFailed("\(err)")
            }
        }
    }

    private func connected(_ conn: ClientConnection, _ ch: Channel) {
        if closed {
            ch.close(promise: nil)
            return
        }
        conn.channel = ch
        state = .handshaking(conn)
        conn.onFirstSettings = { [weak self, weak conn] in
            // Inside nghttp2's receive: open the streams (which flushes) afterwards.
            guard let self, let conn else { return }
            self.eventLoop.execute { self.settingsReceived(conn) }
        }
        conn.session.onGoAway = { [weak self, weak conn] _, code in
            guard let self = self, let conn = conn else { return }
            conn.draining = true
            if code == NGHTTP2_ENHANCE_YOUR_CALM.rawValue && conn.session.lastGoAwayDebug == "too_many_pings" {
                // As gRPC's clients: the server wants fewer pings; ping half as often.
                if let t = self.keepaliveTime { self.keepaliveTime = min(t * 2, 1e9) }
                conn.lostReason = "the server sent GOAWAY ENHANCE_YOUR_CALM (too_many_pings)"
            }
            switch self.state {
            case .ready(let c) where c === conn: self.state = .idle
            case .handshaking(let c) where c === conn: conn.channel?.close(promise: nil)
            default: break
            }
        }
        conn.handler.onInactive = { [weak self, weak conn] in
            guard let self = self, let conn = conn else { return }
            conn.lostConnection = true
            conn.handshakeTimeout?.cancel()
            switch self.state {
            case .ready(let c) where c === conn: self.state = .idle
            case .handshaking(let c) where c === conn:
                self.connectFailed("connection closed before the server's HTTP/2 settings arrived")
            default: break
            }
        }
        conn.handshakeTimeout = eventLoop.scheduleTask(in: .nanoseconds(Int64(options.connectTimeout * 1e9))) {
            [weak self, weak conn] in
            guard let self = self, let conn = conn,
                  case .handshaking(let c) = self.state, c === conn else { return }
            conn.channel?.close(promise: nil)
        }
        if let t = keepaliveTime {
            conn.handler.startKeepalive(.init(time: t, timeout: options.keepaliveTimeout,
                                              permitWithoutCalls: options.keepalivePermitWithoutCalls))
        }
        conn.handler.flush()
        if conn.settingsReceived { settingsReceived(conn) }
    }

    /// The server's first SETTINGS arrived: the connection is ready for streams.
    private func settingsReceived(_ conn: ClientConnection) {
        guard case .handshaking(let c) = state, c === conn, !closed else { return }
        conn.handshakeTimeout?.cancel()
        state = .ready(conn)
        backoff.reset()
        let w = waiting
        waiting.removeAll()
        for call in w where call.status == nil {
            if !conn.open(call, authority: authority) {
                call.fail(Status(.unavailable, "cannot open a stream on the connection"))
            }
        }
        conn.handler.flush()
    }

    private func connectFailed(_ error: String) {
        // gRPC's connection backoff: the next attempt starts a backoff delay after this one
        // started (at once if this one took longer).
        let until = backoff.nextAttempt(after: attemptStartNanos, random: Double.random(in: 0..<1))
        state = .backoff(untilNanos: until, error: error)
        let w = waiting
        waiting.removeAll()
        for call in w where call.status == nil {
            if call.options.waitForReady {
                waiting.append(call)
            } else {
                call.fail(Status(.unavailable, "failed to connect to \(target): \(error)"))
            }
        }
        retryTask?.cancel()
        retryTask = nil
        if !waiting.isEmpty || keepsConnecting { scheduleRetry(at: until) }
    }

    /// Connects again at `until` (the end of the backoff) for the wait-for-ready calls
    /// waiting then (or a watch that keeps the channel connecting); one such timer at a time.
    private func scheduleRetry(at until: UInt64) {
        guard retryTask == nil else { return }
        let delay = Int64(until - min(until, monotonicNanos()))
        retryTask = eventLoop.scheduleTask(in: .nanoseconds(delay)) { [weak self] in
            guard let self = self else { return }
            self.retryTask = nil
            guard !self.closed else { return }
            self.waiting.removeAll { $0.status != nil }
            if !self.waiting.isEmpty || self.keepsConnecting, case .backoff = self.state { self.connect() }
        }
    }

    // MARK: connectivity

    /// The state the event-loop state amounts to.
    private var connectivity: ConnectivityState {
        if closed { return .shutdown }
        switch state {
        case .idle: return .idle
        case .connecting, .handshaking: return .connecting
        case .ready(let conn): return conn.draining || conn.lostConnection ? .idle : .ready
        case .backoff: return .transientFailure
        }
    }

    /// A watch keeps the channel connecting (event loop: read under the lock).
    private var keepsConnecting: Bool { watching.withLockedValue { $0.connecting > 0 } }

    /// Event loop, after every change of `state` or `closed`: publishes a new connectivity
    /// state to the watches (in order: posted under the lock); an idle channel that a watch
    /// keeps connecting connects again (on the next turn of the loop).
    private func stateChanged() {
        let now = connectivity
        let reconnect: Bool = watching.withLockedValue { w in
            guard now != w.published, w.published != .shutdown else { return false }
            w.published = now
            for watcher in w.watchers.values { watcher.post(now) }
            return now == .idle && w.connecting > 0
        }
        if reconnect {
            eventLoop.execute {
                if case .idle = self.state, !self.closed, self.keepsConnecting { self.connect() }
            }
        }
    }

    /// Event loop: an idle channel connects; one in backoff connects once the backoff is
    /// over (at once when it is).
    private func tryToConnectOnEventLoop() {
        guard !closed else { return }
        switch state {
        case .idle: connect()
        case .ready(let conn) where conn.draining || conn.lostConnection: connect()
        case .backoff(let until, _):
            if monotonicNanos() >= until { connect() } else { scheduleRetry(at: until) }
        default: break
        }
    }

    /// The channel's connectivity state. `tryToConnect`: an idle channel starts connecting
    /// (and one whose reconnect backoff is over), as gRPC's check with try_to_connect; the
    /// state returned is the one before.
    public func connectivityState(tryToConnect: Bool = false) -> ConnectivityState {
        let now = watching.withLockedValue { $0.published }
        if tryToConnect && now != .shutdown {
            _ = execute { self.tryToConnectOnEventLoop() }
        }
        return now
    }

    /// Watches the connectivity: `handler` gets the current state at once, then every new
    /// state, in order, one call at a time, on the channel's callback threads, until
    /// `unwatchConnectivity(id)` or the channel closes (SHUTDOWN is its last state).
    /// `tryToConnect`: while the watch lasts the channel keeps connecting (from IDLE at
    /// once, after a failure at the end of each backoff), as grpcio's
    /// subscribe(try_to_connect=True). `onEnd` runs once the watch has ended and no call
    /// of `handler` runs. Returns the watch's id. A closed channel: `RuntimeError(.invalidState)`.
    public func watchConnectivity(tryToConnect: Bool = false,
                                  onEnd: (@Sendable () -> Void)? = nil,
                                  _ handler: @escaping @Sendable (ConnectivityState) -> Void) throws -> UInt64 {
        let watcher = ConnectivityWatcher(tryToConnect: tryToConnect, pool: callbackPool, handler: handler,
                                          onEnd: onEnd)
        // The close lock first: a watch is either added before close takes them all, or
        // refused.
        let id: UInt64? = closeState.withLock {
            if closeStarted { return nil }
            return watching.withLockedValue { w in
                w.nextID += 1
                w.watchers[w.nextID] = watcher
                if tryToConnect { w.connecting += 1 }
                watcher.post(w.published)
                return w.nextID
            }
        }
        guard let id = id else {
            throw RuntimeError(.invalidState, "the channel is closed")
        }
        if tryToConnect { _ = execute { self.tryToConnectOnEventLoop() } }
        return id
    }

    /// Ends a watch: no call of its handler starts after this returns (one running on
    /// another thread may finish; its `onEnd` runs after it). False for an unknown id (or
    /// one already ended).
    @discardableResult
    public func unwatchConnectivity(_ id: UInt64) -> Bool {
        let watcher = watching.withLockedValue { w -> ConnectivityWatcher? in
            guard let watcher = w.watchers.removeValue(forKey: id) else { return nil }
            if watcher.tryToConnect { w.connecting -= 1 }
            return watcher
        }
        watcher?.end(deliverPending: false)
        return watcher != nil
    }

    // MARK: conveniences

    /// A blocking unary call. Throws `RPCError` with the status when it is not OK.
    public func unary(_ method: String, _ request: [UInt8], options: CallOptions = CallOptions()) throws -> [UInt8] {
        let call = makeCall(method, options: options)
        let (response, status) = call.exchangeUnary(request)
        guard status.isOK else { throw RPCError(status, trailers: call.trailingMetadata) }
        guard let r = response else { throw RPCError(.internalError, "no response message") }
        return r
    }

    /// An async unary call.
    public func unary(_ method: String, _ request: [UInt8], options: CallOptions = CallOptions()) async throws -> [UInt8] {
        let call = makeCall(method, options: options)
        let (response, status) = await call.exchangeUnary(request)
        guard status.isOK else { throw RPCError(status, trailers: call.trailingMetadata) }
        guard let r = response else { throw RPCError(.internalError, "no response message") }
        return r
    }
}
