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

    // Shared with the event loop (guarded by monitor).
    let monitor = Monitor()
    private var inbound = InboundQueue()
    private var inboundEnded = false
    private var cancelStatus: Status?       // set once the call is cancelled/expired
    // Pending outbound operations, applied on the event loop.
    private var pendingHeaders: Metadata?
    private var pendingChunks: [[UInt8]] = []
    private var pendingFinish: (Status, Metadata)?
    private var pendingReleaseWindow = false
    private var scheduled = false
    private var unsentBytes = 0
    // Handler-side state: written by the handler's thread under the monitor (the event
    // loop reads some of it there too).
    private var headersQueued = false
    private var explicitHeaders = false     // sendInitialMetadata was called
    private var finishQueued = false
    private var responsesSent = 0
    private var trailingMetadata = Metadata()
    private var responseCompression: CompressionAlgorithm
    private var compressor: MessageCompressor?

    /// The compression algorithms the client accepts for responses (its
    /// grpc-accept-encoding), e.g. ["identity", "deflate", "gzip"].
    public let clientAcceptEncoding: [String]

    // Event-loop-only state.
    var reader: MessageReader
    var responseStarted = false
    var elFinished = false
    var deadlineTask: Scheduled<Void>?

    init(method: String, cardinality: RPCCardinality, metadata: Metadata, peer: String,
         deadlineNanos: UInt64?, requestEncoding: CompressionAlgorithm, acceptEncoding: [String],
         defaultCompression: CompressionAlgorithm, connection: ServerConnection, stream: H2Stream,
         maxReceiveMessageSize: Int) {
        LiveObjects.created(.serverCall)
        self.method = method
        self.cardinality = cardinality
        self.requestMetadata = metadata
        self.peer = peer
        self.deadlineNanos = deadlineNanos
        self.requestEncoding = requestEncoding
        self.connection = connection
        self.stream = stream
        self.reader = MessageReader(limit: maxReceiveMessageSize)
        self.clientAcceptEncoding = acceptEncoding
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
    public var isCancelled: Bool { monitor.withLock { cancelStatus != nil } }

    /// Why the call was cancelled, if it was.
    public var cancellationStatus: Status? { monitor.withLock { cancelStatus } }

    /// Whether the message last returned by `receive()`/`receiveMessage()` arrived
    /// compressed (its compressed flag was set on the wire).
    public var lastMessageWasCompressed: Bool { monitor.withLock { lastCompressed } }
    private var lastCompressed = false

    /// Blocks for the next request message: nil at the end of the request stream.
    /// Throws `RPCError` (CANCELLED / DEADLINE_EXCEEDED) once the call is cancelled.
    public func receiveMessage() throws -> [UInt8]? {
        let r = monitor.wait(until: { self.readable }, then: { self.popLocked() })!
        return try finishPop(r)
    }

    /// Async variant of `receiveMessage()`.
    public func receive() async throws -> [UInt8]? {
        let r = await monitor.waitAsync(until: { self.readable }, then: { self.popLocked() })
        return try finishPop(r)
    }

    private var readable: Bool { !inbound.isEmpty || inboundEnded || cancelStatus != nil }

    private enum Pop { case message([UInt8], release: Bool), end, cancelled(Status) }

    private func popLocked() -> Pop {
        if let m = inbound.pop() {
            lastCompressed = m.compressed
            var schedule = false
            if m.releaseWindow {
                pendingReleaseWindow = true
                schedule = takeScheduleLocked()
            }
            return .message(m.message, release: schedule)
        }
        if let s = cancelStatus { return .cancelled(s) }
        return .end
    }

    private func finishPop(_ r: Pop) throws -> [UInt8]? {
        switch r {
        case .message(let m, let release):
            if release { connection.schedule(self) }
            return m
        case .end: return nil
        case .cancelled(let s): throw RPCError(s)
        }
    }

    /// Sets the response compression (before the response headers are sent: before the
    /// first message and before `sendInitialMetadata`).
    public func setCompression(_ algorithm: CompressionAlgorithm) throws {
        try monitor.withLock {
            guard responsesSent == 0, !headersQueued else {
                throw CallStateError("compression must be set before the response headers are sent")
            }
            responseCompression = algorithm
        }
    }

    /// Sends the response headers now with `metadata`.
    public func sendInitialMetadata(_ metadata: Metadata) throws {
        let schedule: Bool = try monitor.withLock {
            if let s = cancelStatus { throw RPCError(s) }
            guard !headersQueued, !finishQueued else {
                throw CallStateError("initial metadata already sent")
            }
            headersQueued = true
            explicitHeaders = true
            pendingHeaders = metadata
            return takeScheduleLocked()
        }
        if schedule { connection.schedule(self) }
    }

    /// Sets trailing metadata sent with the status.
    public func setTrailingMetadata(_ metadata: Metadata) {
        monitor.withLock { trailingMetadata = metadata }
    }

    /// Sends one response message, blocking while the client is not reading.
    public func sendMessage(_ message: [UInt8], compress: Bool = true) throws {
        let schedule = try queueMessage(message, compress: compress)
        if schedule { connection.schedule(self) }
        monitor.wait(until: { self.sendMayContinue }, then: {})
    }

    /// Async variant of `sendMessage`.
    public func send(_ message: [UInt8], compress: Bool = true) async throws {
        let schedule = try queueMessage(message, compress: compress)
        if schedule { connection.schedule(self) }
        await monitor.waitAsync(until: { self.sendMayContinue }, then: {})
    }

    private var elFinishedShared = false

    /// Under the monitor: queued response bytes are within the limit, or the call is over.
    private var sendMayContinue: Bool {
        unsentBytes <= sendBufferLimit || cancelStatus != nil || elFinishedShared
    }

    private func queueMessage(_ message: [UInt8], compress: Bool) throws -> Bool {
        // responseCompression is written only by this (the handler's) thread, so it can be
        // read here without the lock; the message is compressed outside it.
        let framed: [UInt8]
        if responseCompression != .identity && compress {
            if compressor == nil { compressor = MessageCompressor(responseCompression) }
            framed = MessageFramer.frame(try compressor!.compress(message), compressed: true)
        } else {
            framed = MessageFramer.frame(message, compressed: false)
        }
        return try monitor.withLock {
            if let s = cancelStatus { throw RPCError(s) }
            guard !finishQueued else { throw CallStateError("call already finished") }
            if !cardinality.streamsResponses && responsesSent > 0 {
                throw CallStateError("a single-response method sends exactly one response")
            }
            responsesSent += 1
            if !headersQueued {
                headersQueued = true
                pendingHeaders = Metadata()
            }
            unsentBytes += framed.count
            pendingChunks.append(framed)
            return takeScheduleLocked()
        }
    }

    /// Ends the call with `status` (trailing metadata from `setTrailingMetadata` or `trailers`).
    public func finish(_ status: Status, trailers: Metadata? = nil) throws {
        let schedule: Bool = try monitor.mutateAndNotify {
            guard !finishQueued else { throw CallStateError("call already finished") }
            finishQueued = true
            if let t = trailers { trailingMetadata = t }
            pendingFinish = (status, trailingMetadata)
            return takeScheduleLocked()
        }
        if schedule { connection.schedule(self) }
    }

    /// Whether the call was finished (by the handler, the server, or its end).
    public var isFinishQueued: Bool { monitor.withLock { finishQueued } }

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
        return monitor.wait(until: { self.finishQueued || self.cancelStatus != nil },
                            deadlineNanos: deadline, then: { true }) ?? false
    }
    /// The number of response messages sent so far.
    public var responseCount: Int { monitor.withLock { responsesSent } }

    /// The response encoding currently chosen.
    var currentResponseCompression: CompressionAlgorithm { monitor.withLock { responseCompression } }

    private func takeScheduleLocked() -> Bool {
        if scheduled { return false }
        scheduled = true
        return true
    }

    // MARK: event-loop side

    /// Delivers a complete request message.
    func deliver(_ message: [UInt8], compressed: Bool) {
        if monitor.mutateAndNotify({ inbound.push(message, compressed: compressed) }) {
            stream.holdWindow = true
        }
    }

    func deliverEnd() {
        monitor.mutateAndNotify { inboundEnded = true }
    }

    /// Marks the call cancelled (idempotent); wakes blocked readers and senders.
    func markCancelled(_ status: Status) {
        monitor.mutateAndNotify {
            if cancelStatus == nil && !elFinishedShared { cancelStatus = status }
        }
    }

    /// Applies the handler's queued operations (event loop).
    func applyPending() {
        var headers: Metadata?
        var chunks: [[UInt8]] = []
        var finish: (Status, Metadata)?
        var release = false
        var compression = CompressionAlgorithm.identity
        var explicit = false
        monitor.withLock {
            explicit = explicitHeaders
            headers = pendingHeaders; pendingHeaders = nil
            chunks = pendingChunks; pendingChunks.removeAll()
            finish = pendingFinish; pendingFinish = nil
            release = pendingReleaseWindow; pendingReleaseWindow = false
            compression = responseCompression
            scheduled = false
        }
        if release {
            stream.holdWindow = false
            let n = stream.unconsumed
            stream.unconsumed = 0
            connection.session.consume(stream, n)
        }
        guard !stream.closed, !elFinished else { return }
        if let finish = finish, !responseStarted, chunks.isEmpty, !explicit {
            // Nothing sent yet: a trailers-only response (never when the handler sent
            // initial metadata: that must arrive as initial metadata).
            var fields = connection.responseHeaderFields(compression: nil, metadata: headers)
            fields.append(contentsOf: ServerConnection.statusFields(finish.0, finish.1))
            connection.session.submitResponse(stream, fields, withBody: false)
            finishedOnEventLoop()
            return
        }
        if let headers = headers, !responseStarted {
            responseStarted = true
            let fields = connection.responseHeaderFields(
                compression: compression == .identity ? nil : compression, metadata: headers)
            connection.session.submitResponse(stream, fields, withBody: true)
        }
        for c in chunks { stream.enqueue(c) }
        if let finish = finish {
            stream.endOutbound(trailers: ServerConnection.statusFields(finish.0, finish.1))
            finishedOnEventLoop()
        }
    }

    private func finishedOnEventLoop() {
        elFinished = true
        deadlineTask?.cancel()
        monitor.mutateAndNotify { elFinishedShared = true }
    }

    /// nghttp2 took `n` queued bytes.
    func drained(_ n: Int) {
        monitor.withLock {
            let before = unsentBytes
            unsentBytes -= n
            if before > sendBufferLimit && unsentBytes <= sendBufferLimit {
                for c in monitor.broadcastLocked() { c.resume() }
            }
        }
    }
}
