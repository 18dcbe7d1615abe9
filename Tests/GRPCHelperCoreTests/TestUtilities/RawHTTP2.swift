import CNghttp2
import NIOCore
import NIOPosix
@testable import GRPCHelperCore

/// What a raw HTTP/2 request got back.
struct RawResponse {
    var headers: [HeaderField] = []
    var trailers: [HeaderField] = []
    var data: [UInt8] = []
    var closeCode: UInt32 = 0

    func header(_ name: String) -> String? { headers.first { $0.name == name }?.value }
    func trailer(_ name: String) -> String? { trailers.first { $0.name == name }?.value }
    /// grpc-status from the trailers, or from the headers of a trailers-only response.
    var grpcStatus: Int? { (trailer("grpc-status") ?? header("grpc-status")).flatMap { Int($0) } }
    var grpcMessage: String? { (trailer("grpc-message") ?? header("grpc-message")).map(GRPCMessageCoding.decode) }
}

/// Collects one stream's response and completes a promise when the stream closes.
private final class Collector: H2StreamDelegate {
    var response = RawResponse()
    let promise: EventLoopPromise<RawResponse>
    init(_ p: EventLoopPromise<RawResponse>) { promise = p }
    func h2ReceivedHeaders(_ stream: H2Stream, _ fields: [HeaderField], endStream: Bool) {
        if response.headers.isEmpty { response.headers = fields } else { response.trailers = fields }
    }
    func h2HeadersTooLarge(_ stream: H2Stream, size: Int) {}
    func h2ReceivedData(_ stream: H2Stream, _ bytes: UnsafeRawBufferPointer) { response.data.append(contentsOf: bytes) }
    func h2ReceivedEndStream(_ stream: H2Stream) {}
    func h2StreamClosed(_ stream: H2Stream, errorCode: UInt32) {
        response.closeCode = errorCode
        promise.succeed(response)
    }
}

/// A bare HTTP/2 client on our nghttp2 session, for sending requests a gRPC client never would.
// Its session, handler and collectors are touched only on its channel's event loop.
final class RawHTTP2Client: @unchecked Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var channel: Channel!
    private var handler: H2ConnectionHandler!
    private var collectors: [Collector] = []

    private let goAwayLock = Monitor()
    private var goAwaysSeen: [Int32] = []
    /// The last-stream-id of every GOAWAY received, in order.
    var goAways: [Int32] { goAwayLock.withLock { goAwaysSeen } }
    func waitGoAways(_ n: Int, timeout: Double = 10) -> Bool {
        goAwayLock.wait(until: { self.goAwaysSeen.count >= n },
                        deadlineNanos: monotonicNanos() + UInt64(timeout * 1e9), then: { true }) ?? false
    }

    /// `initialWindowSize`: the stream windows it gives the server (the connection's is at
    /// least 16× that, up to 2^31-1). `reading` false: it reads nothing from its socket until
    /// `startReading()`; `receiveBuffer`: its socket's SO_RCVBUF.
    init(port: Int, initialWindowSize: Int = 1 << 20, reading: Bool = true, receiveBuffer: Int? = nil) throws {
        let session = H2Session(isServer: false, maxHeaderListSize: 1 << 16, maxConcurrentStreams: nil,
                                initialWindowSize: initialWindowSize)
        let lock = goAwayLock
        session.onGoAway = { [weak self] last, _ in
            lock.mutateAndNotify { self?.goAwaysSeen.append(last) }
        }
        let handler = H2ConnectionHandler(session: session)
        self.handler = handler
        var bootstrap = ClientBootstrap(group: group).channelOption(ChannelOptions.autoRead, value: reading)
        if let size = receiveBuffer {
            bootstrap = bootstrap.channelOption(ChannelOptions.socketOption(.so_rcvbuf), value: SocketOptionValue(size))
        }
        channel = try bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
            }
            .connect(host: "127.0.0.1", port: port).wait()
    }

    /// Starts reading the socket (a client made with `reading: false`).
    func startReading() throws {
        try channel.setOption(ChannelOptions.autoRead, value: true).wait()
    }

    /// Sends one request (`:scheme`/`:authority` added) and waits for the stream to close.
    func request(_ fields: [HeaderField], body: [UInt8] = []) throws -> RawResponse {
        let loop = channel.eventLoop
        return try loop.flatSubmit { () -> EventLoopFuture<RawResponse> in
            let promise = loop.makePromise(of: RawResponse.self)
            let collector = Collector(promise)
            self.collectors.append(collector)
            let stream = H2Stream(session: self.handler.session)
            stream.delegate = collector
            let all: [HeaderField] = fields + [(":scheme", "http"), (":authority", "localhost")]
            // Pseudo-headers first, as HTTP/2 requires.
            let ordered = all.filter { $0.name.hasPrefix(":") } + all.filter { !$0.name.hasPrefix(":") }
            guard self.handler.session.submitRequest(stream, ordered) else {
                promise.fail(RuntimeError(.invalidState, "submit failed"))
                return promise.futureResult
            }
            stream.enqueue(body)
            stream.endOutbound(trailers: nil)
            self.handler.flush()
            return promise.futureResult
        }.wait()
    }

    /// Opens a stream with request headers and `body`, ending it only with `endStream`; the future
    /// completes when the stream closes (the server answered or reset it).
    func open(_ fields: [HeaderField], body: [UInt8], endStream: Bool = false) -> EventLoopFuture<RawResponse> {
        let loop = channel.eventLoop
        return loop.flatSubmit { () -> EventLoopFuture<RawResponse> in
            let promise = loop.makePromise(of: RawResponse.self)
            let collector = Collector(promise)
            self.collectors.append(collector)
            let stream = H2Stream(session: self.handler.session)
            stream.delegate = collector
            let all: [HeaderField] = fields + [(":scheme", "http"), (":authority", "localhost")]
            let ordered = all.filter { $0.name.hasPrefix(":") } + all.filter { !$0.name.hasPrefix(":") }
            guard self.handler.session.submitRequest(stream, ordered) else {
                promise.fail(RuntimeError(.invalidState, "submit failed"))
                return promise.futureResult
            }
            stream.enqueue(body)
            if endStream { stream.endOutbound(trailers: nil) }
            self.handler.flush()
            return promise.futureResult
        }
    }

    /// A well-formed gRPC request's headers with `overrides` replacing/adding fields.
    static func grpcHeaders(path: String, _ overrides: [HeaderField] = [], drop: Set<String> = []) -> [HeaderField] {
        var f: [HeaderField] = [(":method", "POST"), (":path", path), ("content-type", "application/grpc"),
                                ("te", "trailers")]
        f.removeAll { field in drop.contains(field.name) || overrides.contains(where: { $0.name == field.name }) }
        return f + overrides
    }

    /// A SETTINGS value the server sent (after at least one request completed).
    func remoteSetting(_ id: nghttp2_settings_id) throws -> UInt32 {
        try channel.eventLoop.submit {
            nghttp2_session_get_remote_settings(self.handler.session.raw, id)
        }.wait()
    }

    private var closed = false

    /// Closes the connection and stops the client's event loop; once (later calls do nothing).
    func close() {
        guard !closed else { return }
        closed = true
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

/// A bare HTTP/2 server that answers every request with fixed headers, body and trailers:
/// a peer that is not (or not quite) gRPC, for testing the client's error mapping.
final class FakeHTTP2Server {
    struct Reply {
        var headers: [HeaderField]
        var body: [UInt8] = []
        var trailers: [HeaderField]? = nil
        /// Never answer (a server that hangs).
        var silent = false
        /// Answer as soon as the request headers arrive (not at the request's end), and never
        /// reset the stream: a peer that leaves a still-sending client's stream open.
        var answerOnHeaders = false
    }

    private final class Responder: H2StreamDelegate {
        let reply: Reply
        let record: ([HeaderField]) -> Void
        let recordClose: (UInt32) -> Void
        init(_ r: Reply, record: @escaping ([HeaderField]) -> Void, recordClose: @escaping (UInt32) -> Void) {
            reply = r
            self.record = record
            self.recordClose = recordClose
        }
        func h2ReceivedHeaders(_ stream: H2Stream, _ fields: [HeaderField], endStream: Bool) {
            record(fields)
            stream.resetAfterLocalEnd = false
            if endStream || reply.answerOnHeaders { respond(stream) }
        }
        func h2HeadersTooLarge(_ stream: H2Stream, size: Int) {}
        func h2ReceivedData(_ stream: H2Stream, _ bytes: UnsafeRawBufferPointer) {}
        func h2ReceivedEndStream(_ stream: H2Stream) { if !reply.answerOnHeaders { respond(stream) } }
        func h2StreamClosed(_ stream: H2Stream, errorCode: UInt32) { recordClose(errorCode) }
        private func respond(_ stream: H2Stream) {
            if reply.silent { return }
            let hasBody = !reply.body.isEmpty || reply.trailers != nil
            stream.session.submitResponse(stream, reply.headers, withBody: hasBody)
            if hasBody {
                stream.enqueue(reply.body)
                stream.endOutbound(trailers: reply.trailers)
            }
        }
    }

    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var listener: Channel!
    let port: Int
    // Its fields are guarded by `lock`.
    private final class HeaderLog: @unchecked Sendable {
        let lock = Monitor()
        var blocks: [[HeaderField]] = []
        var closeCodes: [UInt32] = []
    }
    private let log = HeaderLog()
    /// Every header block received so far (request headers first).
    var receivedHeaders: [[HeaderField]] { log.lock.withLock { log.blocks } }
    /// The error code of every stream closed so far (RST_STREAM codes; 0 = NO_ERROR).
    var closeCodes: [UInt32] { log.lock.withLock { log.closeCodes } }
    /// Waits (bounded) until `n` streams have closed.
    func waitClosed(_ n: Int, timeout: Double = 10) -> Bool {
        log.lock.wait(until: { self.log.closeCodes.count >= n },
                      deadlineNanos: monotonicNanos() + UInt64(timeout * 1e9), then: { true }) ?? false
    }

    init(_ reply: Reply) throws {
        let log = self.log
        listener = try ServerBootstrap(group: group)
            .childChannelInitializer { ch in
                let session = H2Session(isServer: true, maxHeaderListSize: 1 << 16, maxConcurrentStreams: 100,
                                        initialWindowSize: 1 << 20)
                let responder = Responder(reply, record: { [log] fields in
                    log.lock.withLock { log.blocks.append(fields) }
                }, recordClose: { [log] code in
                    log.lock.mutateAndNotify { log.closeCodes.append(code) }
                })
                session.onNewStream = { $0.delegate = responder }
                return ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(H2ConnectionHandler(session: session))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        port = listener.localAddress!.port!
    }

    func close() {
        try? listener.close().wait()
        try? group.syncShutdownGracefully()
    }
}
