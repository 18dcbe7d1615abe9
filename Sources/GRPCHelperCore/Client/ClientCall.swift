import CNghttp2
import NIOCore
import NIOPosix

/// Per-call client options.
public struct CallOptions: Sendable {
    /// Seconds until the deadline; nil: no deadline.
    public var timeout: Double?
    /// Request metadata.
    public var metadata: Metadata
    /// Request compression; nil: the channel's default.
    public var compression: CompressionAlgorithm?
    /// Wait for the server to become reachable (until the deadline) instead of failing at once.
    public var waitForReady: Bool
    public init(timeout: Double? = nil, metadata: Metadata = Metadata(),
                compression: CompressionAlgorithm? = nil, waitForReady: Bool = false) {
        self.timeout = timeout
        self.metadata = metadata
        self.compression = compression
        self.waitForReady = waitForReady
    }
}

/// The client side of one RPC. Sending and receiving may happen on different threads;
/// the HTTP/2 side runs on the channel's event loop.
// @unchecked Sendable: mutable state guarded by `monitor`; stream fields touched only on the channel's loop.
public final class ClientCall: @unchecked Sendable, H2StreamDelegate {
    public let method: String
    public let options: CallOptions
    unowned let channel: GRPCChannel
    let compression: CompressionAlgorithm
    let deadlineNanos: UInt64?

    /// The call's state, shared with the event loop (guarded by `monitor`).
    let monitor = Monitor()
    private var state = CallStateMachine(side: .client)
    // Callback mode (guarded by `monitor`): the callbacks, and the queue of their runs.
    private var onMessage: (([UInt8]) -> Void)?
    private var onDone: ((Status) -> Void)?
    private var callbackQueue: [() -> Void] = []
    private var callbackRunning = false
    // The sender's own.
    private var compressor: MessageCompressor?
    /// onSendReady's bodies (guarded by `monitor`).
    private var sendReadyHandlers: [@Sendable () -> Void] = []
    /// pauseReceiving: the window is held (event loop).
    private var paused = false

    // Event-loop state.
    var stream: H2Stream?
    /// Held strongly while the call is attached: a connection draining after GOAWAY is no
    /// longer referenced by the channel, but its streams must still finish. Released when
    /// the stream closes (breaking the connection → stream → call → connection cycle).
    var connection: ClientConnection?
    private var reader: MessageReader
    private var headersReceived = false
    private var deadlineTask: Scheduled<Void>?

    init(channel: GRPCChannel, method: String, options: CallOptions) {
        LiveObjects.created(.clientCall)
        self.channel = channel
        self.method = method
        self.options = options
        self.compression = options.compression ?? channel.options.defaultCompression
        self.reader = MessageReader(limit: channel.options.maxReceiveMessageSize,
                                    decompresses: channel.options.decompressMessages)
        if let t = options.timeout {
            let ns = t <= 0 ? 0 : (t >= 9e9 ? UInt64(9e18) : UInt64(t * 1e9))
            deadlineNanos = monotonicNanos() + ns
        } else {
            deadlineNanos = nil
        }
    }

    deinit { LiveObjects.destroyed(.clientCall) }

    // MARK: public API

    /// Starts the call (headers are sent as soon as a connection is ready). Does not block.
    public func start() {
        guard monitor.withLock({ state.start() }) else { return }
        startNow()
    }

    private func startNow() {
        guard channel.execute({ self.startOnEventLoop() }) else {
            // The channel is closed: the call ends at once. Its status is set on a thread
            // of its own: completion callbacks never run on the caller's stack.
            NativeThread.startOrRun(name: "gh-call-end") {
                self.setStatus(Status(.cancelled, "channel closed"), clearInbound: true)
            }
            return
        }
    }

    /// Starts the call in callback mode: `onMessage` for each response, then `onDone`.
    /// Callbacks run on the channel's callback threads, one at a time per call.
    public func start(onMessage: @escaping ([UInt8]) -> Void, onDone: @escaping (Status) -> Void) {
        let go: Bool = monitor.withLock {
            self.onMessage = onMessage
            self.onDone = onDone
            return state.start(callbacks: true)
        }
        guard go else { return }
        startNow()
    }

    /// Starts a unary exchange in callback mode: sends `request` and half-closes at once;
    /// the response comes to `onMessage`, the status to `onDone` (as `start(onMessage:onDone:)`).
    public func startUnary(_ request: [UInt8], onMessage: @escaping ([UInt8]) -> Void,
                           onDone: @escaping (Status) -> Void) {
        start(onMessage: onMessage, onDone: onDone)
        try? send(request)
        closeSend()
    }

    /// Sends one request message; blocks while the server is not reading.
    /// Throws `RPCError` with the call's status once it has ended.
    public func send(_ message: [UInt8], compress: Bool = true) throws {
        if try queue(message, compress: compress) { scheduleFlush() }
        monitor.wait(until: { self.state.sendMayContinue }, then: {})
    }

    /// Async variant of `send`.
    public func send(_ message: [UInt8], compress: Bool = true) async throws {
        if try queue(message, compress: compress) { scheduleFlush() }
        await monitor.waitAsync(until: { self.state.sendMayContinue }, then: {})
    }

    private func queue(_ message: [UInt8], compress: Bool) throws -> Bool {
        let limit = channel.options.maxSendMessageSize
        if message.count > limit {
            let status = Status(.resourceExhausted, "CLIENT: Sent message larger than max (\(message.count) vs. \(limit))")
            end(status)
            throw RPCError(status)
        }
        let framed: [UInt8]
        if compression != .identity && compress {
            if compressor == nil { compressor = MessageCompressor(compression) }
            framed = MessageFramer.frame(try compressor!.compress(message), compressed: true)
        } else {
            framed = MessageFramer.frame(message, compressed: false)
        }
        return try monitor.withLock { try state.queueMessage(framed) }
    }

    /// Queues one request message without waiting (any thread). Returns whether the send
    /// buffer still has room; false: wait for `onSendReady` before sending more. Throws as
    /// `send`.
    @discardableResult
    public func sendNonBlocking(_ message: [UInt8], compress: Bool = true) throws -> Bool {
        if try queue(message, compress: compress) { scheduleFlush() }
        return monitor.withLock { state.sendMayContinue }
    }

    /// Runs `body` once the send buffer has room again (on the event loop, as HTTP/2 takes
    /// the bytes), or the call has ended — at once, on this thread, when either is so.
    public func onSendReady(_ body: @escaping @Sendable () -> Void) {
        let now: Bool = monitor.withLock {
            if state.sendMayContinue { return true }
            sendReadyHandlers.append(body)
            return false
        }
        if now { body() }
    }

    /// Event loop (an inline callback, or a task on the loop): stops acknowledging
    /// response bytes (the server stops once its window is spent) until `resumeReceiving()`
    /// — a callback whose destination is slow.
    public func pauseReceiving() {
        channel.eventLoop.preconditionInEventLoop()
        paused = true
        stream?.holdWindow = true
    }

    /// Event loop: acknowledges the response bytes held since `pauseReceiving()`.
    public func resumeReceiving() {
        channel.eventLoop.preconditionInEventLoop()
        guard paused else { return }
        paused = false
        guard let s = stream, let c = connection else { return }
        s.holdWindow = false
        let n = s.unconsumed
        s.unconsumed = 0
        c.session.consume(s, n)
        c.handler.flush()
    }

    /// Half-closes the request stream.
    public func closeSend() {
        if monitor.withLock({ state.closeSend() }) { scheduleFlush() }
    }

    /// Cancels the call: RST_STREAM(CANCEL) to the server, CANCELLED locally.
    public func cancel() { end(Status(.cancelled, "Cancelled")) }

    /// Ends the call with `status` (RST_STREAM CANCEL on the wire), unless it ended already.
    private func end(_ status: Status) {
        let (flush, done, ready): (Bool?, ((Status) -> Void)?, [@Sendable () -> Void]) = monitor.mutateAndNotify {
            let flush = state.cancel(status)
            defer { sendReadyHandlers = [] }
            return (flush, flush == nil ? nil : takeOnDone(), flush == nil ? [] : sendReadyHandlers)
        }
        for h in ready { h() }
        if let d = done { enqueueCallback { d(status) } }
        if flush == true { scheduleFlush() }
    }

    /// Blocks for the next response message; nil when the response stream ended
    /// (then `waitStatus()` returns at once).
    public func receive() throws -> [UInt8]? {
        taken(monitor.wait(until: { self.state.isReadable }, then: { self.state.receive() })!)
    }

    /// Async variant of `receive()`.
    public func receive() async throws -> [UInt8]? {
        taken(await monitor.waitAsync(until: { self.state.isReadable }, then: { self.state.receive() }))
    }

    private func taken(_ r: CallStateMachine.Receive) -> [UInt8]? {
        guard case .message(let m, _, let flush) = r else { return nil }
        if flush { scheduleFlush() }
        return m
    }

    /// A whole unary exchange on this call, not yet started: starts it, sends `request`,
    /// half-closes, then waits for the response (nil if none came) and the status. The
    /// library's one unary sequence (`GRPCChannel.unary`, the C ABI's `gh_call_unary`).
    public func exchangeUnary(_ request: [UInt8]) -> (response: [UInt8]?, status: Status) {
        start()
        try? send(request)
        closeSend()
        let response = (try? receive()) ?? nil
        return (response, waitStatus())
    }

    /// Async variant of `exchangeUnary(_:)`.
    public func exchangeUnary(_ request: [UInt8]) async -> (response: [UInt8]?, status: Status) {
        start()
        try? await send(request)
        closeSend()
        let response = (try? await receive()) ?? nil
        return (response, await statusAsync())
    }

    /// Blocks until the response headers arrive (empty metadata if the call ends without them).
    public func waitInitialMetadata() -> Metadata {
        monitor.wait(until: { self.state.initialMetadata != nil || self.state.endStatus != nil },
                     then: { self.state.initialMetadata ?? Metadata() })!
    }

    public func initialMetadataAsync() async -> Metadata {
        await monitor.waitAsync(until: { self.state.initialMetadata != nil || self.state.endStatus != nil },
                                then: { self.state.initialMetadata ?? Metadata() })
    }

    /// Blocks until the call has its status.
    public func waitStatus() -> Status {
        monitor.wait(until: { self.state.endStatus != nil }, then: { self.state.endStatus! })!
    }

    public func statusAsync() async -> Status {
        await monitor.waitAsync(until: { self.state.endStatus != nil }, then: { self.state.endStatus! })
    }

    /// The status, or nil while the call runs.
    public var status: Status? { monitor.withLock { state.endStatus } }

    /// Trailing metadata (empty until the call ends).
    public var trailingMetadata: Metadata { monitor.withLock { state.trailers } }

    /// Whether the message last returned by `receive()` arrived compressed (its
    /// compressed flag was set on the wire).
    public var lastMessageWasCompressed: Bool { monitor.withLock { state.lastMessageWasCompressed } }

    // MARK: internals

    private func scheduleFlush() {
        _ = channel.execute { self.applyPending() }
    }

    /// Callback mode, under the monitor: takes the completion callback (once).
    private func takeOnDone() -> ((Status) -> Void)? {
        let d = onDone
        onDone = nil
        onMessage = nil
        return d
    }

    /// Ends the call with `status` for its reader and callbacks, once (event loop).
    /// Returns false if it had ended.
    @discardableResult
    func setStatus(_ status: Status, trailers t: Metadata = Metadata(), clearInbound: Bool = false) -> Bool {
        let (changed, done, ready): (Bool, ((Status) -> Void)?, [@Sendable () -> Void]) = monitor.mutateAndNotify {
            guard state.end(status, trailers: t, clearInbound: clearInbound) else { return (false, nil, []) }
            defer { sendReadyHandlers = [] }
            return (true, takeOnDone(), sendReadyHandlers)
        }
        for h in ready { h() }
        if let d = done { enqueueCallback { d(status) } }
        return changed
    }

    private func enqueueCallback(_ body: @escaping () -> Void) {
        if channel.options.inlineCallbacks {
            // On the loop, in order with what the loop delivers.
            if channel.eventLoop.inEventLoop {
                body()
            } else {
                nonisolated(unsafe) let run = body  // runs once, on the loop
                channel.eventLoop.execute { run() }
            }
            return
        }
        let startRunner: Bool = monitor.withLock {
            callbackQueue.append(body)
            if callbackRunning { return false }
            callbackRunning = true
            return true
        }
        if startRunner {
            channel.callbackPool.submit { _ in
                CallbackThread.markCurrent()
                self.runCallbacks()
            }
        }
    }

    private func runCallbacks() {
        while true {
            // Take everything queued at once (in order); stop when nothing is left.
            let batch: [() -> Void] = monitor.withLock {
                let b = callbackQueue
                callbackQueue.removeAll(keepingCapacity: true)
                if b.isEmpty { callbackRunning = false }
                return b
            }
            if batch.isEmpty { return }
            for body in batch { body() }
        }
    }

    // MARK: event loop

    private func startOnEventLoop() {
        if monitor.withLock({ state.endStatus != nil }) { return }
        if let d = deadlineNanos {
            let now = monotonicNanos()
            let delay = d > now ? Int64(min(d - now, UInt64(Int64.max))) : 0
            deadlineTask = channel.eventLoop.scheduleTask(in: .nanoseconds(delay)) { [weak self] in
                self?.expire()
            }
        }
        channel.startOnEventLoop(self)
    }

    /// Whether nothing more goes out on the stream (the call ended on the wire).
    private var isOverOnWire: Bool { monitor.withLock { state.transportEnded } }

    private func expire() {
        guard !isOverOnWire else { return }
        if setStatus(Status(.deadlineExceeded, "Deadline Exceeded"), clearInbound: true) {
            finishOnEventLoop(reset: true)
        }
    }

    /// Fails the call before or while it runs (event loop).
    func fail(_ status: Status) {
        guard !isOverOnWire else { return }
        setStatus(status, clearInbound: true)
        finishOnEventLoop(reset: true)
    }

    private func finishOnEventLoop(reset: Bool) {
        guard monitor.withLock({ state.endTransport() }) else { return }
        deadlineTask?.cancel()
        if reset { resetStream() }
    }

    /// RST_STREAM(CANCEL), if the stream is open.
    private func resetStream() {
        if let s = stream, let c = connection, !s.closed {
            c.session.resetStream(s, errorCode: UInt32(NGHTTP2_CANCEL.rawValue))
            c.handler.flush()
        }
    }

    /// Request headers for this call.
    func requestHeaders(authority: String) -> [HeaderField] {
        var f: [HeaderField] = [
            (":method", "POST"), (":scheme", "http"), (":path", method), (":authority", authority),
            ("content-type", "application/grpc"), ("te", "trailers"),
            ("user-agent", channel.userAgent),
        ]
        if let d = deadlineNanos {
            let now = monotonicNanos()
            f.append(("grpc-timeout", GRPCTimeout.encode(nanoseconds: d > now ? Int64(min(d - now, UInt64(Int64.max))) : 0)))
        }
        if compression != .identity { f.append(("grpc-encoding", compression.name)) }
        f.append(("grpc-accept-encoding", CompressionAlgorithm.acceptEncodingHeader))
        f.append(contentsOf: options.metadata.headerFields())
        return f
    }

    /// Called by the connection once the stream is open (event loop).
    func attached(_ stream: H2Stream, _ connection: ClientConnection) {
        self.stream = stream
        self.connection = connection
        if paused { stream.holdWindow = true }
        stream.onDrained = { [weak self] n in self?.drained(n) }
    }

    /// Applies queued operations (event loop).
    func applyPending() {
        let attachedStream = stream, attachedConnection = connection
        let f = monitor.withLock { state.flush(streamOpen: attachedStream != nil && attachedConnection != nil) }
        if f.finished { deadlineTask?.cancel() }
        guard let s = attachedStream, let c = attachedConnection else { return }
        if case .reset? = f.end {
            resetStream()
            return
        }
        if f.releaseWindow {
            s.holdWindow = false
            let n = s.unconsumed
            s.unconsumed = 0
            c.session.consume(s, n)
        }
        for ch in f.data { s.enqueue(ch) }
        if case .halfClose? = f.end { s.endOutbound(trailers: nil) }
        c.handler.flush()
    }

    private func drained(_ n: Int) {
        let ready: [@Sendable () -> Void] = monitor.withLock {
            guard state.drained(n) else { return [] }
            for w in monitor.broadcastLocked() { w.resume() }
            defer { sendReadyHandlers = [] }
            return sendReadyHandlers
        }
        for h in ready { h() }
    }

    private func deliver(_ message: [UInt8], compressed: Bool) {
        // Callback mode: the callback is captured now, since the status (which clears it)
        // may arrive before this message's turn on the callback thread.
        let (callback, hold): ((([UInt8]) -> Void)?, Bool) = monitor.mutateAndNotify {
            guard state.deliversToCallbacks else { return (nil, state.received(message, compressed: compressed)) }
            guard let cb = onMessage else { return (nil, false) }
            return (cb, state.received(message, compressed: compressed))
        }
        if hold { stream?.holdWindow = true }
        guard let cb = callback else { return }
        enqueueCallback { [self] in
            if monitor.withLock({ state.callbackTookMessage() }) { scheduleFlush() }
            cb(message)
        }
    }

    // MARK: H2StreamDelegate

    func h2ReceivedHeaders(_ stream: H2Stream, _ fields: [HeaderField], endStream: Bool) {
        guard !isOverOnWire else { return }
        if !headersReceived {
            headersReceived = true
            switch ClientResponse.checkHeaders(fields) {
            case .failure(let status):
                fail(status)
                return
            case .success(let encoding):
                if let alg = encoding { reader.decompressor = MessageDecompressor(alg) }
            }
            if endStream {
                // Trailers-only.
                monitor.mutateAndNotify { state.receivedHeaders(Metadata()) }
                finishWithTrailers(fields)
                return
            }
            let md = Metadata.fromHeaderFields(fields)
            monitor.mutateAndNotify { state.receivedHeaders(md) }
            return
        }
        // Trailers.
        finishWithTrailers(fields)
    }

    private func finishWithTrailers(_ fields: [HeaderField]) {
        if reader.hasPartialMessage {
            fail(Status(.internalError, "response stream ended inside a message"))
            return
        }
        setStatus(ClientResponse.status(fromTrailers: fields), trailers: Metadata.fromHeaderFields(fields))
        finishOnEventLoop(reset: false)
        // The status arrived while we still send: stop (RST_STREAM NO_ERROR), so the stream
        // closes even if the server does not reset it itself.
        if let s = stream, let c = connection, !s.closed, c.session.isLocalOpen(s) {
            c.session.resetStream(s, errorCode: UInt32(NGHTTP2_NO_ERROR.rawValue))
            c.handler.flush()
        }
    }

    func h2HeadersTooLarge(_ stream: H2Stream, size: Int) {
        fail(Status(.resourceExhausted, "response header list of \(size) bytes exceeds the limit"))
    }

    func h2ReceivedData(_ stream: H2Stream, _ bytes: UnsafeRawBufferPointer) {
        guard !isOverOnWire else { return }
        if let failure = reader.read(bytes, { deliver($0, compressed: $1) }) { fail(failure) }
    }

    func h2ReceivedEndStream(_ stream: H2Stream) {
        // END_STREAM on DATA without trailers: no status.
        guard !isOverOnWire else { return }
        fail(Status(.internalError, "server ended the stream without trailers"))
    }

    func h2StreamClosed(_ stream: H2Stream, errorCode: UInt32) {
        stream.onDrained = nil
        defer { connection = nil }
        guard !isOverOnWire else { return }
        if stream.headersNotSent {
            fail(Status(.internalError, "the request's header block could not be sent: over HTTP/2's limit "
                        + "(64 KiB) for a header block (its metadata is too large)"))
            return
        }
        let deadlinePassed = deadlineNanos.map { monotonicNanos() >= $0 } ?? false
        fail(ClientResponse.status(forReset: errorCode, deadlinePassed: deadlinePassed,
                                   connectionLost: connection?.lostConnection == true,
                                   lostBecause: connection?.lostBecause))
    }
}
