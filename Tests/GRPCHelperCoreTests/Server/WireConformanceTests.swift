import CNghttp2
import Testing
@testable import GRPCHelperCore

/// The server's answers to requests a well-behaved gRPC client never sends, checked with a
/// raw HTTP/2 client; and the client's mapping of non-gRPC answers, checked with a fake server.
@Suite struct WireConformanceTests {
    static let echo = "/conformance.Test/Echo"
    static let fail = "/conformance.Test/Fail"

    /// Runs `body` with a started server (unary echo) and a raw client connected to it.
    func withServer(_ options: ServerOptions = ServerOptions(), _ body: (RawHTTP2Client) throws -> Void) throws {
        let server = Server(options: options)
        try server.addListener("127.0.0.1:0")
        try server.register(Self.echo, cardinality: .unary, handler: .blocking { call in
            if let m = try call.receiveMessage() { try call.sendMessage(m) }
        })
        try server.register(Self.fail, cardinality: .unary, handler: .blocking { _ in
            throw RPCError(.notFound, "nothing here")
        })
        try server.start()
        defer { server.shutdown(grace: 0) }
        let client = try RawHTTP2Client(port: server.port()!)
        defer { client.close() }
        try body(client)
    }

    static let hello = MessageFramer.frame(Array("hello".utf8), compressed: false)

    @Test func wellFormedRequestSucceeds() throws {
        try withServer { c in
            let r = try c.request(RawHTTP2Client.grpcHeaders(path: Self.echo), body: Self.hello)
            #expect(r.header(":status") == "200")
            #expect(r.header("content-type") == "application/grpc")
            #expect(r.grpcStatus == 0)
            #expect(r.data == Self.hello)
        }
    }

    /// Graceful shutdown: a GOAWAY notice (last stream 2^31-1), then after a PING round trip
    /// the final GOAWAY naming the last stream; the call in flight completes.
    @Test func gracefulShutdownSendsTwoGoAways() throws {
        let started = Gate(), release = Gate()
        let server = Server(options: testServerOptions())
        try server.addListener("127.0.0.1:0")
        try server.register("/conformance.Test/Slow", cardinality: .unary, handler: .blocking { call in
            started.open()
            _ = release.wait()
            if let m = try call.receiveMessage() { try call.sendMessage(m) }
        })
        try server.start()
        let client = try RawHTTP2Client(port: server.port()!)
        defer { client.close() }
        let result = Locked<RawResponse?>(nil)
        let done = Gate()
        startThread {
            let r = try? client.request(RawHTTP2Client.grpcHeaders(path: "/conformance.Test/Slow"), body: Self.hello)
            result.withLock { $0 = r }
            done.open()
        }
        #expect(started.wait())
        let stopped = Gate()
        startThread {
            server.shutdown(grace: 10)
            stopped.open()
        }
        #expect(client.waitGoAways(2), "GOAWAYs seen: \(client.goAways)")
        #expect(client.goAways == [Int32.max, 1])
        release.open()
        #expect(done.wait())
        #expect(result.withLock { $0 }?.trailer("grpc-status") == "0")
        #expect(stopped.wait())
    }

    @Test func errorBeforeAnyMessageIsTrailersOnly() throws {
        try withServer { c in
            let r = try c.request(RawHTTP2Client.grpcHeaders(path: Self.fail), body: Self.hello)
            #expect(r.header(":status") == "200")
            #expect(r.header("grpc-status") == "5", "status in the only header block")
            #expect(r.header("grpc-message") == "nothing here")
            #expect(r.trailers.isEmpty, "no second header block")
            #expect(r.data.isEmpty)
        }
    }

    @Test func successEndsWithTrailers() throws {
        try withServer { c in
            let r = try c.request(RawHTTP2Client.grpcHeaders(path: Self.echo), body: Self.hello)
            #expect(r.header("grpc-status") == nil, "headers carry no status")
            #expect(r.trailer("grpc-status") == "0")
        }
    }

    @Test(arguments: ["1H", "2M", "10S", "1000m", "1000000u", "99999999n", "99999999S"])
    func everyTimeoutUnitAccepted(_ timeout: String) throws {
        try withServer { c in
            let r = try c.request(RawHTTP2Client.grpcHeaders(path: Self.echo, [("grpc-timeout", timeout)]),
                                  body: Self.hello)
            #expect(r.grpcStatus == 0, "grpc-timeout \(timeout)")
        }
    }

    @Test(arguments: ["1x", "", "S", "123456789S", "-1S", "1.5S", "1 S", "1000000000n"])
    func malformedTimeoutRefused(_ timeout: String) throws {
        try withServer { c in
            let r = try c.request(RawHTTP2Client.grpcHeaders(path: Self.echo, [("grpc-timeout", timeout)]),
                                  body: Self.hello)
            #expect(r.grpcStatus == Int(StatusCode.internalError.rawValue))
            #expect(r.grpcMessage?.contains("grpc-timeout") == true)
        }
    }

    @Test func unsupportedEncodingIsUnimplemented() throws {
        try withServer { c in
            let r = try c.request(RawHTTP2Client.grpcHeaders(path: Self.echo, [("grpc-encoding", "br")]),
                                  body: MessageFramer.frame([1, 2, 3], compressed: true))
            #expect(r.grpcStatus == Int(StatusCode.unimplemented.rawValue))
            #expect(r.grpcMessage?.contains("br") == true)
            #expect(r.header("grpc-accept-encoding")?.contains("gzip") == true)
        }
    }

    @Test func nonPostRefused() throws {
        try withServer { c in
            let r = try c.request(RawHTTP2Client.grpcHeaders(path: Self.echo, [(":method", "GET")]))
            #expect(r.header(":status") == "405")
        }
    }

    @Test func wrongContentTypeRefused() throws {
        try withServer { c in
            let r = try c.request(RawHTTP2Client.grpcHeaders(path: Self.echo, [("content-type", "text/plain")]),
                                  body: Self.hello)
            #expect(r.header(":status") == "415")
            #expect(r.grpcStatus == Int(StatusCode.internalError.rawValue))
        }
    }

    /// A request without `te: trailers` is refused before its path is looked at: HTTP 400,
    /// INTERNAL (http-grpc-status-mapping), grpclib's message. (nghttp2 itself resets a
    /// request whose te has another value; the value's case does not matter.)
    @Test func missingTeTrailersRefused() throws {
        try withServer { c in
            let r = try c.request(RawHTTP2Client.grpcHeaders(path: "/conformance.Test/Nope", drop: ["te"]),
                                  body: Self.hello)
            #expect(r.header(":status") == "400")
            #expect(r.grpcStatus == Int(StatusCode.internalError.rawValue))
            #expect(r.grpcMessage == "Required \"te: trailers\" header is missing")
            let upper = try c.request(RawHTTP2Client.grpcHeaders(path: Self.echo, [("te", "Trailers")]),
                                      body: Self.hello)
            #expect(upper.header(":status") == "200")
            #expect(upper.grpcStatus == 0)
        }
    }

    @Test func unknownPathIsUnimplemented() throws {
        try withServer { c in
            let r = try c.request(RawHTTP2Client.grpcHeaders(path: "/conformance.Test/Nope"), body: Self.hello)
            #expect(r.header(":status") == "200")
            #expect(r.grpcStatus == Int(StatusCode.unimplemented.rawValue))
        }
    }

    @Test func compressedFlagWithoutEncodingIsInternal() throws {
        try withServer { c in
            let r = try c.request(RawHTTP2Client.grpcHeaders(path: Self.echo),
                                  body: MessageFramer.frame(Array("x".utf8), compressed: true))
            #expect(r.grpcStatus == Int(StatusCode.internalError.rawValue))
        }
    }

    @Test func invalidFlagIsInternal() throws {
        try withServer { c in
            var body = Self.hello
            body[0] = 7
            let r = try c.request(RawHTTP2Client.grpcHeaders(path: Self.echo), body: body)
            #expect(r.grpcStatus == Int(StatusCode.internalError.rawValue))
        }
    }

    @Test func truncatedMessageIsInternal() throws {
        try withServer { c in
            let r = try c.request(RawHTTP2Client.grpcHeaders(path: Self.echo), body: Array(Self.hello.dropLast(2)))
            #expect(r.grpcStatus == Int(StatusCode.internalError.rawValue))
            #expect(r.grpcMessage?.contains("inside a message") == true)
        }
    }

    @Test func oversizedHeaderListIsResourceExhausted() throws {
        try withServer { c in
            let big = String(repeating: "v", count: 20_000)
            let r = try c.request(RawHTTP2Client.grpcHeaders(path: Self.echo, [("x-big", big)]), body: Self.hello)
            #expect(r.grpcStatus == Int(StatusCode.resourceExhausted.rawValue))
        }
    }

    @Test func oversizedMessageIsResourceExhausted() throws {
        var o = ServerOptions()
        o.maxReceiveMessageSize = 1000
        try withServer(o) { c in
            let r = try c.request(RawHTTP2Client.grpcHeaders(path: Self.echo),
                                  body: MessageFramer.frame([UInt8](repeating: 1, count: 1001), compressed: false))
            #expect(r.grpcStatus == Int(StatusCode.resourceExhausted.rawValue))
        }
    }

    @Test func serverAdvertisesItsSettings() throws {
        var o = ServerOptions()
        o.maxConcurrentStreams = 7
        o.maxHeaderListSize = 12_345
        o.initialWindowSize = 70_000
        try withServer(o) { c in
            let r = try c.request(RawHTTP2Client.grpcHeaders(path: Self.echo), body: Self.hello)
            #expect(r.grpcStatus == 0)
            #expect(try c.remoteSetting(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) == 7)
            #expect(try c.remoteSetting(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE) == 12_345)
            #expect(try c.remoteSetting(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE) == 70_000)
        }
    }

    // MARK: client side: HTTP failures mapped per http-grpc-status-mapping.md

    func callFake(_ reply: FakeHTTP2Server.Reply) throws -> Status {
        let fake = try FakeHTTP2Server(reply)
        defer { fake.close() }
        let channel = try GRPCChannel(target: "127.0.0.1:\(fake.port)")
        defer { channel.close() }
        let call = channel.makeCall("/x.Y/Z", options: CallOptions(timeout: 10))
        call.start()
        try? call.send([1])
        call.closeSend()
        while (try? call.receive()) != nil {}
        return call.waitStatus()
    }

    @Test(arguments: [(400, StatusCode.internalError), (401, .unauthenticated), (403, .permissionDenied),
                      (404, .unimplemented), (429, .unavailable), (502, .unavailable), (503, .unavailable),
                      (504, .unavailable), (500, .unknown), (302, .unknown)])
    func httpStatusMapped(_ http: Int, _ code: StatusCode) throws {
        let s = try callFake(.init(headers: [(":status", String(http)), ("content-type", "text/html")]))
        #expect(s.code == code)
        #expect(s.message.contains(String(http)))
    }

    @Test func wrongContentTypeIsUnknown() throws {
        let s = try callFake(.init(headers: [(":status", "200"), ("content-type", "text/html")],
                                   body: Array("<html>".utf8)))
        #expect(s.code == .unknown)
    }

    @Test func missingGrpcStatusIsUnknown() throws {
        let s = try callFake(.init(headers: [(":status", "200"), ("content-type", "application/grpc")],
                                   body: MessageFramer.frame([1], compressed: false), trailers: [("x-other", "1")]))
        #expect(s.code == .unknown)
    }

    @Test func trailersOnlyUnderstood() throws {
        let message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
        let s = try callFake(.init(headers: [(":status", "200"), ("content-type", "application/grpc"),
                                             ("grpc-status", "7"),
                                             ("grpc-message", GRPCMessageCoding.encode(message)),
                                             ("grpc-status-details-bin", Base64.encode([0, 1, 254, 255]))]))
        #expect(s.code == .permissionDenied)
        #expect(s.message == message)
        #expect(s.details == [0, 1, 254, 255])
    }

    @Test(arguments: [nil, "my-app/2.0"])
    func requestHeadersNameTheLibrary(_ prefix: String?) throws {
        let fake = try FakeHTTP2Server(.init(headers: [(":status", "200"), ("content-type", "application/grpc"),
                                                       ("grpc-status", "0")]))
        defer { fake.close() }
        var options = ChannelOptions()
        options.userAgentPrefix = prefix
        let channel = try GRPCChannel(target: "127.0.0.1:\(fake.port)", options: options)
        defer { channel.close() }
        let call = channel.makeCall("/x.Y/Z", options: CallOptions(timeout: 10, compression: .gzip))
        call.start()
        try? call.send([1])
        call.closeSend()
        #expect(call.waitStatus().code == .ok)
        let request = try #require(fake.receivedHeaders.first)
        func value(_ n: String) -> String? { request.first { $0.name == n }?.value }
        let expected = (prefix.map { $0 + " " } ?? "") + "grpchelper-swift/\(GRPCHelperVersion.string)"
        #expect(value("user-agent") == expected)
        #expect(value(":method") == "POST")
        #expect(value(":path") == "/x.Y/Z")
        #expect(value("content-type") == "application/grpc")
        #expect(value("te") == "trailers")
        #expect(value("grpc-encoding") == "gzip")
        #expect(value("grpc-accept-encoding")?.contains("deflate") == true)
        #expect(value("grpc-timeout").flatMap(GRPCTimeout.parse).map { $0 > 0 && $0 <= 10_000_000_000 } == true)
    }

    /// The client enforces its deadline itself (the server here never answers) and resets
    /// the stream with CANCEL.
    @Test func deadlineWithoutTheServerResetsTheStream() throws {
        let fake = try FakeHTTP2Server(.init(headers: [], silent: true))
        defer { fake.close() }
        let channel = try GRPCChannel(target: "127.0.0.1:\(fake.port)")
        defer { channel.close() }
        let start = monotonicNanos()
        let call = channel.makeCall("/x.Y/Z", options: CallOptions(timeout: 0.3))
        call.start()
        try? call.send([1])
        call.closeSend()
        #expect(call.waitStatus().code == .deadlineExceeded)
        let elapsed = Double(monotonicNanos() - start) / 1e9
        #expect(elapsed < 3, "took \(elapsed) s")
        #expect(fake.waitClosed(1))
        #expect(fake.closeCodes == [8], "RST_STREAM(CANCEL) expected, got \(fake.closeCodes)")
    }

    @Test func clientRefusesOversizedResponseHeaders() throws {
        let big = String(repeating: "v", count: 20_000)
        let s = try callFake(.init(headers: [(":status", "200"), ("content-type", "application/grpc"),
                                             ("x-big", big), ("grpc-status", "0")]))
        #expect(s.code == .resourceExhausted)
    }

    @Test func endWithoutTrailersIsInternal() throws {
        let s = try callFake(.init(headers: [(":status", "200"), ("content-type", "application/grpc")],
                                   body: MessageFramer.frame([1], compressed: false)))
        #expect(s.code == .internalError)
    }
}
