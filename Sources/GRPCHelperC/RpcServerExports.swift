// The managed server's C ABI (grpchelper/rpc.h): services, servers and their options,
// as `@c @implementation` functions, thin translations onto GRPCHelper's RpcServer and
// RpcManager.
import NIOConcurrencyHelpers
import Foundation
import GRPCHelper
import GRPCHelperCore
import SwiftProtobuf
import CGRPCHelper
#if canImport(Glibc)
import Glibc
#endif


/// User data freed once nothing uses it any more (the service box and every server).
// @unchecked Sendable: immutable; the raw pointer is the C caller's, freed once in deinit.
final class UserData: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer?
    let free: gh_free_fn?
    init(_ raw: UnsafeMutableRawPointer?, _ free: gh_free_fn?) { self.raw = raw; self.free = free }
    deinit { free?(raw) }
}

// MARK: - gh_rpc_error (per thread)

private final class ErrorSlot {
    var message: String?
    var stack: String?
}

private let errorSlotKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { p in if let p = p { Unmanaged<ErrorSlot>.fromOpaque(p).release() } }
    return key
}()

private func errorSlot() -> ErrorSlot {
    if let p = pthread_getspecific(errorSlotKey) { return Unmanaged<ErrorSlot>.fromOpaque(p).takeUnretainedValue() }
    let slot = ErrorSlot()
    pthread_setspecific(errorSlotKey, Unmanaged.passRetained(slot).toOpaque())
    return slot
}

@c @implementation
public func gh_rpc_error(_ message: UnsafePointer<CChar>?, _ stack: UnsafePointer<CChar>?) {
    let slot = errorSlot()
    slot.message = message.map { String(cString: $0) }
    slot.stack = stack.map { String(cString: $0) }
}

/// The error a handler or hook returned: its code with the message and stack it recorded.
private func returnedError(_ rc: Int32, _ what: String) -> RpcException {
    let slot = errorSlot()
    defer { slot.message = nil; slot.stack = nil }
    let code: RpcResultCode = rc < 0 ? .error : (RpcResultCode(rawValue: Int(rc)) ?? .error)
    return RpcException(slot.message ?? "\(what) failed with result code \(rc)", code: code, stack: slot.stack)
}

private func clearError() {
    let slot = errorSlot()
    slot.message = nil
    slot.stack = nil
}

// MARK: - services

final class RpcServiceBox {
    let name: String
    let serviceName: String
    let version: String
    let supported: UInt32
    let current: UInt32
    var methods: [(name: String, cardinality: RPCCardinality, fn: gh_rpc_handler_fn?, data: UserData)] = []
    var loggerName: String?
    var load: gh_rpc_load_fn?
    var shutdown: gh_rpc_shutdown_fn?
    var managerData: UserData?
    var isProxy = false
    /// gh_rpc_service_set_proxied: the manager registers with a main server.
    var proxied: (names: [String], version: String, currentHost: Bool)?
    var proxyStubs: [String: (serviceName: String, apiVersion: UInt32?)] = [:]
    /// gh_rpc_service_add_descriptor_set / _file_descriptor: for the server's reflection.
    var fileDescriptors: [Google_Protobuf_FileDescriptorProto] = []
    init(name: String, serviceName: String, version: String, supported: UInt32, current: UInt32) {
        self.name = name
        self.serviceName = serviceName
        self.version = version
        self.supported = supported
        self.current = current
    }
}

@c @implementation
public func gh_rpc_service_new(_ name: UnsafePointer<CChar>?, _ serviceName: UnsafePointer<CChar>?,
                               _ version: UnsafePointer<CChar>?, _ supported: UInt32, _ current: UInt32,
                               _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        let n = try string(name, "name"), s = try string(serviceName, "service_name")
        guard !n.isEmpty, !s.isEmpty, !s.contains("/") else {
            throw ExportError(GH_ERR_INVALID_ARGUMENT, "invalid service name \"\(n)\" / \"\(s)\"")
        }
        guard supported <= current else {
            throw ExportError(GH_ERR_INVALID_ARGUMENT, "supported API version \(supported) above current \(current)")
        }
        out.pointee = makeHandle(RpcServiceBox(name: n, serviceName: s, version: try string(version, "version"),
                                               supported: supported, current: current))
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_service_add_method(_ s: OpaquePointer?, _ method: UnsafePointer<CChar>?, _ cardinality: gh_cardinality,
                                      _ fn: gh_rpc_handler_fn?, _ userData: UnsafeMutableRawPointer?,
                                      _ freeUserData: gh_free_fn?) -> Int32 {
    let data = UserData(userData, freeUserData)
    return boundary {
        let box = try borrow(s, RpcServiceBox.self, "service")
        let m = try string(method, "method")
        guard !m.isEmpty, !m.contains("/") else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "invalid method name \"\(m)\"") }
        guard let card = RPCCardinality(rawValue: Int(cardinality.rawValue)) else {
            throw ExportError(GH_ERR_INVALID_ARGUMENT, "invalid cardinality \(cardinality.rawValue)")
        }
        guard !box.methods.contains(where: { $0.name == m }) else {
            throw ExportError(GH_ERR_INVALID_ARGUMENT, "method \(m) added twice")
        }
        box.methods.append((m, card, fn, data))
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_service_set_manager(_ s: OpaquePointer?, _ loggerName: UnsafePointer<CChar>?, _ load: gh_rpc_load_fn?,
                                       _ shutdown: gh_rpc_shutdown_fn?, _ userData: UnsafeMutableRawPointer?,
                                       _ freeUserData: gh_free_fn?) -> Int32 {
    let data = UserData(userData, freeUserData)
    return boundary {
        let box = try borrow(s, RpcServiceBox.self, "service")
        box.loggerName = loggerName.map { String(cString: $0) }
        box.load = load
        box.shutdown = shutdown
        box.managerData = data
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_service_set_proxy(_ s: OpaquePointer?, _ isProxy: Int32) -> Int32 {
    boundary {
        try borrow(s, RpcServiceBox.self, "service").isProxy = isProxy != 0
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_service_set_proxied(_ s: OpaquePointer?, _ names: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int,
                                       _ version: UnsafePointer<CChar>?, _ useCurrentHost: Int32) -> Int32 {
    boundary {
        let box = try borrow(s, RpcServiceBox.self, "service")
        var list: [String] = []
        if count > 0 {
            guard let names = names else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "names is NULL with a non-zero count") }
            for i in 0..<count { list.append(try string(names[i], "name \(i)")) }
        }
        box.proxied = (list, try string(version, "version"), useCurrentHost != 0)
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_service_add_proxy_stub(_ s: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                          _ serviceName: UnsafePointer<CChar>?, _ apiVersion: UInt32) -> Int32 {
    boundary {
        let box = try borrow(s, RpcServiceBox.self, "service")
        box.proxyStubs[try string(name, "name")] = (try string(serviceName, "service_name"), apiVersion == 0 ? nil : apiVersion)
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_server_proxy_client(_ s: OpaquePointer?, _ service: UnsafePointer<CChar>?) -> OpaquePointer? {
    do {
        let box = try borrow(s, RpcServerBox.self, "server")
        let name = try string(service, "service")
        guard let server = box.server else {
            throw ExportError(GH_ERR_INVALID_STATE, "the server is not built yet")
        }
        guard let d = server.descriptors.first(where: { $0.name == name }) else {
            throw ExportError(GH_ERR_INVALID_ARGUMENT, "unknown service \"\(name)\"")
        }
        guard let m = d.manager as? RpcProxiedManager, let c = m.proxyClient else {
            throw ExportError(GH_ERR_INVALID_STATE, "service \"\(name)\" is not registered with a main server")
        }
        let clientBox = RpcClientBox(client: c)
        box.keep(clientBox)
        return OpaquePointer(Unmanaged.passUnretained(clientBox).toOpaque())
    } catch {
        _ = errorCode(error)
        return nil
    }
}

@c @implementation
public func gh_rpc_service_free(_ s: OpaquePointer?) {
    if let s = s { release(s, RpcServiceBox.self) }
}

// MARK: - servers

// @unchecked Sendable: mutable state guarded by `lock`; clientBoxes written during load and free only.
final class RpcServerBox: @unchecked Sendable {
    private let lock = NIOLock()
    private var _server: RpcServer?
    private var _configBox: ConfigSetBox?
    private var _logsBox: LogsBox?
    /// The caller's item handles (gh_rpc_server_config gives them back).
    var itemBoxes: [ConfigBox] = []
    /// Auto-client handles given to load hooks (valid until the server is freed).
    var clientBoxes: [RpcClientBox] = []
    /// gh_rpc_server_client's handle, made on first use.
    private var _autoClientBox: RpcClientBox?

    /// The server's auto-client handle (made once).
    func autoClientBox() throws -> RpcClientBox {
        try lock.withLock {
            if let b = _autoClientBox { return b }
            guard let s = _server else { throw ExportError(GH_ERR_INVALID_STATE, "the server is not built") }
            let b = RpcClientBox(client: try s.autoClient)
            _autoClientBox = b
            return b
        }
    }

    var server: RpcServer? { lock.withLock { _server } }
    var configBox: ConfigSetBox? { lock.withLock { _configBox } }

    /// Keeps a client handle given out (valid until the server is freed).
    func keep(_ clientBox: RpcClientBox) { lock.withLock { clientBoxes.append(clientBox) } }
    var logsBox: LogsBox? { lock.withLock { _logsBox } }

    /// Binds the built server (from its first load hook, or once built): the config set
    /// and logs handles are made once and stay valid until the box is freed.
    func bind(_ server: RpcServer) {
        lock.withLock {
            if _server == nil { _server = server }
            if _configBox == nil {
                var byName: [String: ConfigBox] = [:]
                for b in itemBoxes { byName[b.config.name] = b }
                for c in server.config.staticItems + server.config.userItems where byName[c.name] == nil {
                    byName[c.name] = ConfigBox(c)
                }
                _configBox = ConfigSetBox(set: server.config, items: byName)
            }
            if _logsBox == nil { _logsBox = LogsBox(server.logs) }
        }
    }

    func unbind() { lock.withLock { _server = nil } }

    /// Unbinds the server, handing over the box's reference (retained) without making
    /// another: for `RpcServer.release`, whose thread drops it last.
    func takeServer() -> Unmanaged<RpcServer>? {
        lock.withLock {
            guard let s = _server else { return nil }
            _server = nil
            return Unmanaged.passRetained(s)
        }
    }

    func require() throws -> RpcServer {
        guard let s = server else { throw ExportError(GH_ERR_INVALID_STATE, "the server is not built yet") }
        return s
    }
}

/// A C service's manager: its logger name and its hooks, called with handles. The hooks'
/// user data lives as long as the manager (also without hooks: it is freed with it).
private func cManager(_ service: RpcServiceBox, _ box: RpcServerBox, _ handle: OpaquePointer) -> RpcManager {
    let data = service.managerData
    let load = service.load, shutdown = service.shutdown
    let onLoad: (RpcManager) throws -> Void = { manager in
        guard let load = load else { return }
        if let s = manager.server { box.bind(s) }
        // The auto-client's handle stays valid until the server is freed.
        let clientBox = RpcClientBox(client: manager.client)
        box.keep(clientBox)
        clearError()
        let rc = load(handle, OpaquePointer(Unmanaged.passUnretained(clientBox).toOpaque()), data?.raw)
        if rc != 0 { throw returnedError(rc, "\(service.name) load hook") }
    }
    if let p = service.proxied {
        return RpcProxiedHookManager(
            loggerName: service.loggerName ?? service.name, proxiedServices: p.names, proxiedVersion: p.version,
            proxyStubs: service.proxyStubs, proxyUseCurrentHost: p.currentHost,
            load: { manager in
                if let s = manager.server { box.bind(s) }
                try onLoad(manager)
            },
            shutdown: { shutdown?(data?.raw) })
    }
    return RpcHookManager(loggerName: service.loggerName ?? service.name, load: { try onLoad($0) },
                          shutdown: { shutdown?(data?.raw) })
}

/// A C method handler as a managed method body.
private func cMethod(_ name: String, _ card: RPCCardinality, _ fn: gh_rpc_handler_fn?, _ data: UserData) -> RpcMethod {
    guard let fn = fn else { return .unimplemented(name, card) }
    return RpcMethod(name: name, cardinality: card, body: .blocking { call in
        let h = makeHandle(ServerCallBox(call))
        clearError()
        let rc = fn(h, data.raw)
        release(h, ServerCallBox.self)
        if rc != 0 { throw returnedError(rc, name) }
    })
}

/// The arguments of a managed server (gh_rpc_server_options; gh_rpc_server_new's short
/// form fills one): the handles given are kept until the options are freed.
final class RpcServerOptionsBox {
    var port: Int32 = 0
    var services: [RpcServiceBox] = []
    var folders: FoldersBox?
    var cli: [(name: String, value: String)] = []
    var staticItems: [ConfigBox] = []
    var userItems: [ConfigBox] = []
    var flags: Int32 = 0

    func setPort(_ p: Int32) throws {
        guard (0...65535).contains(p) else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "invalid port \(p)") }
        port = p
    }

    /// Builds and starts the server (its load hooks run here); the handle on success.
    func makeServer() throws -> OpaquePointer {
        let box = RpcServerBox()
        box.itemBoxes = staticItems + userItems
        let handle = makeHandle(box)
        let descriptors = services.map { sb in
            var d = RpcServiceDescriptor(name: sb.name, serviceName: sb.serviceName, version: sb.version,
                                         supportedApiVersion: sb.supported, currentApiVersion: sb.current,
                                         manager: sb.isProxy ? nil : cManager(sb, box, handle),
                                         methods: sb.methods.map { cMethod($0.name, $0.cardinality, $0.fn, $0.data) },
                                         isProxy: sb.isProxy)
            d.fileDescriptors = sb.fileDescriptors
            return d
        }
        let pairs = Dictionary(cli, uniquingKeysWith: { _, last in last })
        let server: RpcServer
        do {
            server = try RpcServer(port: Int(port), descriptors: descriptors, folders: folders?.folders ?? Folders(),
                                   cliConfig: pairs, staticItems: staticItems.map(\.config),
                                   userItems: userItems.map(\.config),
                                   withEvents: flags & GH_RPC_WITH_EVENTS != 0,
                                   withDebugSignal: flags & GH_RPC_DEBUG_SIGNAL != 0,
                                   levelSource: HostLevels.shared.current)
        } catch {
            // A failed load hook bound the server: break box → server → managers → box.
            box.unbind()
            box.clientBoxes = []
            release(handle, RpcServerBox.self)
            throw error
        }
        box.bind(server)
        return handle
    }
}

@c @implementation
public func gh_rpc_server_new(_ port: Int32, _ services: UnsafePointer<OpaquePointer?>?, _ count: Int,
                              _ folders: OpaquePointer?, _ cli: UnsafePointer<UnsafePointer<CChar>?>?, _ cliCount: Int,
                              _ staticItems: UnsafePointer<OpaquePointer?>?, _ staticCount: Int,
                              _ userItems: UnsafePointer<OpaquePointer?>?, _ userCount: Int, _ flags: Int32,
                              _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        let options = RpcServerOptionsBox()
        try options.setPort(port)
        if count > 0 {
            guard let services = services else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "services is NULL") }
            options.services = try (0..<count).map { try borrow(services[$0], RpcServiceBox.self, "services[\($0)]") }
        }
        options.folders = folders == nil ? nil : try borrow(folders, FoldersBox.self, "folders")
        options.cli = try cliPairs(cli, cliCount)
        options.staticItems = try configBoxes(staticItems, staticCount, "static_items")
        options.userItems = try configBoxes(userItems, userCount, "user_items")
        options.flags = flags
        out.pointee = try options.makeServer()
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_server_options_new(_ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        out.pointee = makeHandle(RpcServerOptionsBox())
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_server_options_free(_ o: OpaquePointer?) {
    if let o = o { release(o, RpcServerOptionsBox.self) }
}

@c @implementation
public func gh_rpc_server_options_set_port(_ o: OpaquePointer?, _ port: Int32) -> Int32 {
    boundary {
        try borrow(o, RpcServerOptionsBox.self, "options").setPort(port)
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_server_options_add_service(_ o: OpaquePointer?, _ s: OpaquePointer?) -> Int32 {
    boundary {
        let options = try borrow(o, RpcServerOptionsBox.self, "options")
        options.services.append(try borrow(s, RpcServiceBox.self, "service"))
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_server_options_set_folders(_ o: OpaquePointer?, _ f: OpaquePointer?) -> Int32 {
    boundary {
        let options = try borrow(o, RpcServerOptionsBox.self, "options")
        options.folders = f == nil ? nil : try borrow(f, FoldersBox.self, "folders")
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_server_options_add_cli_config(_ o: OpaquePointer?, _ nameValue: UnsafePointer<CChar>?) -> Int32 {
    boundary {
        let options = try borrow(o, RpcServerOptionsBox.self, "options")
        var one = [nameValue]
        options.cli += try cliPairs(&one, 1)
        return GH_OK
    }
}

/// Appends `item` to the options' static or user items.
private func addItem(_ o: OpaquePointer?, _ item: OpaquePointer?,
                     _ list: ReferenceWritableKeyPath<RpcServerOptionsBox, [ConfigBox]>) -> Int32 {
    boundary {
        let options = try borrow(o, RpcServerOptionsBox.self, "options")
        options[keyPath: list].append(try borrow(item, ConfigBox.self, "item"))
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_server_options_add_static_item(_ o: OpaquePointer?, _ item: OpaquePointer?) -> Int32 {
    addItem(o, item, \.staticItems)
}

@c @implementation
public func gh_rpc_server_options_add_user_item(_ o: OpaquePointer?, _ item: OpaquePointer?) -> Int32 {
    addItem(o, item, \.userItems)
}

@c @implementation
public func gh_rpc_server_options_set_flags(_ o: OpaquePointer?, _ flags: Int32) -> Int32 {
    boundary {
        try borrow(o, RpcServerOptionsBox.self, "options").flags = flags
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_server_new_with_options(_ o: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        let options = try borrow(o, RpcServerOptionsBox.self, "options")
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        out.pointee = try options.makeServer()
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_server_port(_ s: OpaquePointer?) -> Int32 {
    guard let b = try? borrow(s, RpcServerBox.self, "server"), let srv = b.server else { return 0 }
    return Int32(srv.port)
}

@c @implementation
public func gh_rpc_server_config(_ s: OpaquePointer?) -> OpaquePointer? {
    guard let b = try? borrow(s, RpcServerBox.self, "server"), let c = b.configBox else { return nil }
    return OpaquePointer(Unmanaged.passUnretained(c).toOpaque())
}

@c @implementation
public func gh_rpc_server_logs(_ s: OpaquePointer?) -> OpaquePointer? {
    guard let b = try? borrow(s, RpcServerBox.self, "server"), let l = b.logsBox else { return nil }
    return OpaquePointer(Unmanaged.passUnretained(l).toOpaque())
}

@c @implementation
public func gh_rpc_server_send_event(_ s: OpaquePointer?, _ event: UnsafePointer<UInt8>?, _ len: Int) -> Int32 {
    boundary {
        guard let server = try borrow(s, RpcServerBox.self, "server").server else {
            throw ExportError(GH_ERR_INVALID_STATE, "the server is not built")
        }
        try server.sendEvent(try decode(RpcEvent.self, event, len))
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_server_client(_ s: OpaquePointer?) -> OpaquePointer? {
    do {
        let box = try borrow(s, RpcServerBox.self, "server").autoClientBox()
        return OpaquePointer(Unmanaged.passUnretained(box).toOpaque())
    } catch {
        _ = errorCode(error)   // sets gh_last_error
        return nil
    }
}

@c @implementation
public func gh_rpc_server_is_running(_ s: OpaquePointer?) -> Int32 {
    guard let b = try? borrow(s, RpcServerBox.self, "server"), let srv = b.server else { return 0 }
    return srv.isRunning ? 1 : 0
}

@c @implementation
public func gh_rpc_server_shutdown(_ s: OpaquePointer?) -> Int32 {
    boundary {
        try borrow(s, RpcServerBox.self, "server").require().shutdown()
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_server_begin_shutdown(_ s: OpaquePointer?) -> Int32 {
    boundary {
        try borrow(s, RpcServerBox.self, "server").require().beginShutdown()
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_server_wait_shutdown(_ s: OpaquePointer?, _ timeout: Double) -> Int32 {
    guard let b = try? borrow(s, RpcServerBox.self, "server"), let srv = b.server else { return 0 }
    return srv.waitShutdown(timeout: timeout < 0 ? nil : timeout) ? 1 : 0
}

@c @implementation
public func gh_rpc_server_info(_ s: OpaquePointer?, _ req: UnsafePointer<UInt8>?, _ reqLen: Int,
                               _ resp: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                               _ respLen: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let srv = try borrow(s, RpcServerBox.self, "server").require()
        return try handOver(try srv.info(try decode(RpcFilter.self, req, reqLen)).serializedBytes(), resp, respLen)
    }
}

@c @implementation
public func gh_rpc_server_handle_exit_signals(_ s: OpaquePointer?) -> Int32 {
    boundary {
        try borrow(s, RpcServerBox.self, "server").require().handleExitSignals()
        return GH_OK
    }
}


@c @implementation
public func gh_rpc_server_set_dump_fn(_ s: OpaquePointer?, _ fn: gh_rpc_dump_fn?, _ userData: UnsafeMutableRawPointer?,
                                      _ freeUserData: gh_free_fn?) -> Int32 {
    let data = UserData(userData, freeUserData)
    return boundary {
        let srv = try borrow(s, RpcServerBox.self, "server").require()
        guard let fn = fn else {
            srv.dumpExtras = nil
            return GH_OK
        }
        srv.dumpExtras = {
            guard let p = fn(data.raw) else { return "" }
            defer { free(p) }
            return String(cString: p)
        }
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_server_free(_ s: OpaquePointer?) {
    guard let s = s else { return }
    if let b = try? borrow(s, RpcServerBox.self, "server"), let srv = b.server {
        srv.shutdown()
        b.unbind()
        b.clientBoxes = []
    }
    release(s, RpcServerBox.self)
}

@c @implementation
public func gh_rpc_server_release(_ s: OpaquePointer?) {
    guard let s = s else { return }
    let handle = Unmanaged<RpcServerBox>.fromOpaque(UnsafeRawPointer(s))
    guard let server = handle.takeUnretainedValue().takeServer() else {
        handle.release()
        return
    }
    // On the releasing thread, once the shutdown has finished: the auto-client handles
    // (usable by hooks and handlers until then) and the caller's handle go, then the
    // server, and with it the user data.
    RpcServer.release(server) {
        handle.takeUnretainedValue().clientBoxes = []
        handle.release()
    }
}
