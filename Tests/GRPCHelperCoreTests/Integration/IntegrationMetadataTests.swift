// Metadata over real sockets: request → handler, initial and trailing → client,
// several values per key, -bin values with arbitrary bytes, reserved keys.
import Testing
@testable import GRPCHelperCore

/// Every byte value, so -bin values cover 0x00 and 0xFF and everything between.
private let allBytes: [UInt8] = (0...255).map { UInt8($0) }

@Suite("Integration: metadata", .timeLimit(.minutes(1)))
struct IntegrationMetadataTests {
    /// Request metadata as the handler sees it; initial and trailing metadata as the client sees them.
    @Test(arguments: HandlerKind.allCases)
    func metadataBothWays(kind: HandlerKind) async throws {
        let seen = Locked<Metadata?>(nil)
        var initial = Metadata()
        try initial.add("x-initial", "first response header")
        try initial.add("x-multi", "i1")
        try initial.add("x-multi", "i2")
        try initial.add("x-multi", "i3")
        try initial.addBinary("x-initial-bin", allBytes.reversed())
        var trailing = Metadata()
        try trailing.add("x-trailer", "done")
        try trailing.addBinary("x-trailer-bin", [0x00, 0xFF, 0x00, 0x0A, 0x0D])
        try trailing.add("x-trailer", "twice")
        let handler: ServerHandler
        switch kind {
        case .blocking:
            handler = .blocking { [initial, trailing] call in
                seen.value = call.requestMetadata
                try call.sendInitialMetadata(initial)
                guard let req = try call.receiveMessage() else { throw RPCError(.invalidArgument, "no request") }
                call.setTrailingMetadata(trailing)
                try call.sendMessage(req)
            }
        case .async:
            handler = .async { [initial, trailing] call in
                seen.value = call.requestMetadata
                try call.sendInitialMetadata(initial)
                guard let req = try await call.receive() else { throw RPCError(.invalidArgument, "no request") }
                call.setTrailingMetadata(trailing)
                try await call.send(req)
            }
        }

        var request = Metadata()
        try request.add("x-multi", "first")
        try request.add("x-plain", "printable ASCII: ~!@#$%^&*()_+{}|:\"<>? `-=[]\\;',./")
        try request.add("x-multi", "second")
        try request.addBinary("x-request-bin", allBytes)
        try request.addBinary("x-empty-bin", [])
        try request.add("x-multi", "third")
        try request.add("x-empty", "")

        try await withServer(methods: [TestMethod("/test.Md/Echo", .unary, handler)]) { [request, initial, trailing] h in
            // Timeout and compression put grpc-timeout / grpc-encoding on the wire too.
            let r = runCall(h.channel, "/test.Md/Echo", [bytes("md")],
                            options: CallOptions(timeout: testTimeout, metadata: request, compression: .gzip))
            #expect(r.status == .ok)
            #expect(r.messages.map { text($0) } == ["md"])

            let got = try #require(seen.value)
            // Exactly the user entries, in order: no reserved header leaked in.
            #expect(entries(got) == entries(request))
            #expect(got.values(forKey: "x-multi") == [.string("first"), .string("second"), .string("third")])
            #expect(got.firstBinary("x-request-bin") == allBytes)
            #expect(got.firstBinary("x-empty-bin") == [])
            #expect(got.first("x-empty") == "")

            #expect(entries(r.initialMetadata) == entries(initial))
            #expect(r.initialMetadata.values(forKey: "x-multi") == [.string("i1"), .string("i2"), .string("i3")])
            #expect(r.initialMetadata.firstBinary("x-initial-bin") == allBytes.reversed())

            #expect(entries(r.trailingMetadata) == entries(trailing))
            #expect(r.trailingMetadata.values(forKey: "x-trailer") == [.string("done"), .string("twice")])
            #expect(r.trailingMetadata.firstBinary("x-trailer-bin") == [0x00, 0xFF, 0x00, 0x0A, 0x0D])
        }
    }

    /// Reserved headers (pseudo-headers, grpc-*, content-type, te, user-agent) are never
    /// request metadata, even though the client sends all of them.
    @Test func reservedHeadersNotInRequestMetadata() async throws {
        let seen = Locked<Metadata?>(nil)
        let handler = ServerHandler.blocking { call in
            seen.value = call.requestMetadata
            _ = try call.receiveMessage()
            try call.sendMessage([])
        }
        try await withServer(methods: [TestMethod("/test.Md/Reserved", .unary, handler)]) { h in
            var md = Metadata()
            try md.add("x-user", "u")
            let r = runCall(h.channel, "/test.Md/Reserved", [[1]],
                            options: CallOptions(timeout: testTimeout, metadata: md, compression: .deflate))
            #expect(r.status == .ok)
            let got = try #require(seen.value)
            #expect(entries(got) == ["x-user=u"])
            for key in [":path", ":method", ":scheme", ":authority", "content-type", "te", "user-agent",
                        "grpc-timeout", "grpc-encoding", "grpc-accept-encoding"] {
                #expect(got.values(forKey: key).isEmpty, "\(key) leaked into request metadata")
            }
            #expect(!got.contains { Metadata.isReserved($0.key) })
            // Nor do the response's reserved headers/trailers reach the client's metadata.
            #expect(r.initialMetadata.isEmpty)
            #expect(r.trailingMetadata.isEmpty)
        }
    }

    /// Trailers thrown with an RPCError reach the client, also in a trailers-only response.
    @Test(arguments: [false, true])
    func rpcErrorTrailers(sendHeadersFirst: Bool) async throws {
        let handler = ServerHandler.blocking { call in
            if sendHeadersFirst { try call.sendInitialMetadata(Metadata()) }
            var t = Metadata()
            try t.add("x-reason", "because")
            try t.add("x-reason", "and more")
            try t.addBinary("x-blob-bin", [0, 255, 1, 254])
            throw RPCError(.failedPrecondition, "precondition", trailers: t)
        }
        try await withServer(methods: [TestMethod("/test.Md/Fail", .unary, handler)]) { h in
            let r = runCall(h.channel, "/test.Md/Fail", [[]])
            #expect(r.status.code == .failedPrecondition)
            #expect(r.status.message == "precondition")
            #expect(entries(r.trailingMetadata) == ["x-reason=because", "x-reason=and more", "x-blob-bin=0x0.ff.1.fe"])
            #expect(r.initialMetadata.isEmpty)
        }
    }

    @Test(arguments: ["grpc-foo", "grpc-status", ":path", ":authority", "content-type", "te", "user-agent"])
    func reservedKeysRefused(key: String) {
        var md = Metadata()
        #expect(throws: MetadataError.self) { try md.add(key, "v") }
        #expect(md.isEmpty)
    }

    @Test func invalidKeysAndValuesRefused() {
        var md = Metadata()
        #expect(throws: MetadataError.self) { try md.add("X-Upper", "v") }
        #expect(throws: MetadataError.self) { try md.add("x-newline", "a\nb") }
        #expect(throws: MetadataError.self) { try md.add("x-cr", "a\rb") }
        #expect(throws: MetadataError.self) { try md.add("x-nul", "a\u{0}b") }
        #expect(throws: MetadataError.self) { try md.add("x-bytes-bin", "text") }
        #expect(throws: MetadataError.self) { try md.addBinary("x-not-binary", [1]) }
        #expect(throws: MetadataError.self) { try md.addBinary("grpc-trace-bin", [1]) }
        #expect(md.isEmpty)
    }
}
