// A channel's connectivity state (gRPC's IDLE / CONNECTING / READY / TRANSIENT_FAILURE /
// SHUTDOWN) over real sockets: the one-shot check with try-to-connect, watches getting the
// current state then each change in order, a watch that keeps the channel connecting until
// a late server is up, the server going away, unwatching, and SHUTDOWN as the last state.
import Testing
@testable import GRPCHelperCore

/// The states a watch delivered, and whether it ended.
private final class Seen: @unchecked Sendable {
    private let monitor = Monitor()
    private var states: [ConnectivityState] = []
    private var ended = false
    var handler: @Sendable (ConnectivityState) -> Void {
        { s in self.monitor.mutateAndNotify { self.states.append(s) } }
    }
    var onEnd: @Sendable () -> Void { { self.monitor.mutateAndNotify { self.ended = true } } }
    var all: [ConnectivityState] { monitor.withLock { states } }
    var hasEnded: Bool { monitor.withLock { ended } }
    func wait(for state: ConnectivityState) -> Bool { waitUntil(timeout: testTimeout) { all.contains(state) } }
    func waitEnded() -> Bool { waitUntil(timeout: testTimeout) { hasEnded } }
}

@Suite struct ConnectivityTests {
    @Test func checkWithTryToConnectConnects() async throws {
        try await onThread {
            let s = try startServer(methods: [])
            defer { s.server.shutdown(grace: 0) }
            let channel = try GRPCChannel(target: s.target)
            defer { channel.close() }
            #expect(channel.connectivityState() == .idle)
            #expect(channel.connectivityState() == .idle)   // a check alone connects nothing
            #expect(channel.connectivityState(tryToConnect: true) == .idle)
            #expect(waitUntil(timeout: testTimeout) { channel.connectivityState() == .ready })
        }
    }

    @Test func aWatchGetsTheCurrentStateThenEachChangeInOrder() async throws {
        try await onThread {
            let s = try startServer(methods: [])
            var serverRunning = true
            defer { if serverRunning { s.server.shutdown(grace: 0) } }
            let channel = try GRPCChannel(target: s.target)
            let seen = Seen()
            _ = try channel.watchConnectivity(onEnd: seen.onEnd, seen.handler)
            #expect(seen.wait(for: .idle))
            // A call connects the channel.
            #expect(runCall(channel, "/test.Unknown/M", []).status.code == .unimplemented)
            #expect(seen.wait(for: .ready))
            #expect(seen.all == [.idle, .connecting, .ready])
            // The server goes away: back to IDLE (nothing asks for a connection).
            s.server.shutdown(grace: 0)
            serverRunning = false
            #expect(waitUntil(timeout: testTimeout) { seen.all.count == 4 })
            #expect(seen.all.last == .idle)
            // Closing: SHUTDOWN is the last state, then the watch ends.
            channel.close()
            #expect(seen.waitEnded())
            #expect(seen.all == [.idle, .connecting, .ready, .idle, .shutdown])
            #expect(channel.connectivityState() == .shutdown)
            #expect(throws: RuntimeError.self) { _ = try channel.watchConnectivity { _ in } }
        }
    }

    @Test func aWatchThatTriesToConnectWaitsOutAFailureForALateServer() async throws {
        try await onThread {
            let port = try reserveFreePort()   // nothing listens there yet
            let channel = try GRPCChannel(target: "127.0.0.1:\(port)")
            defer { channel.close() }
            let seen = Seen()
            let id = try channel.watchConnectivity(tryToConnect: true, onEnd: seen.onEnd, seen.handler)
            #expect(seen.wait(for: .transientFailure))
            #expect(Array(seen.all.prefix(3)) == [.idle, .connecting, .transientFailure])
            // The server comes up: the next attempt (after the backoff) connects.
            let late = try startServer(listen: "127.0.0.1:\(port)", methods: [])
            defer { late.server.shutdown(grace: 0) }
            #expect(seen.wait(for: .ready))
            #expect(seen.all.last == .ready)
            #expect(channel.unwatchConnectivity(id))
            #expect(seen.waitEnded())
            #expect(!channel.unwatchConnectivity(id))    // ended already
        }
    }

    @Test func afterUnwatchNothingIsDelivered() async throws {
        try await onThread {
            let s = try startServer(methods: [])
            defer { s.server.shutdown(grace: 0) }
            let channel = try GRPCChannel(target: s.target)
            defer { channel.close() }
            let stopped = Seen(), kept = Seen()
            let id = try channel.watchConnectivity(onEnd: stopped.onEnd, stopped.handler)
            _ = try channel.watchConnectivity(kept.handler)
            #expect(stopped.wait(for: .idle) && kept.wait(for: .idle))
            #expect(channel.unwatchConnectivity(id))
            #expect(stopped.waitEnded())
            _ = channel.connectivityState(tryToConnect: true)
            #expect(kept.wait(for: .ready))
            #expect(stopped.all == [.idle])
        }
    }
}
