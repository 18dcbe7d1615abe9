// Incomplete request messages (issue 15, defect 2): a peer announcing large messages and
// sending a few bytes of each used to make the server reserve every declared length (one
// run aborted on a failed 4 MiB allocation). Now what is held is what arrived, counted per
// connection and per server; past a bound the call that went over ends RESOURCE_EXHAUSTED,
// and what a call or a connection held leaves the budgets when it ends.
import NIOCore
import Testing
@testable import GRPCHelperCore

private let KiB = 1 << 10

/// A gRPC frame prefix declaring `length` bytes, then `sent` bytes of the message.
private func partial(declared length: Int, sent: Int) -> [UInt8] {
    [0, UInt8(length >> 24 & 0xFF), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
        + [UInt8](repeating: 0x5A, count: sent)
}

/// A raw stream's outcome, watched without blocking.
private final class Watched: @unchecked Sendable {
    private let result = Locked<Result<RawResponse, Error>?>(nil)
    init(_ f: EventLoopFuture<RawResponse>) {
        f.whenComplete { [result] r in result.withLock { $0 = r } }
    }
    /// Whether the stream closed.
    var ended: Bool { result.withLock { $0 != nil } }
    /// Its response, once the stream closed (nil: not within `timeout`, or failed).
    func response(timeout: Double = 10) -> RawResponse? {
        guard waitUntil(timeout: timeout, { self.ended }) else { return nil }
        return result.withLock { try? $0?.get() }
    }
}

@Suite("Integration: incomplete request messages", .timeLimit(.minutes(1)))
struct IntegrationPartialMessageTests {
    private static let method = TestMethod("/test.Partial/Upload", .clientStreaming, .blocking { call in
        while try call.receiveMessage() != nil {}
        try call.finish(.ok)
    })

    @Test func aConnectionPastItsBoundEndsTheCallThatWentOver() async throws {
        var o = testServerOptions()
        o.maxPartialMessageBytesPerConnection = 1 << 20
        try await onThread {
            let running = try startServer(options: o, methods: [Self.method])
            defer { running.server.shutdown(grace: 0) }
            let client = try RawHTTP2Client(port: running.port)
            defer { client.close() }
            let headers = RawHTTP2Client.grpcHeaders(path: "/test.Partial/Upload")
            // Three streams of 300 KiB (900 KiB held: within the bound), then two more.
            let held = (0..<3).map { _ in Watched(client.open(headers, body: partial(declared: 4 << 20, sent: 300 * KiB))) }
            #expect(waitUntil(timeout: 10) { running.server.partialMessageBytes.total == 3 * (300 * KiB + 5) })
            let over = (0..<2).map { _ in Watched(client.open(headers, body: partial(declared: 4 << 20, sent: 300 * KiB))) }
            for w in over {
                let r = w.response()
                #expect(r?.grpcStatus == 8, "RESOURCE_EXHAUSTED")
                #expect(r?.grpcMessage?.contains("held on this connection (limit 1048576)") == true, "\(r?.grpcMessage ?? "")")
            }
            // The first three still wait for the rest of their messages; what the refused
            // ones held went back.
            #expect(!held.contains { $0.ended })
            #expect(running.server.partialMessageBytes.total == 3 * (300 * KiB + 5))
            // The connection gone, nothing is held any more.
            client.close()
            #expect(waitUntil(timeout: 10) { running.server.partialMessageBytes.total == 0 })
        }
    }

    @Test func theServerBoundCountsEveryConnection() async throws {
        var o = testServerOptions()
        o.maxPartialMessageBytes = 1 << 20
        try await onThread {
            let running = try startServer(options: o, methods: [Self.method])
            defer { running.server.shutdown(grace: 0) }
            let headers = RawHTTP2Client.grpcHeaders(path: "/test.Partial/Upload")
            let clients = try (0..<4).map { _ in try RawHTTP2Client(port: running.port) }
            defer { for c in clients { c.close() } }
            // 300 KiB held on each of three connections, then a fourth goes over.
            var kept: [Watched] = []
            for c in clients.prefix(3) {
                kept.append(Watched(c.open(headers, body: partial(declared: 4 << 20, sent: 300 * KiB))))
                #expect(waitUntil(timeout: 10) { running.server.partialMessageBytes.total == kept.count * (300 * KiB + 5) })
            }
            let r = Watched(clients[3].open(headers, body: partial(declared: 4 << 20, sent: 300 * KiB))).response()
            #expect(r?.grpcStatus == 8)
            #expect(r?.grpcMessage?.contains("held by the server (limit 1048576)") == true, "\(r?.grpcMessage ?? "")")
            #expect(!kept.contains { $0.ended })
        }
    }

    /// Many streams each announcing 4 MiB and sending 3 bytes (the defect's shape): the
    /// server holds those bytes only, and every stream is still served once it completes.
    @Test func declaredLengthsCostNothingUntilTheBytesArrive() async throws {
        try await onThread {
            let running = try startServer(methods: [Self.method])
            defer { running.server.shutdown(grace: 0) }
            let client = try RawHTTP2Client(port: running.port)
            defer { client.close() }
            let headers = RawHTTP2Client.grpcHeaders(path: "/test.Partial/Upload")
            let streams = (0..<90).map { _ in Watched(client.open(headers, body: partial(declared: 4 << 20, sent: 3))) }
            #expect(waitUntil(timeout: 10) { running.server.partialMessageBytes.total == 90 * 8 })
            #expect(!streams.contains { $0.ended })
        }
    }
}
