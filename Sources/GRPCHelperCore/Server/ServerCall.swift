import CNghttp2
import NIOCore

/// The server side of one RPC, as seen by a handler.
///
/// Reads and sends come from the handler's thread (one at a time per call); the
/// HTTP/2 side runs on the connection's event loop. Shared state is guarded by `monitor`.
// @unchecked Sendable: mutable state guarded by `monitor`; event-loop-only fields touched on the connection's loop.
public final class ServerCall: @unchecked Sendable {
    /// "/package.Service/Method"
    public let method: String
    public let cardinality: RPCCardinality
    /// The request metadata (reserved headers excluded).
    public let requestMetadata: Metadata
    /// "ipv4:host:port", "ipv6:[host]:port" or "unix:path".
    public let peer: String
    /// Monotonic deadline in nanoseconds, if the client set one.
    public let deadlineNanos: UInt64?
    /// The request's message encoding.
    public let requestEncoding: CompressionAlgorithm
    /// The client's user-agent header, if it sent one (not part of `requestMetadata`).
    public internal(set) var userAgent: String?

    /// Strong: a handler may outlive its connection (client gone); the connection drops
    /// its calls when their streams close, which breaks the cycle.
    let connection: ServerConnection
    let stream: H2Stream

    /// The call's state, shared with the event loop (guarded by `monitor`).
    let monitor = Monitor()
    private var state: CallStateMachine
    /// onCancel's bodies, run once when the call is cancelled (guarded by `monitor`).
    private var cancelHandlers: [@Sendable () -> Void] = []
    /// whenEnded's bodies, run once when the call is over (guarded by `monitor`).
    private var endedHandlers: [@Sendable () -> Void] = []
    private var ended = false
    /// onSendReady's bodies, run once when the send buffer drained (guarded by `monitor`).
    private var sendReadyHandlers: [@Sendable () -> Void] = []
    // Event-loop handlers' receiving (event loop only).
    private var inlineMessage: (([UInt8]) -> Void)?
    private var inlineEnd: (() -> Void)?
    private var inlinePaused = false
    // Handler-side: the response encoding (written by the handler's thread under the
    // monitor, read by it without) and its compressor.
    private var responseCompression: CompressionAlgorithm
    private var compressor: MessageCompressor?

    /// The compression algorithms the client accepts for responses (its
    /// grpc-accept-encoding), e.g. ["identity", "deflate", "gzip"].
    public let clientAcceptEncoding: [String]

    // Event-loop-only state.
    var reader: MessageReader
    /// The reader's partial-message bytes counted in the connection's and server's budgets.
    var countedPartialBytes = 0
    /// Largest response message sent (ServerOptions.maxSendMessageSize).
    let maxSendMessageSize: Int
    var deadlineTask: Scheduled<Void>?

    init(method: String, cardinality: RPCCardinality, metadata: Metadata, peer: String,
         deadlineNanos: UInt64?, requestEncoding: CompressionAlgorithm, acceptEncoding: [String],
         defaultCompression: CompressionAlgorithm, connection: ServerConnection, stream: H2Stream,
         maxReceiveMessageSize: Int, maxSendMessageSize: Int = Int.max, decompresses: Bool = true) {
        LiveObjects.created(.serverCall)
        self.method = method
        self.cardinality = cardinality
        self.requestMetadata = metadata
        self.peer = peer
        self.deadlineNanos = deadlineNanos
        self.requestEncoding = requestEncoding
        self.connection = connection
        self.stream = stream
        self.reader = MessageReader(limit: maxReceiveMessageSize, decompresses: decompresses)
        self.maxSendMessageSize = maxSendMessageSize
        self.clientAcceptEncoding = acceptEncoding
        self.state = CallStateMachine(side: .server, streamsOutbound: cardinality.streamsResponses)
        // Answer in the request's algorithm when it is compressed; else the server default,
        // if the client accepts it.
        if requestEncoding != .identity {
            responseCompression = requestEncoding
        } else if defaultCompression != .identity && acceptEncoding.contains(defaultCompression.name) {
            responseCompression = defaultCompression
        } else {
            responseCompression = .identity
        }
        if requestEncoding != .identity {
            reader.decompressor = MessageDecompressor(requestEncoding)
        }
    }

    deinit { LiveObjects.destroyed(.serverCall) }

    // MARK: handler API

    /// Seconds left before the deadline (negative once passed, at most 0 once the call
    /// was cancelled for its deadline); nil without a deadline.
    public var timeRemaining: Double? {
        guard let d = deadlineNanos else { return nil }
        let now = monotonicNanos()
        if d >= now {
            // The client's deadline can expire a moment before ours (see ServerConnection).
            if cancellationStatus?.code == .deadlineExceeded { return 0 }
            return Double(d - now) / 1e9
        }
        return -Double(now - d) / 1e9
    }

    /// True once the call is cancelled (by the client, the deadline or server shutdown).
    public var isCancelled: Bool { monitor.withLock { state.endStatus != nil } }

    /// Why the call was cancelled, if it was.
    public var cancellationStatus: Status? { monitor.withLock { state.endStatus } }

    /// Whether the message last returned by `receive()`/`receiveMessage()` arrived
    /// compressed (its compressed flag was set on the wire).
    public var lastMessageWasCompressed: Bool { monitor.withLock { state.lastMessageWasCompressed } }

    /// Blocks for the next request message: nil at the end of the request stream.
    /// Throws `RPCError` (CANCELLED / DEADLINE_EXCEEDED) once the call is cancelled.
    public func receiveMessage() throws -> [UInt8]? {
        try taken(monitor.wait(until: { self.state.isReadable }, then: { self.state.receive() })!)
    }

    /// Async variant of `receiveMessage()`.
    public func receive() async throws -> [UInt8]? {
        try taken(await monitor.waitAsync(until: { self.state.isReadable }, then: { self.state.receive() }))
    }

    private func taken(_ r: CallStateMachine.Receive) throws -> [UInt8]? {
        switch r {
        case .message(let m, _, let flush):
            if flush { connection.schedule(self) }
            return m
        case .end: return nil
        case .cancelled(let s): throw RPCError(s)
        }
    }

    /// Sets the response compression (before the response headers are sent: before the
    /// first message and before `sendInitialMetadata`).
    public func setCompression(_ algorithm: CompressionAlgorithm) throws {
        try monitor.withLock {
            guard state.canSetCompression else {
                throw CallStateError("compression must be set before the response headers are sent")
            }
            responseCompression = algorithm
        }
    }

    /// Sends the response headers now with `metadata`.
    public func sendInitialMetadata(_ metadata: Metadata) throws {
        let compression = responseCompression
        if try monitor.withLock({ try state.queueHeaders(metadata, compression: compression) }) {
            connection.schedule(self)
        }
    }

    /// Sets trailing metadata sent with the status.
    public func setTrailingMetadata(_ metadata: Metadata) {
        monitor.withLock { state.setTrailingMetadata(metadata) }
    }

    /// Sends one response message, blocking while the client is not reading.
    public func sendMessage(_ message: [UInt8], compress: Bool = true) throws {
        if try queueMessage(message, compress: compress) { connection.schedule(self) }
        monitor.wait(until: { self.state.sendMayContinue }, then: {})
    }

    /// Async variant of `sendMessage`.
    public func send(_ message: [UInt8], compress: Bool = true) async throws {
        if try queueMessage(message, compress: compress) { connection.schedule(self) }
        await monitor.waitAsync(until: { self.state.sendMayContinue }, then: {})
    }

    private func queueMessage(_ message: [UInt8], compress: Bool) throws -> Bool {
        if message.count > maxSendMessageSize {
            let status = Status(.resourceExhausted,
                                "SERVER: Sent message larger than max (\(message.count) vs. \(maxSendMessageSize))")
            try? finish(status)
            throw RPCError(status)
        }
        // The message is compressed outside the lock (responseCompression is the
        // handler's own: it may read it without the lock).
        let compression = responseCompression
        let framed: [UInt8]
        if compression != .identity && compress {
            if compressor == nil { compressor = MessageCompressor(compression) }
            framed = MessageFramer.frame(try compressor!.compress(message), compressed: true)
        } else {
            framed = MessageFramer.frame(message, compressed: false)
        }
        return try monitor.withLock { try state.queueMessage(framed, compression: compression) }
    }

    /// Ends the call with `status` (trailing metadata from `setTrailingMetadata` or `trailers`).
    public func finish(_ status: Status, trailers: Metadata? = nil) throws {
        if try monitor.mutateAndNotify({ try state.finish(status, trailers: trailers) }) {
            connection.schedule(self)
        }
    }

    /// Whether the call was finished (by the handler, the server, or its end).
    public var isFinishQueued: Bool { monitor.withLock { state.closeQueued } }

    /// Blocks until the call has ended — finished by the handler, or cancelled (client,
    /// deadline, shutdown) — or until `timeout` seconds passed (nil: no limit).
    /// Returns whether the call has ended.
    public func waitUntilEnded(timeout: Double?) -> Bool {
        var deadline: UInt64?
        if let t = timeout {
            let now = monotonicNanos()
            let ns = t <= 0 ? 0 : (t >= 1e10 ? UInt64(1e19) : UInt64(t * 1e9))
            deadline = ns > UInt64.max - now ? UInt64.max : now + ns
        }
        return monitor.wait(until: { self.state.hasEnded }, deadlineNanos: deadline, then: { true }) ?? false
    }
    /// The number of response messages sent so far.
    public var responseCount: Int { monitor.withLock { state.messagesSent } }

    /// The response encoding currently chosen.
    var currentResponseCompression: CompressionAlgorithm { monitor.withLock { responseCompression } }

    // MARK: event-loop handlers (ServerHandler.eventLoop)

    /// The event loop of the call's connection: where an event-loop handler runs, its
    /// receive callbacks run, and a channel sharing it (`GRPCChannel(target:options:eventLoop:)`)
    /// serves a forwarded call on the same thread.
    public var eventLoop: EventLoop { connection.eventLoop }

    /// Event loop only, once: from now on each request message goes to `onMessage` as it
    /// arrives, and the end of the request stream (or the call's end: check
    /// `isCancelled`) to `onEnd`, on the event loop; the messages that arrived before are
    /// delivered now, in order. `receiveMessage()` / `receive()` then have nothing to read.
    public func receiveInline(onMessage: @escaping ([UInt8]) -> Void, onEnd: @escaping () -> Void) {
        eventLoop.preconditionInEventLoop()
        inlineMessage = onMessage
        inlineEnd = onEnd
        let (queued, release, ended) = monitor.withLock { state.takeAllReceived() }
        for m in queued { onMessage(m) }
        if release && !inlinePaused {
            // The window held for the queue goes back now (not inside a read, e.g. from a
            // timer: the WINDOW_UPDATE must be written here, or a sender that spent its
            // window waits for good).
            releaseWindow()
            connection.handler.flush()
        }
        if ended { deliverInlineEnd() }
    }

    /// Event loop: stops acknowledging request bytes (the peer stops once its window is
    /// spent) until `resumeReceiving()` — an event-loop handler whose destination is slow.
    public func pauseReceiving() {
        eventLoop.preconditionInEventLoop()
        inlinePaused = true
        stream.holdWindow = true
    }

    /// Event loop: acknowledges the request bytes held since `pauseReceiving()`.
    public func resumeReceiving() {
        eventLoop.preconditionInEventLoop()
        guard inlinePaused else { return }
        inlinePaused = false
        releaseWindow()
        connection.handler.flush()
    }

    private func releaseWindow() {
        stream.holdWindow = false
        let n = stream.unconsumed
        stream.unconsumed = 0
        connection.session.consume(stream, n)
    }

    /// Queues one response message without waiting (any thread). Returns whether the send
    /// buffer still has room; false: wait for `onSendReady` before sending more. Throws as
    /// `sendMessage`.
    @discardableResult
    public func sendNonBlocking(_ message: [UInt8], compress: Bool = true) throws -> Bool {
        if try queueMessage(message, compress: compress) { connection.schedule(self) }
        return monitor.withLock { state.sendMayContinue }
    }

    /// Runs `body` once the send buffer has room again (on the event loop, as HTTP/2 takes
    /// the bytes: inside the connection's send, where flushing is deferred, not re-entered)
    /// — at once, on this thread, when it has; never once the call has ended (see
    /// `onCancel` / `whenEnded`).
    public func onSendReady(_ body: @escaping @Sendable () -> Void) {
        let now: Bool = monitor.withLock {
            if ended { return false }
            if state.sendMayContinue { return true }
            sendReadyHandlers.append(body)
            return false
        }
        if now { body() }
    }

    /// Runs `body` once the call is over — its status went out, or it was cancelled (the
    /// client, the deadline, the transport, shutdown) — on the call's event loop; at once,
    /// on this thread, when it is over already.
    public func whenEnded(_ body: @escaping @Sendable () -> Void) {
        let now: Bool = monitor.withLock {
            if ended { return true }
            endedHandlers.append(body)
            return false
        }
        if now { body() }
    }

    /// The call is over: runs the whenEnded bodies once.
    private func markEnded() {
        let run: [@Sendable () -> Void] = monitor.withLock {
            if ended { return [] }
            ended = true
            sendReadyHandlers = []
            cancelHandlers = []  // they may hold what holds the call
            defer { endedHandlers = [] }
            return endedHandlers
        }
        for h in run { h() }
    }

    private func deliverInlineEnd() {
        guard let end = inlineEnd else { return }  // once: taken here
        inlineMessage = nil
        inlineEnd = nil
        end()
    }

    // MARK: event-loop side

    /// Delivers a complete request message.
    func deliver(_ message: [UInt8], compressed: Bool) {
        if let m = inlineMessage {
            m(message)
            return
        }
        if monitor.mutateAndNotify({ state.received(message, compressed: compressed) }) {
            stream.holdWindow = true
        }
    }

    func deliverEnd() {
        monitor.mutateAndNotify { state.receivedEnd() }
        if inlineEnd != nil { deliverInlineEnd() }
    }

    /// Runs `body` once the call is cancelled (the client, its deadline, the transport,
    /// the server's shutdown) — at once when it already is; never when the handler
    /// finishes it. It runs on the thread that cancels (an event loop): keep it short
    /// (e.g. resume a waiting task).
    public func onCancel(_ body: @escaping @Sendable () -> Void) {
        let now: Bool = monitor.withLock {
            if state.endStatus != nil && !state.closeQueued { return true }
            if state.endStatus == nil { cancelHandlers.append(body) }
            return false
        }
        if now { body() }
    }

    /// Marks the call cancelled (idempotent; not once its status went out); wakes blocked
    /// readers and senders.
    func markCancelled(_ status: Status) {
        let run: [@Sendable () -> Void] = monitor.mutateAndNotify {
            guard state.end(status, clearInbound: false) else { return [] }
            defer { cancelHandlers = [] }
            return cancelHandlers
        }
        for h in run { h() }
        markEnded()
    }

    /// Whether nothing more goes out on the stream.
    var isOverOnWire: Bool { monitor.withLock { state.transportEnded } }

    /// The transport ends the call with `status` (failure, deadline, shutdown): cancels it
    /// for the handler. Returns whether response headers went out, or nil when the call
    /// was over on the wire already (then nothing is to be written).
    func endByTransport(_ status: Status) -> Bool? {
        let (result, run): (Bool?, [@Sendable () -> Void]) = monitor.mutateAndNotify {
            let ended = state.end(status, clearInbound: false)
            let run = ended ? cancelHandlers : []
            if ended { cancelHandlers = [] }
            return (state.endTransport() ? state.responseStarted : nil, run)
        }
        for h in run { h() }
        markEnded()
        return result
    }

    /// Applies the handler's queued operations (event loop).
    func applyPending() {
        let open = !stream.closed
        let f = monitor.withLock { state.flush(streamOpen: open) }
        if f.releaseWindow {
            stream.holdWindow = false
            let n = stream.unconsumed
            stream.unconsumed = 0
            connection.session.consume(stream, n)
        }
        if case .trailersOnly? = f.head, case .status(let status, let trailers)? = f.end {
            var fields = connection.responseHeaderFields(compression: nil, metadata: nil)
            fields.append(contentsOf: ServerConnection.statusFields(status, trailers))
            connection.session.submitResponse(stream, fields, withBody: false)
        } else {
            if case .headers(let metadata, let compression)? = f.head {
                let fields = connection.responseHeaderFields(
                    compression: compression == .identity ? nil : compression, metadata: metadata)
                connection.session.submitResponse(stream, fields, withBody: true)
            }
            for c in f.data { stream.enqueue(c) }
            if case .status(let status, let trailers)? = f.end {
                stream.endOutbound(trailers: ServerConnection.statusFields(status, trailers))
            }
        }
        if f.finished {
            deadlineTask?.cancel()
            monitor.mutateAndNotify {}
            markEnded()
        }
    }

    /// nghttp2 took `n` queued bytes.
    func drained(_ n: Int) {
        let ready: [@Sendable () -> Void] = monitor.withLock {
            guard state.drained(n) else { return [] }
            for c in monitor.broadcastLocked() { c.resume() }
            defer { sendReadyHandlers = [] }
            return sendReadyHandlers
        }
        for h in ready { h() }
    }
}
