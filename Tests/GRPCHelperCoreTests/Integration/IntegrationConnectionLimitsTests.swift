// Connections that never speak and connections beyond a limit (issue 15, defect 5): a
// connection that has not sent the HTTP/2 preface and SETTINGS within the handshake
// timeout is closed (they used to stay open forever); beyond `maxConnections` a connection
// is closed as soon as it is accepted, the others served.
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import GRPCHelperCore

/// A bare TCP connection to 127.0.0.1:port that sends nothing; `closedByPeer(within:)`
/// waits (bounded) for the server to close it.
private final class SilentConnection {
    let fd: Int32
    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw RuntimeError(.invalidState, "connect failed: \(errno)")
        }
    }
    deinit { close(fd) }

    /// True once a read sees the end of the stream (the peer closed) within `seconds`.
    func closedByPeer(within seconds: Double) -> Bool {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fd, &buf, buf.count)
            if n == 0 { return true }                 // closed
            if n < 0 { return errno == ECONNRESET }  // timeout (EAGAIN) or reset
            // bytes from the server (its SETTINGS): keep reading
        }
    }
}

private let echo = TestMethod("/test.Conn/Echo", .unary, .blocking { call in
    if let m = try call.receiveMessage() { try call.sendMessage(m) }
})

@Suite("Integration: connection limits", .timeLimit(.minutes(1)))
struct IntegrationConnectionLimitsTests {
    @Test func aConnectionThatNeverSpeaksIsClosedAfterTheHandshakeTimeout() async throws {
        var o = testServerOptions()
        o.handshakeTimeout = 0.3
        try await withServer(options: o, methods: [echo]) { h in
            // A real client completes the handshake: its connection stays.
            #expect(runCall(h.channel, "/test.Conn/Echo", [[1]]).messages == [[1]])
            let silent = try SilentConnection(port: h.port)
            #expect(silent.closedByPeer(within: 10), "closed by the server")
            // The gRPC connection outlived the timeout: the next call needs no new one.
            let accepted = h.server.acceptedConnectionCount
            #expect(runCall(h.channel, "/test.Conn/Echo", [[2]]).messages == [[2]])
            #expect(h.server.acceptedConnectionCount == accepted)
        }
    }

    @Test func connectionsBeyondTheLimitAreClosedAtOnce() async throws {
        var o = testServerOptions()
        o.maxConnections = 1
        try await withServer(options: o, methods: [echo]) { h in
            #expect(runCall(h.channel, "/test.Conn/Echo", [[1]]).messages == [[1]])
            #expect(h.server.openConnectionCount == 1)
            let extra = try SilentConnection(port: h.port)
            #expect(extra.closedByPeer(within: 10), "refused")
            #expect(h.server.refusedConnectionCount == 1)
            // The first connection goes on.
            #expect(runCall(h.channel, "/test.Conn/Echo", [[3]]).messages == [[3]])
        }
    }
}
