// Deadlines over real sockets: the client's timeout ends the call with DEADLINE_EXCEEDED,
// the handler sees the cancellation and its time remaining.
import Testing
@testable import GRPCHelperCore

/// What a handler saw of its call.
private struct Observed {
    var remainingAtStart: Double?
    var remainingAtEnd: Double?
    var thrown: Status?
    var cancelled = false
    var cancellation: Status?
}

@Suite("Integration: deadlines", .timeLimit(.minutes(1)))
struct IntegrationDeadlineTests {
    /// A client-streaming handler blocked in receiveMessage (the client sends nothing)
    /// is woken by the deadline; the client gets DEADLINE_EXCEEDED promptly.
    @Test(arguments: HandlerKind.allCases)
    func blockedReadEndsAtDeadline(kind: HandlerKind) async throws {
        let observed = Locked(Observed())
        let done = Gate()
        let record: @Sendable (ServerCall, Error?) -> Void = { call, error in
            observed.withLock {
                $0.thrown = (error as? RPCError)?.status
                $0.cancelled = call.isCancelled
                $0.cancellation = call.cancellationStatus
                $0.remainingAtEnd = call.timeRemaining
            }
            done.open()
        }
        let handler: ServerHandler
        switch kind {
        case .blocking:
            handler = .blocking { call in
                observed.withLock { $0.remainingAtStart = call.timeRemaining }
                do {
                    _ = try call.receiveMessage()
                    record(call, nil)
                } catch {
                    record(call, error)
                    throw error
                }
            }
        case .async:
            handler = .async { call in
                observed.withLock { $0.remainingAtStart = call.timeRemaining }
                do {
                    _ = try await call.receive()
                    record(call, nil)
                } catch {
                    record(call, error)
                    throw error
                }
            }
        }
        try await withServer(methods: [TestMethod("/test.Deadline/Wait", .clientStreaming, handler)]) { h in
            #expect(h.warmUp().code == .unimplemented)
            let call = h.channel.makeCall("/test.Deadline/Wait", options: CallOptions(timeout: 0.2))
            let t0 = now()
            call.start()
            let status = call.waitStatus()
            let elapsed = now() - t0
            #expect(status.code == .deadlineExceeded)
            #expect(elapsed >= 0.15 && elapsed < 2, "deadline after \(elapsed) s")
            #expect(try call.receive() == nil)
            #expect(throws: RPCError.self) { try call.send([1]) }

            #expect(done.wait(timeout: 5), "the handler did not observe the deadline")
            let o = observed.value
            #expect(o.thrown?.code == .deadlineExceeded)
            #expect(o.cancelled)
            #expect(o.cancellation?.code == .deadlineExceeded)
            // (Not "> 0": on a loaded machine the handler may start late.)
            let start = try #require(o.remainingAtStart)
            #expect(start <= 0.2)
            let end = try #require(o.remainingAtEnd)
            #expect(end <= 0)
        }
    }

    /// A unary handler that polls isCancelled (never answering) is cancelled by the deadline.
    @Test func pollingHandlerSeesDeadline() async throws {
        let observed = Locked(Observed())
        let done = Gate()
        let handler = ServerHandler.blocking { call in
            observed.withLock { $0.remainingAtStart = call.timeRemaining }
            waitUntil(timeout: 5) { call.isCancelled }
            var lateSend: Status?
            do { try call.sendMessage(bytes("late")) } catch { lateSend = (error as? RPCError)?.status }
            observed.withLock {
                $0.cancelled = call.isCancelled
                $0.cancellation = call.cancellationStatus
                $0.remainingAtEnd = call.timeRemaining
                $0.thrown = lateSend
            }
            done.open()
        }
        try await withServer(methods: [TestMethod("/test.Deadline/Poll", .unary, handler)]) { h in
            #expect(h.warmUp().code == .unimplemented)
            let t0 = now()
            let r = runCall(h.channel, "/test.Deadline/Poll", [bytes("x")], options: CallOptions(timeout: 0.2))
            let elapsed = now() - t0
            #expect(r.status.code == .deadlineExceeded)
            #expect(r.messages.isEmpty)
            #expect(elapsed < 2, "deadline after \(elapsed) s")

            #expect(done.wait(timeout: 5))
            let o = observed.value
            #expect(o.cancelled)
            #expect(o.cancellation?.code == .deadlineExceeded)
            let end = try #require(o.remainingAtEnd)
            #expect(end <= 0)
            // A send after the cancellation fails with the cancellation status.
            #expect(o.thrown?.code == .deadlineExceeded)
        }
    }

    @Test func timeRemainingWithAndWithoutDeadline() async throws {
        let remaining = Locked<[Double?]>([])
        let handler = ServerHandler.blocking { call in
            remaining.withLock { $0.append(call.timeRemaining) }
            guard let r = try call.receiveMessage() else { throw RPCError(.invalidArgument, "no request") }
            try call.sendMessage(r)
        }
        try await withServer(methods: [TestMethod("/test.Deadline/Remaining", .unary, handler)]) { h in
            let withDeadline = runCall(h.channel, "/test.Deadline/Remaining", [[1]], options: CallOptions(timeout: 10))
            #expect(withDeadline.status == .ok)
            let noDeadline = runCall(h.channel, "/test.Deadline/Remaining", [[2]], options: CallOptions())
            #expect(noDeadline.status == .ok)

            let seen = remaining.value
            try #require(seen.count == 2)
            let r = try #require(seen[0])
            #expect(r > 5 && r <= 10, "time remaining \(r)")
            #expect(seen[1] == nil)
        }
    }
}
