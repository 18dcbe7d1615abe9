// The server over real sockets: IPv6 and unix-socket listeners, several services,
// unknown methods, a port already in use, graceful shutdown with and without grace
// expiring, and the worker pool bound.
import Testing
@testable import GRPCHelperCore
#if canImport(Glibc)
import Glibc
#endif

/// Unary echo that also reports the peer it saw: "<peer>|<request>".
private func peerEcho(_ path: String = "/test.Server/Echo") -> TestMethod {
    TestMethod(path, .unary, .blocking { call in
        guard let m = try call.receiveMessage() else { throw RPCError(.invalidArgument, "no request") }
        try call.sendMessage(bytes(call.peer + "|") + m)
    })
}

/// A unary method answering a fixed text.
private func fixed(_ path: String, _ answer: String) -> TestMethod {
    TestMethod(path, .unary, .async { call in
        _ = try await call.receive()
        try await call.send(bytes(answer))
    })
}

/// true when an IPv6 socket can be bound to ::1.
private let ipv6LoopbackAvailable: Bool = {
    let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var addr = sockaddr_in6()
    addr.sin6_family = sa_family_t(AF_INET6)
    addr.sin6_addr = in6addr_loopback
    return withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0
        }
    }
}()

/// A fresh socket path under /tmp (removed by the caller).
private func temporarySocketPath() -> String {
    "/tmp/grpchelper-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
}

private func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

@Suite("Integration: server", .timeLimit(.minutes(1)))
struct IntegrationServerTests {
    @Test(.enabled(if: ipv6LoopbackAvailable, "no IPv6 loopback"))
    func ipv6Listener() async throws {
        try await withServer(listen: "[::1]:0", methods: [peerEcho()]) { h in
            #expect(h.port > 0)
            #expect(h.target == "[::1]:\(h.port)")
            let reply = try h.channel.unary("/test.Server/Echo", bytes("v6"), options: CallOptions(timeout: testTimeout))
            let t = try #require(text(reply))
            #expect(t.hasPrefix("ipv6:[::1]:"), "peer: \(t)")
            #expect(t.hasSuffix("|v6"))
        }
    }

    @Test func unixSocketListener() async throws {
        let path = temporarySocketPath()
        try await onThread {
            try withServerBlocking(listen: "unix:\(path)", methods: [peerEcho()]) { h in
                #expect(h.target == "unix:\(path)")
                #expect(fileExists(path))
                let reply = try h.channel.unary("/test.Server/Echo", bytes("uds"), options: CallOptions(timeout: testTimeout))
                let t = try #require(text(reply))
                #expect(t.hasPrefix("unix:"), "peer: \(t)")
                #expect(t.hasSuffix("|uds"))

                // The "unix://PATH" spelling reaches the same socket.
                let other = try GRPCChannel(target: "unix://\(path)")
                defer { other.close() }
                let r = try other.unary("/test.Server/Echo", bytes("again"), options: CallOptions(timeout: testTimeout))
                #expect(text(r)?.hasSuffix("|again") == true)
            }
        }
        #expect(!fileExists(path), "the server removes its socket file at shutdown")
        unlink(path)
    }

    @Test func twoServicesAndUnknownMethods() async throws {
        let methods = [fixed("/svc.Alpha/Hello", "alpha hello"), fixed("/svc.Alpha/Bye", "alpha bye"),
                       fixed("/svc.Beta/Hello", "beta hello")]
        try await withServer(methods: methods) { h in
            for (path, answer) in [("/svc.Alpha/Hello", "alpha hello"), ("/svc.Alpha/Bye", "alpha bye"),
                                   ("/svc.Beta/Hello", "beta hello")] {
                let r = runCall(h.channel, path, [[]])
                #expect(r.status == .ok, "\(path)")
                #expect(r.messages.map { text($0) } == [answer])
            }
            for path in ["/svc.Alpha/Nope", "/svc.Gamma/Hello", "/svc.Beta/hello", "/svc.Beta/Hello/x"] {
                let r = runCall(h.channel, path, [[1]])
                #expect(r.status.code == .unimplemented, "\(path): \(r.status)")
                #expect(r.messages.isEmpty)
            }
            // A streaming call to an unknown method fails the same way.
            let call = h.channel.makeCall("/svc.Gamma/Stream", options: CallOptions(timeout: testTimeout))
            call.start()
            #expect(call.waitStatus().code == .unimplemented)
        }
    }

    @Test func portInUse() async throws {
        try await withServer(methods: [peerEcho()]) { h in
            let second = Server(options: testServerOptions())
            try second.register("/test.Server/Echo", cardinality: .unary, handler: .blocking { _ in })
            try second.addListener("127.0.0.1:\(h.port)")
            do {
                try second.start()
                second.shutdown(grace: 0)
                Issue.record("a second server bound the same port")
            } catch let e as RuntimeError {
                #expect(e.kind == .bind)
                #expect(e.message.contains("127.0.0.1:\(h.port)"), "message: \(e.message)")
            }
            #expect(!second.isRunning)
            // The first server is unaffected.
            let r = runCall(h.channel, "/test.Server/Echo", [bytes("still here")])
            #expect(r.status == .ok)
        }
    }

    /// shutdown(grace: 5) with a call in flight: new calls fail with UNAVAILABLE, the call
    /// in flight completes once released, then shutdown returns.
    @Test func gracefulShutdown() async throws {
        let started = Gate()
        let release = Gate()
        let handler = ServerHandler.blocking { call in
            _ = try call.receiveMessage()
            started.open()
            guard release.wait(orCancelled: call) else { throw RPCError(.cancelled, "cancelled while held") }
            try call.sendMessage(bytes("finished"))
        }
        try await withServer(methods: [TestMethod("/test.Server/Hold", .unary, handler)]) { h in
            let call = h.channel.makeCall("/test.Server/Hold", options: CallOptions(timeout: 20))
            call.start()
            try call.send([1])
            call.closeSend()
            #expect(started.wait(timeout: 5))

            let shutdownDone = Gate()
            startThread {
                h.server.shutdown(grace: 5)
                shutdownDone.open()
            }
            #expect(waitUntil { !h.server.acceptsCalls }, "shutdown did not begin")

            // New calls fail, on the existing channel and on a new one.
            let refused = runCall(h.channel, "/test.Server/Hold", [[2]])
            #expect(refused.status.code == .unavailable, "\(refused.status)")
            let fresh = try GRPCChannel(target: h.target)
            defer { fresh.close() }
            let refusedFresh = runCall(fresh, "/test.Server/Hold", [[3]])
            #expect(refusedFresh.status.code == .unavailable, "\(refusedFresh.status)")

            #expect(!shutdownDone.opened, "shutdown waits for the call in flight")
            #expect(call.status == nil)
            release.open()
            let reply = try call.receive()
            #expect(text(reply) == "finished")
            #expect(call.waitStatus() == .ok)
            #expect(shutdownDone.wait(timeout: 5), "shutdown did not return")
            #expect(!h.server.isRunning)
        }
    }

    /// shutdown(grace: 0.2) with a handler that only stops when cancelled: the handler is
    /// cancelled once the grace expires, shutdown returns, the client gets an error.
    @Test func graceExpires() async throws {
        let started = Gate()
        let cancellation = Locked<Status?>(nil)
        let handler = ServerHandler.blocking { call in
            _ = try call.receiveMessage()
            started.open()
            waitUntil(timeout: testTimeout) { call.isCancelled }
            cancellation.value = call.cancellationStatus
        }
        try await withServer(methods: [TestMethod("/test.Server/Stuck", .unary, handler)]) { h in
            let call = h.channel.makeCall("/test.Server/Stuck", options: CallOptions(timeout: 20))
            call.start()
            try call.send([1])
            call.closeSend()
            #expect(started.wait(timeout: 5))

            let t0 = now()
            h.server.shutdown(grace: 0.2)
            let elapsed = now() - t0
            #expect(elapsed >= 0.15 && elapsed < 3, "shutdown took \(elapsed) s")
            #expect(!h.server.isRunning)
            #expect(cancellation.value?.code == .unavailable)

            let status = call.waitStatus()
            #expect(!status.isOK)
            #expect(try call.receive() == nil)
        }
    }

    /// maxWorkers = 2: six blocking calls, never more than two handlers at once, all complete.
    @Test func workerPoolBound() async throws {
        var options = testServerOptions()
        options.maxWorkers = 2
        try await expectAtMostTwoAtOnce(options: options, path: "/test.Server/Pool", count: 6)
    }
}
