// Event-loop handlers (ServerHandler.eventLoop) and channels sharing a server connection's
// loop with inline callbacks: the building blocks of the helper layer's proxy forwarding.
import NIOCore
import Testing
@testable import GRPCHelperCore

/// An echo answering on the event loop: each request back as it comes, OK at the end of
/// the requests. Records whether every callback ran on the call's loop.
private func inlineEcho(_ offLoop: Locked<Int>) -> ServerHandler {
    .eventLoop { call in
        if !call.eventLoop.inEventLoop { offLoop.withLock { $0 += 1 } }
        call.receiveInline(onMessage: { m in
            if !call.eventLoop.inEventLoop { offLoop.withLock { $0 += 1 } }
            _ = try? call.sendNonBlocking(m)
        }, onEnd: {
            if !call.eventLoop.inEventLoop { offLoop.withLock { $0 += 1 } }
            if !call.isCancelled { try? call.finish(.ok) }
        })
    }
}

/// A forwarder in miniature (what the helper layer's ProxiedCall does): each call goes on
/// to `target` over a channel on the caller's connection's loop, messages both ways as
/// they come, pausing the side whose destination's buffer is full; the status comes back.
private final class MiniProxy: @unchecked Sendable {
    let target: String
    private let lock = Monitor()
    private var channels: [ObjectIdentifier: GRPCChannel] = [:]
    let offLoop = Locked(0)

    init(target: String) { self.target = target }

    func channel(on loop: EventLoop) throws -> GRPCChannel {
        try lock.withLock {
            if let c = channels[ObjectIdentifier(loop)] { return c }
            var o = ChannelOptions()
            o.inlineCallbacks = true
            o.callbackThreads = 1
            let c = try GRPCChannel(target: target, options: o, eventLoop: loop)
            channels[ObjectIdentifier(loop)] = c
            return c
        }
    }

    func closeAll() {
        for c in lock.withLock({ Array(channels.values) }) { c.close() }
    }

    var handler: ServerHandler {
        .eventLoop { [self] call in
            let loop = call.eventLoop
            let check = { if !loop.inEventLoop { self.offLoop.withLock { $0 += 1 } } }
            let backend = try channel(on: loop).makeCall(call.method, options: CallOptions(timeout: call.timeRemaining))
            call.onCancel { backend.cancel() }
            backend.start(onMessage: { r in
                check()
                if (try? call.sendNonBlocking(r)) == false {
                    backend.pauseReceiving()
                    call.onSendReady { loop.execute { backend.resumeReceiving() } }
                }
            }, onDone: { status in
                check()
                try? call.finish(status)
            })
            call.receiveInline(onMessage: { r in
                check()
                if (try? backend.sendNonBlocking(r)) == false {
                    call.pauseReceiving()
                    backend.onSendReady { loop.execute { call.resumeReceiving() } }
                }
            }, onEnd: {
                check()
                if call.isCancelled { backend.cancel() } else { backend.closeSend() }
            })
        }
    }
}

@Suite("Integration: event-loop handlers", .timeLimit(.minutes(1)))
struct EventLoopHandlerTests {
    @Test func answersTheFourPatternsOnTheLoop() async throws {
        let offLoop = Locked(0)
        let methods = [RPCCardinality.unary, .clientStreaming, .serverStreaming, .bidiStreaming].map {
            TestMethod("/test.Loop/\($0)", $0, inlineEcho(offLoop))
        }
        try await withServer(methods: methods) { h in
            // A single-request method starts once its request is in: delivered at once.
            let unary = runCall(h.channel, "/test.Loop/unary", [[1, 2, 3]])
            #expect(unary.status.code == .ok)
            #expect(unary.messages == [[1, 2, 3]])
            let server = runCall(h.channel, "/test.Loop/serverStreaming", [[4]])
            #expect(server.messages == [[4]] && server.status.isOK)
            // Streams: each request back as it comes (the reply read before the next send).
            let bidi = h.channel.makeCall("/test.Loop/bidiStreaming", options: CallOptions(timeout: testTimeout))
            bidi.start()
            for i in 0..<5 {
                try bidi.send([UInt8(i)])
                #expect(try bidi.receive() == [UInt8(i)])
            }
            bidi.closeSend()
            #expect(try bidi.receive() == nil)
            #expect(bidi.waitStatus().isOK)
            let empty = runCall(h.channel, "/test.Loop/clientStreaming", [])
            #expect(empty.messages.isEmpty)
            // The handler finished it OK without a message (what it decided, not the server).
            #expect(empty.status.isOK)
        }
        #expect(offLoop.value == 0)
    }

    @Test func aThrowingBodyFinishesTheCall() async throws {
        let handler = ServerHandler.eventLoop { _ in throw RPCError(.permissionDenied, "not you") }
        try await withServer(methods: [TestMethod("/test.Loop/Deny", .unary, handler)]) { h in
            let r = runCall(h.channel, "/test.Loop/Deny", [[1]])
            #expect(r.status.code == .permissionDenied)
            #expect(r.status.message == "not you")
        }
    }

    /// An event-loop call counts as running (maxConcurrentRPCs) until it has ended, however
    /// long after its body returned; whenEnded runs then, once.
    @Test func aCallRunsUntilItEnds() async throws {
        let held = Locked<ServerCall?>(nil)
        let ended = Locked(0)
        let handler = ServerHandler.eventLoop { call in
            call.whenEnded { ended.withLock { $0 += 1 } }
            if held.withLock({ h -> Bool in
                if h == nil { h = call; return true }
                return false
            }) { return }  // the first call stays open
            try call.finish(.ok)
        }
        var options = testServerOptions()
        options.maxConcurrentRPCs = 1
        try await withServer(options: options, methods: [TestMethod("/test.Loop/Hold", .unary, handler)]) { h in
            let first = h.channel.makeCall("/test.Loop/Hold", options: CallOptions(timeout: testTimeout))
            first.start()
            try first.send([1])
            first.closeSend()
            #expect(waitUntil { held.value != nil })
            let refused = runCall(h.channel, "/test.Loop/Hold", [[2]])
            #expect(refused.status.code == .resourceExhausted)
            #expect(ended.value == 0)
            // Finished from another thread: it ends, and the next call is admitted.
            try held.value!.finish(Status(.aborted, "let go"))
            #expect(first.waitStatus().code == .aborted)
            #expect(waitUntil { ended.value == 1 })
            #expect(runCall(h.channel, "/test.Loop/Hold", [[3]]).status.isOK)
            #expect(waitUntil { ended.value == 2 })
        }
    }

    /// whenEnded also runs for a cancelled call, and onSendReady bodies never run after it.
    @Test func aCancelledCallEnds() async throws {
        let ended = Gate()
        let started = Gate()
        let handler = ServerHandler.eventLoop { call in
            call.whenEnded { ended.open() }
            call.receiveInline(onMessage: { _ in }, onEnd: {})
            started.open()
        }
        try await withServer(methods: [TestMethod("/test.Loop/Cancel", .bidiStreaming, handler)]) { h in
            let call = h.channel.makeCall("/test.Loop/Cancel", options: CallOptions(timeout: testTimeout))
            call.start()
            try call.send([1])
            #expect(started.wait())
            call.cancel()
            #expect(ended.wait())
        }
    }

    /// A producer on the loop that sends while `sendNonBlocking` says there is room and
    /// goes on from `onSendReady`: the bytes it has queued ahead of the client's reads stay
    /// within the client's window plus the send buffer.
    @Test func sendNonBlockingAndSendReadyBoundTheBuffer() async throws {
        let total = 400, size = 64 * 1024
        let produced = Locked(0)
        let handler = ServerHandler.eventLoop { call in
            let chunk = [UInt8](repeating: 7, count: size)
            @Sendable func produce() {
                while produced.value < total {
                    produced.withLock { $0 += 1 }
                    guard let room = try? call.sendNonBlocking(chunk) else { return }
                    if produced.value == total {
                        try? call.finish(.ok)
                        return
                    }
                    if !room {
                        call.onSendReady { call.eventLoop.execute { produce() } }
                        return
                    }
                }
            }
            produce()
        }
        try await withServer(methods: [TestMethod("/test.Loop/Produce", .serverStreaming, handler)]) { h in
            let call = h.channel.makeCall("/test.Loop/Produce", options: CallOptions(timeout: testTimeout))
            call.start()
            try call.send([])
            call.closeSend()
            var received = 0
            // Windows (stream 1 MiB each side, connection too) + the send buffer (1 MiB) +
            // one message: without the bound the producer queues all 25 MiB at once.
            let bound = (3 * (1 << 20) + sendBufferLimit) / size + 2
            var worst = 0
            while let m = try call.receive() {
                #expect(m.count == size)
                received += 1
                worst = max(worst, produced.value - received)
            }
            #expect(call.waitStatus().isOK)
            #expect(received == total)
            #expect(worst <= bound)
        }
    }

    /// A forwarder on the caller's connection's loop, its channel sharing that loop with
    /// inline callbacks: the four patterns through it give what the backend gives, every
    /// callback on the loop; streams larger than every buffer pass in both directions.
    @Test func forwardsOnTheConnectionsLoop() async throws {
        let backendOffLoop = Locked(0)
        let methods = [RPCCardinality.unary, .clientStreaming, .serverStreaming, .bidiStreaming].map {
            TestMethod("/test.Loop/\($0)", $0, inlineEcho(backendOffLoop))
        }
        let backend = try startServer(methods: methods)
        defer { backend.server.shutdown(grace: 0) }
        let proxy = MiniProxy(target: backend.target)
        let front = methods.map { TestMethod($0.path, $0.cardinality, proxy.handler) }
        var frontOptions = testServerOptions()
        frontOptions.eventLoopThreads = 2
        try await withServer(options: frontOptions, methods: front) { h in
            defer { proxy.closeAll() }
            let unary = runCall(h.channel, "/test.Loop/unary", [[9, 9]])
            #expect(unary.messages == [[9, 9]] && unary.status.isOK)
            // 64 MiB each way through a bidi stream, the client sending from a thread of
            // its own while this one reads.
            let call = h.channel.makeCall("/test.Loop/bidiStreaming", options: CallOptions(timeout: testTimeout))
            call.start()
            let n = 256
            let sender = Gate()
            NativeThread.startOrRun(name: "test-sender") {
                for i in 0..<n { try? call.send([UInt8](repeating: UInt8(i & 0xff), count: 256 * 1024)) }
                call.closeSend()
                sender.open()
            }
            var got = 0
            while let m = try call.receive() {
                #expect(m.count == 256 * 1024 && m[0] == UInt8(got & 0xff))
                got += 1
            }
            #expect(call.waitStatus().isOK)
            #expect(got == n)
            #expect(sender.wait())
            // Cancelling the caller cancels the forwarded call.
            let c = h.channel.makeCall("/test.Loop/bidiStreaming", options: CallOptions(timeout: testTimeout))
            c.start()
            try c.send([1])
            #expect(try c.receive() == [1])
            c.cancel()
            #expect(c.waitStatus().code == .cancelled)
        }
        #expect(proxy.offLoop.value == 0)
        #expect(backendOffLoop.value == 0)
    }

    /// A channel on a shared loop closed from that loop (an inline callback) does not
    /// block it: its calls end CANCELLED, and the loop goes on serving.
    @Test func aSharedChannelClosesFromItsLoop() async throws {
        let backend = try startServer(methods: [TestMethod("/test.Loop/unary", .unary, inlineEcho(Locked(0)))])
        defer { backend.server.shutdown(grace: 0) }
        let handler = ServerHandler.eventLoop { call in
            var o = ChannelOptions()
            o.inlineCallbacks = true
            let channel = try GRPCChannel(target: backend.target, options: o, eventLoop: call.eventLoop)
            let b = channel.makeCall("/test.Loop/unary", options: CallOptions(timeout: testTimeout))
            b.start(onMessage: { _ in
                channel.close()  // on the loop, inside the connection's read
            }, onDone: { status in
                try? call.finish(Status(.ok, status.code == .ok ? "backend ok" : "backend \(status.message)"))
            })
            try b.sendNonBlocking([5])
            b.closeSend()
        }
        try await withServer(methods: [TestMethod("/test.Loop/CloseInside", .unary, handler)]) { h in
            for _ in 0..<3 {
                let r = runCall(h.channel, "/test.Loop/CloseInside", [[1]])
                #expect(r.status.isOK)
                // The response and the status may race the close: either way the call ended.
                #expect(r.status.message == "backend ok" || r.status.message == "backend channel closed",
                        "\(r.status)")
            }
        }
    }
}
