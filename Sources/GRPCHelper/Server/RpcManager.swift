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
