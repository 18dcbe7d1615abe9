// The managed server and client's C ABI (include/grpchelper.h, "Managed RPC server and
// client"): thin translations onto GRPCHelper's RpcServer, RpcManager and RpcClient.
import Foundation
import GRPCHelper
import GRPCHelperCore
import SwiftProtobuf
#if canImport(Glibc)
import Glibc
#endif

public typealias GHRpcHandlerFn = @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?) -> Int32
public typealias GHRpcLoadFn = @convention(c) (OpaquePointer?, OpaquePointer?, UnsafeMutableRawPointer?) -> Int32
public typealias GHRpcShutdownFn = @convention(c) (UnsafeMutableRawPointer?) -> Void

/// User data freed once nothing uses it any more (the service box and every server).
final class UserData: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer?
    let free: GHFreeFn?
    init(_ raw: UnsafeMutableRawPointer?, _ free: GHFreeFn?) { self.raw = raw; self.free = free }
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

@_cdecl("gh_rpc_error")
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
    var methods: [(name: String, cardinality: RPCCardinality, fn: GHRpcHandlerFn?, data: UserData)] = []
    var loggerName: String?
    var load: GHRpcLoadFn?
    var shutdown: GHRpcShutdownFn?
    var managerData: UserData?
    var isProxy = false
    init(name: String, serviceName: String, version: String, supported: UInt32, current: UInt32) {
        self.name = name
        self.serviceName = serviceName
        self.version = version
        self.supported = supported
        self.current = current
    }
}

@_cdecl("gh_rpc_service_new")
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

@_cdecl("gh_rpc_service_add_method")
public func gh_rpc_service_add_method(_ s: OpaquePointer?, _ method: UnsafePointer<CChar>?, _ cardinality: Int32,
                                      _ fn: GHRpcHandlerFn?, _ userData: UnsafeMutableRawPointer?,
                                      _ freeUserData: GHFreeFn?) -> Int32 {
    let data = UserData(userData, freeUserData)
    return boundary {
        let box = try borrow(s, RpcServiceBox.self, "service")
        let m = try string(method, "method")
        guard !m.isEmpty, !m.contains("/") else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "invalid method name \"\(m)\"") }
        guard let card = RPCCardinality(rawValue: Int(cardinality)) else {
            throw ExportError(GH_ERR_INVALID_ARGUMENT, "invalid cardinality \(cardinality)")
        }
        guard !box.methods.contains(where: { $0.name == m }) else {
            throw ExportError(GH_ERR_INVALID_ARGUMENT, "method \(m) added twice")
        }
        box.methods.append((m, card, fn, data))
        return GH_OK
    }
}

@_cdecl("gh_rpc_service_set_manager")
public func gh_rpc_service_set_manager(_ s: OpaquePointer?, _ loggerName: UnsafePointer<CChar>?, _ load: GHRpcLoadFn?,
                                       _ shutdown: GHRpcShutdownFn?, _ userData: UnsafeMutableRawPointer?,
                                       _ freeUserData: GHFreeFn?) -> Int32 {
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

@_cdecl("gh_rpc_service_set_proxy")
public func gh_rpc_service_set_proxy(_ s: OpaquePointer?, _ isProxy: Int32) -> Int32 {
    boundary {
        try borrow(s, RpcServiceBox.self, "service").isProxy = isProxy != 0
        return GH_OK
    }
}

@_cdecl("gh_rpc_service_free")
public func gh_rpc_service_free(_ s: OpaquePointer?) {
    if let s = s { release(s, RpcServiceBox.self) }
}

// MARK: - servers

final class RpcServerBox: @unchecked Sendable {
    private let lock = NSLock()
    private var _server: RpcServer?
    private var _configBox: ConfigSetBox?
    private var _logsBox: LogsBox?
    /// The caller's item handles (gh_rpc_server_config gives them back).
    var itemBoxes: [ConfigBox] = []
    /// Auto-client handles given to load hooks (valid until the server is freed).
    var clientBoxes: [RpcClientBox] = []

    var server: RpcServer? { lock.withLock { _server } }
    var configBox: ConfigSetBox? { lock.withLock { _configBox } }
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

    func require() throws -> RpcServer {
        guard let s = server else { throw ExportError(GH_ERR_INVALID_STATE, "the server is not built yet") }
        return s
    }
}

/// A C service's manager: its logger name and hooks.
final class CManager: RpcManager, @unchecked Sendable {
    let service: RpcServiceBox
    let box: RpcServerBox
    let handle: OpaquePointer

    init(service: RpcServiceBox, box: RpcServerBox, handle: OpaquePointer) {
        self.service = service
        self.box = box
        self.handle = handle
        super.init()
    }

    override var loggerName: String { service.loggerName ?? service.name }

    override func load() throws {
        guard let load = service.load else { return }
        if let s = server { box.bind(s) }
        let clientBox = RpcClientBox(client: client)
        box.clientBoxes.append(clientBox)
        clearError()
        let rc = load(handle, OpaquePointer(Unmanaged.passUnretained(clientBox).toOpaque()), service.managerData?.raw)
        if rc != 0 { throw returnedError(rc, "\(service.name) load hook") }
    }

    override func shutdown() {
        service.shutdown?(service.managerData?.raw)
    }
}

/// A C method handler as a managed method body.
private func cMethod(_ name: String, _ card: RPCCardinality, _ fn: GHRpcHandlerFn?, _ data: UserData) -> RpcMethod {
    guard let fn = fn else { return .unimplemented(name, card) }
    return RpcMethod(name: name, cardinality: card, body: .blocking { call in
        let h = makeHandle(ServerCallBox(call))
        clearError()
        let rc = fn(h, data.raw)
        release(h, ServerCallBox.self)
        if rc != 0 { throw returnedError(rc, name) }
    })
}

@_cdecl("gh_rpc_server_new")
public func gh_rpc_server_new(_ port: Int32, _ services: UnsafePointer<OpaquePointer?>?, _ count: Int,
                              _ folders: OpaquePointer?, _ cli: UnsafePointer<UnsafePointer<CChar>?>?, _ cliCount: Int,
                              _ staticItems: UnsafePointer<OpaquePointer?>?, _ staticCount: Int,
                              _ userItems: UnsafePointer<OpaquePointer?>?, _ userCount: Int, _ flags: Int32,
                              _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        guard (0...65535).contains(port) else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "invalid port \(port)") }
        var serviceBoxes: [RpcServiceBox] = []
        if count > 0 {
            guard let services = services else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "services is NULL") }
            serviceBoxes = try (0..<count).map { try borrow(services[$0], RpcServiceBox.self, "services[\($0)]") }
        }
        let f = folders == nil ? Folders() : try borrow(folders, FoldersBox.self, "folders").folders
        let pairs = try cliPairs(cli, cliCount)
        let s = try configBoxes(staticItems, staticCount, "static_items")
        let u = try configBoxes(userItems, userCount, "user_items")

        let box = RpcServerBox()
        box.itemBoxes = s + u
        let handle = makeHandle(box)
        let descriptors = serviceBoxes.map { sb in
            RpcServiceDescriptor(name: sb.name, serviceName: sb.serviceName, version: sb.version,
                                 supportedApiVersion: sb.supported, currentApiVersion: sb.current,
                                 manager: sb.isProxy ? nil : CManager(service: sb, box: box, handle: handle),
                                 methods: sb.methods.map { cMethod($0.name, $0.cardinality, $0.fn, $0.data) },
                                 isProxy: sb.isProxy)
        }
        let server: RpcServer
        do {
            server = try RpcServer(port: Int(port), descriptors: descriptors, folders: f, cliConfig: pairs,
                                   staticItems: s.map(\.config), userItems: u.map(\.config),
                                   withEvents: flags & 0x1 != 0, withDebugSignal: flags & 0x2 != 0)
        } catch {
            // A failed load hook bound the server: break box → server → managers → box.
            box.unbind()
            box.clientBoxes = []
            release(handle, RpcServerBox.self)
            throw error
        }
        box.bind(server)
        out.pointee = handle
        return GH_OK
    }
}

@_cdecl("gh_rpc_server_port")
public func gh_rpc_server_port(_ s: OpaquePointer?) -> Int32 {
    guard let b = try? borrow(s, RpcServerBox.self, "server"), let srv = b.server else { return 0 }
    return Int32(srv.port)
}

@_cdecl("gh_rpc_server_config")
public func gh_rpc_server_config(_ s: OpaquePointer?) -> OpaquePointer? {
    guard let b = try? borrow(s, RpcServerBox.self, "server"), let c = b.configBox else { return nil }
    return OpaquePointer(Unmanaged.passUnretained(c).toOpaque())
}

@_cdecl("gh_rpc_server_logs")
public func gh_rpc_server_logs(_ s: OpaquePointer?) -> OpaquePointer? {
    guard let b = try? borrow(s, RpcServerBox.self, "server"), let l = b.logsBox else { return nil }
    return OpaquePointer(Unmanaged.passUnretained(l).toOpaque())
}

@_cdecl("gh_rpc_server_is_running")
public func gh_rpc_server_is_running(_ s: OpaquePointer?) -> Int32 {
    guard let b = try? borrow(s, RpcServerBox.self, "server"), let srv = b.server else { return 0 }
    return srv.isRunning ? 1 : 0
}

@_cdecl("gh_rpc_server_shutdown")
public func gh_rpc_server_shutdown(_ s: OpaquePointer?) -> Int32 {
    boundary {
        try borrow(s, RpcServerBox.self, "server").require().shutdown()
        return GH_OK
    }
}

@_cdecl("gh_rpc_server_wait_shutdown")
public func gh_rpc_server_wait_shutdown(_ s: OpaquePointer?, _ timeout: Double) -> Int32 {
    guard let b = try? borrow(s, RpcServerBox.self, "server"), let srv = b.server else { return 0 }
    return srv.waitShutdown(timeout: timeout < 0 ? nil : timeout) ? 1 : 0
}

@_cdecl("gh_rpc_server_info")
public func gh_rpc_server_info(_ s: OpaquePointer?, _ req: UnsafePointer<UInt8>?, _ reqLen: Int,
                               _ resp: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                               _ respLen: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let srv = try borrow(s, RpcServerBox.self, "server").require()
        return try handOver(try srv.info(try decode(RpcFilter.self, req, reqLen)).serializedBytes(), resp, respLen)
    }
}

@_cdecl("gh_rpc_server_handle_exit_signals")
public func gh_rpc_server_handle_exit_signals(_ s: OpaquePointer?) -> Int32 {
    boundary {
        try borrow(s, RpcServerBox.self, "server").require().handleExitSignals()
        return GH_OK
    }
}

public typealias GHRpcDumpFn = @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutablePointer<CChar>?

@_cdecl("gh_rpc_server_set_dump_fn")
public func gh_rpc_server_set_dump_fn(_ s: OpaquePointer?, _ fn: GHRpcDumpFn?, _ userData: UnsafeMutableRawPointer?,
                                      _ freeUserData: GHFreeFn?) -> Int32 {
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

@_cdecl("gh_rpc_server_free")
public func gh_rpc_server_free(_ s: OpaquePointer?) {
    guard let s = s else { return }
    if let b = try? borrow(s, RpcServerBox.self, "server"), let srv = b.server {
        srv.shutdown()
        b.unbind()
        b.clientBoxes = []
    }
    release(s, RpcServerBox.self)
}

// MARK: - clients

final class RpcClientBox: @unchecked Sendable {
    let client: RpcClient?
    init(client: RpcClient?) { self.client = client }

    func require() throws -> RpcClient {
        guard let c = client else { throw ExportError(GH_ERR_INVALID_STATE, "no client") }
        return c
    }

    func stub(_ name: UnsafePointer<CChar>?) throws -> RpcStub {
        let n = try string(name, "stub")
        guard let s = try require()[n] else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "unknown stub \"\(n)\"") }
        return s
    }
}

@_cdecl("gh_rpc_client_new")
public func gh_rpc_client_new(_ host: UnsafePointer<CChar>?, _ port: Int32, _ timeout: Double,
                              _ name: UnsafePointer<CChar>?, _ raiseErrors: Int32,
                              _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        guard (1...65535).contains(port) else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "invalid port \(port)") }
        let c = try RpcClient(host: try string(host, "host"), port: Int(port), timeout: timeout > 0 ? timeout : nil,
                              name: name.map { String(cString: $0) } ?? "", exception: raiseErrors != 0)
        out.pointee = makeHandle(RpcClientBox(client: c))
        return GH_OK
    }
}

@_cdecl("gh_rpc_client_add_stub")
public func gh_rpc_client_add_stub(_ c: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                   _ serviceName: UnsafePointer<CChar>?, _ apiVersion: UInt32) -> Int32 {
    boundary {
        let client = try borrow(c, RpcClientBox.self, "client").require()
        client.addStub(try string(name, "name"), serviceName: try string(serviceName, "service_name"),
                       apiVersion: apiVersion == 0 ? nil : apiVersion)
        return GH_OK
    }
}

@_cdecl("gh_rpc_client_call")
public func gh_rpc_client_call(_ c: OpaquePointer?, _ stub: UnsafePointer<CChar>?, _ method: UnsafePointer<CChar>?,
                               _ req: UnsafePointer<UInt8>?, _ reqLen: Int, _ callTimeout: Double,
                               _ resp: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                               _ respLen: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let s = try borrow(c, RpcClientBox.self, "client").stub(stub)
        let bytes = try s.client.unary("/\(s.serviceName)/\(try string(method, "method"))", try bytes(req, reqLen),
                                       apiVersion: s.apiVersion, callTimeout: callTimeout > 0 ? callTimeout : nil)
        return try handOver(bytes, resp, respLen)
    }
}

@_cdecl("gh_rpc_client_call_metadata")
public func gh_rpc_client_call_metadata(_ c: OpaquePointer?, _ stub: UnsafePointer<CChar>?,
                                        _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        let s = try borrow(c, RpcClientBox.self, "client").stub(stub)
        out.pointee = makeHandle(MetadataBox(s.client.identity.metadata(apiVersion: s.apiVersion)))
        return GH_OK
    }
}

final class RpcResponsesBox {
    let responses: RpcResponses
    init(_ r: RpcResponses) { responses = r }
}

@_cdecl("gh_rpc_client_stream")
public func gh_rpc_client_stream(_ c: OpaquePointer?, _ stub: UnsafePointer<CChar>?, _ method: UnsafePointer<CChar>?,
                                 _ req: UnsafePointer<UInt8>?, _ reqLen: Int, _ callTimeout: Double,
                                 _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        let s = try borrow(c, RpcClientBox.self, "client").stub(stub)
        let r = try s.client.serverStreaming("/\(s.serviceName)/\(try string(method, "method"))", try bytes(req, reqLen),
                                             apiVersion: s.apiVersion, callTimeout: callTimeout > 0 ? callTimeout : nil)
        out.pointee = makeHandle(RpcResponsesBox(r))
        return GH_OK
    }
}

@_cdecl("gh_rpc_responses_next")
public func gh_rpc_responses_next(_ r: OpaquePointer?, _ data: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                                  _ len: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let b = try borrow(r, RpcResponsesBox.self, "responses")
        guard let m = try b.responses.next() else { return 0 }
        _ = try handOver(m, data, len)
        return 1
    }
}

@_cdecl("gh_rpc_responses_free")
public func gh_rpc_responses_free(_ r: OpaquePointer?) {
    guard let r = r else { return }
    (try? borrow(r, RpcResponsesBox.self, "responses"))?.responses.cancel()
    release(r, RpcResponsesBox.self)
}

@_cdecl("gh_rpc_result_code")
public func gh_rpc_result_code(_ data: UnsafePointer<UInt8>?, _ len: Int) -> Int32 {
    guard let b = try? bytes(data, len), let s = try? RpcResultStatus(serializedBytes: b) else { return 0 }
    return Int32(s.r.code.rawValue)
}

@_cdecl("gh_rpc_client_free")
public func gh_rpc_client_free(_ c: OpaquePointer?) {
    guard let c = c else { return }
    (try? borrow(c, RpcClientBox.self, "client"))?.client?.close()
    release(c, RpcClientBox.self)
}
