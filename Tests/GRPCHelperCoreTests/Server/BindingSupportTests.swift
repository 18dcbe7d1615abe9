// Server features the language bindings build on: a fallback handler for methods not
// registered, a limit on concurrent calls, binding a port before start, waiting for the
// end of a call from another thread, and the client's user-agent.
import Testing
@testable import GRPCHelperCore

/// Unary echo at `path`.
private func echo(_ path: String) -> TestMethod {
    TestMethod(path, .unary, .blocking { call in
        guard let m = try call.receiveMessage() else { throw RPCError(.invalidArgument, "no request") }
        try call.sendMessage(m)
    })
}

@Suite("Integration: binding support", .timeLimit(.minutes(1)))
struct IntegrationBindingSupportTests {
    @Test func fallbackHandlerServesUnregisteredMethods() throws {
        let server = Server(options: testServerOptions())
        try server.register("/t.S/Known", cardinality: .unary, handler: .blocking { call in
            _ = try call.receiveMessage()
            try call.sendMessage(bytes("known"))
        })
        try server.registerFallback(handler: .blocking { call in
            #expect(call.cardinality == .bidiStreaming)
            guard call.method == "/t.S/Dynamic" else {
                try call.finish(Status(.unimplemented, "no \(call.method)"))
                return
            }
            while let m = try call.receiveMessage() { try call.sendMessage(bytes(call.method + ":") + m) }
        })
        try server.addListener("127.0.0.1:0")
        try server.start()
        defer { server.shutdown(grace: 0) }
        let channel = try GRPCChannel(target: "127.0.0.1:\(server.port()!)")
        defer { channel.close() }
        #expect(runCall(channel, "/t.S/Known", [[]]).messages == [bytes("known")])
        let r = runCall(channel, "/t.S/Dynamic", [bytes("a"), bytes("b")])
        #expect(r.status.code == .ok)
        #expect(r.messages == [bytes("/t.S/Dynamic:a"), bytes("/t.S/Dynamic:b")])
        let u = runCall(channel, "/t.S/Other", [[]])
        #expect(u.status.code == .unimplemented)
        #expect(u.status.message == "no /t.S/Other")
    }

    @Test func fallbackOnlyBeforeStart() throws {
        let server = Server(options: testServerOptions())
        try server.addListener("127.0.0.1:0")
        try server.start()
        defer { server.shutdown(grace: 0) }
        #expect(throws: RuntimeError.self) { try server.registerFallback(handler: .blocking { _ in }) }
    }

    @Test func oneFallbackOnly() throws {
        let server = Server(options: testServerOptions())
        try server.registerFallback(handler: .blocking { _ in })
        #expect(throws: RuntimeError.self) { try server.registerFallback(handler: .blocking { _ in }) }
    }

    /// Options change until the first bind or start, which fix them; a failed change
    /// changes nothing.
    @Test func optionsAreConfigurableUntilBound() throws {
        let server = Server(options: testServerOptions())
        try server.configure { $0.maxWorkers = 3; $0.maxConcurrentRPCs = 5 }
        #expect(server.options.maxWorkers == 3 && server.options.maxConcurrentRPCs == 5)
        struct Refused: Error {}
        #expect(throws: Refused.self) { try server.configure { $0.maxWorkers = 7; throw Refused() } }
        #expect(server.options.maxWorkers == 3)
        #expect(!server.isBound && !server.isStarted)
        let port = try server.bindNow("127.0.0.1:0")
        #expect(port > 0 && server.isBound && !server.isStarted)
        #expect(throws: RuntimeError.self) { try server.configure { $0.maxWorkers = 9 } }
        #expect(server.options.maxWorkers == 3)
        try server.start()
        defer { server.shutdown(grace: 0) }
        #expect(server.isStarted)
        #expect(throws: RuntimeError.self) { try server.configure { $0.maxWorkers = 9 } }
    }

    /// idle → serving → draining → stopped, as the public flags show it; beginShutdown
    /// returns while a handler still runs, and its whenStopped follows the handler.
    @Test func lifecycleAndBeginShutdown() throws {
        let entered = Gate(), release = Gate(), stopped = Gate()
        let server = Server(options: testServerOptions())
        try server.register("/t.S/Hold", cardinality: .unary, handler: .blocking { call in
            _ = try call.receiveMessage()
            entered.open()
            release.wait()
            try call.sendMessage(bytes("held"))
        })
        #expect(!server.isRunning && !server.isStarted && !server.isBound)
        try server.addListener("127.0.0.1:0")
        try server.start()
        #expect(server.isRunning && server.isStarted && server.isBound)
        #expect(throws: RuntimeError.self) { try server.start() }
        #expect(throws: RuntimeError.self) { try server.register("/t.S/Late", cardinality: .unary, handler: .blocking { _ in }) }
        let channel = try GRPCChannel(target: "127.0.0.1:\(server.port()!)")
        defer { channel.close() }
        let call = channel.makeCall("/t.S/Hold", options: CallOptions(timeout: testTimeout))
        call.start()
        try call.send(bytes("x"))
        call.closeSend()
        #expect(entered.wait())
        server.beginShutdown(grace: testTimeout, whenStopped: { stopped.open() })
        #expect(server.isRunning)  // draining: the held call still runs
        #expect(!stopped.opened)
        release.open()
        #expect(try call.receive() == bytes("held"))
        #expect(call.waitStatus().code == .ok)
        #expect(stopped.wait())
        server.wait()
        #expect(!server.isRunning && server.isStarted)
        // Once stopped, a further begin's whenStopped runs too.
        let again = Gate()
        server.beginShutdown(grace: 0, whenStopped: { again.open() })
        #expect(again.wait())
    }

    @Test func concurrentCallLimitAnswersResourceExhausted() async throws {
        var options = testServerOptions()
        options.maxConcurrentRPCs = 2
        let gate = Gate()
        let tracker = ConcurrencyTracker()
        let hold = TestMethod("/t.S/Hold", .unary, .blocking { call in
            tracker.enter()
            defer { tracker.leave() }
            _ = try call.receiveMessage()
            _ = gate.wait(orCancelled: call)
            try call.sendMessage(bytes("done"))
        })
        try await withServer(options: options, methods: [hold]) { h in
            let results = Locked<[CallResult]>([])
            let finished = Gate()
            for _ in 0..<2 {
                startThread {
                    let r = runCall(h.channel, "/t.S/Hold", [[]])
                    let n = results.withLock { $0.append(r); return $0.count }
                    if n == 2 { finished.open() }
                }
            }
            #expect(tracker.waitStarted(atLeast: 2))
            let third = runCall(h.channel, "/t.S/Hold", [[]])
            #expect(third.status.code == .resourceExhausted)
            #expect(third.status.message == "Concurrent RPC limit exceeded!")
            #expect(tracker.started == 2)
            gate.open()
            #expect(finished.wait())
            #expect(results.value.map(\.status.code) == [.ok, .ok])
            // Below the limit again: calls run.
            #expect(runCall(h.channel, "/t.S/Hold", [[]]).status.code == .ok)
        }
    }

    @Test func bindBeforeStartResolvesPortZero() async throws {
        try await onThread {
            let server = Server(options: testServerOptions())
            let port = try server.bindNow("127.0.0.1:0")
            #expect(port > 0)
            // A client that connects before start waits in the backlog and is served after.
            let channel = try GRPCChannel(target: "127.0.0.1:\(port)")
            defer { channel.close() }
            let call = channel.makeCall("/t.S/Echo", options: CallOptions(timeout: testTimeout))
            call.start()
            try call.send(bytes("early"))
            call.closeSend()
            try server.register("/t.S/Echo", cardinality: .unary, handler: echo("/t.S/Echo").handler)
            try server.start()
            defer { server.shutdown(grace: 0) }
            #expect(try call.receive() == bytes("early"))
            #expect(call.waitStatus().code == .ok)
            #expect(throws: RuntimeError.self) { _ = try server.bindNow("127.0.0.1:0") }
        }
    }

    @Test func boundPortIsBusyForOthersAndFreedByShutdown() async throws {
        try await onThread {
            let server = Server(options: testServerOptions())
            let port = try server.bindNow("127.0.0.1:0")
            let other = Server(options: testServerOptions())
            do {
                _ = try other.bindNow("127.0.0.1:\(port)")
                Issue.record("second bind succeeded")
            } catch let e as RuntimeError {
                #expect(e.kind == .bind)
            }
            // Never started: shutdown closes the listener.
            server.shutdown(grace: 0)
            let again = Server(options: testServerOptions())
            #expect(try again.bindNow("127.0.0.1:\(port)") == port)
            again.shutdown(grace: 0)
            other.shutdown(grace: 0)
        }
    }

    @Test func waitUntilEndedWakesOnCancelFinishAndTimeout() async throws {
        let observed = Locked<[String]>([])
        let watcherDone = Gate()
        let method = TestMethod("/t.S/Watch", .serverStreaming, .blocking { call in
            _ = try call.receiveMessage()
            // Not ended yet: a short wait times out.
            observed.withLock { $0.append(call.waitUntilEnded(timeout: 0.01) ? "ended" : "timeout") }
            startThread {
                observed.withLock { $0.append(call.waitUntilEnded(timeout: nil) ? "ended" : "timeout") }
                watcherDone.open()
            }
            try call.sendMessage(bytes("first"))
            // The client cancels after the first message; the watcher wakes.
            #expect(watcherDone.wait())
        })
        let finishing = TestMethod("/t.S/Finish", .unary, .blocking { call in
            _ = try call.receiveMessage()
            try call.sendMessage(bytes("x"))
            try call.finish(.ok)
            observed.withLock { $0.append(call.waitUntilEnded(timeout: 0) ? "finished" : "running") }
        })
        try await withServer(methods: [method, finishing]) { h in
            let call = h.channel.makeCall("/t.S/Watch", options: CallOptions(timeout: testTimeout))
            call.start()
            try call.send([])
            call.closeSend()
            #expect(try call.receive() == bytes("first"))
            call.cancel()
            #expect(watcherDone.wait())
            #expect(runCall(h.channel, "/t.S/Finish", [[]]).status.code == .ok)
            #expect(waitUntil { observed.value.count == 3 })
            #expect(observed.value == ["timeout", "ended", "finished"])
        }
    }

    @Test func handlerSeesTheUserAgent() async throws {
        let seen = Locked<String?>(nil)
        let method = TestMethod("/t.S/UA", .unary, .blocking { call in
            _ = try call.receiveMessage()
            seen.value = call.userAgent
            #expect(call.requestMetadata.first("user-agent") == nil)
            try call.sendMessage([])
        })
        var copts = ChannelOptions()
        copts.userAgentPrefix = "my-app/1.0"
        try await withServer(channelOptions: copts, methods: [method]) { h in
            #expect(runCall(h.channel, "/t.S/UA", [[]]).status.code == .ok)
            let ua = try #require(seen.value)
            #expect(ua.hasPrefix("my-app/1.0 "))
        }
    }
}
