// grpcio's options with their gRPC meaning, over real sockets: the largest message sent
// (client and server, with gRPC's texts), per-message decompression off (compressed bytes
// handed over as they came), SO_REUSEPORT, the user-agent suffix, and the call headers the
// library manages itself.
import Testing
@testable import GRPCHelperCore

private let compressible = [UInt8](repeating: UInt8(ascii: "a"), count: 64 * 1024)

private func echo(_ seen: Locked<[UInt8]?>? = nil) -> TestMethod {
    TestMethod("/test.Opt/Echo", .unary, .blocking { call in
        guard let m = try call.receiveMessage() else { throw RPCError(.invalidArgument, "no request") }
        seen?.withLock { $0 = m }
        try call.sendMessage(m)
    })
}

/// Answers a response of the requested size (the request's first byte × 1 KiB).
private let sized = TestMethod("/test.Opt/Sized", .unary, .blocking { call in
    guard let m = try call.receiveMessage(), let k = m.first else { throw RPCError(.invalidArgument, "no request") }
    do {
        try call.sendMessage([UInt8](repeating: 7, count: Int(k) * 1024))
    } catch let e as RPCError {
        // The send failed (the call ended): what the handler sees.
        #expect(e.status.code == .resourceExhausted)
        throw e
    }
})

@Suite("Integration: options", .timeLimit(.minutes(1)))
struct IntegrationOptionsTests {
    @Test func clientMaxSendMessageSize() async throws {
        var copts = ChannelOptions()
        copts.maxSendMessageSize = 100
        try await withServer(channelOptions: copts, methods: [echo()]) { h in
            let ok = runCall(h.channel, "/test.Opt/Echo", [[UInt8](repeating: 1, count: 100)])
            #expect(ok.status == .ok)
            let call = h.channel.makeCall("/test.Opt/Echo", options: CallOptions(timeout: testTimeout))
            call.start()
            #expect(throws: RPCError.self) { try call.send([UInt8](repeating: 1, count: 101)) }
            let status = call.waitStatus()
            #expect(status.code == .resourceExhausted)
            #expect(status.message == "CLIENT: Sent message larger than max (101 vs. 100)")
        }
    }

    @Test func serverMaxSendMessageSize() async throws {
        var options = testServerOptions()
        options.maxSendMessageSize = 2048
        try await withServer(options: options, methods: [sized]) { h in
            #expect(runCall(h.channel, "/test.Opt/Sized", [[2]]).status == .ok)
            let r = runCall(h.channel, "/test.Opt/Sized", [[3]])
            #expect(r.status.code == .resourceExhausted)
            #expect(r.status.message == "SERVER: Sent message larger than max (3072 vs. 2048)")
            #expect(r.messages.isEmpty)
        }
    }

    @Test func serverWithoutPerMessageDecompressionGetsCompressedBytes() async throws {
        var options = testServerOptions()
        options.decompressMessages = false
        let seen = Locked<[UInt8]?>(nil)
        try await withServer(options: options, methods: [echo(seen)]) { h in
            let r = runCall(h.channel, "/test.Opt/Echo", [compressible],
                            options: CallOptions(timeout: testTimeout, compression: .gzip))
            #expect(r.status == .ok)
            let got = seen.value ?? []
            #expect(got.count < compressible.count && got.starts(with: [0x1f, 0x8b]), "the handler got gzip bytes")
            let inflated = try MessageDecompressor(.gzip).decompress(got, limit: 1 << 20)
            #expect(inflated == compressible)
        }
    }

    @Test func channelWithoutPerMessageDecompressionGetsCompressedBytes() async throws {
        var options = testServerOptions()
        options.defaultCompression = .gzip
        var copts = ChannelOptions()
        copts.decompressMessages = false
        try await withServer(options: options, channelOptions: copts, methods: [echo()]) { h in
            let r = runCall(h.channel, "/test.Opt/Echo", [compressible])
            #expect(r.status == .ok)
            #expect(r.compressed == [true])
            let got = r.messages.first ?? []
            #expect(got.starts(with: [0x1f, 0x8b]) && got.count < compressible.count)
        }
    }

    @Test func reusePortLetsTwoServersShareAPort() async throws {
        try await onThread {
            var options = testServerOptions()
            options.reusePort = true
            let first = try startServer(options: options, methods: [echo()])
            defer { first.server.shutdown(grace: 0) }
            let second = try startServer(listen: "127.0.0.1:\(first.port)", options: options, methods: [echo()])
            defer { second.server.shutdown(grace: 0) }
            #expect(second.port == first.port)
            // Without it on the newcomer, the port is busy.
            #expect(throws: RuntimeError.self) {
                let third = try startServer(listen: "127.0.0.1:\(first.port)", methods: [echo()])
                third.server.shutdown(grace: 0)
            }
        }
    }

    @Test func userAgentPrefixAndSuffix() async throws {
        let seen = Locked<String?>(nil)
        let method = TestMethod("/test.Opt/UA", .unary, .blocking { call in
            seen.withLock { $0 = call.userAgent }
            _ = try call.receiveMessage()
            try call.sendMessage([])
        })
        var copts = ChannelOptions()
        copts.userAgentPrefix = "first/1"
        copts.userAgentSuffix = "last/2"
        try await withServer(channelOptions: copts, methods: [method]) { h in
            #expect(runCall(h.channel, "/test.Opt/UA", [[]]).status == .ok)
            #expect(seen.value == "first/1 \(GRPCHelperVersion.userAgent) last/2")
        }
    }

    @Test func headersTheLibraryManages() {
        for key in ["user-agent", "User-Agent", "te", "content-type", "grpc-timeout", "grpc-encoding",
                    "grpc-accept-encoding"] {
            #expect(Metadata.isManagedByCall(key), "\(key)")
        }
        for key in ["grpc-status", "host", "connection", "x-user-agent", "authorization"] {
            #expect(!Metadata.isManagedByCall(key), "\(key)")
        }
    }
}
