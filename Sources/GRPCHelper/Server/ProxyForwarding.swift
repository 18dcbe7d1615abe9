// Proxied services (grpc-helper's is_proxy descriptors): the registry of the backends that
// registered with srv.proxy_register (persisted in <workspace>/proxy.json), and the
// forwarding of calls to them, asynchronous end to end (no worker thread held).
import Foundation
import GRPCHelperCore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Where a proxied service's calls go.
struct ProxyTarget: Equatable, Sendable {
    var host: String
    var port: Int
    var version: String
}

/// A connection to a backend and how many forwarded calls use it (guarded by the
/// registry's lock).
final class PooledChannel: @unchecked Sendable {
    let channel: GRPCChannel
    var active = 0
    var retired = false
    init(_ channel: GRPCChannel) { self.channel = channel }
}

/// The registered backends of a server's proxied services, and the channels to them.
// @unchecked Sendable: state guarded by `lock`.
final class ProxyRegistry: @unchecked Sendable {
    private let lock = NIOLock()
    /// Registered (port > 0) or known from proxy.json, by service name.
    private var targets: [String: ProxyTarget] = [:]
    /// The version srv.info shows for a service once one registered (kept after a forget,
    /// as grpc-helper's).
    private var versions: [String: String] = [:]
    /// Per backend (host:port), its connections: a server takes at most
    /// `streamsPerConnection` concurrent calls on one (SETTINGS_MAX_CONCURRENT_STREAMS,
    /// 100 by default), so more concurrent forwarded calls open more connections.
    private var channels: [PoolKey: [PooledChannel]] = [:]

    /// A backend (its host: the registered one, or rpc-main-host) on one event loop.
    private struct PoolKey: Hashable {
        let host: String
        let port: Int
        let loop: ObjectIdentifier
    }
    static let streamsPerConnection = 100
    private var closed = false
    private let file: String?
    private let logger: Logger
    /// rpc-main-host: where a backend registered without a host is reached.
    let mainHost: String

    init(workspace: String?, mainHost: String, proxied: Set<String>, logger: Logger) {
        file = workspace.map { ($0 as NSString).appendingPathComponent("proxy.json") }
        self.mainHost = mainHost
        self.logger = logger
        restore(proxied)
    }

    // MARK: registry

    func target(_ name: String) -> ProxyTarget? { lock.withLock { targets[name] } }
    func version(_ name: String) -> String? { lock.withLock { versions[name] } }

    func register(_ names: [String], _ target: ProxyTarget) {
        lock.withLock {
            for n in names {
                targets[n] = target
                versions[n] = target.version
            }
        }
        retireChannels(to: target)
        persist()
    }

    func forget(_ names: [String]) {
        lock.withLock { for n in names { targets[n] = nil } }
        persist()
    }

    private func restore(_ proxied: Set<String>) {
        guard let path = file, FileManager.default.fileExists(atPath: path) else { return }
        do {
            guard let data = FileManager.default.contents(atPath: path),
                  let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw RpcException("not a JSON object", code: .errorModelInvalid)
            }
            for (name, value) in object {
                guard let d = value as? [String: Any], let port = d["port"] as? Int, port > 0,
                      let version = d["version"] as? String else {
                    throw RpcException("bad entry for \(name)", code: .errorModelInvalid)
                }
                guard proxied.contains(name) else { continue }
                targets[name] = ProxyTarget(host: d["host"] as? String ?? "", port: port, version: version)
                versions[name] = version
            }
        } catch {
            let aside = path + ".invalid"
            try? FileManager.default.removeItem(atPath: aside)
            try? FileManager.default.moveItem(atPath: path, toPath: aside)
            logger.warning("Invalid proxies file \(path) (\(error)): moved to \(aside); starting without registered proxies")
        }
    }

    /// Orders the writes of proxy.json: each takes the registry as it is when its turn
    /// comes, so the last write is of the last state (two changes at once could otherwise
    /// write their copies in the wrong order).
    private let persistLock = NSLock()

    /// proxy.json: every registered service (grpc-helper's model), written atomically.
    private func persist() {
        guard let path = file else { return }
        persistLock.lock()
        defer { persistLock.unlock() }
        let model: [String: Any] = lock.withLock {
            var out: [String: Any] = [:]
            for (n, t) in targets where t.port > 0 {
                out[n] = ["host": t.host, "port": t.port, "version": t.version]
            }
            return out
        }
        do {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try writeJSONObject(model, to: path)
        } catch {
            logger.error("Cannot persist proxies in \(path): \(error)")
        }
    }

    // MARK: channels

    private static func key(_ t: ProxyTarget, mainHost: String) -> String {
        let host = t.host.isEmpty ? mainHost : t.host
        let h = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "\(h):\(t.port)"
    }

    /// A connection to a backend for one forwarded call, on `loop` (the caller's
    /// connection's): the least busy of the backend's connections on that loop with room
    /// for one more call, or a new one. `done()` gives the slot back.
    func channel(to t: ProxyTarget, on loop: EventLoop) throws -> PooledChannel {
        let key = PoolKey(host: t.host.isEmpty ? mainHost : t.host, port: t.port, loop: ObjectIdentifier(loop))
        return try lock.withLock {
            if closed { throw RpcException("the RPC server is shutting down", code: .errorStateUnexpected) }
            var pool = channels[key] ?? []
            let best = pool.min(by: { $0.active < $1.active })
            if let b = best, b.active < ProxyRegistry.streamsPerConnection {
                b.active += 1
                return b
            }
            // Forwarding runs on the loop, callbacks inline (one thread for connectivity watches).
            var options = ChannelOptions()
            options.callbackThreads = 1
            options.inlineCallbacks = true
            let target = ProxyRegistry.key(t, mainHost: mainHost)
            let c = PooledChannel(try GRPCChannel(target: target, options: options, eventLoop: loop))
            c.active = 1
            pool.append(c)
            channels[key] = pool
            return c
        }
    }

    /// A forwarded call ended on `c`; a retired connection goes with its last call.
    func done(_ c: PooledChannel) {
        let close: Bool = lock.withLock {
            c.active -= 1
            return c.retired && c.active == 0
        }
        if close { c.channel.close() }
    }

    /// A backend (re)registered: its connections kept so far (which may be waiting out a
    /// reconnection backoff after the backend went away) are retired — new calls open a
    /// fresh one; calls under way finish on theirs.
    func retireChannels(to t: ProxyTarget) {
        let idle: [PooledChannel] = lock.withLock {
            var pool: [PooledChannel] = []
            let host = t.host.isEmpty ? mainHost : t.host
            for key in channels.keys where key.host == host && key.port == t.port {
                pool.append(contentsOf: channels.removeValue(forKey: key) ?? [])
            }
            for c in pool { c.retired = true }
            return pool.filter { $0.active == 0 }
        }
        for c in idle { c.channel.close() }
    }

    func close() {
        let all: [PooledChannel] = lock.withLock {
            closed = true
            defer { channels.removeAll() }
            return channels.values.flatMap { $0 }
        }
        for c in all { c.channel.close() }
    }
}

/// One forwarded call of a proxied method: waits (up to rpc-client-timeout) for a
/// registered backend, then forwards the call to it — every request message as it comes,
/// every response message as it comes, each direction pausing the other side's receiving
/// while its destination's send buffer is full (flow control end to end), the caller's
/// metadata (`client` marked "(proxied)", `api_version` the caller's or the service's
/// current one), the deadline, and a cancellation either way. Responses pass untouched
/// (error results too); a failed backend call → ERROR_RPC, as grpc-helper's.
///
/// Everything runs on the caller's connection's event loop, with the backend connection
/// on the same loop and the backend call's callbacks inline: a forwarded call holds no
/// thread and crosses none.
// @unchecked Sendable: confined to `loop`.
final class ProxiedCall: @unchecked Sendable {
    private let registry: ProxyRegistry
    private let call: ServerCall
    private let loop: EventLoop
    private let name: String
    private let path: String
    private let cardinality: RPCCardinality
    private let metadata: Metadata
    private let clientTimeout: Double
    private let log: Logger
    private let began = Date()
    /// A single-request method's request, kept: an unreachable backend is then retried, as
    /// grpc-helper's proxy does (its RpcClient), until rpc-client-timeout — while no
    /// response has been forwarded. Request streams are not replayed.
    private var request: [UInt8]?
    private var backend: ClientCall?
    /// The backend connection's slot this call holds (given back when the backend call ends).
    private var pooled: PooledChannel?
    /// Every connection a backend call of this one used, kept alive while this call lives:
    /// a retired connection is closed when its last call gives its slot back, and a paused
    /// backend call may still be resumed after that (its channel must still exist).
    private var used: [PooledChannel] = []
    private var destination = ""
    private var responded = false
    private var firstTry: Date?
    private var delay = 0.5

    init(server: RpcServer, _ d: RpcServiceDescriptor, _ m: RpcMethod, _ call: ServerCall, clientTimeout: Double,
         log: Logger) {
        registry = server.proxies  // not the server: its last reference must not go on a loop
        self.call = call
        loop = call.eventLoop
        name = d.name
        path = "/\(d.serviceName)/\(m.name)"
        cardinality = m.cardinality
        let md = call.requestMetadata
        var out = Metadata()
        try? out.add("client", "\(md.first("client") ?? "")(proxied)")
        for key in ["user", "host", "ip"] { if let v = md.first(key) { try? out.add(key, v) } }
        let version = md.first("api_version").flatMap { $0.isEmpty ? nil : $0 } ?? String(d.currentApiVersion)
        try? out.add("api_version", version)
        metadata = out
        self.clientTimeout = clientTimeout
        self.log = log
    }

    /// On the loop (the handler).
    func start() {
        call.onCancel { [self] in onLoop { self.backend?.cancel() } }
        if !cardinality.streamsRequests {
            // The request arrived before the call started: delivered at once.
            call.receiveInline(onMessage: { [self] r in request = r }, onEnd: {})
        }
        awaitTarget()
    }

    private func onLoop(_ body: @escaping @Sendable () -> Void) {
        if loop.inEventLoop { body() } else { loop.execute(body) }
    }

    private func fail(_ error: Error) {
        RpcServer.reportInline(error, call, log)
    }

    /// Forwards once the service has a backend; polls every 50 ms until rpc-client-timeout.
    private func awaitTarget() {
        if call.isCancelled { return }
        if let t = registry.target(name), t.port > 0 {
            begin(t)
        } else if Date().timeIntervalSince(began) >= clientTimeout {
            fail(RpcException("Proxy didn't registered in time for method call", code: .errorProxyUnregistered))
        } else {
            loop.scheduleTask(in: .milliseconds(50)) { self.awaitTarget() }
        }
    }

    private func begin(_ t: ProxyTarget) {
        let p: PooledChannel
        do { p = try registry.channel(to: t, on: loop) } catch {
            fail(error)
            return
        }
        pooled = p
        used.append(p)
        destination = "\(t.host.isEmpty ? registry.mainHost : t.host):\(t.port)"
        if firstTry == nil { firstTry = Date() }
        let b = p.channel.makeCall(path, options: CallOptions(timeout: call.timeRemaining, metadata: metadata))
        backend = b
        b.start(onMessage: { [self] r in response(b, r) }, onDone: { [self] s in backendDone(b, s) })
        if !cardinality.streamsRequests {
            if let r = request { _ = try? b.sendNonBlocking(r) }
            b.closeSend()
        } else {
            // Once: a request stream's call is never retried.
            call.receiveInline(onMessage: { [self] r in forwardRequest(r) }, onEnd: { [self] in requestsEnded() })
        }
    }

    /// A request message from the caller: to the backend; while the backend's send buffer
    /// is full, the caller's stream is not read.
    private func forwardRequest(_ r: [UInt8]) {
        guard let b = backend else { return }
        do {
            if try !b.sendNonBlocking(r) {
                call.pauseReceiving()
                b.onSendReady { [self] in onLoop { self.call.resumeReceiving() } }
            }
        } catch {
            // The backend call ended: its status says why (backendDone).
        }
    }

    /// The caller's requests ended: half-close the backend call — unless the caller
    /// cancelled (then the backend call is cancelled, never half-closed, which would end
    /// its requests normally).
    private func requestsEnded() {
        if call.isCancelled { backend?.cancel() } else { backend?.closeSend() }
    }

    /// A response from the backend: to the caller; while the caller's send buffer is
    /// full, the backend's stream is not read.
    private func response(_ b: ClientCall, _ r: [UInt8]) {
        responded = true
        do {
            if try !call.sendNonBlocking(r) {
                b.pauseReceiving()
                call.onSendReady { [self] in onLoop { b.resumeReceiving() } }
            }
        } catch {
            b.cancel()
            if !call.isCancelled { fail(error) }
        }
    }

    private func backendDone(_ b: ClientCall, _ status: Status) {
        guard b === backend else { return }
        backend = nil
        if let p = pooled {
            pooled = nil
            registry.done(p)
        }
        if call.isCancelled || call.isFinishQueued { return }
        if status.isOK {
            if !cardinality.streamsResponses && call.responseCount == 0 {
                try? call.finish(Status(.internalError, "handler returned without a response"))
            } else {
                try? call.finish(.ok)
            }
            return
        }
        let remaining = clientTimeout - Date().timeIntervalSince(firstTry ?? began)
        if status.code == .unavailable && !cardinality.streamsRequests && !responded && remaining > 0 {
            let wait = min(delay, remaining)
            RpcServer.logOffLoop(log, .debug, "<RPC> \(path) @ \(destination): unavailable, retry in \(wait) s")
            delay *= 2
            loop.scheduleTask(in: .nanoseconds(Int64(wait * 1e9))) { self.awaitTarget() }
            return
        }
        fail(RpcException("RPC error (on \(path) @ \(destination)): \(status.code): \(status.message)", code: .errorRpc))
    }
}

extension ProxyRegistry {
    /// The distinct servers registered for proxied services (grpc-helper's
    /// `_proxied_servers`: host, or rpc-main-host when none, and port), in a stable order.
    func backends() -> [(host: String, port: Int)] {
        let all: [ProxyTarget] = lock.withLock { Array(targets.values) }
        var seen = Set<String>()
        var out: [(host: String, port: Int)] = []
        for t in all where t.port > 0 {
            let host = t.host.isEmpty ? mainHost : t.host
            if seen.insert("\(host):\(t.port)").inserted { out.append((host, t.port)) }
        }
        return out.sorted { ($0.host, $0.port) < ($1.host, $1.port) }
    }
}

// The config service of a server with registered proxied servers (grpc-helper's
// ConfigManager with proxies): its items merged with theirs.
extension RpcServer {
    private func configClients() throws -> [RpcClient] {
        let timeout = config["rpc-client-timeout"]?.floatValue ?? 60
        return try proxies.backends().map {
            try RpcClient(host: $0.host, port: $0.port, timeout: timeout, name: "ConfigManager",
                          stubs: ["config": ("ConfigService", UInt32(RpcConfigApiVersion.configApiCurrent.rawValue))])
        }
    }

    /// The items named (empty: all) of this server (its user items) and of every proxied
    /// server, merged by name (the first one's kept); with `checkConflicts`, two different
    /// values of one name → ERROR_ITEM_CONFLICT. No check of the names here: a proxied
    /// server refuses what it refuses (its error passed on), as grpc-helper's.
    private func mergedItems(_ names: [String], _ clients: [RpcClient], checkConflicts: Bool) throws -> [RpcConfigItem] {
        var dumps: [[RpcConfigItem]] = [config.dump(names)]
        var f = RpcFilter()
        f.names = names
        f.ignoreUnknown = true
        for c in clients {
            dumps.append(try c["config"]!.call("get", f, as: RpcConfigStatus.self).items)
        }
        var merged: [RpcConfigItem] = []
        var index: [String: Int] = [:]
        for dump in dumps {
            for item in dump {
                if let i = index[item.name] {
                    if checkConflicts && item.value != merged[i].value {
                        throw RpcException("Proxied values conflict for config item \(item.name): \(item.value) != \(merged[i].value)",
                                           code: .errorItemConflict)
                    }
                } else {
                    index[item.name] = merged.count
                    merged.append(item)
                }
            }
        }
        return merged
    }

    /// grpc-helper's checks of the names against the merged items.
    private static func checkMerged(_ names: [String], _ merged: [RpcConfigItem], ignoreUnknown: Bool, emptyOK: Bool) throws {
        if !emptyOK && names.isEmpty {
            throw RpcException("Input request list is empty", code: .errorParamMissing)
        }
        if names.contains(where: \.isEmpty) {
            throw RpcException("At least one empty name found in input request", code: .errorParamMissing)
        }
        let known = Set(merged.map(\.name))
        let unknown = names.filter { !known.contains($0) }
        if !ignoreUnknown && !unknown.isEmpty {
            throw RpcException("Unknown config item names in filter request: " + unknown.joined(separator: ", "),
                               code: .errorItemUnknown)
        }
    }

    /// config.get: this server's items merged with its proxied servers' ones — whether or not
    /// it has any (a name asked twice: one item), as grpc-helper's ConfigManager.
    func configGet(_ request: RpcFilter) throws -> RpcConfigStatus {
        let clients = try configClients()
        defer { clients.forEach { $0.close() } }
        let merged = try mergedItems(request.names, clients, checkConflicts: true)
        try RpcServer.checkMerged(request.names, merged, ignoreUnknown: request.ignoreUnknown, emptyOK: true)
        var s = RpcConfigStatus()
        s.items = merged
        return s
    }

    /// config.set: checked against the merged items, this server's new values validated,
    /// then set on every proxied server (each keeps what it holds), then here (a name given
    /// twice: its last value). Answers the merged items.
    func configSet(_ request: RpcConfigUpdate) throws -> RpcConfigStatus {
        let clients = try configClients()
        defer { clients.forEach { $0.close() } }
        var names: [String] = []
        var values: [String: String] = [:]
        for item in request.items {
            if values[item.name] == nil { names.append(item.name) }
            values[item.name] = item.value
        }
        let merged = try mergedItems(names, clients, checkConflicts: false)
        try RpcServer.checkMerged(names, merged, ignoreUnknown: request.ignoreUnknown, emptyOK: false)
        let mine = names.filter(config.holdsUserItem).map { (name: $0, value: values[$0]!) }
        for item in mine { try config[item.name]?.validate(item.value) }
        var remote = RpcConfigUpdate()
        remote.items = request.items
        remote.ignoreUnknown = true
        for c in clients { _ = try c["config"]!.call("set", remote, as: RpcConfigStatus.self) }
        if !mine.isEmpty { _ = try config.set(mine, ignoreUnknown: true) }
        var s = RpcConfigStatus()
        s.items = try mergedItems(names, clients, checkConflicts: true)
        return s
    }

    /// config.reset: checked against the merged items, reset on every proxied server, then
    /// here. Answers the merged items.
    func configReset(_ request: RpcFilter) throws -> RpcConfigStatus {
        let clients = try configClients()
        defer { clients.forEach { $0.close() } }
        let merged = try mergedItems(request.names, clients, checkConflicts: false)
        try RpcServer.checkMerged(request.names, merged, ignoreUnknown: request.ignoreUnknown, emptyOK: false)
        var remote = RpcFilter()
        remote.names = request.names
        remote.ignoreUnknown = true
        for c in clients { _ = try c["config"]!.call("reset", remote, as: RpcConfigStatus.self) }
        var seen = Set<String>()
        let mine = request.names.filter { config.holdsUserItem($0) && seen.insert($0).inserted }
        if !mine.isEmpty { _ = try config.reset(mine, ignoreUnknown: true) }
        var s = RpcConfigStatus()
        s.items = try mergedItems(request.names, clients, checkConflicts: true)
        return s
    }
}
