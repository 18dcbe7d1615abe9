/// The state of one call, client or server side, without I/O.
///
/// `ServerCall` and `ClientCall` keep one under their monitor and are shells around it:
/// the application's thread (a handler, or the caller of a client call) and the event
/// loop report events to it (a message queued, a message received, bytes drained, the
/// call ended), and it answers with what to do (throw, block, schedule a flush, hold or
/// release the receive window) — and, when the event loop flushes, with what to write.
///
/// Both sides share the same parts: received messages waiting for the reader (with the
/// window held while the reader is behind), queued outbound operations applied by the
/// event loop in one flush, the send buffer that makes `send` block, and how the call
/// ended. The sides differ where gRPC does: a server sends response headers (or a
/// trailers-only response) and ends with a status; a client half-closes or resets.
struct CallStateMachine {
    enum Side: Sendable { case client, server }

    /// How the outbound side ends.
    enum End {
        /// Server: trailers with the status.
        case status(Status, Metadata)
        /// Client: END_STREAM after the request messages.
        case halfClose
        /// Client: RST_STREAM(CANCEL).
        case reset
    }

    /// The server's response headers.
    enum Head {
        /// HEADERS with the metadata, messages following in `compression`.
        case headers(Metadata, CompressionAlgorithm)
        /// Nothing was sent before the status: one HEADERS frame with the status
        /// (`Flush.end` holds it).
        case trailersOnly
    }

    /// What the event loop writes when it flushes the call, in this order.
    struct Flush {
        /// Give the peer back the receive window held while the reader was behind.
        var releaseWindow = false
        var head: Head?
        var data: [[UInt8]] = []
        var end: End?
        /// The call is now over on the wire (its deadline timer can go).
        var finished = false
    }

    /// What a read gets.
    enum Receive {
        /// A message; `flush` when the event loop must run (to release the window).
        case message([UInt8], compressed: Bool, flush: Bool)
        /// The end of the peer's messages.
        case end
        /// Server: the call was cancelled (client, deadline, shutdown).
        case cancelled(Status)
    }

    let side: Side
    /// Server: whether the method streams responses (else it sends at most one).
    private let streamsOutbound: Bool

    init(side: Side, streamsOutbound: Bool = true) {
        self.side = side
        self.streamsOutbound = streamsOutbound
    }

    // MARK: state

    // Inbound.
    private var inbound = InboundQueue()
    private var inboundEnded = false
    /// Whether the message last read arrived compressed.
    private(set) var lastMessageWasCompressed = false
    /// Client: messages go to callbacks, not to `receive()`; how many wait there, and
    /// whether the window is held for them.
    private(set) var deliversToCallbacks = false
    private var callbackMessages = 0
    private var callbackWindowHeld = false
    /// Client: the response headers' metadata, once they arrived.
    private(set) var initialMetadata: Metadata?

    /// How the call ended for the application: the server's cancellation (client,
    /// deadline, shutdown), the client's final status. Nil while it runs (and on a server
    /// call that its handler finished).
    private(set) var endStatus: Status?
    /// Client: the trailers that came with the status.
    private(set) var trailers = Metadata()

    // Outbound, queued by the application and taken by the event loop's flush.
    private var started = false
    private var headersQueued = false
    private var explicitHeaders = false
    private var pendingHead: (Metadata, CompressionAlgorithm)?
    private var pendingData: [[UInt8]] = []
    private var pendingEnd: End?
    private var pendingRelease = false
    private var flushScheduled = false
    /// Framed bytes queued and not yet taken by HTTP/2.
    private(set) var unsentBytes = 0
    private(set) var messagesSent = 0
    /// The outbound side was closed by the application (server finish, client
    /// closeSend or cancel).
    private(set) var closeQueued = false
    /// Server: the trailing metadata sent with the status.
    private(set) var trailingMetadata = Metadata()

    // Progress on the wire (changed by the event loop).
    private(set) var responseStarted = false
    /// Nothing more goes out on the stream: the end was written, or the transport ended
    /// the call (failure, deadline, shutdown, the peer's status).
    private(set) var transportEnded = false

    // MARK: application side

    /// Client: starts the call once; false if it was started already.
    mutating func start(callbacks: Bool = false) -> Bool {
        if callbacks { deliversToCallbacks = true }
        if started { return false }
        started = true
        return true
    }

    /// Whether `receive()` has something to return now.
    var isReadable: Bool {
        !inbound.isEmpty || endStatus != nil || (side == .server && inboundEnded)
    }

    /// Takes the next received message, or says why there is none (call when readable).
    mutating func receive() -> Receive {
        if let m = inbound.pop() {
            lastMessageWasCompressed = m.compressed
            var flush = false
            if m.releaseWindow {
                pendingRelease = true
                flush = scheduleFlush()
            }
            return .message(m.message, compressed: m.compressed, flush: flush)
        }
        if side == .server, let s = endStatus { return .cancelled(s) }
        return .end
    }

    /// Server, when an event-loop handler takes over receiving: every message received and
    /// not read yet, whether the window held for them goes back now, and whether the
    /// request stream has ended.
    mutating func takeAllReceived() -> (messages: [[UInt8]], releaseWindow: Bool, ended: Bool) {
        var out: [[UInt8]] = []
        var release = false
        while let m = inbound.pop() {
            out.append(m.message)
            if m.releaseWindow { release = true }
        }
        return (out, release, inboundEnded)
    }

    /// Server: whether the response compression may still change (no headers queued).
    var canSetCompression: Bool { messagesSent == 0 && !headersQueued }

    /// Server: queues the response headers now. Returns whether to schedule a flush.
    mutating func queueHeaders(_ metadata: Metadata, compression: CompressionAlgorithm) throws -> Bool {
        if let s = endStatus { throw RPCError(s) }
        guard !headersQueued, !closeQueued else { throw CallStateError("initial metadata already sent") }
        headersQueued = true
        explicitHeaders = true
        pendingHead = (metadata, compression)
        return scheduleFlush()
    }

    /// Queues one framed message (`compression`: the response encoding, for the headers a
    /// server's first message brings). Returns whether to schedule a flush.
    mutating func queueMessage(_ framed: [UInt8], compression: CompressionAlgorithm = .identity) throws -> Bool {
        switch side {
        case .server:
            if let s = endStatus { throw RPCError(s) }
            guard !closeQueued else { throw CallStateError("call already finished") }
            if !streamsOutbound && messagesSent > 0 {
                throw CallStateError("a single-response method sends exactly one response")
            }
            if !headersQueued {
                headersQueued = true
                pendingHead = (Metadata(), compression)
            }
        case .client:
            if let s = endStatus { throw RPCError(s, trailers: trailers) }
            guard !closeQueued else { throw CallStateError("send after closeSend") }
        }
        messagesSent += 1
        unsentBytes += framed.count
        pendingData.append(framed)
        return scheduleFlush()
    }

    /// Whether a sender may go on: its bytes are within the send buffer, or the call is over.
    var sendMayContinue: Bool { unsentBytes <= sendBufferLimit || endStatus != nil || transportEnded }

    /// Server: sets the trailing metadata sent with the status.
    mutating func setTrailingMetadata(_ metadata: Metadata) { trailingMetadata = metadata }

    /// Server: ends the call with `status`. Returns whether to schedule a flush.
    mutating func finish(_ status: Status, trailers: Metadata?) throws -> Bool {
        guard !closeQueued else { throw CallStateError("call already finished") }
        closeQueued = true
        if let t = trailers { trailingMetadata = t }
        pendingEnd = .status(status, trailingMetadata)
        return scheduleFlush()
    }

    /// Server: whether the handler's part is over (finished, or cancelled).
    var hasEnded: Bool { closeQueued || endStatus != nil }

    /// Client: half-closes (once). Returns whether to schedule a flush.
    mutating func closeSend() -> Bool {
        guard !closeQueued else { return false }
        closeQueued = true
        pendingEnd = .halfClose
        return scheduleFlush()
    }

    /// Client: cancels with `status` unless the call has ended. Returns nil when it had,
    /// else whether to schedule a flush (which resets the stream).
    mutating func cancel(_ status: Status) -> Bool? {
        guard end(status, clearInbound: true) else { return nil }
        closeQueued = true
        pendingEnd = .reset
        return scheduleFlush()
    }

    /// Client, callback mode: the callback of one delivered message is about to run.
    /// Returns whether to schedule a flush (the window held for the callbacks goes back).
    mutating func callbackTookMessage() -> Bool {
        callbackMessages -= 1
        guard callbackMessages == 0 && callbackWindowHeld else { return false }
        callbackWindowHeld = false
        pendingRelease = true
        return scheduleFlush()
    }

    private mutating func scheduleFlush() -> Bool {
        if flushScheduled { return false }
        flushScheduled = true
        return true
    }

    // MARK: event-loop side

    /// A complete message arrived. Returns whether to hold back WINDOW_UPDATEs now (the
    /// reader, or the callbacks, are more than one message behind).
    mutating func received(_ message: [UInt8], compressed: Bool) -> Bool {
        guard deliversToCallbacks else { return inbound.push(message, compressed: compressed) }
        callbackMessages += 1
        if callbackMessages > 1 && !callbackWindowHeld {
            callbackWindowHeld = true
            return true
        }
        return false
    }

    /// Server: the request stream ended.
    mutating func receivedEnd() { inboundEnded = true }

    /// Client: the response headers arrived.
    mutating func receivedHeaders(_ metadata: Metadata) { initialMetadata = metadata }

    /// Ends the call for the application with `status` (and, on a client, `trailers`), once:
    /// false if it had ended (a server call also when its handler's status went out).
    /// `clearInbound` drops received messages not yet read.
    mutating func end(_ status: Status, trailers: Metadata = Metadata(), clearInbound: Bool) -> Bool {
        guard endStatus == nil else { return false }
        if side == .server && transportEnded { return false }
        endStatus = status
        self.trailers = trailers
        if clearInbound { inbound.removeAll() }
        return true
    }

    /// Nothing more goes out on the stream (the transport ended the call). Returns false
    /// if that was so already.
    mutating func endTransport() -> Bool {
        if transportEnded { return false }
        transportEnded = true
        return true
    }

    /// HTTP/2 took `n` queued bytes. Returns whether blocked senders must wake.
    mutating func drained(_ n: Int) -> Bool {
        let before = unsentBytes
        unsentBytes -= n
        return before > sendBufferLimit && unsentBytes <= sendBufferLimit
    }

    /// Takes what to write now. `streamOpen`: a server's stream is still open, a client's
    /// stream exists (a client call waiting for a connection keeps its operations until
    /// its stream is opened and flushed again).
    mutating func flush(streamOpen: Bool) -> Flush {
        flushScheduled = false
        var f = Flush()
        if side == .client && !streamOpen {
            if case .reset? = pendingEnd, endTransport() { f.finished = true }
            return f
        }
        // A release asked when the reader caught up is void if it fell behind again
        // before this flush (the queue holds anew, and releases when it next runs empty):
        // releasing now would leave the window open for good under a slow reader.
        f.releaseWindow = pendingRelease && !inbound.isHolding && !callbackWindowHeld
        pendingRelease = false
        let head = pendingHead
        pendingHead = nil
        let data = pendingData
        pendingData.removeAll()
        let end = pendingEnd
        pendingEnd = nil
        switch side {
        case .server:
            guard streamOpen, !transportEnded else { return f }
            if case .status? = end, !responseStarted, data.isEmpty, !explicitHeaders {
                // Nothing sent yet: a trailers-only response (never once the handler sent
                // initial metadata: that must arrive as initial metadata).
                f.head = .trailersOnly
            } else if let (metadata, compression) = head, !responseStarted {
                responseStarted = true
                f.head = .headers(metadata, compression)
            }
        case .client:
            if case .reset? = end {
                // Cancelled: nothing else goes out (once).
                f.releaseWindow = false
                if endTransport() {
                    f.end = .reset
                    f.finished = true
                }
                return f
            }
        }
        f.data = data
        if let e = end {
            f.end = e
            if side == .server { f.finished = endTransport() }
        }
        return f
    }
}
