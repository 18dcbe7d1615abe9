// grpc.health.v1.Health over real sockets: on a core server by opt-in (Check, Watch,
// statuses set and cleared, unknown services, malformed requests, the shutdown, no worker
// held by Watch streams) and on every RpcServer (NOT_SERVING while its managers load,
// SERVING after, NOT_SERVING from the start of the shutdown).
import Foundation
import GRPCHelperCore
import Testing
@testable import GRPCHelper

private let check = "/grpc.health.v1.Health/Check"
private let watch = "/grpc.health.v1.Health/Watch"

private func request(_ service: String) -> [UInt8] {
    var r = Grpc_Health_V1_HealthCheckRequest()
    r.service = service
    return try! r.serializedBytes()
}

/// Check's answer: the status, or the call's error.
private func checkStatus(_ ch: GRPCChannel, _ service: String) -> Result<HealthStatus, RPCError> {
    do {
        let raw = try ch.unary(check, request(service), options: CallOptions(timeout: 10))
        let r = try Grpc_Health_V1_HealthCheckResponse(serializedBytes: raw)
        return .success(HealthStatus(rawValue: r.status.rawValue)!)
    } catch let e as RPCError {
        return .failure(e)
    } catch {
        return .failure(RPCError(.unknown, "\(error)"))
    }
}

/// A Watch stream: `next()` blocks for the next status (nil once the stream ended).
private final class Watching {
    let call: ClientCall
    init(_ ch: GRPCChannel, _ service: String) throws {
        call = ch.makeCall(watch, options: CallOptions(timeout: 30))
        call.start()
        try call.send(request(service))
        call.closeSend()
    }
    func next() throws -> HealthStatus? {
        guard let raw = try call.receive() else { return nil }
        return HealthStatus(rawValue: try Grpc_Health_V1_HealthCheckResponse(serializedBytes: raw).status.rawValue)
    }
}

/// A core server with one blocking method (/pkg.Echo/Say) and the health service.
private final class HealthServer {
    let server: Server
    let health = HealthService()
    let port: Int
    init(maxWorkers: Int = 4) throws {
        var o = ServerOptions()
        o.maxWorkers = maxWorkers
        server = Server(options: o)
        try server.register("/pkg.Echo/Say", cardinality: .unary, handler: .blocking { call in
            if let m = try call.receiveMessage() { try call.sendMessage(m) }
            try call.finish(.ok)
        })
        try health.add(to: server)
        try server.addListener("127.0.0.1:0")
        try server.start()
        port = server.port()!
    }
    deinit { server.shutdown(grace: 0) }
    func channel() throws -> GRPCChannel { try GRPCChannel(target: "127.0.0.1:\(port)") }
}

@Suite struct HealthTests {
    @Test func checkAnswersSetClearedAndUnknownServices() throws {
        let t = try HealthServer()
        let ch = try t.channel()
        defer { ch.close() }
        #expect(try checkStatus(ch, "").get() == .serving)
        #expect(try checkStatus(ch, "pkg.Echo").get() == .serving)
        #expect(t.health.status(for: "pkg.Echo") == .serving)
        // Unknown: NOT_FOUND, as the specification says.
        guard case .failure(let e) = checkStatus(ch, "pkg.Nope") else { Issue.record("no error"); return }
        #expect(e.status.code == .notFound && e.status.message.contains("pkg.Nope"))
        #expect(t.health.status(for: "pkg.Nope") == nil)
        // Set, for a served service and for one the server does not serve.
        t.health.setStatus(.notServing, for: "pkg.Echo")
        t.health.setStatus(.serving, for: "pkg.Nope")
        #expect(try checkStatus(ch, "pkg.Echo").get() == .notServing)
        #expect(try checkStatus(ch, "pkg.Nope").get() == .serving)
        #expect(try checkStatus(ch, "").get() == .serving)
        // Cleared: the served one follows the base status again, the other is unknown.
        t.health.clearStatus(for: "pkg.Echo")
        t.health.clearStatus(for: "pkg.Nope")
        #expect(try checkStatus(ch, "pkg.Echo").get() == .serving)
        guard case .failure(let e2) = checkStatus(ch, "pkg.Nope") else { Issue.record("no error"); return }
        #expect(e2.status.code == .notFound)
        // The base status moves "" and the served services without a status of their own.
        t.health.setStatus(.serving, for: "pkg.Echo")
        t.health.baseStatus = .notServing
        #expect(try checkStatus(ch, "").get() == .notServing)
        #expect(try checkStatus(ch, "pkg.Echo").get() == .serving)
        // The health service itself is one of the server's services.
        #expect(try checkStatus(ch, HealthService.serviceName).get() == .notServing)
    }

    @Test func aMalformedRequestIsInvalidArgument() throws {
        let t = try HealthServer()
        let ch = try t.channel()
        defer { ch.close() }
        do {
            _ = try ch.unary(check, [0x0a, 0x05, 0x61], options: CallOptions(timeout: 10))  // truncated string
            Issue.record("no error")
        } catch let e as RPCError {
            #expect(e.status.code == .invalidArgument && e.status.message.contains("HealthCheckRequest"))
        }
        // The server is fine afterwards.
        #expect(try checkStatus(ch, "").get() == .serving)
    }

    @Test func watchSendsTheStatusThenEveryChange() throws {
        let t = try HealthServer()
        let ch = try t.channel()
        defer { ch.close() }
        let w = try Watching(ch, "pkg.Echo")
        #expect(try w.next() == .serving)
        t.health.setStatus(.notServing, for: "pkg.Echo")
        #expect(try w.next() == .notServing)
        t.health.setStatus(.notServing, for: "pkg.Echo")   // no change: nothing sent
        t.health.setStatus(.serving, for: "pkg.Echo")
        #expect(try w.next() == .serving)
        // A service unknown yet: SERVICE_UNKNOWN (not an error), then its status once set.
        let later = try Watching(ch, "pkg.Later")
        #expect(try later.next() == .serviceUnknown)
        t.health.setStatus(.notServing, for: "pkg.Later")
        #expect(try later.next() == .notServing)
        t.health.clearStatus(for: "pkg.Later")
        #expect(try later.next() == .serviceUnknown)
        // The client ends its stream: the service forgets the watcher.
        later.call.cancel()
        w.call.cancel()
        #expect(later.call.waitStatus().code == .cancelled)
    }

    @Test func aWatcherEndsOnTheLatestStatusWhateverTheOrderOfConcurrentSets() throws {
        let t = try HealthServer()
        let ch = try t.channel()
        defer { ch.close() }
        let w = try Watching(ch, "pkg.Echo")
        #expect(try w.next() == .serving)
        // Threads setting statuses at once (each set applied under the lock, delivered after).
        let health = t.health
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            for n in 0..<300 { health.setStatus((n + i) % 2 == 0 ? .serving : .notServing, for: "pkg.Echo") }
        }
        let final = HealthStatus.unknown
        health.setStatus(final, for: "pkg.Echo")
        // The stream reaches the final status, and nothing older comes after it: the next
        // message is the next change.
        var got = try w.next()
        while got != final { got = try w.next() }
        health.setStatus(.notServing, for: "pkg.Echo")
        #expect(try w.next() == .notServing)
        w.call.cancel()
    }

    @Test func watchStreamsHoldNoWorker() throws {
        let t = try HealthServer(maxWorkers: 1)
        let ch = try t.channel()
        defer { ch.close() }
        let watchers = try (0..<8).map { _ in try Watching(ch, "") }
        for w in watchers { #expect(try w.next() == .serving) }
        // The one worker still serves the blocking method.
        #expect(try ch.unary("/pkg.Echo/Say", [1, 2, 3], options: CallOptions(timeout: 10)) == [1, 2, 3])
        t.health.baseStatus = .notServing
        for w in watchers { #expect(try w.next() == .notServing) }
        for w in watchers { w.call.cancel() }
    }

    @Test func theShutdownTellsWatchersAndEndsTheirStreams() throws {
        let t = try HealthServer()
        let ch = try t.channel()
        defer { ch.close() }
        let w = try Watching(ch, "pkg.Echo")
        let unknown = try Watching(ch, "pkg.Other")
        #expect(try w.next() == .serving)
        #expect(try unknown.next() == .serviceUnknown)
        // A long grace: the streams end because the health service ends them, not the grace.
        t.server.beginShutdown(grace: 60)
        #expect(try w.next() == .notServing)
        #expect(try w.next() == nil)
        let s = w.call.waitStatus()
        #expect(s.code == .unavailable && s.message.contains("shutting down"))
        #expect(try unknown.next() == nil)
        #expect(unknown.call.waitStatus().code == .unavailable)
        t.server.wait()
        // Later sets are ignored; every known service stays NOT_SERVING.
        t.health.setStatus(.serving, for: "pkg.Echo")
        #expect(t.health.status(for: "pkg.Echo") == .notServing)
        #expect(t.health.status(for: "") == .notServing)
        #expect(t.health.status(for: "pkg.Other") == nil)
    }

    @Test func addedOnceBeforeTheServerStarts() throws {
        let t = try HealthServer()
        #expect(throws: RuntimeError.self) { try t.health.add(to: t.server) }
        let started = try HealthServer()
        #expect(throws: RuntimeError.self) { try HealthService().add(to: started.server) }
    }
}

/// A manager that checks its server's health over the wire while it loads.
final class HealthProbeManager: RpcManager, @unchecked Sendable {
    var seenWhileLoading: Result<HealthStatus, RPCError>?
    override func load() throws {
        guard let port = server?.port else { return }
        let ch = try GRPCChannel(target: "127.0.0.1:\(port)")
        defer { ch.close() }
        seenWhileLoading = checkStatus(ch, "")
    }
    var descriptor: RpcServiceDescriptor {
        RpcServiceDescriptor(name: "probe", serviceName: "ProbeService", title: "probe", moduleVersion: "1",
                             apiVersion: RpcConfigApiVersion.self, manager: self,
                             methods: [.unary("ok") { (r: RpcFilter) -> RpcResultStatus in RpcResultStatus() }])
    }
}

@Suite struct RpcServerHealthTests {
    @Test func notServingWhileLoadingServingAfterNotServingFromTheShutdown() throws {
        let folders = TempFolders()
        let probe = HealthProbeManager()
        let server = try RpcServer(port: 0, descriptors: [probe.descriptor], folders: folders.folders,
                                   withDebugSignal: false)
        #expect(try probe.seenWhileLoading?.get() == .notServing)
        let ch = try GRPCChannel(target: "127.0.0.1:\(server.port)")
        defer { ch.close() }
        for s in ["", "RpcServerService", "ConfigService", "LoggerService", "ProbeService"] {
            #expect(try checkStatus(ch, s).get() == .serving, "\(s)")
        }
        guard case .failure(let e) = checkStatus(ch, "EventService") else { Issue.record("no error"); return }
        #expect(e.status.code == .notFound)  // made without events
        server.health.setStatus(.notServing, for: "ProbeService")
        #expect(try checkStatus(ch, "ProbeService").get() == .notServing)
        let w = try Watching(ch, "")
        #expect(try w.next() == .serving)
        server.shutdown()
        #expect(try w.next() == .notServing)
        #expect(try w.next() == nil)
        #expect(server.health.status(for: "") == .notServing)
    }
}
