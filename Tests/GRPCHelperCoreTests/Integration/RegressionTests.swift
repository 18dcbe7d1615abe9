import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import GRPCHelperCore

/// Bugs found by review, each pinned by a test that failed before its fix.
@Suite struct RegressionTests {
    /// A wait-for-ready call started while the channel backs off after a failed connect
    /// used to wait for its whole deadline: nothing scheduled the reconnect.
    @Test func waitForReadyDuringBackoffReconnects() async throws {
        try await onThread {
            let port = try reserveFreePort()
            let channel = try GRPCChannel(target: "127.0.0.1:\(port)")
            defer { channel.close() }
            // A failed connect: the channel is in backoff now.
            #expect(runCall(channel, "/reg.S/Late", [bytes("x")]).status.code == .unavailable)
            let waiting = channel.makeCall("/reg.S/Late", options: CallOptions(timeout: 20, waitForReady: true))
            waiting.start()
            try waiting.send(bytes("patient"))
            waiting.closeSend()
            let running = try startServer(listen: "127.0.0.1:\(port)", methods: [
                TestMethod("/reg.S/Late", .unary, .blocking { call in
                    if let r = try call.receiveMessage() { try call.sendMessage(r) }
                }),
            ])
            defer { running.server.shutdown(grace: 0) }
            let started = now()
            #expect(try waiting.receive() == bytes("patient"))
            #expect(waiting.waitStatus().code == .ok)
            // Well before the 20 s deadline: after the backoff (1 s, jittered), not at the end.
            #expect(now() - started < 10)
        }
    }

    /// A call started after its channel was closed used to wait forever (deadline
    /// included): its start was scheduled on the closed channel's stopped event loop.
    @Test func callStartedAfterCloseEndsCancelled() async throws {
        try await withServer(methods: [TestMethod("/reg.S/E", .unary, .blocking { call in
            if let r = try call.receiveMessage() { try call.sendMessage(r) }
        })]) { h in
            let channel = try GRPCChannel(target: h.target)
            // Connected once, then closed.
            #expect(runCall(channel, "/reg.S/E", [bytes("a")]).status.code == .ok)
            let blocking = channel.makeCall("/reg.S/E", options: CallOptions(timeout: 20))
            let callback = channel.makeCall("/reg.S/E", options: CallOptions(timeout: 20))
            channel.close()
            blocking.start()
            try? blocking.send(bytes("late"))
            blocking.closeSend()
            #expect(try blocking.receive() == nil)
            let s = blocking.waitStatus()
            #expect(s.code == .cancelled)
            #expect(s.message == "channel closed")
            let done = Gate()
            let got = Locked<Status?>(nil)
            callback.start(onMessage: { _ in }, onDone: { st in got.value = st; done.open() })
            #expect(done.wait())
            #expect(got.value?.code == .cancelled)
            // A channel never used, then closed: no connection is made for a later call.
            let unused = try GRPCChannel(target: h.target)
            unused.close()
            let late = unused.makeCall("/reg.S/E", options: CallOptions(timeout: 20))
            late.start()
            #expect(late.waitStatus().code == .cancelled)
        }
    }

    /// A server that ends calls while the client still sends must not leave streams open:
    /// with MAX_CONCURRENT_STREAMS 2, the third such call on the channel used to hang.
    @Test func serverEndingBeforeHalfCloseFreesTheStream() async throws {
        var o = testServerOptions()
        o.maxConcurrentStreams = 2
        let abort = TestMethod("/reg.S/Abort", .bidiStreaming, .blocking { _ in
            throw RPCError(.aborted, "done early")
        })
        try await withServer(options: o, methods: [abort]) { h in
            for i in 0..<8 {
                let call = h.channel.makeCall("/reg.S/Abort", options: CallOptions(timeout: 10))
                call.start()
                try? call.send(bytes("x"))
                // No closeSend: the client is still "sending" when the status arrives.
                #expect(call.waitStatus().code == .aborted, "call \(i)")
            }
        }
    }

    /// After a failed connect the channel backs off: within the backoff (1 s at first) a
    /// call fails at once even though a server now listens; after it, calls connect.
    @Test func reconnectBacksOff() async throws {
        try await onThread {
            let port = try reserveFreePort()
            let channel = try GRPCChannel(target: "127.0.0.1:\(port)")
            defer { channel.close() }
            let failedAt = now()
            #expect(runCall(channel, "/reg.S/Echo2", [bytes("x")]).status.code == .unavailable)
            let running = try startServer(listen: "127.0.0.1:\(port)", methods: [
                TestMethod("/reg.S/Echo2", .unary, .blocking { call in
                    if let r = try call.receiveMessage() { try call.sendMessage(r) }
                }),
            ])
            defer { running.server.shutdown(grace: 0) }
            // Still inside the backoff window: no new connection attempt, UNAVAILABLE at once.
            let early = runCall(channel, "/reg.S/Echo2", [bytes("x")])
            if now() - failedAt < 0.7 {
                #expect(early.status.code == .unavailable)
                #expect(running.server.acceptedConnectionCount == 0)
            }
            // Once the backoff has passed, the next call connects.
            var okAt = 0.0
            #expect(waitUntil(timeout: 5) {
                let ok = runCall(channel, "/reg.S/Echo2", [bytes("y")]).status.isOK
                if ok { okAt = now() }
                return ok
            })
            #expect(okAt - failedAt >= 0.7, "reconnected after \(okAt - failedAt) s, before the backoff")
            #expect(running.server.acceptedConnectionCount == 1)
        }
    }

    /// cancel() puts RST_STREAM(CANCEL) on the wire.
    @Test func cancelSendsRstStreamCancel() throws {
        let fake = try FakeHTTP2Server(.init(headers: [], silent: true))
        defer { fake.close() }
        let channel = try GRPCChannel(target: "127.0.0.1:\(fake.port)")
        defer { channel.close() }
        let call = channel.makeCall("/x.Y/Z", options: CallOptions(timeout: 30))
        call.start()
        try call.send(bytes("x"))
        #expect(waitUntil { !fake.receivedHeaders.isEmpty }, "request never reached the server")
        call.cancel()
        #expect(call.waitStatus().code == .cancelled)
        #expect(fake.waitClosed(1))
        #expect(fake.closeCodes == [8], "got \(fake.closeCodes)")
    }

    /// The documented defaults.
    @Test func defaults() {
        let s = ServerOptions()
        #expect(s.maxWorkers == 30)
        #expect(s.maxReceiveMessageSize == 4 * 1024 * 1024)
        #expect(s.maxConcurrentStreams == 100)
        #expect(s.maxHeaderListSize == 16 * 1024)
        let c = ChannelOptions()
        #expect(c.maxReceiveMessageSize == 4 * 1024 * 1024)
        #expect(c.defaultCompression == .identity)
    }

    /// A channel connects on its first call, not when it is created.
    @Test func channelConnectsLazily() async throws {
        let m = TestMethod("/reg.S/Lazy", .unary, .blocking { call in
            if let r = try call.receiveMessage() { try call.sendMessage(r) }
        })
        try await withServer(methods: [m]) { h in
            #expect(h.server.acceptedConnectionCount == 0, "connected before any call")
            #expect(runCall(h.channel, "/reg.S/Lazy", [bytes("x")]).status.isOK)
            #expect(h.server.acceptedConnectionCount == 1)
        }
    }

    /// Many concurrent calls on one channel share one HTTP/2 connection.
    @Test func concurrentCallsShareOneConnection() async throws {
        let m = TestMethod("/reg.S/Echo1", .unary, .blocking { call in
            if let r = try call.receiveMessage() { try call.sendMessage(r) }
        })
        try await withServer(methods: [m]) { h in
            let ok = Locked(0)
            #expect(runConcurrently(10) { t in
                for i in 0..<10 {
                    let r = runCall(h.channel, "/reg.S/Echo1", [bytes("\(t)-\(i)")])
                    if r.status.isOK && r.messages == [bytes("\(t)-\(i)")] { ok.withLock { $0 += 1 } }
                }
            })
            #expect(ok.withLock { $0 } == 100)
            #expect(h.server.acceptedConnectionCount == 1)
        }
    }

    /// The client ends its side when the status arrives while it still sends, even against a
    /// server that would leave the stream open.
    @Test func clientResetsWhenStatusArrivesWhileSending() throws {
        let fake = try FakeHTTP2Server(.init(headers: [(":status", "200"), ("content-type", "application/grpc"),
                                                       ("grpc-status", "9")], answerOnHeaders: true))
        defer { fake.close() }
        let channel = try GRPCChannel(target: "127.0.0.1:\(fake.port)")
        defer { channel.close() }
        let call = channel.makeCall("/x.Y/Z", options: CallOptions(timeout: 10))
        call.start()
        #expect(call.waitStatus().code == .failedPrecondition)
        #expect(fake.waitClosed(1), "the stream stayed open")
    }

    /// Initial metadata the handler sent explicitly arrives as initial metadata, even when
    /// the handler finishes at once (it used to be merged into a trailers-only response).
    @Test func explicitInitialMetadataStaysInitial() async throws {
        let m = TestMethod("/reg.S/Md", .unary, .blocking { call in
            var md = Metadata()
            try md.add("x-initial", "yes")
            try call.sendInitialMetadata(md)
            throw RPCError(.failedPrecondition, "after headers")
        })
        try await withServer(methods: [m]) { h in
            for i in 0..<100 {
                let r = runCall(h.channel, "/reg.S/Md", [bytes("x")])
                #expect(r.status.code == .failedPrecondition)
                #expect(r.initialMetadata.first("x-initial") == "yes", "call \(i)")
                #expect(r.trailingMetadata.first("x-initial") == nil, "call \(i)")
            }
        }
    }

    /// Compression cannot change once the response headers are out.
    @Test func compressionAfterHeadersIsRefused() async throws {
        let seen = Locked<String>("")
        let m = TestMethod("/reg.S/Comp", .unary, .blocking { call in
            try call.sendInitialMetadata(Metadata())
            do { try call.setCompression(.gzip) } catch let e as CallStateError {
                seen.withLock { $0 = e.message }
            }
            if let r = try call.receiveMessage() { try call.sendMessage(r) }
        })
        try await withServer(methods: [m]) { h in
            let r = runCall(h.channel, "/reg.S/Comp", [bytes("hi")])
            #expect(r.status.code == .ok)
            #expect(r.messages == [bytes("hi")])
        }
        #expect(seen.withLock { $0 }.contains("before the response headers"))
    }

    /// Misuse is a CallStateError; a call that ended throws RPCError.
    @Test func misuseAndEndedCallsThrowDistinctErrors() async throws {
        let m = TestMethod("/reg.S/Echo", .bidiStreaming, .blocking { call in
            while let r = try call.receiveMessage() { try call.sendMessage(r) }
        })
        try await withServer(methods: [m]) { h in
            let call = h.channel.makeCall("/reg.S/Echo", options: CallOptions(timeout: 10))
            call.start()
            call.closeSend()
            #expect(throws: CallStateError.self) { try call.send(bytes("late")) }
            #expect(call.waitStatus().isOK)
            let cancelled = h.channel.makeCall("/reg.S/Echo", options: CallOptions(timeout: 10))
            cancelled.start()
            cancelled.cancel()
            #expect(throws: RPCError.self) { try cancelled.send(bytes("x")) }
        }
    }

    /// A unix socket path where a server listens is busy; a stale socket file is replaced.
    @Test func busyUnixSocketIsRefused() throws {
        let path = "/tmp/gh-reg-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        defer { unlink(path) }
        let first = Server(options: testServerOptions())
        try first.addListener("unix:\(path)")
        try first.start()
        let second = Server(options: testServerOptions())
        try second.addListener("unix:\(path)")
        let error = #expect(throws: RuntimeError.self) { try second.start() }
        #expect(error?.kind == .bind)
        #expect(error?.message.contains(path) == true)
        #expect(unixSocketIsLive(path), "the first server keeps its socket")
        first.shutdown(grace: 0)
        // The file left behind (or none) does not stop a new server.
        let third = Server(options: testServerOptions())
        try third.addListener("unix:\(path)")
        try third.start()
        third.shutdown(grace: 0)
    }

    /// grpc-status must be 1*DIGIT; anything else, or an unknown code, is UNKNOWN.
    @Test(arguments: ["-1", "+5", "99", "abc", ""])
    func invalidGrpcStatusIsUnknown(_ value: String) throws {
        let fake = try FakeHTTP2Server(.init(headers: [(":status", "200"), ("content-type", "application/grpc"),
                                                       ("grpc-status", value)]))
        defer { fake.close() }
        let channel = try GRPCChannel(target: "127.0.0.1:\(fake.port)")
        defer { channel.close() }
        let call = channel.makeCall("/x.Y/Z", options: CallOptions(timeout: 10))
        call.start()
        call.closeSend()
        #expect(call.waitStatus().code == .unknown)
    }

    /// "host" is user metadata (grpcio carries it; grpc-helper clients send it).
    @Test func hostIsUserMetadata() async throws {
        let seen = Locked<String?>(nil)
        let m = TestMethod("/reg.S/Host", .unary, .blocking { call in
            seen.withLock { $0 = call.requestMetadata.first("host") }
            if let r = try call.receiveMessage() { try call.sendMessage(r) }
        })
        try await withServer(methods: [m]) { h in
            var md = Metadata()
            try md.add("host", "client-host")
            let r = runCall(h.channel, "/reg.S/Host", [bytes("x")], options: CallOptions(timeout: 10, metadata: md))
            #expect(r.status.isOK)
        }
        #expect(seen.withLock { $0 } == "client-host")
    }
}
