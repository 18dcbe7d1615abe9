// Workers for blocking handlers (issue 15, defect 3): 31 idle bidi streams on one
// connection took all 30 workers, and every other client's calls then waited for as long as
// they were held. Now one connection's calls hold at most `maxWorkers` (as a client of
// grpcio's pool of that size sees), the pool keeps workers in reserve for connections that
// hold none, and a call that finds no worker within `workerWaitTimeout` ends
// RESOURCE_EXHAUSTED without its handler having run.
import Testing
@testable import GRPCHelperCore

@Suite("Integration: workers shared between connections", .timeLimit(.minutes(1)))
struct IntegrationWorkerShareTests {
    /// A bidi method whose handler holds its worker until the client ends its stream;
    /// `started` counts the handlers that ran.
    private static func idleMethod(_ started: Locked<Int>) -> TestMethod {
        TestMethod("/test.Workers/Idle", .bidiStreaming, .blocking { call in
            started.withLock { $0 += 1 }
            while try call.receiveMessage() != nil {}
            try call.finish(.ok)
        })
    }

    private static let echo = TestMethod("/test.Workers/Echo", .unary, .blocking { call in
        try call.sendMessage(try call.receiveMessage() ?? [])
        try call.finish(.ok)
    })

    /// Opens `n` idle streams on `channel`.
    private static func openIdle(_ channel: GRPCChannel, _ n: Int) -> [ClientCall] {
        (0..<n).map { _ in
            let c = channel.makeCall("/test.Workers/Idle", options: CallOptions(timeout: testTimeout))
            c.start()
            return c
        }
    }

    @Test func anotherConnectionIsServedWhileOneHoldsEveryRegularWorker() async throws {
        var o = testServerOptions()
        o.maxWorkers = 4   // and one in reserve
        let started = Locked(0)
        try await withServer(options: o, methods: [Self.idleMethod(started), Self.echo]) { h in
            #expect(o.workersPerConnection == 4 && o.reserveWorkerCount == 1)
            // One connection runs as many handlers at once as there are workers...
            let idle = Self.openIdle(h.channel, 5)
            defer { for c in idle { c.cancel() } }
            #expect(waitUntil(timeout: 10) { started.value == 4 })
            // ...and another is served all the same: before, every worker was held.
            let other = try GRPCChannel(target: h.target)
            defer { other.close() }
            let r = runCall(other, "/test.Workers/Echo", [[7]], options: CallOptions(timeout: 5))
            #expect(r.status.code == .ok)
            #expect(r.messages == [[7]])
            // The fifth idle stream waits for a worker of its connection's; it gets one when
            // one of the four ends.
            #expect(started.value == 4)
            #expect(h.server.callsWaitingForWorker == 1)
            idle[0].closeSend()
            #expect(idle[0].waitStatus().code == .ok)
            #expect(waitUntil(timeout: 10) { started.value == 5 })
            for c in idle.dropFirst() { c.closeSend() }
            for c in idle.dropFirst() { #expect(c.waitStatus().code == .ok) }
        }
    }

    @Test func aCallWaitingBehindItsConnectionsShareEndsResourceExhausted() async throws {
        var o = testServerOptions()
        o.maxWorkers = 4
        o.maxWorkersPerConnection = 1
        o.workerWaitTimeout = 0.3
        let started = Locked(0)
        try await withServer(options: o, methods: [Self.idleMethod(started), Self.echo]) { h in
            let idle = Self.openIdle(h.channel, 2)
            defer { for c in idle { c.cancel() } }
            let second = idle[1].waitStatus()
            #expect(second.code == .resourceExhausted)
            #expect(second.message.contains(
                "no worker free for this call within 0.3 s (4 workers + 1 in reserve, at most 1 for one connection)"),
                "\(second.message)")
            #expect(started.value == 1, "the waiting call's handler never ran")
            // The first still holds its worker, and ends normally.
            idle[0].closeSend()
            #expect(idle[0].waitStatus().code == .ok)
            // The connection's share is free again.
            #expect(runCall(h.channel, "/test.Workers/Echo", [[1]], options: CallOptions(timeout: 5)).status.code == .ok)
        }
    }

    @Test func aCallFindingEveryWorkerHeldEndsResourceExhausted() async throws {
        var o = testServerOptions()
        o.maxWorkers = 2   // and one in reserve
        o.workerWaitTimeout = 0.3
        let started = Locked(0)
        try await withServer(options: o, methods: [Self.idleMethod(started), Self.echo]) { h in
            // One connection holds both regular workers, another the one in reserve.
            let channels = try (0..<2).map { _ in try GRPCChannel(target: h.target) }
            defer { for c in channels { c.close() } }
            var idle = Self.openIdle(channels[0], 2)
            defer { for c in idle { c.cancel() } }
            #expect(waitUntil(timeout: 10) { started.value == 2 })
            idle += Self.openIdle(channels[1], 1)
            #expect(waitUntil(timeout: 10) { started.value == 3 })
            let r = runCall(h.channel, "/test.Workers/Echo", [[1]], options: CallOptions(timeout: 10))
            #expect(r.status.code == .resourceExhausted)
            #expect(r.status.message.contains("no worker free for this call within 0.3 s (2 workers + 1 in reserve"),
                    "\(r.status.message)")
            #expect(started.value == 3)
            // A worker freed, calls are served again.
            idle[2].closeSend()
            #expect(idle[2].waitStatus().code == .ok)
            #expect(runCall(h.channel, "/test.Workers/Echo", [[2]], options: CallOptions(timeout: 5)).status.code == .ok)
        }
    }

    @Test func withoutAWaitBoundACallWaitsForAWorker() async throws {
        var o = testServerOptions()
        o.maxWorkers = 1
        o.reservedWorkers = 0
        o.workerWaitTimeout = nil
        let started = Locked(0)
        try await withServer(options: o, methods: [Self.idleMethod(started), Self.echo]) { h in
            let idle = Self.openIdle(h.channel, 1)
            #expect(waitUntil(timeout: 10) { started.value == 1 })
            let other = try GRPCChannel(target: h.target)
            defer { other.close() }
            let call = other.makeCall("/test.Workers/Echo", options: CallOptions(timeout: testTimeout))
            call.start()
            try call.send([3])
            call.closeSend()
            // It waits (as in grpcio's thread pool) until the worker is free, then runs.
            idle[0].closeSend()
            #expect(idle[0].waitStatus().code == .ok)
            #expect(try call.receive() == [3])
            #expect(call.waitStatus().code == .ok)
        }
    }
}
