// The managed RPC server (grpc-helper's RpcServer): config set, rolling logs, the built-in
// services (srv, config, log) and the given ones, API version checks, errors as results,
// pending calls, managers' lifecycle, shutdown by API or RPC.
import Foundation
import GRPCHelperCore
import Logging
import SwiftProtobuf

/// A call in progress (for the debug dump and `pendingCalls`).
public struct RpcPendingCall: Sendable, CustomStringConvertible {
    public let id: UInt64
    /// "/Service/method"
    public let method: String
    public let peer: String
    /// The caller's identity metadata (client, user, host, ip; "" when not sent).
    public let client: RpcClientIdentity
    public let start: Date
    public let thread: String

    public var description: String {
        "\(thread) -- \(method) from \(peer) (client \"\(client.client)\", user \"\(client.user)\", host \"\(client.host)\", "
            + "ip \"\(client.ip)\") since \(start)"
    }
}

// @unchecked Sendable: mutable state guarded by `monitor`.
public final class RpcServer: @unchecked Sendable {
    /// The port it listens on (the one bound when 0 was asked).
    public let port: Int
    public let config: ConfigSet
    public let logs: RpcLogs
    public let folders: Folders
    /// Its own logger ("RpcServer").
    public let logger: Logger
    /// The served services, built-in ones first, by name.
    public let descriptors: [RpcServiceDescriptor]
    /// Its health service (grpc.health.v1.Health): "" and every served service (by gRPC
    /// name: "RpcServerService", "package.Service") NOT_SERVING while the managers load,
    /// SERVING once they all loaded, NOT_SERVING from the start of the shutdown; a
    /// host sets a service's own status with `health.setStatus`.
    public let health = HealthService(baseStatus: .notServing)
    /// Its reflection service (grpc.reflection.v1 and v1alpha): the built-in services and
    /// every descriptor's `fileDescriptors`; more with `reflection.addFileDescriptors`.
    public let reflection = ReflectionService()

    let core: Server
    private let builtin: BuiltinServices
    /// rpc-admin-peers is "local": the administering methods answer only local peers.
    let adminLocalOnly: Bool

    /// Throws PERMISSION_DENIED when `call`'s peer may not administer this server: with
    /// rpc-admin-peers "local", only loopback and unix-socket peers may (shut it down,
    /// set or reset config items and logger levels, register or forget proxies).
    func checkAdmin(_ call: ServerCall, _ operation: String) throws {
        guard adminLocalOnly, !isLocalPeer(call.peer) else { return }
        logger.warning("\(operation) refused to \(call.peer): rpc-admin-peers is 'local'")
        throw RPCError(.permissionDenied,
                       "\(operation) is refused to \(call.peer): this server accepts it only from loopback or "
                       + "unix-socket peers (rpc-admin-peers is 'local')")
    }
    /// The events service's manager (withEvents), for in-process sends.
    private let events: EventsManager?
    /// The backends registered for the proxied services (srv.proxy_register).
    let proxies: ProxyRegistry
    /// serving → shuttingDown (a shutdown began: by API, RPC, signal or drop) → finished.
    private enum Lifecycle { case serving, shuttingDown, finished }
    private let monitor = Monitor()
    private var lifecycle = Lifecycle.serving
    private var pending: [UInt64: RpcPendingCall] = [:]
    private var nextCallID: UInt64 = 0
    private var clients: [RpcClient] = []
    private var _autoClient: RpcClient?
    /// The auto-clients' stubs map: every served service under its descriptor's name.
    private var autoStubs: [String: (serviceName: String, apiVersion: UInt32?)] = [:]
    private var _dumpExtras: (@Sendable () -> String)?
    /// Threads finishing a shutdown started by RPC or signal (see finishOnThread).
    private var finishThreads = 0

    /// Text added to the debug dump (e.g. a binding's own thread stacks).
    public var dumpExtras: (@Sendable () -> String)? {
        get { monitor.withLock { _dumpExtras } }
        set { monitor.withLock { _dumpExtras = newValue } }
    }

    /// Builds the config set (the built-in static items plus `staticItems`, `userItems`:
    /// `Config` items or `ConfigHolder`s; a static item named as a built-in one, `rpc-*`,
    /// replaces it, so that items a program shares follow the server's layers;
    /// defaults from `folders` and `cliConfig`), the rolling logs, registers the built-in
    /// services and `descriptors`, starts serving on `port` (0: any free port), then calls
    /// every manager's `load()` with its auto-client ready. `levelSource`: the host's
    /// logging when it keeps the logger levels (see LoggerLevelSource; the Python binding's).
    /// Errors: the config set's and the logs' (invalid defaults, malformed files); a busy
    /// port → ERROR_PORT_BUSY; a manager's `load()` error (the server is shut down first).
    /// `withEvents`: the server also serves `events` (EventService: listen, send,
    /// interrupt, inspect; queues persisted in <workspace>/queues.json).
    public convenience init(port: Int, descriptors: [RpcServiceDescriptor], folders: Folders = Folders(),
                            cliConfig: [String: String] = [:], staticItems: [any ConfigItemSource] = [],
                            userItems: [any ConfigItemSource] = [],
                            withEvents: Bool = false, withDebugSignal: Bool = true,
                            levelSource: LoggerLevelSource? = nil) throws {
        try self.init(port: port, descriptors: descriptors, folders: folders, cliConfig: cliConfig,
                      staticItems: staticItems, userItems: userItems, withEvents: withEvents,
                      withDebugSignal: withDebugSignal, levelSource: levelSource,
                      eventsClock: { Date().timeIntervalSince1970 })
    }

    /// The same, with the events service's clock (tests pass their own).
    init(port: Int, descriptors: [RpcServiceDescriptor], folders: Folders, cliConfig: [String: String],
         staticItems: [any ConfigItemSource], userItems: [any ConfigItemSource], withEvents: Bool,
         withDebugSignal: Bool, levelSource: LoggerLevelSource?,
         eventsClock: @escaping @Sendable () -> TimeInterval) throws {
        _ = installThreadDumpHook
        self.folders = folders
        // A given static item named as a built-in one (rpc-*) is used instead of the
        // library's own: a host's shared items then follow this server's layers.
        let givenStatics = staticItems.expandedItems
        let givenNames = Set(givenStatics.map(\.name))
        let builtins: [any ConfigItemSource] = RpcStaticConfig.items().filter { !givenNames.contains($0.name) }
        config = try ConfigSet(staticItems: givenStatics + builtins, userItems: userItems,
                               folders: folders, cli: cliConfig)
        logs = try RpcLogs(config: config, levelSource: levelSource)
        logger = logs.logger("RpcServer")
        for w in config.warnings { logger.warning("\(w)") }

        adminLocalOnly = config["rpc-admin-peers"]?.stringValue == "local"
        var options = ServerOptions()
        options.maxWorkers = config["rpc-max-workers"]?.intValue ?? 30
        core = Server(options: options)

        // The built-in services, then the given ones (a given one may replace a built-in).
        builtin = BuiltinServices(logs: logs)
        var all = builtin.descriptors
        events = withEvents ? EventsManager(config: config, clock: eventsClock) : nil
        if let e = events { all.append(e.descriptor()) }
        for d in descriptors {
            if let i = all.firstIndex(where: { $0.name == d.name }) { all[i] = d } else { all.append(d) }
        }
        self.descriptors = all
        proxies = ProxyRegistry(workspace: folders.workspace, mainHost: config["rpc-main-host"]?.stringValue ?? "localhost",
                                proxied: Set(all.filter(\.isProxy).map(\.name)), logger: logger)
        // Forwarding channels share the server's event loops: closed before they stop.
        let registry = proxies
        core.onHandlersDone { registry.close() }

        // Bind first (a busy port fails here), register, then serve.
        do {
            let address = port == 0 ? "0.0.0.0:0" : "[::]:\(port)"
            do {
                self.port = try core.bindNow(address)
            } catch where port != 0 {
                self.port = try core.bindNow("0.0.0.0:\(port)")  // no IPv6 here
            }
        } catch {
            core.shutdown(grace: 0)
            logs.close()
            throw RpcException("Failed to start RPC server on port \(port): \(error)", code: .errorPortBusy)
        }
        builtin.server = self
        do {
            for d in all {
                d.manager?.attach(logs: logs, folders: folders)
                for m in d.methods {
                    try core.register("/\(d.serviceName)/\(m.name)", cardinality: m.cardinality,
                                      handler: handler(d, m))
                }
                logger.debug("registered service \(d.name) (\(d.serviceName), API \(d.supportedApiVersion)...\(d.currentApiVersion))")
            }
            try health.add(to: core)
            reflection.describeHelperServices()
            for d in all where !d.fileDescriptors.isEmpty { try reflection.addFileDescriptors(d.fileDescriptors) }
            try reflection.add(to: core)
            try core.start()
        } catch {
            core.shutdown(grace: 0)
            markFinished()
            throw RpcException("Failed to start RPC server on port \(port): \(error)", code: .errorItemConflict)
        }
        logger.info("RPC server started on port \(self.port)")
        if withDebugSignal { installDebugSignal() }

        // Managers: auto-client (stubs of every service), then load.
        let stubs = Dictionary(uniqueKeysWithValues: all.map {
            ($0.name, (serviceName: $0.serviceName, apiVersion: Optional($0.currentApiVersion)))
        })
        monitor.withLock { autoStubs = stubs }
        let clientTimeout = config["rpc-client-timeout"]?.floatValue ?? 60
        for d in all where !d.isProxy {
            guard let m = d.manager else { continue }
            do {
                let c = try RpcClient(host: "localhost", port: self.port, timeout: clientTimeout,
                                      name: "\(d.name)-client", logger: m.logger, stubs: stubs)
                monitor.withLock { clients.append(c) }
                m.attach(client: c, server: self)
                try m.load()
            } catch {
                logger.error("Error occurred during \(d.name) manager loading: \(error)")
                shutdown()
                throw error
            }
        }
        health.baseStatus = .serving
    }

    /// Sends an event to this server's listeners in-process (no network round trip), as
    /// `events.send` does: the same name checks (empty → ERROR_PARAM_MISSING, a space →
    /// ERROR_PARAM_INVALID). A server made without events → ERROR_STATE_UNEXPECTED.
    public func sendEvent(_ event: RpcEvent) throws {
        guard let e = events else {
            throw RpcException("this server has no events service (made without withEvents)", code: .errorStateUnexpected)
        }
        _ = try e.send(event)
    }

    /// `sendEvent` with a name and properties (name → value, sent in name order).
    public func sendEvent(name: String, properties: [String: String] = [:]) throws {
        try sendEvent(RpcEvent(name: name, properties: properties))
    }

    /// grpc-helper's `auto_client`: an RpcClient of this server with a stub per served
    /// service, named as its descriptor ("srv", "config", "log", yours), timeout
    /// `rpc-client-timeout`, named "srv-client" in the logs. Made on first use; closed
    /// when the server shuts down.
    public var autoClient: RpcClient {
        get throws {
            try monitor.withLock {
                if let c = _autoClient { return c }
                let c = try RpcClient(host: "localhost", port: port, timeout: config["rpc-client-timeout"]?.floatValue ?? 60,
                                      name: "srv-client", logger: logger, stubs: autoStubs)
                _autoClient = c
                clients.append(c)
                return c
            }
        }
    }

    deinit {
        if monitor.withLock({ lifecycle != .serving }) {
            // Shut down, or finishing on a thread started by srv.shutdown or a signal
            // (which holds the server unowned): wait until that thread is done with it.
            waitShutdown()
            return
        }
        // Dropped while serving — possibly by one of its own handlers, which the core's
        // wait would wait for: stop accepting now, finish on a thread with what it needs.
        removeSignals()
        let grace = config["rpc-shutdown-grace"]?.floatValue ?? 30
        let core = self.core, descriptors = self.descriptors, logs = self.logs
        let clients = monitor.withLock { self.clients }
        core.beginShutdown(grace: grace)
        NativeThread.startOrRun(name: "gh-rpc-shutdown") {
            for d in descriptors where !d.isProxy { d.manager?.shutdown() }
            core.wait()
            for c in clients { c.close() }
            logs.close()
        }
    }

    /// Whether it serves (false once a shutdown started).
    public var isRunning: Bool { monitor.withLock { lifecycle == .serving } }

    /// The calls in progress.
    public var pendingCalls: [RpcPendingCall] {
        monitor.withLock { pending.values.sorted { $0.id < $1.id } }
    }

    // MARK: lifecycle

    /// Stops accepting calls, calls the managers' `shutdown()`, lets pending calls run
    /// for up to `rpc-shutdown-grace` seconds, cancels the rest, closes the logs.
    /// Idempotent; returns when done (a second caller waits for the first). Not from the
    /// server's own handlers or hooks, which it would wait for: `beginShutdown()` there.
    public func shutdown() {
        guard startShutdown() else {
            waitShutdown()
            return
        }
        finishShutdown()
        markFinished()
    }

    /// srv.shutdown: answers at once; the shutdown runs on a thread of its own, which
    /// then waits `timeout` seconds (0: rpc-shutdown-timeout) before finishing when
    /// `timeout` >= 0.
    func shutdown(byRPC request: RpcShutdownRequest) {
        guard startShutdown() else { return }
        let wait: Double? = request.timeout < 0 ? nil
            : request.timeout > 0 ? Double(request.timeout) : (config["rpc-shutdown-timeout"]?.floatValue ?? 60)
        finishOnThread(wait: wait)
    }

    /// Finishes a started shutdown on a thread of its own (then waits `wait` seconds).
    /// The thread holds the server unowned: `waitShutdown` and deinit wait for it to be
    /// done with the server, so whoever drops the server last releases it (and what its
    /// managers hold) on their own thread.
    func finishOnThread(wait: Double?) {
        monitor.withLock { finishThreads += 1 }
        NativeThread.startOrRun(name: "gh-rpc-shutdown") { [unowned(unsafe) self] in
            self.finishShutdown()
            if let w = wait {
                self.logger.warning("!!! Will shutdown in \(w)s !!!")
                _ = self.monitor.wait(until: { false }, deadlineNanos: monotonicNanos() + UInt64(max(0, w) * 1e9),
                                      then: {})
            }
            self.markFinished()
            self.monitor.mutateAndNotify { self.finishThreads -= 1 }
        }
    }

    /// Blocks until a shutdown has finished.
    public func waitShutdown() {
        _ = waitShutdown(timeout: nil)
    }

    /// Blocks until a shutdown has finished (true) or `timeout` seconds passed (false).
    public func waitShutdown(timeout: Double?) -> Bool {
        let deadline = timeout.map { t -> UInt64 in
            let now = monotonicNanos()
            let ns = t <= 0 ? 0 : (t >= 1e10 ? UInt64(1e19) : UInt64(t * 1e9))
            return ns > UInt64.max - now ? UInt64.max : now + ns
        }
        return monitor.wait(until: { self.lifecycle == .finished && self.finishThreads == 0 },
                            deadlineNanos: deadline, then: { true }) ?? false
    }

    /// Whether the shutdown has finished (waitShutdown would return at once).
    public var isShutDown: Bool { monitor.withLock { lifecycle == .finished } }

    /// Begins the shutdown of `shutdown()` and returns at once: no new calls are taken
    /// when it returns; the managers' `shutdown()`, the grace and the end run on a
    /// `gh-rpc-shutdown` thread (`waitShutdown` tells when it is done). From any thread,
    /// the server's own handlers and hooks too (what the first exit signal does).
    /// Idempotent: true when this call began it.
    @discardableResult
    public func beginShutdown() -> Bool {
        guard startShutdown() else { return false }
        finishOnThread(wait: nil)
        return true
    }

    /// Gives up a reference to `server` without blocking, from any thread (one of its own
    /// handlers or hooks too): begins its shutdown if it serves; a `gh-rpc-shutdown` thread
    /// then waits until the shutdown has finished (also one begun elsewhere, and the
    /// threads finishing it), runs `then`, and drops the reference — the server is
    /// deinitialised on that thread when it was the last one.
    ///
    /// The reference is handed over retained (`Unmanaged.passRetained(server)`, or one
    /// a C handle held) so that the caller keeps none: were the caller's own reference
    /// released after that thread's, the caller's thread would deinitialise the server.
    /// Used for C handles (`gh_rpc_server_release`); a Swift host can simply drop its
    /// server (see deinit).
    public static func release(_ server: Unmanaged<RpcServer>, then: @escaping () -> Void = {}) {
        // No strong reference of this frame outlives this statement.
        let began = server.takeUnretainedValue().startShutdown()
        NativeThread.startOrRun(name: "gh-rpc-shutdown") {
            do {
                // The only reference now (the thread finishing the shutdown holds none):
                // dropped at the end of this scope, once the shutdown is over.
                let s = server.takeRetainedValue()
                if began {
                    s.finishShutdown()
                    s.markFinished()
                } else {
                    s.waitShutdown()
                }
                then()
            }
        }
    }

    /// Starts the shutdown (no new calls once it returns) if it serves; true when this
    /// call started it (the caller finishes it).
    private func startShutdown() -> Bool {
        let first: Bool = monitor.withLock {
            guard lifecycle == .serving else { return false }
            lifecycle = .shuttingDown
            return true
        }
        if !first { return false }
        let grace = config["rpc-shutdown-grace"]?.floatValue ?? 30
        logger.debug("Shutting down RPC server on port \(port); stop accepting new requests")
        core.beginShutdown(grace: grace)
        return true
    }

    private func finishShutdown() {
        logger.debug("Shutting down all managers")
        for d in descriptors where !d.isProxy { d.manager?.shutdown() }
        core.wait()
        proxies.close()
        for c in monitor.withLock({ clients }) { c.close() }
        logger.info("RPC server shut down on port \(port)")
    }

    private func markFinished() {
        removeSignals()
        logs.close()
        monitor.mutateAndNotify { lifecycle = .finished }
    }

    // MARK: srv.info

    /// The services named (empty: all). Unknown names → ERROR_ITEM_UNKNOWN unless
    /// `ignore_unknown`.
    public func info(_ request: RpcFilter) throws -> RpcMultiServiceInfo {
        var out = RpcMultiServiceInfo()
        if request.names.isEmpty {
            out.items = descriptors.map(serviceInfo)
            return out
        }
        for n in request.names {
            guard let d = descriptors.first(where: { $0.name == n }) else {
                if request.ignoreUnknown { continue }
                // grpc-helper's text (it names none)
                throw RpcException("At least one of the required service names is unknown", code: .errorItemUnknown)
            }
            out.items.append(serviceInfo(d))
        }
        return out
    }

    /// A service's info; a proxied one's with its backend (port 0 while none is registered)
    /// and the version the backend registered.
    private func serviceInfo(_ d: RpcServiceDescriptor) -> RpcServiceInfo {
        var i = d.info
        if d.isProxy {
            if let v = proxies.version(d.name) { i.version = v }
            if let t = proxies.target(d.name) {
                i.proxyHost = t.host
                i.proxyPort = UInt32(t.port)
            }
        }
        return i
    }

    // MARK: srv.proxy_register / proxy_forget

    /// grpc-helper's checks of the names: none or an empty one → ERROR_PARAM_MISSING, an
    /// unknown one → ERROR_ITEM_UNKNOWN, one not proxied → ERROR_PARAM_INVALID.
    private func checkProxyNames(_ names: [String]) throws {
        if names.isEmpty || names.contains(where: \.isEmpty) {
            throw RpcException("Missing input name in request", code: .errorParamMissing)
        }
        let known = Dictionary(descriptors.map { ($0.name, $0) }, uniquingKeysWith: { _, b in b })
        if names.contains(where: { known[$0] == nil }) {
            throw RpcException("At least one of the required service names is unknown", code: .errorItemUnknown)
        }
        if names.contains(where: { !(known[$0]!.isProxy) }) {
            throw RpcException("At least one of the required services is not a proxy", code: .errorParamInvalid)
        }
    }

    /// srv.proxy_register: the backend of the named proxied services (persisted in
    /// <workspace>/proxy.json); with events, an RPC_PROXY_REGISTER event.
    public func proxyRegister(_ request: RpcProxyRegisterRequest) throws -> RpcResultStatus {
        try checkProxyNames(request.names)
        if request.version.isEmpty || request.port == 0 {
            throw RpcException("Missing input parameter in request (one of version or port)", code: .errorParamMissing)
        }
        proxies.register(request.names, ProxyTarget(host: request.host, port: Int(request.port), version: request.version))
        logger.info("Proxy registered for \(request.names.joined(separator: ",")): \(request.host):\(request.port) (\(request.version))")
        if events != nil {
            try sendEvent(RpcEvent(name: "RPC_PROXY_REGISTER", orderedProperties: [
                ("names", request.names.joined(separator: ",")), ("version", request.version),
                ("port", String(request.port)), ("host", request.host)]))
        }
        return RpcResultStatus()
    }

    /// srv.proxy_forget: the named proxied services have no backend any more; with events,
    /// an RPC_PROXY_FORGET event.
    public func proxyForget(_ request: RpcFilter) throws -> RpcResultStatus {
        try checkProxyNames(request.names)
        proxies.forget(request.names)
        logger.info("Proxy forgotten for \(request.names.joined(separator: ","))")
        if events != nil {
            try sendEvent(RpcEvent(name: "RPC_PROXY_FORGET", orderedProperties: [("names", request.names.joined(separator: ","))]))
        }
        return RpcResultStatus()
    }

    // MARK: calls

    private func handler(_ d: RpcServiceDescriptor, _ m: RpcMethod) -> ServerHandler {
        if d.isProxy {
            // Forwarded to the registered backend on the caller's connection's event loop
            // (no worker thread, no task: see ProxiedCall).
            let clientTimeout = config["rpc-client-timeout"]?.floatValue ?? 60
            let log = logger
            return .eventLoop { [weak self] call in
                guard let self = self else { throw RPCError(.unavailable, "server gone") }
                guard let id = try self.prelude(d, call, log, onLoop: true) else { return }  // answered
                call.whenEnded { [weak self] in self?.epilog(id) }
                ProxiedCall(server: self, d, m, call, clientTimeout: clientTimeout, log: log).start()
            }
        }
        return wrapped(d, m)
    }

    /// The core handler of a managed method: version check, pending call, errors as results.
    private func wrapped(_ d: RpcServiceDescriptor, _ m: RpcMethod) -> ServerHandler {
        guard let body = m.body else {
            return .blocking { _ in throw RPCError(.unimplemented, "Method not implemented!") }
        }
        let log = d.manager?.logger ?? logger
        switch body {
        case .blocking(let run):
            return .blocking { [weak self] call in
                guard let self = self else { throw RPCError(.unavailable, "server gone") }
                guard let id = try self.prelude(d, call, log) else { return }
                defer { self.epilog(id) }
                do { try run(call) } catch { try self.report(error, call, log) }
            }
        case .async(let run):
            return .async { [weak self] call in
                guard let self = self else { throw RPCError(.unavailable, "server gone") }
                guard let id = try self.prelude(d, call, log) else { return }
                defer { self.epilog(id) }
                do { try await run(call) } catch { try self.report(error, call, log) }
            }
        }
    }

    /// Records the call; checks the client's API version (an error response, as
    /// grpc-helper, when out of range: then nil, the call is answered). Returns the
    /// pending call's id.
    func prelude(_ d: RpcServiceDescriptor, _ call: ServerCall, _ log: Logger, onLoop: Bool = false) throws -> UInt64? {
        let md = call.requestMetadata
        let who = RpcClientIdentity(client: md.first("client") ?? "", user: md.first("user") ?? "",
                                    host: md.first("host") ?? "", ip: md.first("ip") ?? "")
        let id: UInt64 = monitor.withLock {
            nextCallID += 1
            pending[nextCallID] = RpcPendingCall(id: nextCallID, method: call.method, peer: call.peer, client: who,
                                                 start: Date(), thread: RpcLogs.currentThreadName())
            return nextCallID
        }
        let line = { "<RPC> << \(call.method) (client \"\(who.client)\" \(who.user)@\(who.host)/\(who.ip))" }
        if onLoop { RpcServer.logOffLoop(log, .debug, line()) } else { log.debug("\(line())") }
        if let text = md.first("api_version"), !text.isEmpty {  // empty: no version (grpc-helper)
            do {
                try RpcServer.checkVersion(text, d)
            } catch {
                epilog(id)
                if onLoop { RpcServer.reportInline(error, call, log) } else { try report(error, call, log) }
                return nil
            }
        }
        return id
    }

    /// Records of calls served on an event loop are written from this queue (in order): a
    /// host's log handlers (Python's logging) never run on an event loop.
    private static let loopLogQueue = DispatchQueue(label: "gh-rpc-loop-log")

    /// Logs `message` at `level` from `loopLogQueue` if `log` takes that level (a cached
    /// answer of the level source: no host call, as a rule).
    static func logOffLoop(_ log: Logger, _ level: Logger.Level, _ message: @autoclosure () -> String,
                           file: String = #fileID, function: String = #function, line: UInt = #line) {
        guard log.logLevel <= level else { return }
        let text = message()
        loopLogQueue.async { log.log(level: level, "\(text)", file: file, function: function, line: line) }
    }

    static func checkVersion(_ text: String, _ d: RpcServiceDescriptor) throws {
        // Digits only (what clients send): read at once; else as int() would, spaces trimmed
        // (Foundation's trimming costs ~5 % of a proxied call's CPU when done every time).
        guard let v = Int64(text) ?? Int64(text.trimmingCharacters(in: .whitespaces)) else {
            // grpc-helper reads it with int(): a ValueError, reported as ERROR.
            throw RpcException("Invalid api_version metadata: \"\(text)\"", code: .error)
        }
        if v > Int64(d.currentApiVersion) {
            throw RpcException("Server current API version (\(d.currentApiVersion)) is too old for client API version (\(v))",
                               code: .errorApiServerTooOld)
        }
        if v < Int64(d.supportedApiVersion) {
            throw RpcException("Client API version (\(v)) is too old for server supported API version (\(d.supportedApiVersion))",
                               code: .errorApiClientTooOld)
        }
    }

    func epilog(_ id: UInt64) {
        _ = monitor.withLock { pending.removeValue(forKey: id) }
    }

    /// An error of a manager: a gRPC status stays one (RPCError); anything else becomes
    /// the method's response with only `r` set (code, message, stack), status OK, logged
    /// with its stack. Not answered again when the call already ended or (unary
    /// responses) already has its response.
    private func report(_ error: Error, _ call: ServerCall, _ log: Logger) throws {
        if let e = error as? RPCError { throw e }
        let result = RpcServer.result(for: error)
        log.error("Exception occurred: \(result.msg)\n\(result.stack)")
        if call.isFinishQueued || (!call.cardinality.streamsResponses && call.responseCount > 0) { return }
        try? call.sendMessage(try encodedFailure(result))
    }

    /// `report` for a call whose handler runs on the event loop: answers without waiting,
    /// then finishes the call; the record is written off the loop.
    static func reportInline(_ error: Error, _ call: ServerCall, _ log: Logger) {
        if let e = error as? RPCError {
            try? call.finish(e.status, trailers: e.trailers.isEmpty ? nil : e.trailers)
            return
        }
        let result = RpcServer.result(for: error)
        RpcServer.logOffLoop(log, .error, "Exception occurred: \(result.msg)\n\(result.stack)")
        if !call.isFinishQueued && (call.cardinality.streamsResponses || call.responseCount == 0),
           let bytes = try? encodedFailure(result) {
            _ = try? call.sendNonBlocking(bytes)
        }
        try? call.finish(.ok)
    }

    /// The Result of an error: an RpcException's code and message (ERROR for any other
    /// error), with a stack text.
    static func result(for error: Error) -> RpcResult {
        let stack = (["\(String(reflecting: error))"] + Thread.callStackSymbols.dropFirst(2)).joined(separator: "\n")
        if let e = error as? RpcException { return e.result(stack: stack) }
        return RpcResult(.error, "\(error)", stack: stack)
    }
}
