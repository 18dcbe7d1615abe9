import CNghttp2
import NIOCore
import NIOPosix

/// The gRPC server logic for one accepted connection (event loop only, except `schedule`).
// @unchecked Sendable: confined to `eventLoop` (other threads only hop there), except the
// scheduled-calls list, guarded by `scheduleLock`.
final class ServerConnection: H2StreamDelegate, @unchecked Sendable {
    let server: Server
    let session: H2Session
    let handler: H2ConnectionHandler
    let eventLoop: EventLoop
    let peer: String
    private var calls: [ObjectIdentifier: ServerCall] = [:]
    /// Bytes of request messages not yet complete that this connection's calls hold
    /// (event loop; also counted in the server's `partialMessageBytes`).
    private var partialBytes = 0

    /// Workers this connection's blocking calls hold (guarded by the server's `workerLock`).
    var workersHeld = 0

    // Cross-thread scheduling of call operations.
    private let scheduleLock = Monitor()
    private var scheduledCalls: [ServerCall] = []
    private var drainScheduled = false

    init(server: Server, channel: Channel) {
        self.server = server
        let o = server.options
        self.session = H2Session(isServer: true, maxHeaderListSize: o.maxHeaderListSize,
                                 maxConcurrentStreams: o.maxConcurrentStreams,
                                 initialWindowSize: o.initialWindowSize)
        self.handler = H2ConnectionHandler(session: session)
        self.eventLoop = channel.eventLoop
        self.peer = peerDescription(channel.remoteAddress)
        session.onNewStream = { [unowned self] stream in stream.delegate = self }
        LiveObjects.created(.serverConnection)
    }

    deinit { LiveObjects.destroyed(.serverConnection) }

    // MARK: keepalive, ping policy, idle and age (event loop)

    private var lastPingReceivedNanos: UInt64 = 0
    private var pingStrikes = 0
    private var idleTimer: Scheduled<Void>?
    private var ageTimers: [Scheduled<Void>] = []

    /// Once the connection's handler is in its pipeline (event loop).
    func started() {
        let o = server.options
        if let t = o.keepaliveTime {
            handler.startKeepalive(.init(time: t, timeout: o.keepaliveTimeout,
                                         permitWithoutCalls: o.keepalivePermitWithoutCalls))
        }
        if o.maxPingStrikes > 0 {
            session.onPingReceived = { [unowned self] in self.pingReceived() }
            // As gRPC's: sending data clears the strikes and the last PING's time.
            session.onHeadersOrDataSent = { [unowned self] in
                self.pingStrikes = 0
                self.lastPingReceivedNanos = 0
            }
        }
        if o.maxConnectionIdle != nil { callsChanged() }
        if let age = o.maxConnectionAge {
            // ±10 %, so that connections made together do not all go at once (as gRPC).
            let jittered = age * Double.random(in: 0.9...1.1)
            ageTimers.append(eventLoop.scheduleTask(in: seconds(jittered)) { [weak self] in
                guard let self else { return }
                self.goAway()
                if let grace = o.maxConnectionAgeGrace {
                    self.ageTimers.append(self.eventLoop.scheduleTask(in: seconds(grace)) { [weak self] in
                        // As gRPC's: the connection is closed; its calls end UNAVAILABLE.
                        self?.handler.close(because: "the connection reached its maximum age")
                    })
                }
            })
        }
    }

    /// The connection is gone (event loop): its timers stop.
    func stopped() {
        isStopped = true
        idleTimer?.cancel()
        idleTimer = nil
        for t in ageTimers { t.cancel() }
        ageTimers.removeAll()
    }

    /// A PING from the client (inside nghttp2's receive): gRPC's ping policy. PINGs closer
    /// together than allowed (`minPingIntervalWithoutData`; 2 hours while no call is open
    /// unless `keepalivePermitWithoutCalls`) are strikes, cleared when the server sends
    /// HEADERS or DATA; past `maxPingStrikes` the connection ends with GOAWAY
    /// ENHANCE_YOUR_CALM "too_many_pings".
    private func pingReceived() {
        let o = server.options
        let now = monotonicNanos()
        defer { lastPingReceivedNanos = now }
        guard lastPingReceivedNanos != 0 else { return }
        let allowed = calls.isEmpty && !o.keepalivePermitWithoutCalls ? 7200 : o.minPingIntervalWithoutData
        guard Double(now &- lastPingReceivedNanos) / 1e9 < allowed else { return }
        pingStrikes += 1
        guard pingStrikes > o.maxPingStrikes, !tooManyPings else { return }
        tooManyPings = true
        session.submitGoAway(errorCode: NGHTTP2_ENHANCE_YOUR_CALM.rawValue, debug: "too_many_pings")
        // Closed once the GOAWAY is out (after this read).
        eventLoop.execute { [weak self] in
            // As gRPC's: the connection is closed; its calls end UNAVAILABLE.
            self?.handler.close(because: "the client sent too many pings")
        }
    }

    private var tooManyPings = false

    /// After a call opened or closed: with `maxConnectionIdle`, a connection without calls
    /// gets a GOAWAY once it has been idle that long.
    private var isStopped = false

    private func callsChanged() {
        guard let idle = server.options.maxConnectionIdle, !isStopped else { return }
        if calls.isEmpty {
            guard idleTimer == nil else { return }
            idleTimer = eventLoop.scheduleTask(in: seconds(idle)) { [weak self] in
                guard let self else { return }
                self.idleTimer = nil
                if self.calls.isEmpty { self.goAway() }
            }
        } else {
            idleTimer?.cancel()
            idleTimer = nil
        }
    }

    // MARK: scheduling from handler threads

    func schedule(_ call: ServerCall) {
        let needTask: Bool = scheduleLock.withLock {
            scheduledCalls.append(call)
            if drainScheduled { return false }
            drainScheduled = true
            return true
        }
        if needTask {
            eventLoop.execute { self.drainScheduledCalls() }
        }
    }

    private func drainScheduledCalls() {
        let batch: [ServerCall] = scheduleLock.withLock {
            let b = scheduledCalls
            scheduledCalls.removeAll(keepingCapacity: true)
            drainScheduled = false
            return b
        }
        for c in batch { c.applyPending() }
        handler.flush()
    }

    // MARK: header helpers

    func responseHeaderFields(compression: CompressionAlgorithm?, metadata: Metadata?) -> [HeaderField] {
        var f: [HeaderField] = [(":status", "200"), ("content-type", "application/grpc")]
        if let c = compression { f.append(("grpc-encoding", c.name)) }
        f.append(("grpc-accept-encoding", CompressionAlgorithm.acceptEncodingHeader))
        if let m = metadata { f.append(contentsOf: m.headerFields()) }
        return f
    }

    /// The most of a status message sent (its UTF-8 bytes; the rest is cut, and said so):
    /// percent-encoded, at most 3× that, which keeps the trailers within what gRPC
    /// clients accept by default (8 KiB of metadata in grpcio) and far below the 64 KiB an
    /// HTTP/2 header block may take.
    static let maxStatusMessageBytes = 2048

    static func statusFields(_ status: Status, _ trailers: Metadata) -> [HeaderField] {
        var f: [HeaderField] = [("grpc-status", String(status.code.rawValue))]
        if !status.message.isEmpty {
            f.append(("grpc-message", GRPCMessageCoding.encode(capped(status.message, maxStatusMessageBytes))))
        }
        if let d = status.details { f.append(("grpc-status-details-bin", Base64.encode(d))) }
        f.append(contentsOf: trailers.headerFields())
        return f
    }

    /// Answers a stream that never reached a handler.
    private func reject(_ stream: H2Stream, httpStatus: Int = 200, _ status: Status) {
        var f: [HeaderField] = [(":status", String(httpStatus)), ("content-type", "application/grpc")]
        if status.code == .unimplemented {
            f.append(("grpc-accept-encoding", CompressionAlgorithm.acceptEncodingHeader))
        }
        f.append(contentsOf: ServerConnection.statusFields(status, Metadata()))
        session.submitResponse(stream, f, withBody: false)
    }

    // MARK: H2StreamDelegate

    private func call(for stream: H2Stream) -> ServerCall? {
        calls[ObjectIdentifier(stream)]
    }

    func h2ReceivedHeaders(_ stream: H2Stream, _ fields: [HeaderField], endStream: Bool) {
        if let call = call(for: stream) {
            // Trailers from a client are not part of gRPC; treat as end of stream.
            if endStream { endOfRequest(call) }
            return
        }
        openCall(stream, fields, endStream: endStream)
    }

    func h2HeadersTooLarge(_ stream: H2Stream, size: Int) {
        if let call = call(for: stream) {
            fail(call, Status(.resourceExhausted, "trailers too large (\(size) bytes)"))
            return
        }
        reject(stream, Status(.resourceExhausted,
                              "request header list of \(size) bytes exceeds the limit of \(server.options.maxHeaderListSize)"))
    }

    private func openCall(_ stream: H2Stream, _ fields: [HeaderField], endStream: Bool) {
        var method = "", path = "", contentType = "", te = "", timeout: String?, encoding: String?
        var accept: String?, userAgent: String?
        for f in fields {
            switch f.name {
            case ":method": method = f.value
            case ":path": path = f.value
            case "content-type": contentType = f.value
            case "te": te = f.value
            case "grpc-timeout": timeout = f.value
            case "grpc-encoding": encoding = f.value
            case "grpc-accept-encoding": accept = f.value
            case "user-agent": userAgent = f.value
            default: break
            }
        }
        // The request checks, in one place and in grpclib's order: method, content-type,
        // te, path, timeout, then encoding.
        guard method == "POST" else {
            reject(stream, httpStatus: 405, Status(.internalError, "method \(method) not allowed; gRPC requires POST"))
            return
        }
        guard contentType.hasPrefix("application/grpc") else {
            reject(stream, httpStatus: 415, Status(.internalError, "invalid content-type '\(contentType)'"))
            return
        }
        guard te == "trailers" || te.lowercased() == "trailers" else {
            reject(stream, httpStatus: 400, Status(.internalError, "Required \"te: trailers\" header is missing"))
            return
        }
        guard let registered = server.registry[path] ?? server.fallback else {
            reject(stream, Status(.unimplemented, "Method not found: \(capped(path, 256))"))
            return
        }
        var deadline: UInt64?
        if let t = timeout {
            guard let ns = GRPCTimeout.parse(t) else {
                reject(stream, Status(.internalError, "malformed grpc-timeout header '\(t)'"))
                return
            }
            let now = monotonicNanos()
            deadline = UInt64(ns) > UInt64.max - now ? UInt64.max : now + UInt64(ns)
        }
        var requestEncoding = CompressionAlgorithm.identity
        if let e = encoding {
            guard let alg = CompressionAlgorithm(name: e) else {
                reject(stream, Status(.unimplemented, "Compression algorithm '\(e)' is not supported"))
                return
            }
            requestEncoding = alg
        }
        guard server.acceptsCalls else {
            // A stream that arrives once the shutdown began (the client had not seen the
            // GOAWAY notice yet) is refused unprocessed: a gRPC client may retry it
            // elsewhere transparently (grpcio does; this library's channel ends the call
            // UNAVAILABLE "stream refused by the server").
            session.resetStream(stream, errorCode: UInt32(NGHTTP2_REFUSED_STREAM.rawValue))
            return
        }
        let call = ServerCall(
            method: path, cardinality: registered.cardinality,
            metadata: Metadata.fromHeaderFields(fields), peer: peer, deadlineNanos: deadline,
            requestEncoding: requestEncoding,
            acceptEncoding: accept.map(CompressionAlgorithm.parseAcceptEncoding) ?? ["identity"],
            defaultCompression: server.options.defaultCompression, connection: self, stream: stream,
            maxReceiveMessageSize: server.options.maxReceiveMessageSize,
            maxSendMessageSize: server.options.maxSendMessageSize,
            decompresses: server.options.decompressMessages)
        call.userAgent = userAgent
        calls[ObjectIdentifier(stream)] = call
        if idleTimer != nil { callsChanged() }
        stream.onDrained = { [unowned call] n in call.drained(n) }
        if let d = deadline {
            let now = monotonicNanos()
            let delay = d > now ? Int64(min(d - now, UInt64(Int64.max))) : 0
            call.deadlineTask = eventLoop.scheduleTask(in: .nanoseconds(delay)) { [weak self, weak call] in
                guard let self = self, let call = call else { return }
                self.expire(call)
            }
        }
        if registered.cardinality.streamsRequests {
            server.run(call, registered.handler)
        } else {
            pendingDispatch[ObjectIdentifier(stream)] = registered.handler
        }
        if endStream { endOfRequest(call) }
    }

    private var pendingDispatch: [ObjectIdentifier: ServerHandler] = [:]

    private func endOfRequest(_ call: ServerCall) {
        if call.reader.hasPartialMessage {
            fail(call, Status(.internalError, "request stream ended inside a message"))
            return
        }
        call.deliverEnd()
        if let h = pendingDispatch.removeValue(forKey: ObjectIdentifier(call.stream)) {
            server.run(call, h)
        }
    }

    func h2ReceivedData(_ stream: H2Stream, _ bytes: UnsafeRawBufferPointer) {
        guard let call = call(for: stream), !call.isOverOnWire else { return }
        if let failure = call.reader.read(bytes, { call.deliver($0, compressed: $1) }) {
            releasePartial(call)
            fail(call, failure)
            return
        }
        // The bytes held for an incomplete message count against the connection's and the
        // server's budgets (most messages arrive whole: nothing to count).
        let held = call.reader.partialBytes
        let delta = held - call.countedPartialBytes
        guard delta != 0 else { return }
        call.countedPartialBytes = held
        partialBytes += delta
        let serverTotal = server.partialMessageBytes.add(delta)
        guard delta > 0 else { return }
        let o = server.options
        let over: String?
        if partialBytes > o.maxPartialMessageBytesPerConnection {
            over = "\(partialBytes) bytes of incomplete request messages held on this connection "
                + "(limit \(o.maxPartialMessageBytesPerConnection))"
        } else if serverTotal > o.maxPartialMessageBytes {
            over = "\(serverTotal) bytes of incomplete request messages held by the server "
                + "(limit \(o.maxPartialMessageBytes))"
        } else {
            over = nil
        }
        if let over {
            releasePartial(call)
            fail(call, Status(.resourceExhausted, over))
        }
    }

    /// Takes a call's partial-message bytes out of the budgets and drops them.
    private func releasePartial(_ call: ServerCall) {
        call.reader.discardPartial()
        guard call.countedPartialBytes != 0 else { return }
        partialBytes -= call.countedPartialBytes
        _ = server.partialMessageBytes.add(-call.countedPartialBytes)
        call.countedPartialBytes = 0
    }

    /// The connection is gone (event loop): what its calls held leaves the server's budget.
    func releaseAllPartial() {
        for (_, call) in calls { releasePartial(call) }
    }

    func h2ReceivedEndStream(_ stream: H2Stream) {
        if let call = call(for: stream) { endOfRequest(call) }
    }

    func h2StreamClosed(_ stream: H2Stream, errorCode: UInt32) {
        pendingDispatch.removeValue(forKey: ObjectIdentifier(stream))
        guard let call = calls.removeValue(forKey: ObjectIdentifier(stream)) else { return }
        if calls.isEmpty && server.options.maxConnectionIdle != nil { callsChanged() }
        releasePartial(call)
        call.deadlineTask?.cancel()
        // A call over on the wire (the usual end) is not cancelled: no status to make.
        if !call.isOverOnWire { call.markCancelled(cancellationStatus(call, errorCode: errorCode)) }
        call.deliverEnd()
        stream.onDrained = nil
    }

    /// How far our deadline may trail the client's: ours starts when the request headers
    /// arrive, the client's before it sent them.
    static let deadlineSkewNanos: UInt64 = 100_000_000

    /// Why a stream the peer closed was cancelled. A client whose deadline expires resets
    /// the stream with CANCEL, usually just before our own timer fires, so CANCEL at (or
    /// within the skew of) the deadline means DEADLINE_EXCEEDED, as in gRPC core.
    private func cancellationStatus(_ call: ServerCall, errorCode: UInt32) -> Status {
        if let reason = handler.closeReason { return Status(.unavailable, "connection closed: \(reason)") }
        guard errorCode == NGHTTP2_CANCEL.rawValue else {
            return Status(.cancelled, "stream closed (HTTP/2 error \(errorCode))")
        }
        if let d = call.deadlineNanos, monotonicNanos() &+ ServerConnection.deadlineSkewNanos >= d {
            return Status(.deadlineExceeded, "Deadline Exceeded")
        }
        return Status(.cancelled, "cancelled by the client")
    }

    /// Ends a call with an error status decided by the transport (not the handler).
    private func fail(_ call: ServerCall, _ status: Status) {
        // Cancels the call for its handler in any case; writes the status if it can.
        let responseStarted = call.endByTransport(status)
        if !call.stream.closed, let responseStarted {
            if responseStarted {
                call.stream.endOutbound(trailers: ServerConnection.statusFields(status, Metadata()))
            } else {
                reject(call.stream, status)
            }
            // Stop the client sending more once the status is out.
            call.stream.resetAfterLocalEnd = true
        }
        pendingDispatch.removeValue(forKey: ObjectIdentifier(call.stream))
    }

    private func expire(_ call: ServerCall) {
        let status = Status(.deadlineExceeded, "Deadline Exceeded")
        guard let responseStarted = call.endByTransport(status) else { return }
        pendingDispatch.removeValue(forKey: ObjectIdentifier(call.stream))
        // As gRPC core: tell the client DEADLINE_EXCEEDED, then RST_STREAM(NO_ERROR). A bare
        // RST_STREAM(CANCEL) reads as CANCELLED to a client whose own timer has not fired yet.
        // Only when response data is still queued (the trailers would wait behind it) reset.
        if !call.stream.closed && !responseStarted {
            reject(call.stream, status)
            call.stream.resetAfterLocalEnd = true
        } else if !call.stream.closed && call.stream.outboundBytes == 0 && !call.stream.outboundEnded {
            call.stream.endOutbound(trailers: ServerConnection.statusFields(status, Metadata()))
            call.stream.resetAfterLocalEnd = true
        } else {
            session.resetStream(call.stream, errorCode: UInt32(NGHTTP2_CANCEL.rawValue))
        }
        handler.flush()
    }

    /// Graceful shutdown, step 1 (event loop): a GOAWAY notice (last stream 2^31-1) and a
    /// PING; when the PING comes back, every stream the client opened before it saw the
    /// notice has arrived, and the final GOAWAY names the last one. The server takes no new
    /// calls from the shutdown's start: streams that arrive meanwhile are reset
    /// REFUSED_STREAM (not processed: safe to retry). Without an answer within a second, the
    /// final GOAWAY goes anyway.
    func goAway() {
        guard !goAwayStarted else { return }
        goAwayStarted = true
        session.submitShutdownNotice()
        session.submitPing()
        session.onPingAck = { [weak self] in self?.finalGoAway() }
        goAwayFallback = eventLoop.scheduleTask(in: .seconds(1)) { [weak self] in self?.finalGoAway() }
        handler.flush()
    }

    private var goAwayStarted = false
    private var goAwaySent = false
    private var goAwayFallback: Scheduled<Void>?

    private func finalGoAway() {
        guard !goAwaySent else { return }
        goAwaySent = true
        goAwayFallback?.cancel()
        session.onPingAck = nil
        session.submitGoAway()
        handler.flush()
    }

    /// Shutdown, step 2: cancel everything still running (event loop).
    func cancelAll() {
        for (_, call) in calls where call.endByTransport(Status(.unavailable, "server shutting down")) != nil {
            session.resetStream(call.stream, errorCode: UInt32(NGHTTP2_CANCEL.rawValue))
        }
        pendingDispatch.removeAll()
        handler.flush()
    }

}

/// `text` cut to at most `maxBytes` UTF-8 bytes at a Unicode scalar boundary, with how
/// much was cut said at its end; `text` itself when it is short enough.
func capped(_ text: String, _ maxBytes: Int) -> String {
    let total = text.utf8.count
    guard total > maxBytes else { return text }
    var kept = String.UnicodeScalarView()
    var bytes = 0
    for u in text.unicodeScalars {
        let n = UTF8.width(u)
        if bytes + n > maxBytes { break }
        kept.append(u)
        bytes += n
    }
    return String(kept) + "... (\(total - bytes) more bytes cut)"
}

/// `s` seconds as a NIO time amount (bounded).
func seconds(_ s: Double) -> TimeAmount { .nanoseconds(Int64(min(max(s, 0), 1e9) * 1e9)) }
