// Server.release: a server given up without blocking — from outside with a call held
// (cancelled at once, nothing freed before its handler returned), from one of its own
// handlers, from inside beginShutdown's whenStopped (on the shutdown thread), while a
// shutdown is under way (its grace kept), never started. `then` and the server's deinit
// run on the releasing thread (gh-shutdown), in that order, after every handler returned.
import Testing
@testable import GRPCHelperCore
#if canImport(Glibc)
import Glibc
#endif

/// The calling thread's name (Linux: its comm, what NativeThread gave it).
private func threadName() -> String {
    let fd = open("/proc/thread-self/comm", O_RDONLY)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var buf = [UInt8](repeating: 0, count: 32)
    let n = read(fd, &buf, buf.count)
    guard n > 0 else { return "" }
    var name = String(decoding: buf[0..<n], as: UTF8.self)
    while name.last == "\n" { name.removeLast() }
    return name
}

/// What a released server shows: the handlers that returned, `then` and the server's
/// deinit (through a probe only its handlers hold), each with its thread and what had
/// happened before it.
private final class Report: @unchecked Sendable {
    struct Seen: Equatable {
        var thread: String
        var handlersReturned: Int
        var thenRan: Bool
    }
    let returned = Locked(0)
    let then = Locked<Seen?>(nil)
    let gone = Locked<Seen?>(nil)
    let thenGate = Gate(), goneGate = Gate()

    func handlerReturns() { returned.withLock { $0 += 1 } }

    private func seen() -> Seen { Seen(thread: threadName(), handlersReturned: returned.value, thenRan: thenGate.opened) }

    func thenRuns() {
        then.value = seen()
        thenGate.open()
    }

    func deinitRuns() {
        gone.value = seen()
        goneGate.open()
    }

    /// Waits for the deinit; checks that `then` ran before it, both on the releasing
    /// thread, once `handlers` handlers had returned.
    func expectReleased(handlers: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(goneGate.wait(), "the server was not deinitialised", sourceLocation: sourceLocation)
        let expected = Seen(thread: "gh-shutdown", handlersReturned: handlers, thenRan: false)
        #expect(then.value == expected, sourceLocation: sourceLocation)
        #expect(gone.value == Seen(thread: "gh-shutdown", handlersReturned: handlers, thenRan: true),
                sourceLocation: sourceLocation)
    }
}

/// Held by the server's handlers only: goes when the server is deinitialised.
private final class DeinitProbe: @unchecked Sendable {
    let report: Report
    init(_ report: Report) { self.report = report }
    deinit { report.deinitRuns() }
}

/// A started server whose "/t.S/Hold" handler calls `body` (holding a probe of `report`).
private func server(_ report: Report, _ body: @escaping @Sendable (ServerCall) throws -> Void) throws -> Server {
    let probe = DeinitProbe(report)
    let server = Server(options: testServerOptions())
    try server.register("/t.S/Hold", cardinality: .unary, handler: .blocking { call in
        _ = probe
        defer { report.handlerReturns() }
        try body(call)
    })
    try server.addListener("127.0.0.1:0")
    try server.start()
    return server
}

/// A held unary call to "/t.S/Hold".
private func startHeld(_ channel: GRPCChannel) throws -> ClientCall {
    let call = channel.makeCall("/t.S/Hold", options: CallOptions(timeout: testTimeout))
    call.start()
    try call.send(bytes("x"))
    call.closeSend()
    return call
}

/// Whether a server can listen on `port` again.
private func portIsFree(_ port: Int) -> Bool {
    guard let s = try? startServer(listen: "127.0.0.1:\(port)", methods: []) else { return false }
    s.server.shutdown(grace: 0)
    return true
}

@Suite("Integration: server release", .timeLimit(.minutes(1)))
struct IntegrationServerReleaseTests {
    @Test func releaseFromOutsideCancelsTheHeldCallAndFreesAfterItsHandler() async throws {
        try await onThread {
            let report = Report()
            let entered = Gate(), cancelled = Gate(), mayReturn = Gate()
            var port = 0
            let channel: GRPCChannel
            let call: ClientCall
            do {
                let s = try server(report) { call in
                    _ = try call.receiveMessage()
                    entered.open()
                    if call.waitUntilEnded(timeout: testTimeout) && call.isCancelled { cancelled.open() }
                    mayReturn.wait()
                }
                port = s.port()!
                channel = try GRPCChannel(target: "127.0.0.1:\(port)")
                call = try startHeld(channel)
                #expect(entered.wait())
                Server.release(Unmanaged.passRetained(s)) { report.thenRuns() }
                #expect(!s.acceptsCalls)             // no new calls once it returned
            }  // the test's reference goes: the releasing thread's is the last
            defer { channel.close() }
            #expect(cancelled.wait(), "grace 0: the held call is cancelled at once")
            #expect(call.waitStatus().code != .ok)
            #expect(!report.thenGate.opened && !report.goneGate.opened, "freed under a running handler")
            mayReturn.open()
            report.expectReleased(handlers: 1)
            #expect(portIsFree(port))
        }
    }

    @Test func releaseFromOneOfItsHandlers() async throws {
        try await onThread {
            let report = Report()
            let handed = Locked<Unmanaged<Server>?>(nil)
            let released = Gate()
            var port = 0
            do {
                let s = try server(report) { call in
                    _ = try call.receiveMessage()
                    Server.release(handed.value!) { report.thenRuns() }
                    released.open()                   // returned at once: the handler goes on
                    try? call.sendMessage(bytes("released"))
                }
                port = s.port()!
                handed.value = Unmanaged.passRetained(s)
            }  // the test keeps no reference
            let channel = try GRPCChannel(target: "127.0.0.1:\(port)")
            defer { channel.close() }
            _ = runCall(channel, "/t.S/Hold", [bytes("x")])  // answered or cancelled: the shutdown's race
            #expect(released.wait())
            report.expectReleased(handlers: 1)
            #expect(portIsFree(port))
        }
    }

    @Test func releaseInsideWhenStoppedOnTheShutdownThread() async throws {
        try await onThread {
            let report = Report()
            let testDropped = Gate(), released = Gate()
            let stoppedOn = Locked("")
            do {
                let s = try server(report) { _ in }
                let handed = Unmanaged.passRetained(s)
                s.beginShutdown(grace: 0, whenStopped: {
                    stoppedOn.value = threadName()
                    testDropped.wait()                // the test's own reference is gone
                    Server.release(handed) { report.thenRuns() }
                    released.open()
                })
            }
            testDropped.open()
            #expect(released.wait(), "release blocked inside whenStopped")
            #expect(stoppedOn.value == "gh-shutdown")
            report.expectReleased(handlers: 0)
        }
    }

    @Test func aShutdownUnderWayKeepsItsGrace() async throws {
        try await onThread {
            let report = Report()
            let entered = Gate(), mayAnswer = Gate()
            let channel: GRPCChannel
            let call: ClientCall
            do {
                let s = try server(report) { call in
                    _ = try call.receiveMessage()
                    entered.open()
                    mayAnswer.wait()
                    try call.sendMessage(bytes("answered"))
                }
                channel = try GRPCChannel(target: "127.0.0.1:\(s.port()!)")
                call = try startHeld(channel)
                #expect(entered.wait())
                s.beginShutdown(grace: testTimeout)
                Server.release(Unmanaged.passRetained(s)) { report.thenRuns() }
            }
            defer { channel.close() }
            #expect(!report.thenGate.opened)
            mayAnswer.open()                          // within the grace: not cancelled
            #expect(try call.receive() == bytes("answered"))
            #expect(call.waitStatus().code == .ok)
            report.expectReleased(handlers: 1)
        }
    }

    @Test func releaseOfAServerNeverStarted() async throws {
        try await onThread {
            let report = Report()
            let testDropped = Gate()
            do {
                let probe = DeinitProbe(report)
                let s = Server(options: testServerOptions())
                try s.register("/t.S/Hold", cardinality: .unary, handler: .blocking { _ in _ = probe })
                try s.addListener("127.0.0.1:0")
                // Nothing to wait for: `then` waits until the test's own reference is gone,
                // so that the releasing thread's is the last.
                Server.release(Unmanaged.passRetained(s)) {
                    testDropped.wait()
                    report.thenRuns()
                }
            }
            testDropped.open()
            report.expectReleased(handlers: 0)
        }
    }
}
