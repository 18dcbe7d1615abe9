// The Swift EventsListener against our server made with events: ready and client_id, the
// filter, events in order and never keep-alives, interrupt (queue kept, then resumed by a
// new listener given the id), a new queue for an unknown id, resume across a server restart
// on the same port without losing events, an interrupt from the callback.
import Foundation
import GRPCHelperCore
import Logging
import Testing
@testable import GRPCHelper

/// What a listener received, waited on with a timeout.
private final class Collector: @unchecked Sendable {
    private let cond = NSCondition()
    private var names: [String] = []
    private(set) var properties: [[String: String]] = []

    func add(_ e: RpcEvent) {
        cond.lock()
        names.append(e.name)
        properties.append(Dictionary(e.properties.map { ($0.name, $0.value) }, uniquingKeysWith: { _, b in b }))
        cond.broadcast()
        cond.unlock()
    }

    /// The names received once there are `count` of them (or what came within `timeout`).
    func wait(for count: Int, timeout: Double = 10) -> [String] {
        let deadline = Date(timeIntervalSinceNow: timeout)
        cond.lock()
        defer { cond.unlock() }
        while names.count < count && cond.wait(until: deadline) {}
        return names
    }
}

private func makeServer(_ folders: TempFolders, port: Int = 0, cli: [String: String] = [:]) throws -> RpcServer {
    try RpcServer(port: port, descriptors: [], folders: folders.folders,
                  cliConfig: ["rpc-shutdown-grace": "1"].merging(cli) { _, b in b },
                  withEvents: true, withDebugSignal: false)
}

private func client(_ port: Int) throws -> RpcClient {
    try RpcClient(host: "127.0.0.1", port: port, timeout: 5, name: "listener-tester",
                  stubs: ["events": ("EventService", 2)])
}

private func queueIDs(_ c: RpcClient) throws -> [UInt32] {
    try c["events"]!.call("inspect", RpcEmpty(), as: RpcEventQueueStatus.self).clientIds
}

@Suite(.serialized) struct EventsListenerTests {
    @Test func listensFiltersInterruptsAndResumes() async throws {
        try await onOwnThread {
            let folders = TempFolders()
            let server = try makeServer(folders, cli: ["rpc-event-keepalive-timeout": "1"])
            defer { server.shutdown() }
            let c = try client(server.port)
            let all = Collector(), onlyB = Collector()
            let l1 = EventsListener(client: c) { all.add($0) }
            let l2 = EventsListener(client: c, names: ["b"]) { onlyB.add($0) }
            #expect(l1.waitReady(timeout: 10) && l2.waitReady(timeout: 10))
            #expect(Set([l1.clientID, l2.clientID]) == [1, 2])
            _ = try c["events"]!.call("send", RpcEvent(name: "a", properties: ["k": "v"]), as: RpcResultStatus.self)
            try server.sendEvent(name: "b")
            try server.sendEvent(name: "c")
            #expect(all.wait(for: 3) == ["a", "b", "c"])
            #expect(all.properties[0] == ["k": "v"])
            #expect(onlyB.wait(for: 1) == ["b"])

            // Interrupted: its thread ends; the server keeps the queue, which collects.
            #expect(try l2.interrupt())
            #expect(!l2.isRunning)
            #expect(try queueIDs(c) == [1, 2])
            try server.sendEvent(name: "b", properties: ["n": "2"])
            // A listener given the id resumes the queue: what was sent meanwhile comes first.
            let resumed = Collector()
            let l3 = EventsListener(client: c, names: ["b"], clientID: l2.clientID) { resumed.add($0) }
            #expect(l3.waitReady(timeout: 10) && l3.clientID == l2.clientID)
            #expect(resumed.wait(for: 1) == ["b"] && resumed.properties[0] == ["n": "2"])
            // Keep-alives (every second here) never reach the callback: after one has been
            // sent to the idle queues, only real events were received.
            let keepAliveSeen = Collector()
            let raw = try c["events"]!.stream("listen", { var f = RpcEventFilter(); f.names = ["never"]; return f }(),
                                                as: RpcEventStatus.self)
            _ = try raw.next()
            if let k = try raw.next() { keepAliveSeen.add(k.event) }
            #expect(keepAliveSeen.wait(for: 1, timeout: 0) == [""])
            raw.raw.cancel()
            try server.sendEvent(name: "d")
            #expect(all.wait(for: 5) == ["a", "b", "c", "b", "d"])
            #expect(try l1.interrupt() && l3.interrupt())
            // A second interrupt only waits.
            #expect(try l1.interrupt())
        }
    }

    @Test func anUnknownIDStartsANewQueue() async throws {
        try await onOwnThread {
            let folders = TempFolders()
            let server = try makeServer(folders)
            defer { server.shutdown() }
            let c = try client(server.port)
            let got = Collector()
            let l = EventsListener(client: c, clientID: 41) { got.add($0) }
            #expect(l.waitReady(timeout: 10))
            #expect(l.clientID == 1)
            try server.sendEvent(name: "x")
            #expect(got.wait(for: 1) == ["x"])
            #expect(try l.interrupt())
        }
    }

    @Test func resumesAcrossAServerRestartWithoutLosingEvents() async throws {
        try await onOwnThread {
            let folders = TempFolders()
            var server: RpcServer? = try makeServer(folders)
            let port = server!.port
            let c = try client(port)
            let got = Collector()
            let l = EventsListener(client: c, names: ["e"]) { got.add($0) }
            #expect(l.waitReady(timeout: 10))
            let id = l.clientID
            try server!.sendEvent(name: "e", properties: ["n": "1"])
            #expect(got.wait(for: 1) == ["e"])
            server!.shutdown()                      // the listener gets ERROR_STREAM_SHUTDOWN
            server = nil
            // Same workspace, same port: the queue comes back interrupted and collects
            // until the listener (retrying) resumes it.
            let again = try makeServer(folders, port: port)
            defer { again.shutdown() }
            try again.sendEvent(name: "e", properties: ["n": "2"])
            #expect(got.wait(for: 2, timeout: 15) == ["e", "e"])
            #expect(got.properties.last == ["n": "2"])
            #expect(l.clientID == id && l.isRunning)
            #expect(try l.interrupt())
        }
    }

    @Test func theCallbackMayInterruptItsOwnListener() async throws {
        try await onOwnThread {
            let folders = TempFolders()
            let server = try makeServer(folders)
            defer { server.shutdown() }
            let c = try client(server.port)
            let got = Collector()
            let box = NIOLockedBox<EventsListener?>(nil)
            let l = EventsListener(client: c) { e in
                got.add(e)
                _ = try? box.value?.interrupt()      // from its own thread: does not wait
            }
            box.value = l
            #expect(l.waitReady(timeout: 10))
            try server.sendEvent(name: "stop")
            #expect(got.wait(for: 1) == ["stop"])
            #expect(try l.interrupt(wait: 10))       // already stopping: waits for the end
            #expect(!l.isRunning)
        }
    }

    @Test func interruptWhileWaitingToReconnectMakesNoCall() async throws {
        try await onOwnThread {
            let folders = TempFolders()
            let server = try makeServer(folders)
            // A client that would retry an unreachable server for 60 s.
            let c = try RpcClient(host: "127.0.0.1", port: server.port, timeout: 60, name: "listener-tester",
                                  stubs: ["events": ("EventService", 2)])
            let log = CapturedLog()
            let l = EventsListener(client: c, logger: log.logger) { _ in }
            #expect(l.waitReady(timeout: 10))
            server.shutdown()
            #expect(log.wait(for: "event service restarting") && log.wait(for: "Retry in"))
            // The server counts the queue as interrupted already: no interrupt call (which
            // would be retried for the client's 60 s), the listener just stops.
            let start = Date()
            #expect(try l.interrupt(wait: 10))
            #expect(Date().timeIntervalSince(start) < 5)
            #expect(!l.isRunning)
        }
    }

    @Test func interruptBeforeAnyServerAnswersCancelsTheStream() async throws {
        try await onOwnThread {
            // Nothing listens on this port: the listener retries until interrupted.
            let folders = TempFolders()
            let server = try makeServer(folders)
            let port = server.port
            server.shutdown()
            let c = try client(port)
            let l = EventsListener(client: c) { _ in }
            #expect(!l.waitReady(timeout: 0.2))
            #expect(try l.interrupt(wait: 10))
            #expect(!l.isRunning && l.clientID == nil)
        }
    }
}

/// A log handler keeping the messages, waited on with a timeout.
private final class CapturedLog: @unchecked Sendable {
    private let cond = NSCondition()
    private var messages: [String] = []

    func add(_ m: String) {
        cond.lock()
        messages.append(m)
        cond.broadcast()
        cond.unlock()
    }

    /// Whether a message containing `part` came within `timeout` seconds.
    func wait(for part: String, timeout: Double = 10) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        cond.lock()
        defer { cond.unlock() }
        while !messages.contains(where: { $0.contains(part) }) && cond.wait(until: deadline) {}
        return messages.contains(where: { $0.contains(part) })
    }

    var logger: Logger {
        Logger(label: "EventsListener") { _ in Handler(log: self) }
    }

    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
                 file: String, function: String, line: UInt) {
            log.add("\(message)")
        }
    }
}

/// A value shared with a closure made before it exists.
private final class NIOLockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var v: T
    init(_ v: T) { self.v = v }
    var value: T {
        get { lock.lock(); defer { lock.unlock() }; return v }
        set { lock.lock(); v = newValue; lock.unlock() }
    }
}
