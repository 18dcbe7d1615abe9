// The client over real sockets: lazy connect, reconnect to a restarted server, many
// concurrent calls on one channel, wait-for-ready, a connection lost mid-call.
import NIOCore
import NIOPosix
import Testing
@testable import GRPCHelperCore

/// An HTTP/2 server (our nghttp2 session, no gRPC) that drops the TCP connection as soon
/// as a request's headers arrive: a server process dying mid-call.
private final class ConnectionDroppingServer {
    private final class Dropper: H2StreamDelegate {
        let channel: Channel
        init(_ channel: Channel) { self.channel = channel }
        func h2ReceivedHeaders(_ stream: H2Stream, _ fields: [HeaderField], endStream: Bool) {
            // Not from inside nghttp2's receive callback.
            let channel = self.channel
            channel.eventLoop.execute { channel.close(promise: nil) }
        }
        func h2HeadersTooLarge(_ stream: H2Stream, size: Int) {}
        func h2ReceivedData(_ stream: H2Stream, _ bytes: UnsafeRawBufferPointer) {}
        func h2ReceivedEndStream(_ stream: H2Stream) {}
        func h2StreamClosed(_ stream: H2Stream, errorCode: UInt32) {}
    }

    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var listener: Channel?
    private(set) var port = 0

    init() throws {
        do {
            let l = try ServerBootstrap(group: group)
                .childChannelInitializer { ch in
                    let session = H2Session(isServer: true, maxHeaderListSize: 1 << 16, maxConcurrentStreams: 100,
                                            initialWindowSize: 1 << 20)
                    let dropper = Dropper(ch)
                    session.onNewStream = { $0.delegate = dropper }
                    return ch.eventLoop.makeCompletedFuture {
                        try ch.pipeline.syncOperations.addHandler(H2ConnectionHandler(session: session))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).wait()
            listener = l
            port = l.localAddress?.port ?? 0
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
    }

    func close() {
        try? listener?.close().wait()
        try? group.syncShutdownGracefully()
    }
}

/// Unary: "<name>:" + request.
private func named(_ name: String) -> TestMethod {
    TestMethod("/test.Client/Echo", .unary, .blocking { call in
        guard let m = try call.receiveMessage() else { throw RPCError(.invalidArgument, "no request") }
        try call.sendMessage(bytes(name + ":") + m)
    })
}

@Suite("Integration: client", .timeLimit(.minutes(1)))
struct IntegrationClientTests {
    /// Creating a channel does not connect; a call to a port where nothing listens fails
    /// with UNAVAILABLE quickly.
    @Test func lazyConnectAndUnavailable() async throws {
        try await onThread {
            let port = try reserveFreePort()
            let channel = try GRPCChannel(target: "127.0.0.1:\(port)")
            defer { channel.close() }
            let t0 = now()
            let r = runCall(channel, "/test.Client/Echo", [bytes("anyone?")])
            let elapsed = now() - t0
            #expect(r.status.code == .unavailable, "\(r.status)")
            #expect(elapsed < 2, "failed after \(elapsed) s")
            #expect(r.messages.isEmpty)
        }
    }

    /// After the server goes away and a new one starts on the same port, the next call on
    /// the same channel reconnects.
    @Test func reconnectToRestartedServer() async throws {
        try await onThread {
            // A port chosen in advance, so no other test's server can take it in between.
            let port = try reserveFreePort()
            let first = try startServer(listen: "127.0.0.1:\(port)", methods: [named("first")])
            var firstRunning = true
            defer { if firstRunning { first.server.shutdown(grace: 0) } }
            let channel = try GRPCChannel(target: first.target)
            defer { channel.close() }

            #expect(text(try channel.unary("/test.Client/Echo", bytes("a"), options: CallOptions(timeout: testTimeout))) == "first:a")
            first.server.shutdown(grace: 1)
            firstRunning = false

            let second = try startServer(listen: "127.0.0.1:\(first.port)", methods: [named("second")])
            defer { second.server.shutdown(grace: 0) }
            #expect(second.port == first.port)
            let r = runCall(channel, "/test.Client/Echo", [bytes("b")])
            #expect(r.status == .ok, "\(r.status)")
            #expect(r.messages.map { text($0) } == ["second:b"])
        }
    }

    /// 200 unary calls from 10 threads, multiplexed on one channel.
    @Test func manyConcurrentCallsFromThreads() async throws {
        try await withServer(methods: [named("echo")]) { h in
            let ok = Locked(0)
            let failures = Locked<[String]>([])
            let finished = runConcurrently(10) { t in
                for j in 0..<20 {
                    do {
                        let reply = try h.channel.unary("/test.Client/Echo", bytes("\(t)-\(j)"),
                                                        options: CallOptions(timeout: 20))
                        if text(reply) == "echo:\(t)-\(j)" { ok.withLock { $0 += 1 } } else {
                            failures.withLock { $0.append("\(t)-\(j): wrong reply \(text(reply) ?? "")") }
                        }
                    } catch {
                        failures.withLock { $0.append("\(t)-\(j): \(error)") }
                    }
                }
            }
            #expect(finished)
            #expect(failures.value == [])
            #expect(ok.value == 200)
        }
    }

    /// 200 async unary calls from concurrent tasks on one channel.
    @Test func manyConcurrentCallsFromTasks() async throws {
        try await withServerAsync(methods: [named("echo")]) { h in
            let replies = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
                for i in 0..<200 {
                    group.addTask {
                        let r = try await h.channel.unary("/test.Client/Echo", bytes("\(i)"),
                                                          options: CallOptions(timeout: 20))
                        return (i, text(r))
                    }
                }
                var all: [Int: String?] = [:]
                for try await (i, r) in group { all[i] = r }
                return all
            }
            #expect(replies.count == 200)
            #expect(replies.allSatisfy { $0.value == "echo:\($0.key)" })
        }
    }

    /// The connection dies while a call is in flight: UNAVAILABLE, as gRPC reports a lost transport.
    @Test func connectionLostMidCall() async throws {
        try await onThread {
            let server = try ConnectionDroppingServer()
            defer { server.close() }
            let channel = try GRPCChannel(target: "127.0.0.1:\(server.port)")
            defer { channel.close() }
            let r = runCall(channel, "/test.Client/Echo", [bytes("hello?")])
            #expect(r.status.code == .unavailable, "\(r.status)")
            #expect(r.messages.isEmpty)
        }
    }

    /// waitForReady: a call started before anything listens succeeds once a server starts;
    /// a call without it, started at the same time, fails with UNAVAILABLE.
    @Test func waitForReady() async throws {
        try await onThread {
            let port = try reserveFreePort()
            let channel = try GRPCChannel(target: "127.0.0.1:\(port)")
            defer { channel.close() }

            let waiting = channel.makeCall("/test.Client/Echo",
                                           options: CallOptions(timeout: 5, waitForReady: true))
            waiting.start()
            try waiting.send(bytes("patient"))
            waiting.closeSend()

            // Proof that nothing listened when the calls started.
            let impatient = runCall(channel, "/test.Client/Echo", [bytes("impatient")])
            #expect(impatient.status.code == .unavailable, "\(impatient.status)")
            #expect(waiting.status == nil, "the wait-for-ready call is still waiting")

            let server = try startServer(listen: "127.0.0.1:\(port)", methods: [named("late")])
            defer { server.server.shutdown(grace: 0) }
            let reply = try waiting.receive()
            #expect(text(reply) == "late:patient")
            #expect(waiting.waitStatus() == .ok)
        }
    }
}
