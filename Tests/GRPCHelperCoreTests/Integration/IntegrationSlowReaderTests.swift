// A peer that stops reading its socket (issue 15, defect 1): HTTP/2 flow control is the
// peer's to give away, and a client that opened 2^31-1 byte windows and then never read
// made the server buffer everything a handler sent (+900 MB for one server stream of
// 1e6 × 1 KiB). Now the server stops taking bytes from nghttp2 while the socket is not
// writable, so a handler's sends wait once its call's send buffer is full, and go on when
// the peer reads again.
import NIOCore
import Testing
@testable import GRPCHelperCore

private let KiB = 1 << 10
private let MiB = 1 << 20

@Suite("Integration: peers that stop reading", .timeLimit(.minutes(1)))
struct IntegrationSlowReaderTests {
    /// A server stream of `count` 1 KiB messages; `sent` counts the bytes handed to
    /// sendMessage (each returned: the message is in the call's send buffer or beyond).
    private static func streamMethod(count: Int, sent: Locked<Int>) -> TestMethod {
        TestMethod("/test.Slow/Stream", .serverStreaming, .blocking { call in
            _ = try call.receiveMessage()
            let message = [UInt8](repeating: 0x61, count: KiB)
            for _ in 0..<count {
                try call.sendMessage(message)
                sent.withLock { $0 += KiB }
            }
            try call.finish(.ok)
        })
    }

    @Test func aHandlerWaitsForAPeerThatDoesNotReadDespiteOpenWindows() async throws {
        let total = 48 * MiB
        let sent = Locked(0)
        try await onThread {
            let running = try startServer(methods: [Self.streamMethod(count: total / KiB, sent: sent)])
            defer { running.server.shutdown(grace: 0) }
            // Windows of 2^31-1 bytes for the stream and the connection, and a socket never read.
            let client = try RawHTTP2Client(port: running.port, initialWindowSize: Int(Int32.max),
                                            reading: false, receiveBuffer: 64 * KiB)
            defer { client.close() }
            let response = client.open(RawHTTP2Client.grpcHeaders(path: "/test.Slow/Stream"),
                                       body: [0, 0, 0, 0, 0], endStream: true)
            #expect(waitUntil(timeout: 10) { sent.value >= MiB }, "the handler started sending")
            // What the handler gets rid of is bounded by the socket buffers (the kernel's,
            // at most 4 MiB + 64 KiB here, and NIO's high-water mark) plus the call's 1 MiB
            // send buffer; before the fix it sent all 48 MiB in well under a second.
            #expect(!waitUntil(timeout: 3) { sent.value > 16 * MiB },
                    "sent \(sent.value) bytes to a peer that read none")
            // The peer reads again: the rest flows, all of it, in order.
            try client.startReading()
            let r = try response.wait()
            #expect(r.grpcStatus == 0)
            #expect(sent.value == total)
            #expect(r.data.count == total / KiB * (KiB + 5))
        }
    }

    @Test func aNonReadingPeerDoesNotStallOtherConnections() async throws {
        let sent = Locked(0)
        let echo = TestMethod("/test.Slow/Echo", .unary, .blocking { call in
            let m = try call.receiveMessage() ?? []
            try call.sendMessage(m)
            try call.finish(.ok)
        })
        try await onThread {
            let running = try startServer(methods: [Self.streamMethod(count: 32 * KiB, sent: sent), echo])
            defer { running.server.shutdown(grace: 0) }
            let stuck = try RawHTTP2Client(port: running.port, initialWindowSize: Int(Int32.max),
                                           reading: false, receiveBuffer: 64 * KiB)
            defer { stuck.close() }
            _ = stuck.open(RawHTTP2Client.grpcHeaders(path: "/test.Slow/Stream"), body: [0, 0, 0, 0, 0], endStream: true)
            #expect(waitUntil(timeout: 10) { sent.value >= MiB })
            // The server's event loop is not held by the stuck connection: another is served.
            let other = try RawHTTP2Client(port: running.port)
            defer { other.close() }
            let r = try other.request(RawHTTP2Client.grpcHeaders(path: "/test.Slow/Echo"), body: [0, 0, 0, 0, 2, 0x68, 0x69])
            #expect(r.grpcStatus == 0)
            #expect(r.data == [0, 0, 0, 0, 2, 0x68, 0x69])
        }
    }
}
