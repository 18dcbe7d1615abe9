// RpcServer and RpcClient over real sockets: built-in services, API version checks both
// ways, errors as results (with stack) and the client's raising rules, UNIMPLEMENTED,
// managers' load with the auto-client, lifecycle (shutdown by API and by RPC, grace,
// idempotence; beginShutdown and release from outside and from a handler, the server
// freed on the releasing thread), pending calls, busy ports, the client's retry bounds.
import Foundation
import GRPCHelperCore
import Testing
@testable import GRPCHelper

/// A test service on existing messages: TestService/{ok, fail, crash, stream, hold, missing}.
final class SampleManager: RpcManager, @unchecked Sendable {
    let held = NSCondition()
    var release = false
    var holding = 0
    var loaded: RpcMultiServiceInfo?
    var loadError: Error?
    var shutdownCalls = 0

    override func load() throws {
        if let e = loadError { throw e }
        loaded = try client?["srv"]?.call("info", RpcFilter(), as: RpcMultiServiceInfo.self)
    }

    override func shutdown() { lock.withLock { shutdownCalls += 1 } }

    func waitHolding(_ n: Int) {
        held.lock()
        while holding < n { held.wait() }
        held.unlock()
    }

    func releaseAll() {
        held.withLock { release = true; held.broadcast() }
    }

    var descriptor: RpcServiceDescriptor {
        RpcServiceDescriptor(
            name: "sample", serviceName: "TestService", title: "sample", moduleVersion: "1.2.3",
            apiVersion: RpcConfigApiVersion.self,  // supported 1, current 2
            manager: self,
            methods: [
                .unary("ok") { (r: RpcFilter) -> RpcResultStatus in
                    var s = RpcResultStatus()
                    s.r.msg = r.names.joined(separator: ",")
                    return s
                },
                .unary("fail") { (r: RpcFilter) -> RpcResultStatus in
                    throw RpcException("refused: \(r.names.first ?? "")",
                                       code: RpcResultCode(rawValue: Int(r.names.last ?? "") ?? 1) ?? .error)
                },
                .unary("crash") { (_: RpcFilter) -> RpcResultStatus in
                    struct Boom: Error {}
                    throw Boom()
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
                    if names.contains("fail") { throw RpcException("collect refused", code: .errorParamInvalid) }
                    var s = RpcResultStatus()
                    s.r.msg = names.joined(separator: ",")
                    return s
                },
                .bidiStreaming("chat") { (requests: RpcRequestStream<RpcFilter>, out: RpcResponseStream<RpcResultStatus>) in
                    // One answer per request, as it arrives (the client waits for each).
                    while let r = try await requests.next() {
                        var s = RpcResultStatus()
                        s.r.msg = "re:" + r.names.joined(separator: ",")
                        if r.names.contains("fail") { throw RpcException("chat refused", code: .errorItemConflict) }
                        try await out.send(s)
                    }
                },
                .serverStreaming("broken") { (_: RpcFilter, out: RpcResponseStream<RpcResultStatus>) in
                    try await out.send(RpcResultStatus())
                    throw RPCError(.dataLoss, "stream broken")   // a gRPC status after a message
                },
                RpcMethod(name: "hold", cardinality: .unary, body: .blocking { [self] call in
                    _ = try call.receiveMessage()
                    held.withLock { holding += 1; held.broadcast() }
                    held.withLock { while !release && !call.isCancelled { _ = held.wait(until: Date() + 0.05) } }
                    try call.sendMessage(try RpcResultStatus().serializedBytes())
                }),
                .unimplemented("missing", .unary),
            ])
    }
}

/// A server on a free port over temporary folders, shut down at the end.
final class TestServer {
    let folders = TempFolders()
    let manager = SampleManager()
    let server: RpcServer
    init(cli: [String: String] = [:], userItems: [any ConfigItemSource] = [],
         configure: (SampleManager) -> Void = { _ in }) throws {
        configure(manager)
        server = try RpcServer(port: 0, descriptors: [manager.descriptor], folders: folders.folders, cliConfig: cli,
                               userItems: userItems, withDebugSignal: false)
    }
    deinit { server.shutdown() }

    func client(exception: Bool = true, version: UInt32? = nil, timeout: Double = 5,
                customError: (@Sendable (String, RpcResultCode) -> Error)? = nil) throws -> RpcClient {
        try RpcClient(host: "127.0.0.1", port: server.port, timeout: timeout, name: "tester", exception: exception,
                      customError: customError,
                      stubs: ["srv": ("RpcServerService", 1), "config": ("ConfigService", version ?? 2),
                              "log": ("LoggerService", 1), "sample": ("TestService", version ?? 2)])
    }
}

/// A sample.hold call made on a thread of its own; `outcome()` waits for its end.
private final class HeldCall: @unchecked Sendable {
    private let done = NSCondition()
    private var finished = false
    private var error: Error?

    init(_ c: RpcClient) {
        Thread.detachNewThread {
            var e: Error?
            do { _ = try c["sample"]!.call("hold", RpcFilter(), as: RpcResultStatus.self) } catch { e = error }
            self.done.withLock { self.error = e; self.finished = true; self.done.broadcast() }
        }
    }

    func outcome() -> Error? {
        done.withLock {
            while !finished { done.wait() }
            return error
        }
    }
}

private func filter(_ names: String...) -> RpcFilter {
    var f = RpcFilter()
    f.names = names
    return f
}

private func rpcError(_ body: () throws -> Void) -> RpcException? {
    do { try body(); return nil } catch let e as RpcException { return e } catch { return nil }
}

/// A port nothing listens on (bound once, then released).
private func reserveFreePortForTests() throws -> Int {
    let s = Server(options: ServerOptions())
    let port = try s.bindNow("127.0.0.1:0")
    s.shutdown(grace: 0)
    return port
}

/// A config holder of the tests' own.
private struct SampleHolder: ConfigHolder {
    let first = try! Config(name: "holder-first", defaultValue: "1")
    let second = try! Config(name: "holder-second", defaultValue: "two")
}

@Suite(.serialized) struct RpcServerTests {
    @Test func requestStreamingAndBidiThroughTheClient() throws {
        let t = try TestServer()
        let c = try t.client()
        let sample = c["sample"]!
        // Client streaming: every request, one response.
        let collected = try sample.clientStream("collect", [filter("a"), filter("b", "c")], as: RpcResultStatus.self)
        #expect(collected.r.msg == "a,b,c")
        #expect(try sample.clientStream("collect", [RpcFilter](), as: RpcResultStatus.self).r.msg == "")
        var e = rpcError { _ = try sample.clientStream("collect", [filter("fail")], as: RpcResultStatus.self) }
        #expect(e?.code == .errorParamInvalid && e?.message.contains("collect refused") == true)
        // Bidi: each answer read before the next request is sent (a real exchange).
        let chat = try sample.bidi("chat", sending: RpcFilter.self, as: RpcResultStatus.self)
        for word in ["x", "y", "z"] {
            try chat.send(filter(word))
            #expect(try chat.next()?.r.msg == "re:\(word)")
        }
        chat.closeSend()
        #expect(try chat.next() == nil)
        // An error result ends it; the status after the messages is checked too.
        let failing = try sample.bidi("chat", sending: RpcFilter.self, as: RpcResultStatus.self)
        try failing.send(filter("ok"))
        #expect(try failing.next()?.r.msg == "re:ok")
        try failing.send(filter("fail"))
        e = rpcError { _ = try failing.next() }
        #expect(e?.code == .errorItemConflict)
        // The unimplemented-method path and a dead server: ERROR_RPC.
        let dead = try RpcClient(host: "127.0.0.1", port: try reserveFreePortForTests(), timeout: 0.2,
                                 stubs: ["sample": ("TestService", 2)])
        e = rpcError {
            let call = try dead["sample"]!.bidi("chat", sending: RpcFilter.self, as: RpcResultStatus.self)
            _ = try call.next()
        }
        #expect(e?.code == .errorRpc)
        e = rpcError { _ = try dead["sample"]!.clientStream("collect", [filter("a")], as: RpcResultStatus.self) }
        #expect(e?.code == .errorRpc)
    }

    @Test func theServersOwnAutoClient() throws {
        let t = try TestServer()
        let auto = try t.server.autoClient
        #expect(try t.server.autoClient === auto)
        #expect(Set(auto.stubs.keys) == ["srv", "config", "log", "sample"])
        let info = try auto["srv"]!.call("info", RpcFilter(), as: RpcMultiServiceInfo.self)
        #expect(info.items.map(\.name) == ["srv", "config", "log", "sample"])
        #expect(try auto["sample"]!.call("ok", filter("a"), as: RpcResultStatus.self).r.msg == "a")
        #expect(auto.identity.client == "srv-client")
        t.server.shutdown()
        #expect(rpcError { _ = try auto["srv"]!.call("info", RpcFilter(), as: RpcMultiServiceInfo.self) } != nil)
    }

    @Test func aGivenBuiltInItemIsUsedInsteadOfTheLibrarysOwn() throws {
        let shared = try Config(name: "rpc-client-timeout", defaultValue: "60", validator: .configValidPosFloat)
        let folders = TempFolders()
        let server = try RpcServer(port: 0, descriptors: [], folders: folders.folders,
                                   cliConfig: ["rpc-client-timeout": "7"], staticItems: [shared],
                                   withDebugSignal: false)
        defer { server.shutdown() }
        #expect(server.config["rpc-client-timeout"] === shared)
        #expect(shared.floatValue == 7)
        #expect(server.config["rpc-max-workers"]?.intValue == 30)   // the other built-ins stay
    }

    @Test func configHoldersAreTakenAsItems() throws {
        let t = try TestServer(cli: ["holder-second": "three"], userItems: [SampleHolder(), try Config(name: "plain-item", defaultValue: "p")])
        #expect(t.server.config["holder-first"]?.stringValue == "1")
        #expect(t.server.config["holder-second"]?.stringValue == "three")
        #expect(t.server.config["plain-item"]?.stringValue == "p")
        let set = try ConfigSet(staticItems: [SampleHolder()], folders: t.folders.folders)
        #expect(set["holder-first"]?.stringValue == "1")
    }

    @Test func builtInServicesAndInfo() throws {
        let t = try TestServer()
        let c = try t.client()
        let info = try c["srv"]!.call("info", RpcFilter(), as: RpcMultiServiceInfo.self)
        #expect(info.items.map(\.name) == ["srv", "config", "log", "sample"])
        let config = info.items[1]
        #expect(config.version == "grpchelper:\(GRPCHelperVersion.string)")
        #expect(config.supportedApiVersion == 1 && config.currentApiVersion == 2 && !config.isProxy)
        #expect(info.items[3].version == "sample:1.2.3")
        let one = try c["srv"]!.call("info", filter("log"), as: RpcMultiServiceInfo.self)
        #expect(one.items.map(\.name) == ["log"])
        let e = rpcError { _ = try c["srv"]!.call("info", filter("nope"), as: RpcMultiServiceInfo.self) }
        #expect(e?.code == .errorItemUnknown)
        var ignoring = filter("nope", "srv")
        ignoring.ignoreUnknown = true
        #expect(try c["srv"]!.call("info", ignoring, as: RpcMultiServiceInfo.self).items.map(\.name) == ["srv"])
        // The managers' auto-client worked during load.
        #expect(t.manager.loaded?.items.count == 4)
    }

    @Test func configAndLogServices() throws {
        let item = try Config(name: "my-item", defaultValue: "a")
        let t = try TestServer(userItems: [item])
        let c = try t.client()
        let got = try c["config"]!.call("get", RpcFilter(), as: RpcConfigStatus.self)
        #expect(got.items.map(\.name) == ["my-item"])  // user items only
        var u = RpcConfigUpdate()
        var i = RpcConfigItemUpdate()
        i.name = "my-item"
        i.value = "b"
        u.items = [i]
        #expect(try c["config"]!.call("set", u, as: RpcConfigStatus.self).items.first?.value == "b")
        #expect(item.stringValue == "b")
        #expect(t.folders.read("wks/config.json")?.contains("\"my-item\"") == true)
        #expect(rpcError { _ = try c["config"]!.call("get", filter("zz"), as: RpcConfigStatus.self) }?.code == .errorItemUnknown)
        #expect(rpcError { _ = try c["log"]!.call("get", RpcFilter(), as: RpcLoggerStatus.self) }?.code == .errorParamMissing)
        let root = try c["log"]!.call("get", filter(""), as: RpcLoggerStatus.self)
        #expect(root.items.first?.name == "root" && root.items.first?.level == .lvlInfo)
        // The managers' and the server's logs.
        t.server.shutdown()
        #expect(t.folders.read("wks/logs/RpcServer/RpcServer.log")?.contains("RPC server started") == true)
        #expect(FileManager.default.fileExists(atPath: t.folders.root + "/wks/logs/SampleManager/SampleManager.log"))
    }

    @Test func apiVersionChecksBothWays() throws {
        let t = try TestServer()
        let tooNew = try t.client(version: 3)
        var e = rpcError { _ = try tooNew["sample"]!.call("ok", filter("x"), as: RpcResultStatus.self) }
        #expect(e?.code == .errorApiServerTooOld)
        let tooOld = try t.client(version: 0)
        e = rpcError { _ = try tooOld["config"]!.call("get", RpcFilter(), as: RpcConfigStatus.self) }
        #expect(e?.code == .errorApiClientTooOld)
        // exception=false: the result comes back, with its message.
        let quiet = try t.client(exception: false, version: 3)
        let r = try quiet["sample"]!.call("ok", filter("x"), as: RpcResultStatus.self)
        #expect(r.r.code == .errorApiServerTooOld && r.r.msg.contains("too old for client API version (3)"))
        // No version: no check; a non-number is refused.
        let none = try RpcClient(host: "127.0.0.1", port: t.server.port, stubs: ["s": ("TestService", nil)])
        #expect(try none["s"]!.call("ok", filter("a", "b"), as: RpcResultStatus.self).r.msg == "a,b")
        let ch = try GRPCChannel(target: "127.0.0.1:\(t.server.port)")
        defer { ch.close() }
        var md = Metadata()
        try md.add("api_version", "two")
        let raw = try ch.unary("/TestService/ok", try filter("x").serializedBytes(), options: CallOptions(metadata: md))
        #expect(try RpcResultStatus(serializedBytes: raw).r.code == .error)
    }

    @Test func errorsTravelAsResults() throws {
        let t = try TestServer()
        let c = try t.client()
        var e = rpcError { _ = try c["sample"]!.call("fail", filter("why", "31"), as: RpcResultStatus.self) }
        #expect(e?.code == .errorItemConflict && e?.message == "RPC returned error: refused: why")
        // Codes at or above ERROR_CUSTOM are returned, not thrown.
        let custom = try c["sample"]!.call("fail", filter("why", "105"), as: RpcResultStatus.self)
        #expect(custom.r.code.rawValue == 105 && custom.r.msg == "refused: why" && !custom.r.stack.isEmpty)
        // Any other error: ERROR with its text and a stack.
        let quiet = try t.client(exception: false)
        let crash = try quiet["sample"]!.call("crash", RpcFilter(), as: RpcResultStatus.self)
        #expect(crash.r.code == .error && crash.r.msg.contains("Boom") && !crash.r.stack.isEmpty)
        // A custom error type.
        struct Mine: Error { let code: RpcResultCode }
        let own = try t.client(customError: { _, code in Mine(code: code) })
        do {
            _ = try own["sample"]!.call("fail", filter("x", "21"), as: RpcResultStatus.self)
            Issue.record("no error")
        } catch let m as Mine {
            #expect(m.code == .errorParamInvalid)
        }
        // Streaming: the messages, then the error as the last one.
        let quietStream = try quiet["sample"]!.stream("stream", filter("a", "b"), as: RpcResultStatus.self)
        var msgs: [RpcResultStatus] = []
        while let m = try quietStream.next() { msgs.append(m) }
        #expect(msgs.map(\.r.msg) == ["a", "b", "stream failed"] && msgs.last?.r.code == .errorStateUnexpected)
        let raising = try c["sample"]!.stream("stream", filter("a"), as: RpcResultStatus.self)
        #expect(try raising.next()?.r.msg == "a")
        e = rpcError { _ = try raising.next() }
        #expect(e?.code == .errorStateUnexpected)
        // A stream that fails after its first message raises ERROR_RPC (not a silent end).
        let broken = try c["sample"]!.stream("broken", RpcFilter(), as: RpcResultStatus.self)
        #expect(try broken.next() != nil)
        e = rpcError { _ = try broken.next() }
        #expect(e?.code == .errorRpc && e?.message.contains("stream broken") == true, "\(String(describing: e))")
        // Declared, not implemented: UNIMPLEMENTED → ERROR_RPC naming the method.
        e = rpcError { _ = try c["sample"]!.call("missing", RpcFilter(), as: RpcResultStatus.self) }
        #expect(e?.code == .errorRpc && e?.message.contains("/TestService/missing") == true
                && e?.message.contains("Method not implemented!") == true)
        // The error was logged with its stack in the manager's file.
        t.server.shutdown()
        #expect(t.folders.read("wks/logs/SampleManager/SampleManager.log")?.contains("Exception occurred: refused: why") == true)
    }

    @Test func loadFailureShutsDownAndThrows() throws {
        let folders = TempFolders()
        let m = SampleManager()
        m.loadError = RpcException("cannot load", code: .errorStateUnreachable)
        do {
            _ = try RpcServer(port: 0, descriptors: [m.descriptor], folders: folders.folders, withDebugSignal: false)
            Issue.record("started")
        } catch let e as RpcException {
            #expect(e.code == .errorStateUnreachable && e.message == "cannot load")
        }
        #expect(m.shutdownCalls == 1)
    }

    @Test func busyPort() throws {
        let t = try TestServer()
        let folders = TempFolders()
        let e = rpcError { _ = try RpcServer(port: t.server.port, descriptors: [], folders: folders.folders, withDebugSignal: false) }
        #expect(e?.code == .errorPortBusy && e?.message.contains("\(t.server.port)") == true)
    }

    @Test func shutdownByAPIWithACallInFlightWaitsForGraceThenCancels() throws {
        let t = try TestServer(cli: ["rpc-shutdown-grace": "0.3"])
        let c = try t.client(exception: false, timeout: 0)
        let held = HeldCall(c)
        t.manager.waitHolding(1)
        let pending = t.server.pendingCalls
        #expect(pending.count == 1 && pending[0].method == "/TestService/hold" && pending[0].client.client == "tester")
        let start = Date()
        t.server.shutdown()
        let took = Date().timeIntervalSince(start)
        #expect(took >= 0.25 && took < 10, "\(took)")
        #expect(!t.server.isRunning && t.server.isShutDown && t.manager.shutdownCalls == 1)
        #expect((held.outcome() as? RpcException)?.code == .errorRpc)  // cancelled by the server
        t.server.shutdown()  // idempotent
        #expect(t.manager.shutdownCalls == 1)
        // The port is free again.
        let again = try RpcServer(port: t.server.port, descriptors: [], folders: t.folders.folders, withDebugSignal: false)
        again.shutdown()
    }

    @Test func shutdownByRPCAnswersAtOnceAndWaitsItsTimeout() throws {
        let t = try TestServer()
        let c = try t.client()
        var req = RpcShutdownRequest()
        req.timeout = 1
        let start = Date()
        let r = try c["srv"]!.call("shutdown", req, as: RpcResultStatus.self)
        #expect(r.r.code == .ok)
        #expect(!t.server.isRunning)
        t.server.waitShutdown()
        #expect(Date().timeIntervalSince(start) >= 1)
        // A negative timeout: no wait.
        let t2 = try TestServer()
        req.timeout = -1
        _ = try t2.client()["srv"]!.call("shutdown", req, as: RpcResultStatus.self)
        t2.server.waitShutdown()
        #expect(t2.server.isShutDown)
    }

    @Test func clientRetriesUnavailableWithinItsTimeout() throws {
        // Nothing listens: retried, then ERROR_RPC naming the method and target, after ~timeout.
        let probe = try TestServer()
        let port = probe.server.port
        probe.server.shutdown()
        let c = try RpcClient(host: "127.0.0.1", port: port, timeout: 1.2, stubs: ["srv": ("RpcServerService", 1)])
        let start = Date()
        let e = rpcError { _ = try c["srv"]!.call("info", RpcFilter(), as: RpcMultiServiceInfo.self) }
        let took = Date().timeIntervalSince(start)
        #expect(e?.code == .errorRpc && e?.message.contains("/RpcServerService/info @ 127.0.0.1:\(port)") == true)
        #expect(took >= 1.2 && took < 4, "\(took)")
        // timeout 0: no retry.
        let once = try RpcClient(host: "127.0.0.1", port: port, timeout: 0, stubs: ["srv": ("RpcServerService", 1)])
        let s2 = Date()
        #expect(rpcError { _ = try once["srv"]!.call("info", RpcFilter(), as: RpcMultiServiceInfo.self) }?.code == .errorRpc)
        #expect(Date().timeIntervalSince(s2) < 1)
    }

    @Test func callsCarryTheIdentityMetadata() throws {
        let id = RpcClientIdentity.local(client: "me", reaching: "127.0.0.1", port: 1)
        #expect(id.ip == "127.0.0.1" && !id.user.isEmpty && !id.host.isEmpty)
        let md = id.metadata(apiVersion: 4)
        #expect(md.first("client") == "me" && md.first("api_version") == "4" && md.first("ip") == "127.0.0.1")
        let anonymous = RpcClientIdentity(client: "", user: "u", host: "h", ip: "")
        #expect(anonymous.metadata(apiVersion: nil).first("client") == nil)
    }

    @Test func debugDumpListsThreadsAndPendingCalls() throws {
        let folders = TempFolders()
        let m = SampleManager()
        let server = try RpcServer(port: 0, descriptors: [m.descriptor], folders: folders.folders,
                                   cliConfig: ["rpc-shutdown-grace": "1"], withDebugSignal: true)
        defer {
            m.releaseAll()
            server.shutdown()
        }
        server.dumpExtras = { "Binding stacks:\n  (none)" }
        let c = try RpcClient(host: "127.0.0.1", port: server.port, timeout: 0, name: "dumper",
                              stubs: ["sample": ("TestService", 2)])
        Thread.detachNewThread { _ = try? c["sample"]!.call("hold", RpcFilter(), as: RpcResultStatus.self) }
        m.waitHolding(1)
        // By signal: the watcher thread writes the file.
        kill(getpid(), SIGUSR2)  // process-directed: test threads may block signals
        let logsFolder = server.logs.folder
        var dump: String?
        for _ in 0..<500 where dump == nil {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: logsFolder)) ?? []
            if let f = names.first(where: { $0.hasPrefix("RpcServerDump-") && $0.hasSuffix(".txt") }) {
                let text = try String(contentsOfFile: logsFolder + "/" + f, encoding: .utf8)
                if text.contains("Pending RPC calls:") { dump = text }
            }
            if dump == nil { usleep(20_000) }
        }
        let text = try #require(dump)
        #expect(text.range(of: #"RpcServerDump-\d{14}\.txt"#, options: .regularExpression) == nil)  // the name, not in text
        #expect(text.contains("Threads:") && text.range(of: #"  thread \d+ ""#, options: .regularExpression) != nil)
        #expect(text.contains(" (dumping)\n"))
        // Other threads' backtraces, asked by signal: the held handler's worker shows
        // the test's handler (symbol names may be mangled; the module's name is there).
        // The server's worker threads (gh-worker) answer, even made from runtime threads
        // that block signals: their frames are listed.
        let workers = text.components(separatedBy: "\n  thread ").filter { $0.contains("\"gh-worker\"") }
        #expect(!workers.isEmpty && workers.allSatisfy { !$0.contains("did not answer")
            && $0.components(separatedBy: "\n    ").count > 3 }, "\(text)")
        #expect(text.components(separatedBy: "\n    ").count > 20)  // frames of several threads
        #expect(text.contains("Binding stacks:"))
        #expect(text.contains("/TestService/hold from ") && text.contains("client \"dumper\""))
        // Directly.
        let path = try server.writeDebugDump()
        #expect((path as NSString).lastPathComponent.range(of: #"^RpcServerDump-\d{14}\.txt$"#, options: .regularExpression) != nil)
        m.releaseAll()
    }

    @Test func proxiedServicesAreListedAndAnswerUnregisteredAfterTheClientTimeout() throws {
        let folders = TempFolders()
        let proxied = RpcServiceDescriptor(name: "remote", serviceName: "RemoteService", version: "remote:0.1",
                                           supportedApiVersion: 1, currentApiVersion: 1, manager: nil,
                                           methods: [.unimplemented("get", .unary)], isProxy: true)
        let server = try RpcServer(port: 0, descriptors: [proxied], folders: folders.folders,
                                   cliConfig: ["rpc-client-timeout": "0.2"], withDebugSignal: false)
        defer { server.shutdown() }
        let c = try RpcClient(host: "127.0.0.1", port: server.port, stubs: ["srv": ("RpcServerService", 1),
                                                                           "remote": ("RemoteService", 1)])
        let info = try c["srv"]!.call("info", filter("remote"), as: RpcMultiServiceInfo.self)
        #expect(info.items.first?.isProxy == true && info.items.first?.version == "remote:0.1")
        #expect(info.items.first?.proxyPort == 0 && info.items.first?.proxyHost == "")
        let e = rpcError { _ = try c["remote"]!.call("get", RpcFilter(), as: RpcResultStatus.self) }
        #expect(e?.code == .errorProxyUnregistered)
        #expect(e?.message == "RPC returned error: Proxy didn't registered in time for method call")
    }

    @Test func clientsGoWhenDropped() throws {
        weak var gone: RpcClient?
        do {
            let c = try RpcClient(host: "127.0.0.1", port: 1, stubs: ["s": ("S", 1)])
            #expect(c["s"]?.serviceName == "S" && c.stubs.count == 1)
            gone = c
        }
        #expect(gone == nil)
    }

    @Test func shutdownByRPCWithACallInFlight() throws {
        let t = try TestServer(cli: ["rpc-shutdown-grace": "0.3"])
        let c = try t.client(exception: false, timeout: 0)
        let held = HeldCall(c)
        t.manager.waitHolding(1)
        var req = RpcShutdownRequest()
        req.timeout = -1
        let start = Date()
        #expect(try c["srv"]!.call("shutdown", req, as: RpcResultStatus.self).r.code == .ok)
        #expect(Date().timeIntervalSince(start) < 0.25)  // answered before the grace
        #expect(t.server.waitShutdown(timeout: 10))
        #expect(Date().timeIntervalSince(start) >= 0.25 && t.manager.shutdownCalls == 1)
        #expect((held.outcome() as? RpcException)?.code == .errorRpc)
    }
}

/// A manager made of closures (how the C ABI and bindings give theirs): its logger name,
/// its load hook with the manager attached, its shutdown hook. In the serialized suite:
/// RpcServer's init blocks its thread while load hooks call the server, whose built-in
/// services run on the concurrency pool (two such inits at once take both of this
/// machine's pool threads).
extension RpcServerTests {
    @Test func hooksRunWithTheManagerAttached() throws {
        let folders = TempFolders()
        final class Seen: @unchecked Sendable {
            var info: RpcMultiServiceInfo?
            var loggerName = ""
            var shutdowns = 0
        }
        let seen = Seen()
        let manager = RpcHookManager(loggerName: "HookLogger", load: { m in
            seen.loggerName = m.loggerName
            seen.info = try m.client?["srv"]?.call("info", RpcFilter(), as: RpcMultiServiceInfo.self)
            m.logger.info("loaded by hook")
        }, shutdown: { seen.shutdowns += 1 })
        let descriptor = RpcServiceDescriptor(
            name: "hooked", serviceName: "TestService", title: "hooked", moduleVersion: "1.0.0",
            apiVersion: RpcConfigApiVersion.self, manager: manager,
            methods: [.unimplemented("ok", .unary)])
        let server = try RpcServer(port: 0, descriptors: [descriptor], folders: folders.folders,
                                   withDebugSignal: false)
        #expect(seen.loggerName == "HookLogger")
        #expect(Set(seen.info?.items.map(\.name) ?? []) == ["srv", "config", "log", "hooked"])
        #expect(seen.shutdowns == 0)
        server.shutdown()
        #expect(seen.shutdowns == 1)
        let log = try String(contentsOfFile: "\(server.logs.folder)/HookLogger/HookLogger.log", encoding: .utf8)
        #expect(log.contains("loaded by hook"))
    }

    @Test func aFailingLoadHookFailsTheServer() {
        let folders = TempFolders()
        let manager = RpcHookManager(loggerName: "Failing", load: { _ in
            throw RpcException("cannot load", code: .errorStateUnexpected)
        })
        let descriptor = RpcServiceDescriptor(
            name: "failing", serviceName: "TestService", title: "failing", moduleVersion: "1.0.0",
            apiVersion: RpcConfigApiVersion.self, manager: manager, methods: [])
        #expect(throws: RpcException.self) {
            _ = try RpcServer(port: 0, descriptors: [descriptor], folders: folders.folders, withDebugSignal: false)
        }
    }
}

// MARK: - beginShutdown and release (any thread, handlers too)

/// A one-shot value that threads wait for (no sleeps).
private final class Latch<T>: @unchecked Sendable {
    private let cond = NSCondition()
    private var value: T?

    func set(_ v: T) { cond.withLock { if value == nil { value = v }; cond.broadcast() } }
    var isSet: Bool { cond.withLock { value != nil } }

    func wait(_ seconds: Double = 20) -> T? {
        let deadline = Date() + seconds
        return cond.withLock {
            while value == nil && cond.wait(until: deadline) {}
            return value
        }
    }
}

/// The calling thread's name (what NativeThread gave it: Linux's comm).
private func threadName() -> String {
    let comm = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
    return comm.trimmingCharacters(in: .newlines)
}

/// Tells, from its deinit, on which thread it went: held only by the server (through
/// its manager's hook), it goes when the server is deinitialised (what a C host sees
/// as its free_user_data).
private final class DeinitProbe: @unchecked Sendable {
    let gone: Latch<String>
    init(_ gone: Latch<String>) { self.gone = gone }
    deinit { gone.set(threadName()) }
}

/// A server of "stopper" (TestService): "stop" runs `action` with the server on the
/// handler's thread, then answers; "hold" waits until `gate` is set or its call ends.
/// A DeinitProbe reporting to `gone` is held by its manager only.
private final class Stopper: @unchecked Sendable {
    let folders = TempFolders()
    let gone = Latch<String>()
    let gate = Latch<Bool>()
    let holding = Latch<Bool>()
    let shutdowns = Latch<Bool>()
    var action: (RpcServer) -> Void = { _ in }

    /// rpc-shutdown-grace 5 s: a held call keeps a shutdown from finishing until `gate`.
    func makeServer() throws -> RpcServer {
        let probe = DeinitProbe(gone)
        let manager = RpcHookManager(loggerName: "Stopper", shutdown: { [shutdowns] in
            _ = probe
            shutdowns.set(true)
        })
        let descriptor = RpcServiceDescriptor(
            name: "stopper", serviceName: "TestService", title: "stopper", moduleVersion: "1.0.0",
            apiVersion: RpcConfigApiVersion.self, manager: manager,
            methods: [
                RpcMethod(name: "stop", cardinality: .unary, body: .blocking { [self, manager] call in
                    _ = try call.receiveMessage()
                    action(manager.server!)
                    try call.sendMessage(try RpcResultStatus().serializedBytes())
                }),
                RpcMethod(name: "hold", cardinality: .unary, body: .blocking { [gate, holding] call in
                    _ = try call.receiveMessage()
                    holding.set(true)
                    while !call.isCancelled && gate.wait(0.05) == nil {}
                    try call.sendMessage(try RpcResultStatus().serializedBytes())
                }),
            ])
        return try RpcServer(port: 0, descriptors: [descriptor], folders: folders.folders,
                             cliConfig: ["rpc-shutdown-grace": "5"], withDebugSignal: false)
    }

    /// A "hold" call on a thread of its own: "answered", or the error's text.
    func hold(_ c: RpcClient) -> Latch<String> {
        let outcome = Latch<String>()
        Thread.detachNewThread {
            do {
                _ = try c["stopper"]!.call("hold", RpcFilter(), as: RpcResultStatus.self)
                outcome.set("answered")
            } catch {
                outcome.set("\(error)")
            }
        }
        return outcome
    }

    func client(_ port: Int) throws -> RpcClient {
        try RpcClient(host: "127.0.0.1", port: port, timeout: 0, name: "stopper-client",
                      stubs: ["stopper": ("TestService", 2), "srv": ("RpcServerService", 1)])
    }
}

/// Whether `port` can be listened on again (the server closed its listener).
private func portIsFree(_ port: Int, _ folders: TempFolders) -> Bool {
    guard let s = try? RpcServer(port: port, descriptors: [], folders: folders.folders, withDebugSignal: false) else {
        return false
    }
    s.shutdown()
    return true
}

extension RpcServerTests {
    @Test func beginShutdownReturnsAtOnceAndFinishesOnALibraryThread() throws {
        let st = Stopper()
        let server = try st.makeServer()
        let c = try st.client(server.port)
        let held = st.hold(c)
        #expect(st.holding.wait() == true)
        // From outside: no new calls once it returns; the held call keeps the end away.
        #expect(server.beginShutdown())
        #expect(!server.isRunning && !server.isShutDown)
        #expect(!server.beginShutdown())             // idempotent
        #expect(!server.waitShutdown(timeout: 0))
        #expect(st.shutdowns.wait() == true)          // the managers' hooks, on the finishing thread
        st.gate.set(true)                             // the held call ends within the grace
        #expect(server.waitShutdown(timeout: 20))
        #expect(server.isShutDown)
        #expect(held.wait() == "answered")           // within the grace
        server.shutdown()                             // at once: already finished
        #expect(portIsFree(server.port, st.folders))
    }

    @Test func beginShutdownFromOneOfItsHandlers() throws {
        let st = Stopper()
        let began = Latch<Bool>()
        st.action = { server in began.set(server.beginShutdown()) }
        let server = try st.makeServer()
        let c = try st.client(server.port)
        // The handler returns (answers) while the shutdown it began waits for it.
        #expect(try c["stopper"]!.call("stop", RpcFilter(), as: RpcResultStatus.self).r.code == .ok)
        #expect(began.wait() == true)
        #expect(server.waitShutdown(timeout: 20) && !server.isRunning)
        #expect(st.shutdowns.isSet)
        #expect(!server.beginShutdown())
    }

    @Test func releaseFromOneOfItsHandlersFreesOnALibraryThreadOnceShutDown() throws {
        let st = Stopper()
        let then = Latch<(thread: String, freed: Bool)>()
        let handed = Latch<Unmanaged<RpcServer>>()
        st.action = { [gone = st.gone] _ in
            RpcServer.release(handed.wait()!) { then.set((threadName(), gone.isSet)) }
        }
        var port = 0
        do {
            let server = try st.makeServer()
            port = server.port
            handed.set(Unmanaged.passRetained(server))  // the test keeps no reference
        }
        let c = try st.client(port)
        #expect(try c["stopper"]!.call("stop", RpcFilter(), as: RpcResultStatus.self).r.code == .ok)
        // Once the shutdown has finished: `then`, then the server deinitialised, both on
        // the releasing thread.
        let gone = st.gone.wait()
        #expect(gone?.hasPrefix("gh-rpc-shutdown") == true, "\(gone ?? "not freed")")
        #expect(then.wait()?.thread == gone && then.wait()?.freed == false)
        #expect(st.shutdowns.isSet)
        #expect(portIsFree(port, st.folders))
    }

    @Test func releaseWhileServingReturnsAtOnceAndFreesAfterTheHeldCalls() throws {
        let st = Stopper()
        let then = Latch<Bool>()
        var port = 0
        var held: Latch<String>?
        do {
            let server = try st.makeServer()
            port = server.port
            held = st.hold(try st.client(port))
            #expect(st.holding.wait() == true)
            RpcServer.release(Unmanaged.passRetained(server)) { then.set(true) }
            #expect(!server.isRunning)
        }  // the test's own reference goes here: the releasing thread's is the last
        #expect(st.shutdowns.wait() == true)
        // Returned with the held call pending (grace 5 s): nothing freed yet.
        #expect(!then.isSet && !st.gone.isSet)
        st.gate.set(true)
        #expect(held?.wait() == "answered")
        #expect(then.wait() == true)
        let gone = st.gone.wait()
        #expect(gone?.hasPrefix("gh-rpc-shutdown") == true, "\(gone ?? "not freed")")
        #expect(portIsFree(port, st.folders))
    }

    @Test func releaseWaitsForAShutdownByRPCStillWaitingItsTimeout() throws {
        let st = Stopper()
        let then = Latch<Double>()
        var port = 0
        let start = Date()
        do {
            let server = try st.makeServer()
            port = server.port
            var req = RpcShutdownRequest()
            req.timeout = 1                           // its finishing thread waits 1 s, holding the server
            _ = try st.client(port)["srv"]!.call("shutdown", req, as: RpcResultStatus.self)
            RpcServer.release(Unmanaged.passRetained(server)) { then.set(Date().timeIntervalSince(start)) }
        }
        let gone = st.gone.wait()
        #expect(gone?.hasPrefix("gh-rpc-shutdown") == true, "\(gone ?? "not freed")")
        let after = try #require(then.wait())
        #expect(after >= 1, "released \(after) s after srv.shutdown with timeout 1")
        #expect(portIsFree(port, st.folders))
    }
}

/// rpc-admin-peers "local": which peers are local (loopback, unix sockets).
@Suite struct AdminPeersTests {
    @Test func localPeers() {
        for p in ["ipv4:127.0.0.1:5000", "ipv4:127.1.2.3:1", "ipv6:[::1]:80", "ipv6:[::FFFF:127.0.0.1]:9",
                  "unix:/tmp/x.sock", "unix:"] {
            #expect(isLocalPeer(p), "\(p)")
        }
        for p in ["ipv4:192.0.2.2:5000", "ipv4:10.127.0.1:1", "ipv6:[fd00::2]:80", "ipv6:[::ffff:10.0.0.1]:1",
                  "ipv6:[::1", "unknown", "ipv4:1127.0.0.1:1"] {
            #expect(!isLocalPeer(p), "\(p)")
        }
    }

    @Test func theOptionIsValidated() throws {
        let folders = TempFolders()
        #expect(throws: RpcException.self) {
            _ = try RpcServer(port: 0, descriptors: [], folders: folders.folders,
                              cliConfig: ["rpc-admin-peers": "anyone"], withDebugSignal: false)
        }
    }
}
