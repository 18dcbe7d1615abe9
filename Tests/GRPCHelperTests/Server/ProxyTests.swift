// Proxied services: srv.proxy_register / proxy_forget (grpc-helper's checks and texts),
// srv.info's proxy fields, proxy.json across a restart, the RPC_PROXY_* events, and the
// forwarding of the four call patterns to a registered backend (results and error results
// untouched, the caller's identity marked "(proxied)", the deadline), a call waiting for a
// registration, a backend that is not there.
import Foundation
import GRPCHelperCore
import NIOConcurrencyHelpers
import Testing
@testable import GRPCHelper

/// The backend's service: what it saw of each call. With `registers`, it is a proxied
/// manager that registers with the main server (rpc-main-host / rpc-main-port) at load.
private final class Backend: RpcProxiedManager, @unchecked Sendable {
    let registers: Bool
    init(registers: Bool = false) {
        self.registers = registers
        super.init()
    }
    override var proxiedServices: [String] { ["remote"] }
    override var proxiedVersion: String { "remote:2.0" }
    override func load() throws { if registers { try super.load() } }

    var descriptor: RpcServiceDescriptor {
        RpcServiceDescriptor(
            name: "remote", serviceName: "RemoteService", title: "remote", moduleVersion: "2.0",
            apiVersion: RpcConfigApiVersion.self,  // supported 1, current 2
            manager: self,
            methods: [
                // The caller's identity and api_version and the deadline as the backend sees them.
                RpcMethod(name: "who", cardinality: .unary, body: .async { call in
                    _ = try await call.receive()
                    let md = call.requestMetadata
                    var s = RpcResultStatus()
                    s.r.msg = [md.first("client") ?? "-", md.first("user") ?? "-", md.first("api_version") ?? "-",
                               call.timeRemaining.map { $0 > 0 && $0 < 10 ? "deadline" : "far" } ?? "none"]
                        .joined(separator: "|")
                    try await call.send(try s.serializedBytes())
                }),
                .unary("fail") { (r: RpcFilter) -> RpcResultStatus in
                    throw RpcException("refused: \(r.names.first ?? "")", code: .errorItemBusy)
                },
                .serverStreaming("stream") { (r: RpcFilter, out: RpcResponseStream<RpcResultStatus>) in
                    for n in r.names {
                        var s = RpcResultStatus()
                        s.r.msg = n
                        try await out.send(s)
                    }
                    throw RpcException("stream failed", code: .errorStateUnexpected)
                },
                .clientStreaming("collect") { (requests: RpcRequestStream<RpcFilter>) -> RpcResultStatus in
                    var names: [String] = []
                    while let r = try await requests.next() { names += r.names }
                    var s = RpcResultStatus()
                    s.r.msg = names.joined(separator: ",")
                    return s
                },
                .bidiStreaming("chat") { (requests: RpcRequestStream<RpcFilter>, out: RpcResponseStream<RpcResultStatus>) in
                    while let r = try await requests.next() {
                        var s = RpcResultStatus()
                        s.r.msg = "re:" + r.names.joined(separator: ",")
                        try await out.send(s)
                    }
                },
            ])
    }

    /// The same service, declared as proxied (no manager, no bodies).
    static var proxied: RpcServiceDescriptor {
        RpcServiceDescriptor(name: "remote", serviceName: "RemoteService", version: "remote:declared",
                             supportedApiVersion: 1, currentApiVersion: 2, manager: nil,
                             methods: [.unimplemented("who", .unary), .unimplemented("fail", .unary),
                                       .unimplemented("stream", .serverStreaming),
                                       .unimplemented("collect", .clientStreaming),
                                       .unimplemented("chat", .bidiStreaming)],
                             isProxy: true)
    }
}

private func proxyServer(_ folders: TempFolders, cli: [String: String] = [:], events: Bool = false) throws -> RpcServer {
    try RpcServer(port: 0, descriptors: [Backend.proxied], folders: folders.folders,
                  cliConfig: ["rpc-shutdown-grace": "1"].merging(cli) { _, b in b },
                  withEvents: events, withDebugSignal: false)
}

private func client(_ port: Int, name: String = "proxy-tester") throws -> RpcClient {
    try RpcClient(host: "127.0.0.1", port: port, timeout: 5, name: name,
                  stubs: ["srv": ("RpcServerService", 1), "remote": ("RemoteService", 2), "events": ("EventService", 2)])
}

private func register(_ c: RpcClient, port: Int, names: [String] = ["remote"], version: String = "remote:2.0",
                      host: String = "127.0.0.1") throws {
    var r = RpcProxyRegisterRequest()
    r.names = names
    r.version = version
    r.host = host
    r.port = UInt32(port)
    _ = try c["srv"]!.call("proxy_register", r, as: RpcResultStatus.self)
}

private func names(_ n: [String]) -> RpcFilter {
    var f = RpcFilter()
    f.names = n
    return f
}

private func rpcError(_ body: () throws -> Void) -> RpcException? {
    do { try body(); return nil } catch let e as RpcException { return e } catch { return nil }
}

@Suite(.serialized) struct ProxyTests {
    @Test func registerThenForwardTheFourPatterns() async throws {
        try await onOwnThread {
            let bf = TempFolders(), pf = TempFolders()
            let backend = try RpcServer(port: 0, descriptors: [Backend().descriptor], folders: bf.folders,
                                        withDebugSignal: false)
            defer { backend.shutdown() }
            let proxy = try proxyServer(pf, events: true)
            defer { proxy.shutdown() }
            let c = try client(proxy.port, name: "me")
            let seenBox = NIOLockedValueBox<[RpcEvent]>([])
            let lock = NSCondition()
            let listener = EventsListener(client: c, names: ["RPC_PROXY_REGISTER", "RPC_PROXY_FORGET"]) { e in
                lock.lock(); seenBox.withLockedValue { $0.append(e) }; lock.broadcast(); lock.unlock()
            }
            #expect(listener.waitReady(timeout: 10))
            try register(c, port: backend.port)

            let info = try c["srv"]!.call("info", names(["remote"]), as: RpcMultiServiceInfo.self).items[0]
            #expect(info.isProxy && info.proxyPort == UInt32(backend.port) && info.proxyHost == "127.0.0.1")
            #expect(info.version == "remote:2.0")

            let remote = c["remote"]!
            // Unary: the caller's identity, marked; its api_version; its deadline.
            let who = try remote.call("who", RpcEmpty(), as: RpcResultStatus.self, timeout: 5)
            let user = RpcClientIdentity.currentUser()
            #expect(who.r.msg == "me(proxied)|\(user)|2|deadline")
            // An error result passes as it is.
            let e = rpcError { _ = try remote.call("fail", names(["x"]), as: RpcResultStatus.self) }
            #expect(e?.code == .errorItemBusy && e?.message == "RPC returned error: refused: x")
            // Server streaming: the messages, then the error result.
            let stream = try remote.stream("stream", names(["a", "b"]), as: RpcResultStatus.self)
            #expect(try stream.next()?.r.msg == "a")
            #expect(try stream.next()?.r.msg == "b")
            #expect(rpcError { _ = try stream.next() }?.code == .errorStateUnexpected)
            // Client streaming and bidi.
            let collect = try remote.clientStream("collect", [names(["x"]), names(["y", "z"])], as: RpcResultStatus.self)
            #expect(collect.r.msg == "x,y,z")
            let chat = try remote.bidi("chat", sending: RpcFilter.self, as: RpcResultStatus.self)
            try chat.send(names(["one"]))
            #expect(try chat.next()?.r.msg == "re:one")
            try chat.send(names(["two"]))
            #expect(try chat.next()?.r.msg == "re:two")
            chat.closeSend()
            #expect(try chat.next() == nil)

            // Forget: port 0, the registered version kept; calls wait, then ERROR_PROXY_UNREGISTERED.
            _ = try c["srv"]!.call("proxy_forget", names(["remote"]), as: RpcResultStatus.self)
            let after = try c["srv"]!.call("info", names(["remote"]), as: RpcMultiServiceInfo.self).items[0]
            #expect(after.proxyPort == 0 && after.proxyHost == "" && after.version == "remote:2.0")

            lock.lock()
            while seenBox.withLockedValue({ $0.count }) < 2 && lock.wait(until: Date() + 10) {}
            lock.unlock()
            let seen = seenBox.withLockedValue { $0 }
            #expect(seen.map(\.name) == ["RPC_PROXY_REGISTER", "RPC_PROXY_FORGET"])
            #expect(seen.first?.properties.map { "\($0.name)=\($0.value)" } ==
                    ["names=remote", "version=remote:2.0", "port=\(backend.port)", "host=127.0.0.1"])
            #expect(seen.last?.properties.map { "\($0.name)=\($0.value)" } == ["names=remote"])
            try listener.interrupt()
        }
    }

    @Test func theChecksOfRegisterAndForget() async throws {
        try await onOwnThread {
            let pf = TempFolders()
            let proxy = try proxyServer(pf)
            defer { proxy.shutdown() }
            let c = try client(proxy.port)
            func fails(_ body: () throws -> Void) -> String {
                guard let e = rpcError(body) else { return "no error" }
                return "\(e.code) \(e.message)"
            }
            #expect(fails { try register(c, port: 1, names: []) } ==
                    "errorParamMissing RPC returned error: Missing input name in request")
            #expect(fails { try register(c, port: 1, names: ["remote", ""]) } ==
                    "errorParamMissing RPC returned error: Missing input name in request")
            #expect(fails { try register(c, port: 1, names: ["nope"]) } ==
                    "errorItemUnknown RPC returned error: At least one of the required service names is unknown")
            #expect(fails { try register(c, port: 1, names: ["config"]) } ==
                    "errorParamInvalid RPC returned error: At least one of the required services is not a proxy")
            #expect(fails { try register(c, port: 1, version: "") } ==
                    "errorParamMissing RPC returned error: Missing input parameter in request (one of version or port)")
            #expect(fails { try register(c, port: 0) } ==
                    "errorParamMissing RPC returned error: Missing input parameter in request (one of version or port)")
            #expect(fails { _ = try c["srv"]!.call("proxy_forget", names([]), as: RpcResultStatus.self) } ==
                    "errorParamMissing RPC returned error: Missing input name in request")
            #expect(fails { _ = try c["srv"]!.call("proxy_forget", names(["srv"]), as: RpcResultStatus.self) } ==
                    "errorParamInvalid RPC returned error: At least one of the required services is not a proxy")
        }
    }

    @Test func registrationsArePersistedAndRestored() async throws {
        try await onOwnThread {
            let pf = TempFolders()
            var proxy: RpcServer? = try proxyServer(pf)
            try register(try client(proxy!.port), port: 4321, version: "remote:9", host: "")
            proxy!.shutdown()
            proxy = nil
            let saved = try JSONSerialization.jsonObject(with: Data((pf.read("wks/proxy.json") ?? "").utf8))
            #expect((saved as? [String: [String: Any]])?["remote"]?["port"] as? Int == 4321)
            #expect((saved as? [String: [String: Any]])?["remote"]?["version"] as? String == "remote:9")
            let again = try proxyServer(pf)
            defer { again.shutdown() }
            let info = try again.info(names(["remote"])).items[0]
            #expect(info.proxyPort == 4321 && info.version == "remote:9" && info.proxyHost == "")
        }
    }

    /// Runs `call` (a call of the proxied service) on a thread of its own, registers a
    /// backend once the call waits on the proxy (its pending entry shows it arrived), and
    /// returns what `call` returned (nil if it did not within 10 s).
    private func answerAfterRegistering<T: Sendable>(_ call: @escaping @Sendable (RpcClient) -> T) throws -> T? {
        let bf = TempFolders(), pf = TempFolders()
        let backend = try RpcServer(port: 0, descriptors: [Backend().descriptor], folders: bf.folders,
                                    withDebugSignal: false)
        defer { backend.shutdown() }
        let proxy = try proxyServer(pf, cli: ["rpc-client-timeout": "20"])
        defer { proxy.shutdown() }
        let c = try client(proxy.port)
        let done = NSCondition()
        let answer = NIOLockedValueBox<T?>(nil)
        Thread.detachNewThread {
            let r = call(c)
            done.lock(); answer.withLockedValue { $0 = r }; done.broadcast(); done.unlock()
        }
        let deadline = Date() + 10
        while proxy.pendingCalls.isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(!proxy.pendingCalls.isEmpty)
        try register(c, port: backend.port)
        done.lock()
        while answer.withLockedValue({ $0 }) == nil && done.wait(until: Date() + 10) {}
        done.unlock()
        return answer.withLockedValue { $0 }
    }

    @Test func aCallWaitsForARegistration() async throws {
        try await onOwnThread {
            let answer = try answerAfterRegistering { c in
                (try? c["remote"]!.call("collect", names(["early"]), as: RpcResultStatus.self))?.r.msg ?? "failed"
            }
            #expect(answer == "early")
        }
    }

    /// A request stream that filled its HTTP/2 window while waiting for a registration goes
    /// on once a backend registers (the window held while waiting is given back at once).
    @Test func anUploadThatWaitedForARegistrationGoesOn() async throws {
        try await onOwnThread {
            // 40 requests of 64 KiB: 2.5 MiB, more than the 1 MiB stream window.
            let big = String(repeating: "u", count: 64 * 1024)
            let requests = (0..<40).map { names(["\($0)" + big]) }
            let answer = try answerAfterRegistering { c in
                (try? c["remote"]!.clientStream("collect", requests, as: RpcResultStatus.self))?.r.msg.count ?? -1
            }
            #expect(answer == requests.map { $0.names[0] }.joined(separator: ",").count)
        }
    }

    @Test func aBackendThatIsNotThereIsAClearError() async throws {
        try await onOwnThread {
            let pf = TempFolders()
            let proxy = try proxyServer(pf)
            defer { proxy.shutdown() }
            // A port nothing listens on.
            let gone = try RpcServer(port: 0, descriptors: [], folders: TempFolders().folders, withDebugSignal: false)
            let port = gone.port
            gone.shutdown()
            let c = try client(proxy.port)
            try register(c, port: port)
            let e = rpcError { _ = try c["remote"]!.call("collect", names(["x"]), as: RpcResultStatus.self) }
            #expect(e?.code == .errorRpc)
            #expect(e?.message.contains("/RemoteService/collect @ 127.0.0.1:\(port)") == true)
            #expect(e?.message.contains("unavailable") == true || e?.message.contains("UNAVAILABLE") == true)
            // The proxy is still up.
            #expect(try c["srv"]!.call("info", names(["remote"]), as: RpcMultiServiceInfo.self).items.count == 1)
        }
    }

    @Test func aProxiedManagerRegistersAtLoadAndForgetsAtShutdown() async throws {
        try await onOwnThread {
            let pf = TempFolders(), bf = TempFolders()
            let proxy = try proxyServer(pf)
            defer { proxy.shutdown() }
            var backend: RpcServer? = try RpcServer(
                port: 0, descriptors: [Backend(registers: true).descriptor], folders: bf.folders,
                cliConfig: ["rpc-main-host": "127.0.0.1", "rpc-main-port": String(proxy.port)], withDebugSignal: false)
            let info = try proxy.info(names(["remote"])).items[0]
            #expect(info.proxyPort == UInt32(backend!.port) && info.proxyHost == "127.0.0.1" && info.version == "remote:2.0")
            let c = try client(proxy.port)
            let got = try c["remote"]!.clientStream("collect", [names(["via", "main"])], as: RpcResultStatus.self)
            #expect(got.r.msg == "via,main")
            backend!.shutdown()
            backend = nil
            #expect(try proxy.info(names(["remote"])).items[0].proxyPort == 0)
        }
    }

    @Test func aProxiedManagerThatCannotRegisterStopsItsServer() async throws {
        try await onOwnThread {
            // A main port nothing listens on; the registration is retried for 0.3 s.
            let gone = try RpcServer(port: 0, descriptors: [], folders: TempFolders().folders, withDebugSignal: false)
            let mainPort = gone.port
            gone.shutdown()
            let bf = TempFolders()
            let port = try RpcServer(port: 0, descriptors: [], folders: TempFolders().folders, withDebugSignal: false)
            let wanted = port.port
            port.shutdown()
            let e = rpcError {
                _ = try RpcServer(port: wanted, descriptors: [Backend(registers: true).descriptor], folders: bf.folders,
                                  cliConfig: ["rpc-main-host": "127.0.0.1", "rpc-main-port": String(mainPort),
                                              "rpc-client-timeout": "0.3"], withDebugSignal: false)
            }
            #expect(e?.code == .errorRpc)
            #expect(e?.message.contains("/RpcServerService/proxy_register @ 127.0.0.1:\(mainPort)") == true)
            // Its port is free again.
            let again = try RpcServer(port: wanted, descriptors: [], folders: TempFolders().folders, withDebugSignal: false)
            again.shutdown()
        }
    }

    @Test func theConfigServiceOfAProxyReachesItsProxiedServers() async throws {
        try await onOwnThread {
            func item(_ name: String, _ value: String) throws -> Config {
                try Config(name: name, description: "an item", defaultValue: value, validator: .configValidInt)
            }
            let pf = TempFolders(), bf = TempFolders()
            let proxy = try RpcServer(port: 0, descriptors: [Backend.proxied], folders: pf.folders,
                                      userItems: [try item("shared", "1"), try item("main-only", "2")],
                                      withDebugSignal: false)
            defer { proxy.shutdown() }
            let backend = try RpcServer(port: 0, descriptors: [Backend(registers: true).descriptor], folders: bf.folders,
                                        cliConfig: ["rpc-main-host": "127.0.0.1", "rpc-main-port": String(proxy.port)],
                                        userItems: [try item("shared", "1"), try item("backend-only", "3")],
                                        withDebugSignal: false)
            defer { backend.shutdown() }
            let c = try RpcClient(host: "127.0.0.1", port: proxy.port, timeout: 5, stubs: ["config": ("ConfigService", 2)])
            let b = try RpcClient(host: "127.0.0.1", port: backend.port, timeout: 5, stubs: ["config": ("ConfigService", 2)])
            func all(_ client: RpcClient, _ n: [String] = []) throws -> [String] {
                try client["config"]!.call("get", names(n), as: RpcConfigStatus.self).items.map { "\($0.name)=\($0.value)" }
            }
            // Merged: equal values give one entry.
            #expect(try all(c) == ["shared=1", "main-only=2", "backend-only=3"])
            #expect(try all(c, ["backend-only"]) == ["backend-only=3"])
            // Set: on every server holding the item.
            var u = RpcConfigUpdate()
            var i = RpcConfigItemUpdate()
            i.name = "shared"
            i.value = "5"
            u.items = [i]
            i.name = "backend-only"
            i.value = "6"
            u.items.append(i)
            let set = try c["config"]!.call("set", u, as: RpcConfigStatus.self).items.map { "\($0.name)=\($0.value)" }
            #expect(set == ["shared=5", "backend-only=6"])
            #expect(try all(b) == ["shared=5", "backend-only=6"])
            // Different values of one name: a conflict.
            i.name = "shared"
            i.value = "7"
            u.items = [i]
            _ = try b["config"]!.call("set", u, as: RpcConfigStatus.self)
            let e = rpcError { _ = try all(c) }
            #expect(e?.code == .errorItemConflict)
            #expect(e?.message == "RPC returned error: Proxied values conflict for config item shared: 7 != 5")
            // Reset: everywhere.
            _ = try c["config"]!.call("reset", names(["shared", "backend-only"]), as: RpcConfigStatus.self)
            #expect(try all(c) == ["shared=1", "main-only=2", "backend-only=3"])
            // grpc-helper's checks on the merged names.
            let unknown = rpcError { _ = try all(c, ["nope"]) }
            #expect(unknown?.code == .errorItemUnknown)
        }
    }

    @Test func anUnreachableBackendIsRetriedWithinTheClientTimeout() async throws {
        try await onOwnThread {
            let pf = TempFolders(), bf = TempFolders()
            let proxy = try proxyServer(pf, cli: ["rpc-client-timeout": "20"])
            defer { proxy.shutdown() }
            let gone = try RpcServer(port: 0, descriptors: [], folders: TempFolders().folders, withDebugSignal: false)
            let port = gone.port
            gone.shutdown()
            let c = try client(proxy.port, name: "patient")
            try register(c, port: port)
            let done = NSCondition()
            let answer = NIOLockedValueBox<String?>(nil)
            Thread.detachNewThread {
                let r: String
                do { r = try c["remote"]!.call("who", RpcEmpty(), as: RpcResultStatus.self).r.msg } catch { r = "\(error)" }
                done.lock(); answer.withLockedValue { $0 = r }; done.broadcast(); done.unlock()
            }
            // The call is under way (and failing over to retries) before the backend starts.
            let deadline = Date() + 10
            while proxy.pendingCalls.isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
            let backend = try RpcServer(port: port, descriptors: [Backend().descriptor], folders: bf.folders,
                                        withDebugSignal: false)
            defer { backend.shutdown() }
            done.lock()
            while answer.withLockedValue({ $0 }) == nil && done.wait(until: Date() + 20) {}
            done.unlock()
            #expect(answer.withLockedValue { $0 }?.hasPrefix("patient(proxied)|") == true)
        }
    }
}
