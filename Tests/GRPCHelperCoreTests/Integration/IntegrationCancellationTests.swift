// Cancellation over real sockets: the client cancels mid-stream, the server fails mid-stream.
import Testing
@testable import GRPCHelperCore

private struct HandlerView {
    var echoed = 0
    var thrown: Status?
    var cancelled = false
    var cancellation: Status?
}

@Suite("Integration: cancellation", .timeLimit(.minutes(1)))
struct IntegrationCancellationTests {
    /// cancel() mid bidi stream: CANCELLED on the client at once; the handler's blocked
    /// read throws and it sees isCancelled.
    @Test(arguments: HandlerKind.allCases)
    func clientCancelMidStream(kind: HandlerKind) async throws {
        let view = Locked(HandlerView())
        let done = Gate()
        let finish: @Sendable (ServerCall, Error?) -> Void = { call, error in
            view.withLock {
                $0.thrown = (error as? RPCError)?.status
                $0.cancelled = call.isCancelled
                $0.cancellation = call.cancellationStatus
            }
            done.open()
        }
        let handler: ServerHandler
        switch kind {
        case .blocking:
            handler = .blocking { call in
                do {
                    while let m = try call.receiveMessage() {
                        try call.sendMessage(m)
                        view.withLock { $0.echoed += 1 }
                    }
                    finish(call, nil)
                } catch {
                    finish(call, error)
                    throw error
                }
            }
        case .async:
            handler = .async { call in
                do {
                    while let m = try await call.receive() {
                        try await call.send(m)
                        view.withLock { $0.echoed += 1 }
                    }
                    finish(call, nil)
                } catch {
                    finish(call, error)
                    throw error
                }
            }
        }
        try await withServer(methods: [TestMethod("/test.Cancel/Bidi", .bidiStreaming, handler)]) { h in
            let call = h.channel.makeCall("/test.Cancel/Bidi", options: CallOptions(timeout: testTimeout))
            call.start()
            for i in 0..<3 {
                try call.send(bytes("\(i)"))
                #expect(text(try call.receive()) == "\(i)")
            }
            // The handler is now blocked reading the next message.
            call.cancel()
            #expect(call.status?.code == .cancelled, "the status is set by cancel() itself")
            #expect(try call.receive() == nil)
            #expect(call.waitStatus().code == .cancelled)
            #expect(throws: RPCError.self) { try call.send([1]) }

            #expect(done.wait(timeout: 5), "the handler did not see the cancellation")
            let v = view.value
            #expect(v.echoed == 3)
            #expect(v.thrown?.code == .cancelled)
            #expect(v.cancelled)
            #expect(v.cancellation?.code == .cancelled)

            // The channel is still usable.
            let again = h.channel.makeCall("/test.Cancel/Bidi", options: CallOptions(timeout: testTimeout))
            again.start()
            try again.send(bytes("after"))
            #expect(text(try again.receive()) == "after")
            again.closeSend()
            #expect(again.waitStatus() == .ok)
        }
    }

    /// cancel() while the handler polls isCancelled (not reading).
    @Test func clientCancelSeenByPollingHandler() async throws {
        let started = Gate()
        let sawCancel = Gate()
        let handler = ServerHandler.blocking { call in
            _ = try call.receiveMessage()
            started.open()
            if waitUntil(timeout: testTimeout, { call.isCancelled }) { sawCancel.open() }
        }
        try await withServer(methods: [TestMethod("/test.Cancel/Poll", .unary, handler)]) { h in
            let call = h.channel.makeCall("/test.Cancel/Poll", options: CallOptions(timeout: testTimeout))
            call.start()
            try call.send([1])
            call.closeSend()
            #expect(started.wait(timeout: 5))
            call.cancel()
            #expect(call.status?.code == .cancelled)
            #expect(sawCancel.wait(timeout: 5), "the handler did not see isCancelled")
        }
    }

    /// The client's connection goes away (channel closed) while a handler runs: the handler
    /// is cancelled, can still return normally, and the server keeps serving.
    @Test(arguments: HandlerKind.allCases)
    func clientConnectionClosedUnderHandler(kind: HandlerKind) async throws {
        let started = Gate()
        let done = Gate()
        let cancellation = Locked<Status?>(nil)
        let handler: ServerHandler
        switch kind {
        case .blocking:
            handler = .blocking { call in
                guard let m = try call.receiveMessage() else { return }
                if m == [1] {
                    started.open()
                    waitUntil(timeout: testTimeout) { call.isCancelled }
                    cancellation.value = call.cancellationStatus
                    try? call.sendMessage(bytes("too late"))
                    done.open()
                    return  // the server finishes the call itself
                }
                try call.sendMessage(m)
            }
        case .async:
            handler = .async { call in
                guard let m = try await call.receive() else { return }
                if m == [1] {
                    started.open()
                    await waitUntilAsync(timeout: testTimeout) { call.isCancelled }
                    cancellation.value = call.cancellationStatus
                    try? await call.send(bytes("too late"))
                    done.open()
                    return
                }
                try await call.send(m)
            }
        }
        try await withServer(methods: [TestMethod("/test.Cancel/Hold", .unary, handler)]) { h in
            let other = try GRPCChannel(target: h.target)
            let call = other.makeCall("/test.Cancel/Hold", options: CallOptions(timeout: testTimeout))
            call.start()
            try call.send([1])
            call.closeSend()
            #expect(started.wait(timeout: 5))
            other.close()
            #expect(call.waitStatus().code == .cancelled)

            #expect(done.wait(timeout: 5), "the handler did not see the cancellation")
            #expect(cancellation.value?.code == .cancelled)
            // The server is unharmed.
            let r = runCall(h.channel, "/test.Cancel/Hold", [[2]])
            #expect(r.status == .ok)
            #expect(r.messages == [[2]])
        }
    }

    /// A server error mid-stream ends the client's stream with that status.
    @Test(arguments: HandlerKind.allCases)
    func serverErrorMidStream(kind: HandlerKind) async throws {
        let handler: ServerHandler
        switch kind {
        case .blocking:
            handler = .blocking { call in
                var n = 0
                while let m = try call.receiveMessage() {
                    n += 1
                    if n == 3 { throw RPCError(.dataLoss, "boom at 3") }
                    try call.sendMessage(m)
                }
            }
        case .async:
            handler = .async { call in
                var n = 0
                while let m = try await call.receive() {
                    n += 1
                    if n == 3 { throw RPCError(.dataLoss, "boom at 3") }
                    try await call.send(m)
                }
            }
        }
        try await withServer(methods: [TestMethod("/test.Cancel/Fail", .bidiStreaming, handler)]) { h in
            let call = h.channel.makeCall("/test.Cancel/Fail", options: CallOptions(timeout: testTimeout))
            call.start()
            for i in 0..<2 {
                try call.send(bytes("\(i)"))
                #expect(text(try call.receive()) == "\(i)")
            }
            try call.send(bytes("2"))
            #expect(try call.receive() == nil, "the stream ends after the error")
            #expect(call.waitStatus() == Status(.dataLoss, "boom at 3"))
            // Sending on the ended call fails with its status.
            do {
                try call.send(bytes("3"))
                Issue.record("send after the end succeeded")
            } catch let e as RPCError {
                #expect(e.status.code == .dataLoss)
            }
        }
    }
}
