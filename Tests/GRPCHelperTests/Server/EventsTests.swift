// The events service of an RpcServer made with events, as grpc-helper's EventsManager:
// queues and their ids, listen / send / interrupt / resume / inspect, name checks, keep-alive
// events, the retain timeout, shutdown (ERROR_STREAM_SHUTDOWN) and queues.json across a
// restart, a malformed queues.json kept aside.
import Foundation
import GRPCHelperCore
import Testing
@testable import GRPCHelper

private final class EventsServer {
    let folders: TempFolders
    let server: RpcServer
    init(folders: TempFolders = TempFolders(), cli: [String: String] = [:], descriptors: [RpcServiceDescriptor] = [],
         clock: @escaping @Sendable () -> TimeInterval = { Date().timeIntervalSince1970 }) throws {
        self.folders = folders
        server = try RpcServer(port: 0, descriptors: descriptors, folders: folders.folders,
                               cliConfig: ["rpc-shutdown-grace": "1"].merging(cli) { _, b in b },
                               staticItems: [], userItems: [], withEvents: true, withDebugSignal: false,
                               levelSource: nil, eventsClock: clock)
    }
    deinit { server.shutdown() }

    func client(exception: Bool = true) throws -> RpcClient {
        try RpcClient(host: "127.0.0.1", port: server.port, timeout: 5, name: "events-tester", exception: exception,
                      stubs: ["srv": ("RpcServerService", 1), "events": ("EventService", 2)])
    }
}

private func event(_ name: String, _ props: [String: String] = [:]) -> RpcEvent {
    RpcEvent(name: name, properties: props)
}

private func filter(_ names: [String] = [], id: UInt32 = 0) -> RpcEventFilter {
    var f = RpcEventFilter()
    f.names = names
    f.clientID = id
    return f
}

private func interrupt(_ id: UInt32) -> RpcEventInterrupt {
    var i = RpcEventInterrupt()
    i.clientID = id
    return i
}

private func rpcError(_ body: () throws -> Void) -> RpcException? {
    do { try body(); return nil } catch let e as RpcException { return e } catch { return nil }
}

/// The next real (non keep-alive) event of a listen stream.
private func nextEvent(_ s: RpcTypedResponses<RpcEventStatus>) throws -> RpcEventStatus? {
    while let m = try s.next() {
        if !m.event.name.isEmpty { return m }
    }
    return nil
}

@Suite(.serialized) struct EventsTests {
    @Test func listenSendInterruptResumeInspect() async throws {
        try await onOwnThread {
            let t = try EventsServer()
            let c = try t.client()
            let events = c["events"]!
            let info = try c["srv"]!.call("info", RpcFilter(), as: RpcMultiServiceInfo.self)
            #expect(info.items.map(\.name) == ["srv", "config", "log", "events"])
            #expect(info.items[3].supportedApiVersion == 1 && info.items[3].currentApiVersion == 2)
            #expect(try events.call("inspect", RpcEmpty(), as: RpcEventQueueStatus.self).clientIds.isEmpty)

            // Two listeners: ids 1 and 2, each first told its id.
            let all = try events.stream("listen", filter(), as: RpcEventStatus.self)
            let first = try all.next()
            #expect(first?.clientID == 1 && first?.event.name == "" && first?.r.code == .ok)
            let onlyB = try events.stream("listen", filter(["b"]), as: RpcEventStatus.self)
            #expect(try onlyB.next()?.clientID == 2)
            #expect(try events.call("inspect", RpcEmpty(), as: RpcEventQueueStatus.self).clientIds == [1, 2])

            _ = try events.call("send", event("a", ["k": "v"]), as: RpcResultStatus.self)
            _ = try events.call("send", event("b"), as: RpcResultStatus.self)
            let a = try nextEvent(all)
            #expect(a?.event.name == "a" && a?.event.properties.first?.value == "v" && a?.clientID == 1)
            #expect(try nextEvent(all)?.event.name == "b")
            #expect(try nextEvent(onlyB)?.event.name == "b")      // "a" filtered out

            // Interrupt: the stream ends; a second interrupt is refused; events are kept.
            _ = try events.call("interrupt", interrupt(1), as: RpcResultStatus.self)
            #expect(try nextEvent(all) == nil)
            var e = rpcError { _ = try events.call("interrupt", interrupt(1), as: RpcResultStatus.self) }
            #expect(e?.code == .errorStateUnexpected && e?.message == "RPC returned error: Already interrupted ID: 1")
            e = rpcError { _ = try events.call("interrupt", interrupt(9), as: RpcResultStatus.self) }
            #expect(e?.code == .errorItemUnknown && e?.message == "RPC returned error: Unknown event listening ID: 9")
            _ = try events.call("send", event("c"), as: RpcResultStatus.self)
            // Resumed: its id again, then what was sent meanwhile.
            let resumed = try events.stream("listen", filter(id: 1), as: RpcEventStatus.self)
            #expect(try resumed.next()?.clientID == 1)
            #expect(try nextEvent(resumed)?.event.name == "c")
            e = rpcError { _ = try events.stream("listen", filter(id: 7), as: RpcEventStatus.self).next() }
            #expect(e?.code == .errorItemUnknown)
        }
    }

    @Test func inProcessSends() async throws {
        try await onOwnThread {
            let t = try EventsServer()
            let events = try t.client()["events"]!
            let s = try events.stream("listen", filter(["pushed"]), as: RpcEventStatus.self)
            #expect(try s.next()?.clientID == 1)
            try t.server.sendEvent(name: "pushed", properties: ["by": "server"])
            let got = try nextEvent(s)
            #expect(got?.event.name == "pushed" && got?.event.properties.first?.value == "server")
            let e = rpcError { try t.server.sendEvent(name: "a b") }
            #expect(e?.code == .errorParamInvalid && e?.message == "Invalid event name: a b")
            // The auto-client has the events stub.
            #expect(try t.server.autoClient["events"]?.serviceName == "EventService")
            #expect(try t.server.autoClient["events"]?.apiVersion == 2)
            // Without events: refused, not listed, no stub.
            let plain = try RpcServer(port: 0, descriptors: [], folders: t.folders.folders, withDebugSignal: false)
            defer { plain.shutdown() }
            #expect(rpcError { try plain.sendEvent(name: "x") }?.code == .errorStateUnexpected)
            #expect(try plain.autoClient["events"] == nil)
            let info = try plain.autoClient["srv"]!.call("info", RpcFilter(), as: RpcMultiServiceInfo.self)
            #expect(info.items.map(\.name) == ["srv", "config", "log"])
        }
    }

    @Test func namesAreChecked() async throws {
        try await onOwnThread {
            let t = try EventsServer()
            let events = try t.client()["events"]!
            var e = rpcError { _ = try events.call("send", event(""), as: RpcResultStatus.self) }
            #expect(e?.code == .errorParamMissing && e?.message == "RPC returned error: Empty event name")
            e = rpcError { _ = try events.call("send", event("a b"), as: RpcResultStatus.self) }
            #expect(e?.code == .errorParamInvalid && e?.message == "RPC returned error: Invalid event name: a b")
            e = rpcError { _ = try events.stream("listen", filter([""]), as: RpcEventStatus.self).next() }
            #expect(e?.code == .errorParamMissing && e?.message == "RPC returned error: Empty name in filter request")
            e = rpcError { _ = try events.stream("listen", filter(["x y"]), as: RpcEventStatus.self).next() }
            #expect(e?.code == .errorParamInvalid && e?.message == "RPC returned error: Invalid name in filter request: x y")
        }
    }

    @Test func listenersHoldNoWorker() async throws {
        try await onOwnThread {
            // One worker, and a service whose method blocks on it.
            let echo = RpcServiceDescriptor(
                name: "echo", serviceName: "EchoService", title: "echo", moduleVersion: "1",
                apiVersion: RpcConfigApiVersion.self, manager: RpcManager(),
                methods: [RpcMethod(name: "say", cardinality: .unary, body: .blocking { call in
                    _ = try call.receiveMessage()
                    try call.sendMessage(try RpcResultStatus().serializedBytes())
                })])
            let t = try EventsServer(cli: ["rpc-max-workers": "1"], descriptors: [echo])
            let c = try RpcClient(host: "127.0.0.1", port: t.server.port, timeout: 5, name: "events-tester",
                                  stubs: ["events": ("EventService", 2), "echo": ("EchoService", 1)])
            let events = c["events"]!
            let listeners = try (0..<6).map { _ in try events.stream("listen", filter(), as: RpcEventStatus.self) }
            for (i, l) in listeners.enumerated() { #expect(try l.next()?.clientID == UInt32(i + 1)) }
            // Six streams open, and the one worker still serves the blocking method.
            #expect(try c["echo"]!.call("say", RpcFilter(), as: RpcResultStatus.self).r.code == .ok)
            _ = try events.call("send", event("x"), as: RpcResultStatus.self)
            for l in listeners { #expect(try nextEvent(l)?.event.name == "x") }
        }
    }

    @Test func keepAliveEventsReachIdleListeners() async throws {
        try await onOwnThread {
            let t = try EventsServer(cli: ["rpc-event-keepalive-timeout": "1"])
            let events = try t.client()["events"]!
            let s = try events.stream("listen", filter(["never"]), as: RpcEventStatus.self)
            #expect(try s.next()?.clientID == 1)
            let keepAlive = try s.next()                            // within about a second
            #expect(keepAlive?.event.name == "" && keepAlive?.clientID == 1)
        }
    }

    @Test func interruptedQueuesGoAfterTheRetainTimeout() async throws {
        try await onOwnThread {
            let clock = TestClock(1_000)
            let t = try EventsServer(cli: ["rpc-event-retain-timeout": "1"], clock: { clock.now })
            let events = try t.client()["events"]!
            let s = try events.stream("listen", filter(), as: RpcEventStatus.self)
            #expect(try s.next()?.clientID == 1)
            _ = try events.call("interrupt", interrupt(1), as: RpcResultStatus.self)
            #expect(try s.next() == nil)
            _ = try events.call("send", event("kept"), as: RpcResultStatus.self)
            #expect(try events.call("inspect", RpcEmpty(), as: RpcEventQueueStatus.self).clientIds == [1])
            clock.advance(0.9)                                      // not yet
            _ = try events.call("send", event("still-kept"), as: RpcResultStatus.self)
            #expect(try events.call("inspect", RpcEmpty(), as: RpcEventQueueStatus.self).clientIds == [1])
            clock.advance(0.2)                                      // the retain timeout has passed
            _ = try events.call("send", event("late"), as: RpcResultStatus.self)
            #expect(try events.call("inspect", RpcEmpty(), as: RpcEventQueueStatus.self).clientIds.isEmpty)
        }
    }

    @Test func aQueueKeepsAtMostQueueMaxEventsDroppingTheOldest() async throws {
        try await onOwnThread {
            let t = try EventsServer(cli: ["rpc-event-queue-max": "5"])
            let events = try t.client()["events"]!
            let s = try events.stream("listen", filter(), as: RpcEventStatus.self)
            #expect(try s.next()?.clientID == 1)
            _ = try events.call("interrupt", interrupt(1), as: RpcResultStatus.self)
            #expect(try s.next() == nil)
            // An interrupted queue still collects: 20 events into a queue of 5.
            for i in 0..<20 { try t.server.sendEvent(name: "e\(i)") }
            let resumed = try events.stream("listen", filter(id: 1), as: RpcEventStatus.self)
            #expect(try resumed.next()?.clientID == 1)
            var got: [String] = []
            for _ in 0..<5 { got.append(try nextEvent(resumed)?.event.name ?? "-") }
            #expect(got == ["e15", "e16", "e17", "e18", "e19"])
            try t.server.sendEvent(name: "after")
            #expect(try nextEvent(resumed)?.event.name == "after")
            t.server.shutdown()
            let log = t.folders.read("wks/logs/EventsManager/EventsManager.log") ?? ""
            #expect(log.contains("Event queue #1 is full (rpc-event-queue-max 5 undelivered events): dropping its oldest events"))
            #expect(log.contains("Event queue #1: listener caught up; 15 events were dropped"), "\(log)")
        }
    }

    @Test func theQueueBoundKeepsControlItemsAndSkipsKeepAlivesWhenBusy() async {
        let q = EventQueue()
        #expect(q.putEvent(event("a"), limit: 2).dropped == 0)
        q.put(.interrupt)
        #expect(q.putEvent(RpcEvent(), limit: 2).dropped == 0)       // a keep-alive: not queued (busy)
        let r = q.putEvent(event("b"), limit: 2)                     // a, interrupt, b: over 2
        #expect(r.dropped == 1 && r.firstInEpisode)
        let r2 = q.putEvent(event("c"), limit: 2)
        #expect(r2.dropped == 1 && !r2.firstInEpisode)
        // "a" and "b" went; the interrupt stays in place.
        var names: [String] = []
        for _ in 0..<2 {
            switch await q.next() {
            case .event(let e): names.append(e.name)
            case .interrupt: names.append("<interrupt>")
            default: names.append("?")
            }
        }
        #expect(names == ["<interrupt>", "c"])
    }

    @Test func shutdownEndsListenersAndQueuesSurviveARestart() async throws {
        try await onOwnThread {
            let folders = TempFolders()
            var t: EventsServer? = try EventsServer(folders: folders)
            let events = try t!.client()["events"]!
            let s = try events.stream("listen", filter(), as: RpcEventStatus.self)
            #expect(try s.next()?.clientID == 1)
            _ = try events.call("interrupt", interrupt(1), as: RpcResultStatus.self)
            #expect(try s.next() == nil)
            _ = try events.call("send", event("undelivered", ["n": "1"]), as: RpcResultStatus.self)
            let live = try events.stream("listen", filter(), as: RpcEventStatus.self)
            #expect(try live.next()?.clientID == 2)
            t!.server.shutdown()
            // The live listener (its queue made after the event): ERROR_STREAM_SHUTDOWN.
            let e = rpcError { _ = try nextEvent(live) }
            #expect(e?.code == .errorStreamShutdown && e?.message.contains("Service is shutdown") == true)
            t = nil
            let saved = folders.read("wks/queues.json") ?? ""
            #expect(saved.contains("\"1\"") && saved.contains("undelivered"), "\(saved)")

            // Restarted in the same workspace: the queues come back interrupted, with their events.
            let again = try EventsServer(folders: folders)
            let events2 = try again.client()["events"]!
            #expect(try events2.call("inspect", RpcEmpty(), as: RpcEventQueueStatus.self).clientIds == [1, 2])
            let back = try events2.stream("listen", filter(id: 1), as: RpcEventStatus.self)
            #expect(try back.next()?.clientID == 1)
            let got = try nextEvent(back)
            #expect(got?.event.name == "undelivered" && got?.event.properties.first?.value == "1")
        }
    }

    @Test func aMalformedQueuesFileIsKeptAside() async throws {
        try await onOwnThread {
            let folders = TempFolders()
            folders.write("wks/queues.json", "{not json")
            let t = try EventsServer(folders: folders)
            #expect(try t.client()["events"]!.call("inspect", RpcEmpty(), as: RpcEventQueueStatus.self).clientIds.isEmpty)
            #expect(folders.read("wks/queues.json.invalid") == "{not json")
            t.server.shutdown()
            #expect(folders.read("wks/logs/EventsManager/EventsManager.log")?.contains("Invalid event queues file") == true)
        }
    }
}
