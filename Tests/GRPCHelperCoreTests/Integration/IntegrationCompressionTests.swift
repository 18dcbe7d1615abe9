// Compression over real sockets: per call and per channel, the server answering in the
// request's algorithm, uncompressed messages inside a compressed call, the server's
// default compression, and a zip bomb stopped by the receive limit.
import Testing
@testable import GRPCHelperCore

/// 1 MiB of compressible text.
private let compressible: [UInt8] = {
    let line = Array("The quick brown fox jumps over the lazy dog 0123456789.\n".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(1 << 20)
    var i = 0
    while out.count < 1 << 20 {
        out.append(line[i % line.count] ^ UInt8(truncatingIfNeeded: (i / 4096) & 1))
        i += 1
    }
    return out
}()

/// What the server saw of one call's encodings.
private struct Encodings {
    var request: CompressionAlgorithm?
    var requestCompressed: Bool?
    var response: CompressionAlgorithm?
}

/// Unary echo that records the request encoding and the response encoding it will use.
private func recordingEcho(_ seen: Locked<Encodings>) -> TestMethod {
    TestMethod("/test.Zip/Echo", .unary, .blocking { call in
        seen.withLock {
            $0.request = call.requestEncoding
            $0.response = call.currentResponseCompression
        }
        guard let m = try call.receiveMessage() else { throw RPCError(.invalidArgument, "no request") }
        seen.withLock { $0.requestCompressed = call.lastMessageWasCompressed }
        try call.sendMessage(m)
    })
}

@Suite("Integration: compression", .timeLimit(.minutes(1)))
struct IntegrationCompressionTests {
    @Test(arguments: [CompressionAlgorithm.gzip, .deflate])
    func perCall(algorithm: CompressionAlgorithm) async throws {
        let seen = Locked(Encodings())
        try await withServer(methods: [recordingEcho(seen)]) { h in
            let r = runCall(h.channel, "/test.Zip/Echo", [compressible],
                            options: CallOptions(timeout: testTimeout, compression: algorithm))
            #expect(r.status == .ok)
            #expect(r.messages.count == 1)
            #expect(r.messages.first == compressible)
            #expect(r.compressed == [true], "the response is compressed on the wire")
            #expect(seen.value.request == algorithm)
            #expect(seen.value.requestCompressed == true)
            #expect(seen.value.response == algorithm, "the server answers in the request's algorithm")

            // Without compression on the call, nothing is compressed either way.
            let plain = runCall(h.channel, "/test.Zip/Echo", [compressible])
            #expect(plain.status == .ok)
            #expect(plain.messages.first == compressible)
            #expect(plain.compressed == [false])
            #expect(seen.value.request == .identity)
            #expect(seen.value.requestCompressed == false)
            #expect(seen.value.response == .identity)
        }
    }

    @Test(arguments: [CompressionAlgorithm.gzip, .deflate])
    func perChannel(algorithm: CompressionAlgorithm) async throws {
        let seen = Locked(Encodings())
        var channelOptions = ChannelOptions()
        channelOptions.defaultCompression = algorithm
        try await withServer(channelOptions: channelOptions, methods: [recordingEcho(seen)]) { h in
            let r = runCall(h.channel, "/test.Zip/Echo", [compressible])
            #expect(r.status == .ok)
            #expect(r.messages.first == compressible)
            #expect(r.compressed == [true])
            #expect(seen.value.request == algorithm)
            #expect(seen.value.requestCompressed == true)
            #expect(seen.value.response == algorithm)

            // A call can override the channel's default.
            let overridden = runCall(h.channel, "/test.Zip/Echo", [compressible],
                                     options: CallOptions(timeout: testTimeout, compression: .identity))
            #expect(overridden.status == .ok)
            #expect(overridden.messages.first == compressible)
            #expect(overridden.compressed == [false])
            #expect(seen.value.request == .identity)
        }
    }

    /// `compress: false` sends single messages uncompressed inside a compressed call, both ways.
    @Test func uncompressedMessagesInCompressedCall() async throws {
        let received = Locked<[[UInt8]]>([])
        let receivedCompressed = Locked<[Bool]>([])
        let handler = ServerHandler.blocking { call in
            guard call.requestEncoding == .gzip else { throw RPCError(.internalError, "request not gzip") }
            while let m = try call.receiveMessage() {
                received.withLock { $0.append(m) }
                receivedCompressed.withLock { $0.append(call.lastMessageWasCompressed) }
                try call.sendMessage(m, compress: false)
                try call.sendMessage(m, compress: true)
            }
        }
        try await withServer(methods: [TestMethod("/test.Zip/Bidi", .bidiStreaming, handler)]) { h in
            let call = h.channel.makeCall("/test.Zip/Bidi", options: CallOptions(timeout: testTimeout, compression: .gzip))
            call.start()
            let small = bytes("small")
            try call.send(compressible, compress: false)
            try call.send(small, compress: true)
            try call.send(compressible, compress: true)
            try call.send(small, compress: false)
            call.closeSend()
            var replies: [[UInt8]] = []
            var repliesCompressed: [Bool] = []
            while let m = try call.receive() {
                replies.append(m)
                repliesCompressed.append(call.lastMessageWasCompressed)
            }
            #expect(call.waitStatus() == .ok)
            let sent = [compressible, small, compressible, small]
            #expect(received.value == sent)
            #expect(receivedCompressed.value == [false, true, true, false])
            #expect(replies == sent.flatMap { [$0, $0] })
            #expect(repliesCompressed == [false, true, false, true, false, true, false, true])
        }
    }

    /// ServerOptions.defaultCompression compresses responses to a client that sends identity
    /// (and advertises gzip in grpc-accept-encoding).
    @Test func serverDefaultCompression() async throws {
        let seen = Locked(Encodings())
        var options = testServerOptions()
        options.defaultCompression = .gzip
        try await withServer(options: options, methods: [recordingEcho(seen)]) { h in
            let r = runCall(h.channel, "/test.Zip/Echo", [compressible])
            #expect(r.status == .ok)
            #expect(r.messages.first == compressible)
            #expect(r.compressed == [true])
            #expect(seen.value.request == .identity)
            #expect(seen.value.requestCompressed == false)
            #expect(seen.value.response == .gzip)

            // A compressed request still wins over the default.
            let d = runCall(h.channel, "/test.Zip/Echo", [compressible],
                            options: CallOptions(timeout: testTimeout, compression: .deflate))
            #expect(d.status == .ok)
            #expect(d.messages.first == compressible)
            #expect(seen.value.response == .deflate)
        }
    }

    /// 64 MiB of zeros, gzip-compressed to a few dozen KiB, against a 4 MiB receive limit:
    /// RESOURCE_EXHAUSTED, and the handler never runs.
    @Test func zipBomb() async throws {
        let ran = Locked(0)
        let handler = ServerHandler.blocking { call in
            ran.withLock { $0 += 1 }
            _ = try call.receiveMessage()
            try call.sendMessage([])
        }
        var options = testServerOptions()
        options.maxReceiveMessageSize = 4 << 20
        try await withServer(options: options, methods: [TestMethod("/test.Zip/Bomb", .unary, handler)]) { h in
            let bomb = [UInt8](repeating: 0, count: 64 << 20)
            let r = runCall(h.channel, "/test.Zip/Bomb", [bomb],
                            options: CallOptions(timeout: testTimeout, compression: .gzip))
            #expect(r.status.code == .resourceExhausted)
            #expect(r.messages.isEmpty)
            #expect(ran.value == 0)

            // The server still serves normal calls afterwards.
            let ok = runCall(h.channel, "/test.Zip/Bomb", [compressible],
                             options: CallOptions(timeout: testTimeout, compression: .gzip))
            #expect(ok.status == .ok)
            #expect(ran.value == 1)
        }
    }
}
