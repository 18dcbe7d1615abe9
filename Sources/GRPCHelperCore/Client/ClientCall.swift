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

    // Shared state (monitor).
    let monitor = Monitor()
    private var inbound = InboundQueue()
    private var lastCompressed = false
    private var initialMetadata: Metadata?
    private var finalStatus: Status?
    private var trailers = Metadata()
    private var pendingChunks: [[UInt8]] = []
    private var pendingHalfClose = false
    private var pendingCancel = false
    private var pendingRelease = false
    private var scheduled = false
    private var unsentBytes = 0
    private var sendClosed = false
    private var started = false
    private var compressor: MessageCompressor?
    // Callback mode.
    private var onMessage: (([UInt8]) -> Void)?
    private var onDone: ((Status) -> Void)?
    private var callbackMode = false
    private var callbackQueue: [() -> Void] = []
    private var callbackQueuedMessages = 0
    private var callbackWindowHeld = false  // the event loop holds back WINDOW_UPDATEs
    private var callbackRunning = false

    // Event-loop state.
    var stream: H2Stream?
    /// Held strongly while the call is attached: a connection draining after GOAWAY is no
    /// longer referenced by the channel, but its streams must still finish. Released when
    /// the stream closes (breaking the connection → stream → call → connection cycle).
    var connection: ClientConnection?
    private var reader: MessageReader
    private var headersReceived = false
    private var elDone = false
    private var deadlineTask: Scheduled<Void>?

    init(channel: GRPCChannel, method: String, options: CallOptions) {
        LiveObjects.created(.clientCall)
        self.channel = channel
        self.method = method
        self.options = options
        self.compression = options.compression ?? channel.options.defaultCompression
        self.reader = MessageReader(limit: channel.options.maxReceiveMessageSize)
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
        let go: Bool = monitor.withLock {
            if started { return false }
            started = true
            return true
        }
        guard go else { return }
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
        monitor.withLock {
            self.onMessage = onMessage
            self.onDone = onDone
            self.callbackMode = true
        }
        start()
    }

    /// Sends one request message; blocks while the server is not reading.
    /// Throws `RPCError` with the call's status once it has ended.
    public func send(_ message: [UInt8], compress: Bool = true) throws {
        let schedule = try queue(message, compress: compress)
        if schedule { _ = channel.execute { self.applyPending() } }
        monitor.wait(until: { self.unsentBytes <= sendBufferLimit || self.finalStatus != nil }, then: {})
    }

    /// Async variant of `send`.
    public func send(_ message: [UInt8], compress: Bool = true) async throws {
        let schedule = try queue(message, compress: compress)
        if schedule { _ = channel.execute { self.applyPending() } }
        await monitor.waitAsync(until: { self.unsentBytes <= sendBufferLimit || self.finalStatus != nil }, then: {})
    }

    private func queue(_ message: [UInt8], compress: Bool) throws -> Bool {
        let framed: [UInt8]
        if compression != .identity && compress {
            if compressor == nil { compressor = MessageCompressor(compression) }
            framed = MessageFramer.frame(try compressor!.compress(message), compressed: true)
        } else {
            framed = MessageFramer.frame(message, compressed: false)
        }
        return try monitor.withLock {
            if let s = finalStatus { throw RPCError(s, trailers: trailers) }
            guard !sendClosed else { throw CallStateError("send after closeSend") }
            pendingChunks.append(framed)
            unsentBytes += framed.count
            return takeScheduleLocked()
        }
    }

    /// Half-closes the request stream.
    public func closeSend() {
        let schedule: Bool = monitor.withLock {
            guard !sendClosed else { return false }
            sendClosed = true
            pendingHalfClose = true
            return takeScheduleLocked()
        }
        if schedule { _ = channel.execute { self.applyPending() } }
    }

    /// Cancels the call: RST_STREAM(CANCEL) to the server, CANCELLED locally.
    public func cancel() {
        let changed = setStatus(Status(.cancelled, "Cancelled"), clearInbound: true)
        guard changed else { return }
        let schedule: Bool = monitor.withLock {
            pendingCancel = true
            return takeScheduleLocked()
        }
        if schedule { _ = channel.execute { self.applyPending() } }
    }

    /// Blocks for the next response message; nil when the response stream ended
    /// (then `waitStatus()` returns at once).
    public func receive() throws -> [UInt8]? {
        let r = monitor.wait(until: { self.readable }, then: { self.popLocked() })!
        return finishPop(r)
    }

    /// Async variant of `receive()`.
    public func receive() async throws -> [UInt8]? {
        let r = await monitor.waitAsync(until: { self.readable }, then: { self.popLocked() })
        return finishPop(r)
    }

    private var readable: Bool { !inbound.isEmpty || finalStatus != nil }

    private func popLocked() -> ([UInt8]?, Bool) {
        guard let m = inbound.pop() else { return (nil, false) }
        lastCompressed = m.compressed
        var schedule = false
        if m.releaseWindow {
            pendingRelease = true
            schedule = takeScheduleLocked()
        }
        return (m.message, schedule)
    }

    private func finishPop(_ r: ([UInt8]?, Bool)) -> [UInt8]? {
        if r.1 { _ = channel.execute { self.applyPending() } }
        return r.0
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
        monitor.wait(until: { self.initialMetadata != nil || self.finalStatus != nil },
                     then: { self.initialMetadata ?? Metadata() })!
    }

    public func initialMetadataAsync() async -> Metadata {
        await monitor.waitAsync(until: { self.initialMetadata != nil || self.finalStatus != nil },
                                then: { self.initialMetadata ?? Metadata() })
    }

    /// Blocks until the call has its status.
    public func waitStatus() -> Status {
        monitor.wait(until: { self.finalStatus != nil }, then: { self.finalStatus! })!
    }

    public func statusAsync() async -> Status {
        await monitor.waitAsync(until: { self.finalStatus != nil }, then: { self.finalStatus! })
    }

    /// The status, or nil while the call runs.
    public var status: Status? { monitor.withLock { finalStatus } }

    /// Trailing metadata (empty until the call ends).
    public var trailingMetadata: Metadata { monitor.withLock { trailers } }

    /// Whether the message last returned by `receive()` arrived compressed (its
    /// compressed flag was set on the wire).
    public var lastMessageWasCompressed: Bool { monitor.withLock { lastCompressed } }

    // MARK: internals

    private func takeScheduleLocked() -> Bool {
        if scheduled { return false }
        scheduled = true
        return true
    }

    /// Sets the final status once. Returns false if it was already set.
    @discardableResult
    func setStatus(_ status: Status, trailers t: Metadata = Metadata(), clearInbound: Bool = false) -> Bool {
        var done: ((Status) -> Void)?
        let changed: Bool = monitor.mutateAndNotify {
            guard finalStatus == nil else { return false }
            finalStatus = status
            trailers = t
            if clearInbound { inbound.removeAll() }
            if callbackMode { done = onDone; onDone = nil; onMessage = nil }
            return true
        }
        if changed, let d = done { enqueueCallback { d(status) } }
        return changed
    }

    private func enqueueCallback(_ body: @escaping () -> Void, isMessage: Bool = false) {
        let startRunner: Bool = monitor.withLock {
            callbackQueue.append(body)
            if isMessage { callbackQueuedMessages += 1 }
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
        if monitor.withLock({ finalStatus != nil }) { return }
        if let d = deadlineNanos {
            let now = monotonicNanos()
            let delay = d > now ? Int64(min(d - now, UInt64(Int64.max))) : 0
            deadlineTask = channel.eventLoop.scheduleTask(in: .nanoseconds(delay)) { [weak self] in
                self?.expire()
            }
        }
        channel.startOnEventLoop(self)
    }

    private func expire() {
        guard !elDone else { return }
        if setStatus(Status(.deadlineExceeded, "Deadline Exceeded"), clearInbound: true) {
            finishOnEventLoop(reset: true)
        }
    }

    /// Fails the call before or while it runs (event loop).
    func fail(_ status: Status) {
        guard !elDone else { return }
        setStatus(status, clearInbound: true)
        finishOnEventLoop(reset: true)
    }

    private func finishOnEventLoop(reset: Bool) {
        guard !elDone else { return }
        elDone = true
        deadlineTask?.cancel()
        if reset, let s = stream, let c = connection, !s.closed {
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
        stream.onDrained = { [weak self] n in self?.drained(n) }
    }

    /// Applies queued operations (event loop).
    func applyPending() {
        guard let s = stream, let c = connection else {
            monitor.withLock { scheduled = false }
            if monitor.withLock({ pendingCancel }) { elDone = true; deadlineTask?.cancel() }
            return
        }
        var chunks: [[UInt8]] = []
        var halfClose = false, cancel = false, release = false
        monitor.withLock {
            chunks = pendingChunks; pendingChunks.removeAll()
            halfClose = pendingHalfClose; pendingHalfClose = false
            cancel = pendingCancel; pendingCancel = false
            release = pendingRelease; pendingRelease = false
            scheduled = false
        }
        if cancel {
            finishOnEventLoop(reset: true)
            return
        }
        if release {
            s.holdWindow = false
            let n = s.unconsumed
            s.unconsumed = 0
            c.session.consume(s, n)
        }
        for ch in chunks { s.enqueue(ch) }
        if halfClose { s.endOutbound(trailers: nil) }
        c.handler.flush()
    }

    private func drained(_ n: Int) {
        monitor.withLock {
            let before = unsentBytes
            unsentBytes -= n
            if before > sendBufferLimit && unsentBytes <= sendBufferLimit {
                for w in monitor.broadcastLocked() { w.resume() }
            }
        }
    }

    private func deliver(_ message: [UInt8], compressed: Bool) {
        // Callback mode: the callback is captured now, since the status (which clears it)
        // may arrive before this message's turn on the callback thread.
        let (callback, hold): ((([UInt8]) -> Void)?, Bool) = monitor.mutateAndNotify {
            guard callbackMode else { return (nil, inbound.push(message, compressed: compressed)) }
            if callbackQueuedMessages > 1 && !callbackWindowHeld {
                callbackWindowHeld = true
                return (onMessage, true)
            }
            return (onMessage, false)
        }
        if hold { stream?.holdWindow = true }
        guard let cb = callback else { return }
        enqueueCallback({ [self] in
            let release: Bool = monitor.withLock {
                callbackQueuedMessages -= 1
                guard callbackQueuedMessages == 0 && callbackWindowHeld else { return false }
                callbackWindowHeld = false
                pendingRelease = true
                return takeScheduleLocked()
            }
            if release { _ = channel.execute { self.applyPending() } }
            cb(message)
        }, isMessage: true)
    }

    // MARK: H2StreamDelegate

    func h2ReceivedHeaders(_ stream: H2Stream, _ fields: [HeaderField], endStream: Bool) {
        guard !elDone else { return }
        if !headersReceived {
            headersReceived = true
            var httpStatus = 0
            var contentType: String?
            var encoding: String?
            for f in fields {
                switch f.name {
                case ":status": httpStatus = Int(f.value) ?? 0
                case "content-type": contentType = f.value
                case "grpc-encoding": encoding = f.value
                default: break
                }
            }
            if httpStatus != 200 {
                fail(Status(StatusCode(httpStatus: httpStatus),
                            "Received http2 header with status: \(httpStatus)"))
                return
            }
            guard let ct = contentType, ct.hasPrefix("application/grpc") else {
                fail(Status(.unknown, "invalid content-type '\(contentType ?? "")' in response"))
                return
            }
            if let e = encoding, e != "identity" {
                guard let alg = CompressionAlgorithm(name: e) else {
                    fail(Status(.internalError, "response uses unsupported compression '\(e)'"))
                    return
                }
                reader.decompressor = MessageDecompressor(alg)
            }
            if endStream {
                // Trailers-only.
                monitor.mutateAndNotify { initialMetadata = Metadata() }
                finishWithTrailers(fields)
                return
            }
            let md = Metadata.fromHeaderFields(fields)
            monitor.mutateAndNotify { initialMetadata = md }
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
        var code: StatusCode?
        var message = ""
        var details: [UInt8]?
        for f in fields {
            switch f.name {
            case "grpc-status":
                // 1*DIGIT; a value outside the defined codes is UNKNOWN.
                if !f.value.isEmpty, f.value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                   let v = Int32(f.value) {
                    code = v <= 16 ? StatusCode(rawValue: v) : .unknown
                } else {
                    code = .unknown
                    message = "invalid grpc-status '\(f.value)'"
                }
            case "grpc-message": message = GRPCMessageCoding.decode(f.value)
            case "grpc-status-details-bin": details = Base64.decode(f.value)
            default: break
            }
        }
        let status = code.map { Status($0, message, details: details) }
            ?? Status(.unknown, "missing grpc-status in trailers")
        setStatus(status, trailers: Metadata.fromHeaderFields(fields))
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
        guard !elDone else { return }
        if let failure = reader.read(bytes, { deliver($0, compressed: $1) }) { fail(failure) }
    }

    func h2ReceivedEndStream(_ stream: H2Stream) {
        // END_STREAM on DATA without trailers: no status.
        guard !elDone else { return }
        fail(Status(.internalError, "server ended the stream without trailers"))
    }

    func h2StreamClosed(_ stream: H2Stream, errorCode: UInt32) {
        stream.onDrained = nil
        defer { connection = nil }
        guard !elDone else { return }
        let status: Status
        switch errorCode {
        case NGHTTP2_REFUSED_STREAM.rawValue: status = Status(.unavailable, "stream refused by the server")
        case NGHTTP2_CANCEL.rawValue:
            // A server whose deadline timer fired first resets with CANCEL (gRPC core maps
            // CANCEL to DEADLINE_EXCEEDED once the deadline has passed).
            if let d = deadlineNanos, monotonicNanos() >= d {
                status = Status(.deadlineExceeded, "Deadline Exceeded")
            } else {
                status = Status(.cancelled, "stream cancelled by the server")
            }
        case NGHTTP2_ENHANCE_YOUR_CALM.rawValue: status = Status(.resourceExhausted, "ENHANCE_YOUR_CALM")
        case NGHTTP2_INADEQUATE_SECURITY.rawValue: status = Status(.permissionDenied, "INADEQUATE_SECURITY")
        case NGHTTP2_NO_ERROR.rawValue: status = Status(.internalError, "stream closed without a status")
        default:
            status = connection?.lostConnection == true
                ? Status(.unavailable, "connection lost")
                : Status(.internalError, "stream reset with HTTP/2 error \(errorCode)")
        }
        fail(status)
    }
}
