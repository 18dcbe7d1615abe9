// Header blocks too large to send (issue 15, defect 4): nghttp2 sends no header block over
// 64 KiB and used to drop it silently, leaving the other side waiting until its deadline.
// Now a server's too-large response headers or trailers reset the stream (the client's call
// ends at once), a client's too-large request headers end its call with a clear error, and
// status messages — also the ones that quote a request's path — are capped so that an
// error answer always fits.
import Testing
@testable import GRPCHelperCore

@Suite("Integration: header blocks too large to send", .timeLimit(.minutes(1)))
struct IntegrationHeaderBlockTests {
    /// A 70 000-character status message: the client gets the status, its message capped.
    @Test func aHugeStatusMessageIsCappedAndArrives() async throws {
        let handler = ServerHandler.blocking { call in
            _ = try call.receiveMessage()
            try call.finish(Status(.internalError, String(repeating: "é", count: 35_000)))
        }
        try await withServer(methods: [TestMethod("/test.Big/Message", .unary, handler)]) { h in
            let r = runCall(h.channel, "/test.Big/Message", [[1]], options: CallOptions(timeout: 20))
            #expect(r.status.code == .internalError)
            #expect(r.status.message.hasPrefix(String(repeating: "é", count: 1024)))
            #expect(r.status.message.hasSuffix("... (67952 more bytes cut)"))
            #expect(r.status.message.utf8.count <= ServerConnection.maxStatusMessageBytes + 40)
        }
    }

    /// Trailing metadata over 64 KiB cannot be sent: the stream is reset and the client's
    /// call ends at once (INTERNAL), instead of waiting for its deadline.
    @Test func trailersOverTheLimitResetTheStream() async throws {
        let handler = ServerHandler.blocking { call in
            _ = try call.receiveMessage()
            var md = Metadata()
            try md.add("x-big", String(repeating: "a", count: 70_000))
            call.setTrailingMetadata(md)
            try call.sendMessage([7])
        }
        try await withServer(methods: [TestMethod("/test.Big/Trailers", .unary, handler)]) { h in
            let started = now()
            let r = runCall(h.channel, "/test.Big/Trailers", [[1]], options: CallOptions(timeout: 30))
            #expect(r.status.code == .internalError, "\(r.status)")
            #expect(now() - started < 20, "ended by the reset, not by the deadline")
            // The connection goes on.
            #expect(h.warmUp().code == .unimplemented)
        }
    }

    /// The same for response headers (initial metadata over 64 KiB).
    @Test func responseHeadersOverTheLimitResetTheStream() async throws {
        let handler = ServerHandler.blocking { call in
            _ = try call.receiveMessage()
            var md = Metadata()
            try md.add("x-big", String(repeating: "b", count: 70_000))
            try call.sendInitialMetadata(md)
            try call.sendMessage([7])
        }
        try await withServer(methods: [TestMethod("/test.Big/Headers", .unary, handler)]) { h in
            let r = runCall(h.channel, "/test.Big/Headers", [[1]], options: CallOptions(timeout: 30))
            #expect(r.status.code == .internalError, "\(r.status)")
            #expect(r.status.code != .deadlineExceeded)
        }
    }

    /// A request whose metadata is over 64 KiB: its call ends at once with a clear error;
    /// the channel goes on.
    @Test func requestHeadersOverTheLimitFailTheCall() async throws {
        let echo = ServerHandler.blocking { call in
            if let m = try call.receiveMessage() { try call.sendMessage(m) }
        }
        try await withServer(methods: [TestMethod("/test.Big/Echo", .unary, echo)]) { h in
            var md = Metadata()
            try md.add("x-big", String(repeating: "c", count: 70_000))
            let r = runCall(h.channel, "/test.Big/Echo", [[1]], options: CallOptions(timeout: 30, metadata: md))
            #expect(r.status.code == .internalError, "\(r.status)")
            #expect(r.status.message.contains("header block"), "\(r.status.message)")
            let ok = runCall(h.channel, "/test.Big/Echo", [[2]])
            #expect(ok.status == .ok && ok.messages == [[2]])
        }
    }

    /// An unknown method's answer quotes at most 256 bytes of its path.
    @Test func anUnknownLongPathIsQuotedCapped() async throws {
        try await withServer(methods: []) { h in
            let path = "/test.Nope/" + String(repeating: "ü", count: 5_000)
            let r = runCall(h.channel, path, [[1]], options: CallOptions(timeout: 20))
            #expect(r.status.code == .unimplemented)
            #expect(r.status.message.hasPrefix("Method not found: /test.Nope/ü"))
            #expect(r.status.message.hasSuffix("more bytes cut)"))
            #expect(r.status.message.utf8.count < 400)
        }
    }

    @Test func cappedKeepsWholeCharacters() {
        #expect(capped("abc", 3) == "abc")
        #expect(capped("abcd", 3) == "abc... (1 more bytes cut)")
        #expect(capped("ééé", 3) == "é... (4 more bytes cut)")   // 2-byte characters: no half one
        #expect(capped("😀x", 3) == "... (5 more bytes cut)")
    }
}
