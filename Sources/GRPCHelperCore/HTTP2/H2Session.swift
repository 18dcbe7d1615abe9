import CNghttp2
import NIOCore

/// A header field as received or sent on the wire.
typealias HeaderField = (name: String, value: String)

/// What a stream's owner (the gRPC server or client logic) hears from the HTTP/2 layer.
/// Every method is called on the connection's event loop, from inside nghttp2 callbacks:
/// implementations may submit frames; a `flush()` there is deferred to the end of the read.
protocol H2StreamDelegate: AnyObject {
    /// A complete header block (request/response headers, or trailers).
    func h2ReceivedHeaders(_ stream: H2Stream, _ fields: [HeaderField], endStream: Bool)
    /// A header block that exceeded the local max header list size (its fields dropped).
    func h2HeadersTooLarge(_ stream: H2Stream, size: Int)
    /// A chunk of DATA payload.
    func h2ReceivedData(_ stream: H2Stream, _ bytes: UnsafeRawBufferPointer)
    /// END_STREAM on a DATA frame (END_STREAM on HEADERS is reported with the headers).
    func h2ReceivedEndStream(_ stream: H2Stream)
    /// The stream is closed; `errorCode` is the RST_STREAM / GOAWAY code (0 = NO_ERROR).
    func h2StreamClosed(_ stream: H2Stream, errorCode: UInt32)
}

/// One HTTP/2 stream: its outbound buffer (pulled by nghttp2's data provider) and its
/// flow-control bookkeeping. Event-loop only.
final class H2Stream {
    var id: Int32 = -1
    unowned let session: H2Session
    var delegate: H2StreamDelegate?

    // Header block being received.
    fileprivate var fields: [HeaderField] = []
    fileprivate var fieldBytes = 0
    fileprivate var tooLarge = false

    // Outbound data, pulled by the data provider.
    private var outbound: [[UInt8]] = []
    private var outboundChunk = 0         // index of the chunk being sent
    private var outboundHead = 0          // read offset into outbound[outboundChunk]
    private(set) var outboundBytes = 0
    /// No data will follow what is buffered; the provider ends the stream (with the
    /// trailers below if set, else with END_STREAM on the last DATA frame).
    private(set) var outboundEnded = false
    private var trailers: [HeaderField]?
    private var deferred = false
    /// Called (on the event loop) with the number of bytes nghttp2 took from `outbound`.
    var onDrained: ((Int) -> Void)?

    /// Bytes received but not yet handed back to the peer's flow-control window.
    var unconsumed = 0
    /// While true, received bytes are not acknowledged (the reader is behind).
    var holdWindow = false
    var closed = false
    /// Reset the stream with NO_ERROR once our END_STREAM is sent, if the peer is still sending.
    var resetAfterLocalEnd = false
    /// nghttp2 could not send one of our header blocks (over its 64 KiB limit for a block
    /// it sends): the peer never got it.
    var headersNotSent = false

    /// Drops the references a closed stream holds (its delegate holds the stream back).
    func release() {
        delegate = nil
        onDrained = nil
    }

    init(session: H2Session) {
        self.session = session
        LiveObjects.created(.h2Stream)
    }

    deinit { LiveObjects.destroyed(.h2Stream) }

    /// Queues bytes for sending.
    func enqueue(_ bytes: [UInt8]) {
        guard !bytes.isEmpty, !outboundEnded else { return }
        outbound.append(bytes)
        outboundBytes += bytes.count
        resumeIfDeferred()
    }

    /// Ends the outbound side after the buffered bytes, optionally with trailers.
    func endOutbound(trailers: [HeaderField]?) {
        guard !outboundEnded else { return }
        outboundEnded = true
        self.trailers = trailers
        resumeIfDeferred()
    }

    private func resumeIfDeferred() {
        if deferred && id > 0 && !closed {
            deferred = false
            nghttp2_session_resume_data(session.raw, id)
        }
    }

    /// The data provider's read: copies up to `length` bytes into `buf`.
    fileprivate func read(into buf: UnsafeMutablePointer<UInt8>, length: Int,
                          flags: UnsafeMutablePointer<UInt32>) -> Int {
        var written = 0
        while written < length, outboundChunk < outbound.count {
            let chunk = outbound[outboundChunk]
            let n = min(length - written, chunk.count - outboundHead)
            chunk.withUnsafeBufferPointer { src in
                (buf + written).update(from: src.baseAddress! + outboundHead, count: n)
            }
            written += n
            outboundHead += n
            if outboundHead == chunk.count {
                outbound[outboundChunk] = []
                outboundChunk += 1
                outboundHead = 0
            }
        }
        // Drop sent chunks in bulk (removing one at a time from the front is O(n) each).
        if outboundChunk == outbound.count {
            outbound.removeAll(keepingCapacity: true)
            outboundChunk = 0
        } else if outboundChunk >= 64 && outboundChunk * 2 >= outbound.count {
            outbound.removeFirst(outboundChunk)
            outboundChunk = 0
        }
        outboundBytes -= written
        if written > 0 { onDrained?(written) }
        if outboundChunk == outbound.count && outboundEnded {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            if let trailers = trailers {
                flags.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                session.submitTrailer(id, trailers)
            }
            return written
        }
        if written == 0 {
            deferred = true
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        }
        return written
    }
}

/// Owns one nghttp2 session (client or server) for one connection.
/// Every call happens on the connection's event loop.
final class H2Session {
    private(set) var raw: OpaquePointer!
    let isServer: Bool
    var streams: [Int32: H2Stream] = [:]
    /// Called for a new stream opened by the peer (server side), to set its delegate.
    var onNewStream: ((H2Stream) -> Void)?
    var onGoAway: ((_ lastStreamID: Int32, _ errorCode: UInt32) -> Void)?
    /// Called when the peer acknowledges a PING we sent (not a keepalive ping).
    var onPingAck: (() -> Void)?
    /// Called when the peer acknowledges a keepalive PING (`submitKeepalivePing`).
    var onKeepaliveAck: (() -> Void)?
    /// Called for each PING the peer sends (nghttp2 acknowledges it itself). Runs inside
    /// `receive`: submit frames only.
    var onPingReceived: (() -> Void)?
    /// Called when a HEADERS or DATA frame of ours went out (set only when needed).
    var onHeadersOrDataSent: (() -> Void)?
    /// The debug data of the last GOAWAY received (read in `onGoAway`).
    private(set) var lastGoAwayDebug = ""
    /// Called for each SETTINGS frame from the peer (not for ACKs), after nghttp2 applied it.
    /// Runs inside `receive`: submit frames only, never flush.
    var onSettings: (() -> Void)?
    let maxHeaderListSize: Int
    /// True while nghttp2 is delivering callbacks from `receive` (no flush allowed then).
    private(set) var inRecv = false

    init(isServer: Bool, maxHeaderListSize: Int, maxConcurrentStreams: Int?, initialWindowSize: Int) {
        self.isServer = isServer
        self.maxHeaderListSize = maxHeaderListSize
        LiveObjects.created(.h2Session)
        var cbs: OpaquePointer?
        nghttp2_session_callbacks_new(&cbs)
        defer { nghttp2_session_callbacks_del(cbs) }
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, onBeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(cbs, onHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, onFrameRecv)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, onDataChunk)
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, onStreamClose)
        nghttp2_session_callbacks_set_on_frame_send_callback(cbs, onFrameSend)
        nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, onFrameNotSend)
        var opt: OpaquePointer?
        nghttp2_option_new(&opt)
        defer { nghttp2_option_del(opt) }
        nghttp2_option_set_no_auto_window_update(opt, 1)
        let me = Unmanaged.passUnretained(self).toOpaque()
        var session: OpaquePointer?
        if isServer {
            nghttp2_session_server_new2(&session, cbs, me, opt)
        } else {
            nghttp2_session_client_new2(&session, cbs, me, opt)
        }
        raw = session
        var settings: [nghttp2_settings_entry] = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue),
                                   value: UInt32(initialWindowSize)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue),
                                   value: UInt32(maxHeaderListSize)),
        ]
        if let m = maxConcurrentStreams {
            settings.append(nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: UInt32(m)))
        }
        nghttp2_submit_settings(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), settings, settings.count)
        // A large connection window: per-stream windows do the real flow control.
        nghttp2_session_set_local_window_size(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0,
                                              Int32(min(max(initialWindowSize * 16, 1 << 24), Int(Int32.max))))
    }

    deinit {
        nghttp2_session_del(raw)
        LiveObjects.destroyed(.h2Session)
    }

    // MARK: input / output

    /// Feeds received bytes. Returns false on a fatal protocol error (close the connection).
    func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        inRecv = true
        defer { inRecv = false }
        guard let base = bytes.baseAddress else { return true }
        let rv = nghttp2_session_mem_recv(raw, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        guard rv < 0 else { return true }
        // nghttp2 queues a GOAWAY itself for the protocol errors it finds in frames; for
        // those it returns instead (a flood of frames to acknowledge, too many CONTINUATION
        // frames, a connection that is not HTTP/2) the peer is told here, before the close
        // (a GOAWAY already queued stays the one sent).
        let code: nghttp2_error_code
        switch Int32(rv) {
        case NGHTTP2_ERR_FLOODED.rawValue, NGHTTP2_ERR_TOO_MANY_CONTINUATIONS.rawValue:
            code = NGHTTP2_ENHANCE_YOUR_CALM
        default:
            code = NGHTTP2_PROTOCOL_ERROR
        }
        nghttp2_session_terminate_session(raw, code.rawValue)
        return false
    }

    /// Collects pending output bytes into `buffer` until it holds `limit` bytes or more.
    /// `ok` false: a fatal error (close the connection); `more`: output remains.
    func drainOutput(into buffer: inout ByteBuffer, limit: Int = Int.max) -> (ok: Bool, more: Bool) {
        while true {
            var ptr: UnsafePointer<UInt8>?
            let n = nghttp2_session_mem_send(raw, &ptr)
            if n < 0 { return (false, false) }
            if n == 0 { return (true, false) }
            buffer.writeBytes(UnsafeRawBufferPointer(start: ptr, count: n))
            if buffer.readableBytes >= limit { return (true, true) }
        }
    }

    var wantsRead: Bool { nghttp2_session_want_read(raw) != 0 }
    var wantsWrite: Bool { nghttp2_session_want_write(raw) != 0 }

    // MARK: submitting

    private static func withNV<R>(_ fields: [HeaderField], _ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        // One contiguous byte buffer for all names and values; nghttp2 copies them.
        var storage: [UInt8] = []
        storage.reserveCapacity(fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count })
        var ranges: [(Int, Int, Int, Int)] = []
        ranges.reserveCapacity(fields.count)
        for f in fields {
            let n0 = storage.count; storage.append(contentsOf: f.name.utf8)
            let v0 = storage.count; storage.append(contentsOf: f.value.utf8)
            ranges.append((n0, v0 - n0, v0, storage.count - v0))
        }
        if storage.isEmpty { storage.append(0) }
        return storage.withUnsafeMutableBufferPointer { buf -> R in
            let base = buf.baseAddress!
            var nva = ranges.map { r in
                nghttp2_nv(name: base + r.0, value: base + r.2, namelen: r.1, valuelen: r.3,
                           flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            return nva.withUnsafeMutableBufferPointer { nv in body(nv.baseAddress!, nv.count) }
        }
    }

    private func dataProvider(for stream: H2Stream) -> nghttp2_data_provider {
        var prd = nghttp2_data_provider()
        prd.source.ptr = Unmanaged.passUnretained(stream).toOpaque()
        prd.read_callback = dataRead
        return prd
    }

    /// Client: opens a stream with request headers; its body comes from `stream`'s buffer.
    func submitRequest(_ stream: H2Stream, _ fields: [HeaderField]) -> Bool {
        var prd = dataProvider(for: stream)
                let id = H2Session.withNV(fields) { nv, n in
            nghttp2_submit_request(raw, nil, nv, n, &prd, Unmanaged.passUnretained(stream).toOpaque())
        }
        guard id > 0 else { return false }
        stream.id = id
        streams[id] = stream
        return true
    }

    /// Server: sends response headers; with `withBody` the body comes from the stream's buffer,
    /// otherwise the headers end the stream (a trailers-only response).
    func submitResponse(_ stream: H2Stream, _ fields: [HeaderField], withBody: Bool) {
        if withBody {
            var prd = dataProvider(for: stream)
                        _ = H2Session.withNV(fields) { nv, n in nghttp2_submit_response(raw, stream.id, nv, n, &prd) }
        } else {
            _ = H2Session.withNV(fields) { nv, n in nghttp2_submit_response(raw, stream.id, nv, n, nil) }
        }
    }

    fileprivate func submitTrailer(_ id: Int32, _ fields: [HeaderField]) {
        _ = H2Session.withNV(fields) { nv, n in nghttp2_submit_trailer(raw, id, nv, n) }
    }

    /// Whether our side of the stream may still send (no END_STREAM sent yet).
    func isLocalOpen(_ stream: H2Stream) -> Bool {
        stream.id > 0 && !stream.closed && nghttp2_session_get_stream_local_close(raw, stream.id) == 0
    }

    func resetStream(_ stream: H2Stream, errorCode: UInt32) {
        guard stream.id > 0, !stream.closed else { return }
        nghttp2_submit_rst_stream(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream.id, errorCode)
    }

    /// Returns window to the peer for `count` bytes the application has taken.
    func consume(_ stream: H2Stream, _ count: Int) {
        guard count > 0 else { return }
        if stream.closed || stream.id <= 0 {
            nghttp2_session_consume_connection(raw, count)
        } else {
            nghttp2_session_consume(raw, stream.id, count)
        }
    }

    func submitShutdownNotice() { nghttp2_submit_shutdown_notice(raw) }

    func submitPing() { nghttp2_submit_ping(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil) }

    /// The opaque data of keepalive PINGs ("keepaliv"), told apart from other PINGs' acks.
    static let keepalivePingData: [UInt8] = Array("keepaliv".utf8)

    func submitKeepalivePing() {
        nghttp2_submit_ping(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), H2Session.keepalivePingData)
    }

    func submitGoAway(errorCode: UInt32 = 0, debug: String = "") {
        let last = nghttp2_session_get_last_proc_stream_id(raw)
        let bytes = Array(debug.utf8)
        nghttp2_submit_goaway(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, errorCode, bytes, bytes.count)
    }

    // MARK: callback entry points

    fileprivate static func from(_ p: UnsafeMutableRawPointer?) -> H2Session {
        Unmanaged<H2Session>.fromOpaque(p!).takeUnretainedValue()
    }

    fileprivate func beginHeaders(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        let id = frame.pointee.hd.stream_id
        if isServer && frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
            let stream = H2Stream(session: self)
            stream.id = id
            // A server that ends a call while the client still sends resets the stream with
            // NO_ERROR once its status is out (RFC 9113 8.1), so the stream never lingers.
            stream.resetAfterLocalEnd = true
            streams[id] = stream
            nghttp2_session_set_stream_user_data(raw, id, Unmanaged.passUnretained(stream).toOpaque())
        }
        if let s = streams[id] {
            s.fields.removeAll(keepingCapacity: true)
            s.fieldBytes = 0
            s.tooLarge = false
        }
        return 0
    }

    fileprivate func header(_ frame: UnsafePointer<nghttp2_frame>, _ name: UnsafeBufferPointer<UInt8>,
                            _ value: UnsafeBufferPointer<UInt8>) -> Int32 {
        guard let s = streams[frame.pointee.hd.stream_id] else { return 0 }
        s.fieldBytes += name.count + value.count + 32
        if s.fieldBytes > maxHeaderListSize {
            s.tooLarge = true
            s.fields.removeAll()
            return 0
        }
        if s.tooLarge { return 0 }
        s.fields.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        return 0
    }

    /// Whether a frame came from the peer (a client's first is its SETTINGS, after the
    /// connection preface): the HTTP/2 handshake is done.
    private(set) var receivedAFrame = false

    fileprivate func frameReceived(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        receivedAFrame = true
        let hd = frame.pointee.hd
        let endStream = (hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue)) != 0
        switch UInt32(hd.type) {
        case NGHTTP2_HEADERS.rawValue:
            guard let s = streams[hd.stream_id] else { return 0 }
            let isNewRequest = isServer && frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST
            if isNewRequest { onNewStream?(s) }
            if s.tooLarge {
                s.delegate?.h2HeadersTooLarge(s, size: s.fieldBytes)
                s.fields = []
            } else {
                let fields = s.fields
                s.fields = []
                s.delegate?.h2ReceivedHeaders(s, fields, endStream: endStream)
            }
        case NGHTTP2_DATA.rawValue:
            if endStream, let s = streams[hd.stream_id] { s.delegate?.h2ReceivedEndStream(s) }
        case NGHTTP2_GOAWAY.rawValue:
            let g = frame.pointee.goaway
            lastGoAwayDebug = g.opaque_data_len > 0 && g.opaque_data != nil
                ? String(decoding: UnsafeBufferPointer(start: g.opaque_data, count: g.opaque_data_len), as: UTF8.self)
                : ""
            onGoAway?(g.last_stream_id, g.error_code)
        case NGHTTP2_PING.rawValue:
            if (hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue)) != 0 {
                let isKeepalive = withUnsafeBytes(of: frame.pointee.ping.opaque_data) {
                    $0.elementsEqual(H2Session.keepalivePingData)
                }
                if isKeepalive { onKeepaliveAck?() } else { onPingAck?() }
            } else {
                onPingReceived?()
            }
        case NGHTTP2_SETTINGS.rawValue:
            if (hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue)) == 0 { onSettings?() }
        default:
            break
        }
        return 0
    }

    fileprivate func frameSent(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        let hd = frame.pointee.hd
        if let sent = onHeadersOrDataSent,
           hd.type == UInt8(NGHTTP2_HEADERS.rawValue) || hd.type == UInt8(NGHTTP2_DATA.rawValue) {
            sent()
        }
        guard (hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue)) != 0,
              let s = streams[hd.stream_id], s.resetAfterLocalEnd, !s.closed,
              nghttp2_session_get_stream_remote_close(raw, s.id) == 0 else { return 0 }
        s.resetAfterLocalEnd = false
        nghttp2_submit_rst_stream(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), s.id, UInt32(NGHTTP2_NO_ERROR.rawValue))
        return 0
    }

    /// A frame nghttp2 gave up sending. For a header block (e.g. over nghttp2's 64 KiB limit
    /// on blocks it sends) the stream cannot go on: nghttp2 closes a request's stream
    /// itself; a server's response headers or trailers would leave the peer waiting for
    /// good, so the stream is reset (INTERNAL_ERROR) — the client's call ends at once.
    fileprivate func frameNotSent(_ frame: UnsafePointer<nghttp2_frame>, _ code: Int32) -> Int32 {
        let hd = frame.pointee.hd
        guard hd.type == UInt8(NGHTTP2_HEADERS.rawValue), let s = streams[hd.stream_id], !s.closed else { return 0 }
        s.headersNotSent = true
        if isServer {
            nghttp2_submit_rst_stream(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), s.id, UInt32(NGHTTP2_INTERNAL_ERROR.rawValue))
        }
        return 0
    }

    fileprivate func dataChunk(_ id: Int32, _ data: UnsafeRawBufferPointer) -> Int32 {
        guard let s = streams[id], !s.closed else {
            nghttp2_session_consume_connection(raw, data.count)
            return 0
        }
        if s.holdWindow {
            s.unconsumed += data.count
        } else {
            nghttp2_session_consume(raw, id, data.count)
        }
        s.delegate?.h2ReceivedData(s, data)
        return 0
    }

    fileprivate func streamClosed(_ id: Int32, _ code: UInt32) -> Int32 {
        guard let s = streams.removeValue(forKey: id) else { return 0 }
        s.closed = true
        if s.unconsumed > 0 {
            nghttp2_session_consume_connection(raw, s.unconsumed)
            s.unconsumed = 0
        }
        s.delegate?.h2StreamClosed(s, errorCode: code)
        s.release()
        return 0
    }
}

// MARK: C callbacks (thin: they forward to the session object)

private let onBeginHeaders: nghttp2_on_begin_headers_callback = { _, frame, ud in
    H2Session.from(ud).beginHeaders(frame!)
}

private let onHeader: nghttp2_on_header_callback = { _, frame, name, namelen, value, valuelen, _, ud in
    H2Session.from(ud).header(frame!, UnsafeBufferPointer(start: name, count: namelen),
                              UnsafeBufferPointer(start: value, count: valuelen))
}

private let onFrameRecv: nghttp2_on_frame_recv_callback = { _, frame, ud in
    H2Session.from(ud).frameReceived(frame!)
}

private let onFrameSend: nghttp2_on_frame_send_callback = { _, frame, ud in
    H2Session.from(ud).frameSent(frame!)
}

private let onFrameNotSend: nghttp2_on_frame_not_send_callback = { _, frame, code, ud in
    H2Session.from(ud).frameNotSent(frame!, code)
}

private let onDataChunk: nghttp2_on_data_chunk_recv_callback = { _, _, id, data, len, ud in
    H2Session.from(ud).dataChunk(id, UnsafeRawBufferPointer(start: data, count: len))
}

private let onStreamClose: nghttp2_on_stream_close_callback = { _, id, code, ud in
    H2Session.from(ud).streamClosed(id, code)
}

private let dataRead: nghttp2_data_source_read_callback = { _, _, buf, length, flags, source, _ in
    let stream = Unmanaged<H2Stream>.fromOpaque(source!.pointee.ptr).takeUnretainedValue()
    return stream.read(into: buf!, length: length, flags: flags!)
}
