import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import GRPCHelperCore

/// Every server, connection, call, channel and HTTP/2 session is released once it is done
/// with (no reference cycles). The counts are process-wide, so these tests run on their own:
/// `GH_LEAK_TESTS=1 swift test --filter LeakTests` (scripts/test.sh does).
@Suite(.serialized, .enabled(if: getenv("GH_LEAK_TESTS") != nil, "set GH_LEAK_TESTS=1 and run alone"))
struct LeakTests {
    static let service = "/leak.Test"

    func startServer() throws -> Server {
        let server = Server()
        try server.addListener("127.0.0.1:0")
        try server.register("\(Self.service)/Unary", cardinality: .unary, handler: .blocking { call in
            if let m = try call.receiveMessage() { try call.sendMessage(m) }
        })
        try server.register("\(Self.service)/Bidi", cardinality: .bidiStreaming, handler: .async { call in
            while let m = try await call.receive() { try await call.send(m) }
        })
        try server.register("\(Self.service)/Fail", cardinality: .unary, handler: .blocking { _ in
            throw RPCError(.notFound, "nope")
        })
        try server.register("\(Self.service)/Wait", cardinality: .clientStreaming, handler: .blocking { call in
            while (try? call.receiveMessage()) != nil {}
        })
        try server.start()
        return server
    }

    /// Waits (bounded) until every count is back to zero; returns what is still alive.
    func leftovers() -> [LiveObjects.Kind: Int] {
        var alive: [LiveObjects.Kind: Int] = [:]
        _ = waitUntil(timeout: 10) {
            alive = LiveObjects.snapshot().filter { $0.value != 0 }
            return alive.isEmpty
        }
        return alive
    }

    @Test func everythingReleased() throws {
        #expect(leftovers().isEmpty, "objects alive before the test")
        do {
            let server = try startServer()
            let port = server.port()!
            let channel = try GRPCChannel(target: "127.0.0.1:\(port)")
            for i in 0..<50 {
                _ = try channel.unary("\(Self.service)/Unary", bytes("u\(i)"), options: CallOptions(timeout: 10))
            }
            // Errors, bidi, client cancel, deadline.
            #expect(throws: RPCError.self) { try channel.unary("\(Self.service)/Fail", []) }
            let bidi = channel.makeCall("\(Self.service)/Bidi", options: CallOptions(timeout: 10))
            bidi.start()
            try bidi.send(bytes("x"))
            _ = try bidi.receive()
            bidi.closeSend()
            while try bidi.receive() != nil {}
            #expect(bidi.waitStatus().isOK)
            let cancelled = channel.makeCall("\(Self.service)/Wait", options: CallOptions(timeout: 10))
            cancelled.start()
            try cancelled.send(bytes("x"))
            cancelled.cancel()
            #expect(cancelled.waitStatus().code == .cancelled)
            let expired = channel.makeCall("\(Self.service)/Wait", options: CallOptions(timeout: 0.1))
            expired.start()
            #expect(expired.waitStatus().code == .deadlineExceeded)
            // Unimplemented and an unreachable target.
            #expect(throws: RPCError.self) { try channel.unary("/no.Such/Method", []) }
            channel.close()
            server.shutdown(grace: 5)
            let dead = try GRPCChannel(target: "127.0.0.1:\(port)")
            #expect(throws: RPCError.self) { try dead.unary("\(Self.service)/Unary", []) }
            dead.close()
        }
        let alive = leftovers()
        #expect(alive.isEmpty, "still alive: \(alive)")
    }
}
