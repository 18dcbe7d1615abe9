import CNghttp2
import NIOCore

/// Drives an `H2Session` from a NIO channel: bytes in → `nghttp2_session_mem_recv`,
/// bytes out ← `nghttp2_session_mem_send`. Everything here runs on the channel's event loop.
// @unchecked Sendable: confined to its channel's event loop (made elsewhere, then only used
// there).
final class H2ConnectionHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let session: H2Session
    private(set) var context: ChannelHandlerContext?
    private var flushPending = false
    /// Called once when the connection is gone (closed or failed).
    var onInactive: (() -> Void)?

    init(session: H2Session) {
        self.session = session
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { activate(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // The context holds this handler: keeping it would be a cycle.
        self.context = nil
        onInactive = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        activate(context)
        context.fireChannelActive()
    }

    private var activated = false
    private func activate(_ context: ChannelHandlerContext) {
        guard !activated else { return }
        activated = true
        flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if keepalive != nil { lastReadNanos = monotonicNanos() }
        let ok = buffer.withUnsafeReadableBytes { session.receive($0) }
        if !ok {
            // Fatal protocol error: nghttp2 queued a GOAWAY; send it and close.
            flush()
            context.close(promise: nil)
            return
        }
        flushPending = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if flushPending { flush() }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stopKeepalive()
        shutdownStreams()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private var inactiveReported = false
    private func shutdownStreams() {
        guard !inactiveReported else { return }
        inactiveReported = true
        // The owner learns first that the connection is gone, so the streams closed below
        // are seen as lost with it (a client reports UNAVAILABLE, not an HTTP/2 error).
        onInactive?()
        // Every open stream is gone with the connection.
        let open = session.streams
        session.streams.removeAll()
        for (_, s) in open {
            s.closed = true
            s.delegate?.h2StreamClosed(s, errorCode: UInt32(NGHTTP2_INTERNAL_ERROR.rawValue))
            s.release()
        }
    }

    /// The most bytes taken from nghttp2 per write; between two writes the socket's state
    /// is looked at again.
    static let writeChunkBytes = 128 * 1024

    /// Writes what nghttp2 has to send, while the socket keeps up. Call after submitting
    /// frames.
    ///
    /// HTTP/2 flow control is the peer's to give away (a peer may open 2^31-1 byte windows
    /// and then never read); what bounds the bytes held for a connection is the socket: once
    /// NIO's outbound buffer is over its high-water mark (the channel is not writable), frames
    /// stay inside nghttp2 — the streams' send buffers fill, and handlers' sends wait, as
    /// they do for a closed window — until `channelWritabilityChanged` says it drained.
    func flush() {
        // Inside nghttp2's receive (a callback submitted frames): mem_send must not re-enter;
        // channelReadComplete flushes. Inside this flush's own send (a data source drained:
        // its call's onSendReady bodies may flush): the loop below sends again.
        if session.inRecv || flushing {
            flushPending = true
            return
        }
        flushing = true
        defer { flushing = false }
        repeat {
            flushPending = false
            guard let context = context, context.channel.isActive else { return }
            guard context.channel.isWritable else {
                // Resumed by channelWritabilityChanged.
                waitingForWritable = true
                return
            }
            var out = context.channel.allocator.buffer(capacity: 0)
            let (ok, more) = session.drainOutput(into: &out, limit: H2ConnectionHandler.writeChunkBytes)
            if out.readableBytes > 0 {
                context.writeAndFlush(NIOAny(out), promise: nil)
            }
            if !ok {
                context.close(promise: nil)
                return
            }
            if more {
                flushPending = true
                continue
            }
            if !session.wantsRead && !session.wantsWrite {
                context.close(promise: nil)
                return
            }
        } while flushPending
    }

    /// The last flush stopped at an unwritable socket (event loop only).
    private var waitingForWritable = false

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && waitingForWritable {
            waitingForWritable = false
            flush()
        }
        context.fireChannelWritabilityChanged()
    }

    /// In `flush`'s send (event loop only).
    private var flushing = false

    // MARK: keepalive (event loop only)

    struct Keepalive {
        /// Seconds without anything read from the peer before a PING is sent.
        var time: Double
        /// Seconds the PING's acknowledgement may take; then the connection is closed.
        var timeout: Double
        /// Ping also while no stream is open.
        var permitWithoutCalls: Bool
    }

    private var keepalive: Keepalive?
    private var keepaliveTimer: Scheduled<Void>?
    private var keepaliveAckTimer: Scheduled<Void>?
    private var lastReadNanos: UInt64 = 0
    /// Why this side closed the connection (a keepalive PING not answered), for the calls
    /// it ends.
    private(set) var closeReason: String?

    /// Sends a PING after `time` seconds in which nothing was read from the peer (while a
    /// stream is open, or always with `permitWithoutCalls`), and closes the connection
    /// when its acknowledgement does not come within `timeout`: a peer that vanished
    /// (stopped, unplugged, its packets dropped) is noticed. Call once the channel is active.
    func startKeepalive(_ k: Keepalive) {
        guard keepalive == nil, k.time > 0 else { return }
        keepalive = k
        lastReadNanos = monotonicNanos()
        session.onKeepaliveAck = { [weak self] in self?.keepaliveAcknowledged() }
        scheduleKeepalive(after: k.time)
    }

    /// A later keepalive interval (the peer asked for fewer pings).
    func slowKeepalive(to time: Double) {
        guard var k = keepalive, time > k.time else { return }
        k.time = time
        keepalive = k
    }

    private func scheduleKeepalive(after seconds: Double) {
        guard let context = context else { return }
        keepaliveTimer?.cancel()
        keepaliveTimer = context.eventLoop.scheduleTask(in: .nanoseconds(Int64(min(max(seconds, 0), 1e9) * 1e9))) {
            [weak self] in self?.keepaliveDue()
        }
    }

    private func keepaliveDue() {
        keepaliveTimer = nil
        guard let k = keepalive, let context = context, context.channel.isActive, keepaliveAckTimer == nil else { return }
        let quiet = Double(monotonicNanos() &- lastReadNanos) / 1e9
        if quiet < k.time {
            // The peer spoke meanwhile: it is there.
            scheduleKeepalive(after: k.time - quiet)
            return
        }
        if !k.permitWithoutCalls && session.streams.isEmpty {
            scheduleKeepalive(after: k.time)
            return
        }
        session.submitKeepalivePing()
        flush()
        keepaliveAckTimer = context.eventLoop.scheduleTask(in: .nanoseconds(Int64(min(k.timeout, 1e9) * 1e9))) {
            [weak self] in
            guard let self, let context = self.context else { return }
            self.keepaliveAckTimer = nil
            self.close(because: "keepalive ping not answered within \(formatSeconds(k.timeout)) s")
        }
    }

    /// Closes the connection (event loop), saying why to the calls it ends.
    func close(because reason: String) {
        if closeReason == nil { closeReason = reason }
        context?.close(promise: nil)
    }

    private func keepaliveAcknowledged() {
        keepaliveAckTimer?.cancel()
        keepaliveAckTimer = nil
        if let k = keepalive { scheduleKeepalive(after: k.time) }
    }

    private func stopKeepalive() {
        keepaliveTimer?.cancel()
        keepaliveTimer = nil
        keepaliveAckTimer?.cancel()
        keepaliveAckTimer = nil
    }
}

/// Seconds as people write them: "20", "0.5".
func formatSeconds(_ s: Double) -> String {
    s == s.rounded() && abs(s) < 1e15 ? String(Int(s)) : String(s)
}
