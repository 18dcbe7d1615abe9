// The base of a managed service's implementation (grpc-helper's RpcManager): lifecycle
// hooks, a logger with its own rolling file, a reentrant lock, the server's auto-client
// and folders.
import NIOConcurrencyHelpers
import Foundation
import Logging

// @unchecked Sendable: its state is guarded by `state`; subclasses guard theirs (e.g. with `lock`).
open class RpcManager: @unchecked Sendable {
    /// Protects the manager's own state (reentrant).
    public let lock = NSRecursiveLock()
    private let state = NIOLock()
    private var _logger: Logger
    private var _client: RpcClient?
    private var _folders = Folders()
    private weak var _server: RpcServer?

    public init() {
        _logger = Logger(label: "unattached") { _ in SwiftLogNoOpLogHandler() }
    }

    /// The name of the manager's logger and log file (<logs>/<name>/<name>.log): its
    /// type's name, as grpc-helper's.
    open var loggerName: String { String(describing: type(of: self)) }

    /// Its logger: writes to its own rolling file once the server attached it.
    public var logger: Logger { state.withLock { _logger } }

    /// The server's auto-client: stubs of every service the server serves (set before
    /// `load()`).
    public var client: RpcClient? { state.withLock { _client } }

    /// The server's folders.
    public var folders: Folders { state.withLock { _folders } }

    /// The server that serves it (set before `load()`).
    public var server: RpcServer? { state.withLock { _server } }

    /// Called once every service is served, with `client` ready: initializations that
    /// need the server (grpc-helper's `_load`). A thrown error stops the server and is
    /// thrown to the code that created it.
    open func load() throws {}

    /// Called when the server shuts down, while calls may still be pending: stop
    /// long-running work (grpc-helper's `_shutdown`).
    open func shutdown() {}

    func attach(logs: RpcLogs, folders: Folders) {
        let l = logs.logger(loggerName)
        state.withLock {
            _logger = l
            _folders = folders
        }
    }

    func attach(client: RpcClient?, server: RpcServer) {
        state.withLock {
            _client = client
            _server = server
        }
    }
}

/// A manager made of closures, for hosts whose managers are not Swift subclasses (the C
/// ABI's services, bindings): a logger name and load/shutdown hooks, each optional. The
/// load hook gets the manager (its `client`, `server`, `logger` and `folders` are set).
// @unchecked Sendable (restated, as Swift requires): its own state is immutable; the
// hooks run where RpcServer calls them (load: once, on the creating thread).
public final class RpcHookManager: RpcManager, @unchecked Sendable {
    private let name: String
    private let onLoad: ((RpcHookManager) throws -> Void)?
    private let onShutdown: (() -> Void)?

    public init(loggerName: String, load: ((RpcHookManager) throws -> Void)? = nil,
                shutdown: (() -> Void)? = nil) {
        name = loggerName
        onLoad = load
        onShutdown = shutdown
        super.init()
    }

    public override var loggerName: String { name }
    public override func load() throws { try onLoad?(self) }
    public override func shutdown() { onShutdown?() }
}

/// A manager of services that a main server proxies (grpc-helper's RpcProxiedManager): at
/// `load()` it registers its server's port for `proxiedServices` with the main server at
/// `rpc-main-host`:`rpc-main-port` (srv.proxy_register, retried within
/// `rpc-client-timeout`; a failure stops its server, which then fails to start with that
/// error, ERROR_RPC for an unreachable main server), and keeps `proxyClient` (stubs srv,
/// events and `proxyStubs`, on the main server); at `shutdown()` it forgets them
/// (srv.proxy_forget). A subclass that overrides `load()` or `shutdown()` calls super's.
// @unchecked Sendable: `_proxyClient` guarded by `proxyState`; the rest as RpcManager's.
open class RpcProxiedManager: RpcManager, @unchecked Sendable {
    private let proxyState = NIOLock()
    private var _proxyClient: RpcClient?
    private var mainServer: (host: String, port: Int)?

    public override init() { super.init() }

    /// The names of the services the main server proxies to this one (grpc-helper's
    /// `_proxied_services`).
    open var proxiedServices: [String] { [] }

    /// The version the main server shows for them ("title:version"; `_proxied_version`).
    open var proxiedVersion: String { "" }

    /// More stubs of the proxy client (`_proxy_stubs`), by name.
    open var proxyStubs: [String: (serviceName: String, apiVersion: UInt32?)] { [:] }

    /// Whether to register this host's address toward the main server (`_proxy_use_current_host`)
    /// instead of `rpc-main-host` (the default: backend and main server on one host).
    open var proxyUseCurrentHost: Bool { false }

    /// A client of the main server (set by a successful registration).
    public var proxyClient: RpcClient? { proxyState.withLock { _proxyClient } }

    open override func load() throws {
        try registerWithMainServer()
    }

    open override func shutdown() {
        forgetFromMainServer()
    }

    /// srv.proxy_register on the main server (what `load()` does).
    public func registerWithMainServer() throws {
        guard let server = server else {
            throw RpcException("the manager is not attached to a server", code: .errorStateUnexpected)
        }
        let mainHost = server.config["rpc-main-host"]?.stringValue ?? "localhost"
        let mainPort = server.config["rpc-main-port"]?.intValue ?? 54321
        let timeout = server.config["rpc-client-timeout"]?.floatValue ?? 60
        var stubs: [String: (serviceName: String, apiVersion: UInt32?)] = [
            "srv": ("RpcServerService", UInt32(RpcServerApiVersion.serverApiCurrent.rawValue)),
            "events": ("EventService", UInt32(RpcEventApiVersion.eventApiCurrent.rawValue)),
        ]
        stubs.merge(proxyStubs) { _, b in b }
        let c = try RpcClient(host: mainHost, port: mainPort, timeout: timeout, name: "\(loggerName)-proxy",
                              logger: logger, stubs: stubs)
        var r = RpcProxyRegisterRequest()
        r.names = proxiedServices
        r.version = proxiedVersion
        r.host = proxyUseCurrentHost ? RpcClientIdentity.localAddress(toward: mainHost, port: mainPort) : mainHost
        r.port = UInt32(server.port)
        logger.info("Registering \(r.names.joined(separator: ",")) (\(r.version)) with the main server \(mainHost):\(mainPort)")
        _ = try c["srv"]!.call("proxy_register", r, as: RpcResultStatus.self)
        proxyState.withLock {
            _proxyClient = c
            mainServer = (mainHost, mainPort)
        }
    }

    /// srv.proxy_forget on the main server, if registered (what `shutdown()` does): one
    /// try; a failure is logged.
    public func forgetFromMainServer() {
        let registered: (client: RpcClient, host: String, port: Int)? = proxyState.withLock {
            defer { _proxyClient = nil; mainServer = nil }
            guard let c = _proxyClient, let m = mainServer else { return nil }
            return (c, m.host, m.port)
        }
        guard let (c, host, port) = registered else { return }
        var f = RpcFilter()
        f.names = proxiedServices
        do {
            // One try (a main server gone must not hold this one's shutdown for the
            // client timeout).
            let once = try RpcClient(host: host, port: port, timeout: nil,
                                     name: "\(loggerName)-proxy", logger: logger,
                                     stubs: ["srv": ("RpcServerService", 1)])
            defer { once.close() }
            _ = try once["srv"]!.call("proxy_forget", f, as: RpcResultStatus.self, timeout: 10)
        } catch {
            logger.error("Cannot forget \(f.names.joined(separator: ",")) on the main server: \(error)")
        }
        c.close()
    }
}

/// An RpcProxiedManager made of values and closures, for hosts whose managers are not
/// Swift subclasses (the C ABI's services): the proxied names, version, stubs and host
/// choice, and load/shutdown hooks (each optional). Load registers with the main server,
/// then runs the hook (which can use `proxyClient`); shutdown runs the hook, then forgets.
// @unchecked Sendable (restated): its own state is immutable.
public final class RpcProxiedHookManager: RpcProxiedManager, @unchecked Sendable {
    private let name: String
    private let names: [String]
    private let version: String
    private let stubs: [String: (serviceName: String, apiVersion: UInt32?)]
    private let currentHost: Bool
    private let onLoad: ((RpcProxiedHookManager) throws -> Void)?
    private let onShutdown: (() -> Void)?

    public init(loggerName: String, proxiedServices: [String], proxiedVersion: String,
                proxyStubs: [String: (serviceName: String, apiVersion: UInt32?)] = [:],
                proxyUseCurrentHost: Bool = false,
                load: ((RpcProxiedHookManager) throws -> Void)? = nil, shutdown: (() -> Void)? = nil) {
        name = loggerName
        names = proxiedServices
        version = proxiedVersion
        stubs = proxyStubs
        currentHost = proxyUseCurrentHost
        onLoad = load
        onShutdown = shutdown
        super.init()
    }

    public override var loggerName: String { name }
    public override var proxiedServices: [String] { names }
    public override var proxiedVersion: String { version }
    public override var proxyStubs: [String: (serviceName: String, apiVersion: UInt32?)] { stubs }
    public override var proxyUseCurrentHost: Bool { currentHost }

    public override func load() throws {
        try super.load()
        try onLoad?(self)
    }

    public override func shutdown() {
        onShutdown?()
        super.shutdown()
    }
}
