// The core server's C ABI (grpchelper/server.h): `@c @implementation` functions, thin
// translations onto GRPCHelperCore's Server and ServerCall.
import NIOConcurrencyHelpers
import GRPCHelperCore
import GRPCHelper
import CGRPCHelper
#if canImport(Glibc)
import Glibc
#endif

// MARK: - server


/// A server handle: the core server plus the user data its C handlers were given (freed
/// by gh_server_free, after the server stopped).
final class ServerBox {
    let server = Server()
    var userData: [(CPointer, gh_free_fn)] = []
    /// gh_server_enable_health's service (set before start, read from any thread after).
    var health: HealthService?
    /// gh_server_enable_reflection's service (set before start, read from any thread after).
    var reflection: ReflectionService?

    /// Calls every free_user_data, once (after the server stopped: no handler runs).
    func freeUserData() {
        for (ud, f) in userData { f(ud.raw) }
        userData.removeAll()
    }
}

@c @implementation
public func gh_server_new(_ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        out.pointee = makeHandle(ServerBox())
        return GH_OK
    }
}

@c @implementation
public func gh_server_set_int(_ s: OpaquePointer?, _ option: gh_opt, _ value: Int64) -> Int32 {
    boundary {
        try borrow(s, ServerBox.self, "server").server.configure { o in
            switch option {
            case GH_OPT_MAX_WORKERS: o.maxWorkers = try positive(value, "max workers", max: 10_000)
            case GH_OPT_MAX_RECV_MESSAGE_SIZE: o.maxReceiveMessageSize = try positive(value, "max receive message size")
            case GH_OPT_MAX_CONCURRENT_STREAMS: o.maxConcurrentStreams = try positive(value, "max concurrent streams")
            case GH_OPT_MAX_HEADER_LIST_SIZE: o.maxHeaderListSize = try positive(value, "max header list size")
            case GH_OPT_DEFAULT_COMPRESSION:
                guard let c = try compression(value) else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "default compression cannot be DEFAULT") }
                o.defaultCompression = c
            case GH_OPT_EVENT_LOOP_THREADS: o.eventLoopThreads = try positive(value, "event loop threads", max: 1024)
            case GH_OPT_INITIAL_WINDOW_SIZE: o.initialWindowSize = try positive(value, "initial window size")
            case GH_OPT_MAX_CONCURRENT_RPCS:
                o.maxConcurrentRPCs = value == 0 ? nil : try positive(value, "max concurrent RPCs")
            case GH_OPT_MAX_SEND_MESSAGE_SIZE: o.maxSendMessageSize = try nonNegative(value, "max send message size")
            case GH_OPT_PER_MESSAGE_DECOMPRESSION: o.decompressMessages = try flag(value, "per-message decompression")
            case GH_OPT_SO_REUSEPORT: o.reusePort = try flag(value, "SO_REUSEPORT")
            case GH_OPT_MAX_PARTIAL_BYTES_PER_CONNECTION:
                o.maxPartialMessageBytesPerConnection = try positive(value, "max partial message bytes per connection")
            case GH_OPT_MAX_PARTIAL_BYTES:
                o.maxPartialMessageBytes = try positive(value, "max partial message bytes")
            case GH_OPT_HANDSHAKE_TIMEOUT_MS:
                o.handshakeTimeout = value == 0 ? nil : Double(try positive(value, "handshake timeout")) / 1000
            case GH_OPT_MAX_CONNECTIONS:
                o.maxConnections = value == 0 ? nil : try positive(value, "max connections")
            case GH_OPT_MAX_WORKERS_PER_CONNECTION:
                o.maxWorkersPerConnection = value == 0 ? nil : try positive(value, "max workers per connection")
            case GH_OPT_WORKER_WAIT_TIMEOUT_MS:
                o.workerWaitTimeout = value == 0 ? nil : Double(try positive(value, "worker wait timeout")) / 1000
            case GH_OPT_MIN_PING_INTERVAL_WITHOUT_DATA_MS:
                o.minPingIntervalWithoutData = Double(try nonNegative(value, "min ping interval without data")) / 1000
            case GH_OPT_MAX_PING_STRIKES:
                o.maxPingStrikes = try nonNegative(value, "max ping strikes")
            case GH_OPT_MAX_CONNECTION_IDLE_MS:
                o.maxConnectionIdle = value == 0 ? nil : Double(try positive(value, "max connection idle")) / 1000
            case GH_OPT_MAX_CONNECTION_AGE_MS:
                o.maxConnectionAge = value == 0 ? nil : Double(try positive(value, "max connection age")) / 1000
            case GH_OPT_MAX_CONNECTION_AGE_GRACE_MS:
                o.maxConnectionAgeGrace = value == 0 ? nil : Double(try positive(value, "max connection age grace")) / 1000
            case GH_OPT_RESERVED_WORKERS:
                guard value >= 0, value <= 10_000 else {
                    throw ExportError(GH_ERR_INVALID_ARGUMENT, "reserved workers must be in 0...10000, got \(value)")
                }
                o.reservedWorkers = Int(value)
            default:
                guard try applyKeepaliveOption(option, value, time: &o.keepaliveTime, timeout: &o.keepaliveTimeout,
                                               permitWithoutCalls: &o.keepalivePermitWithoutCalls) else {
                    throw ExportError(GH_ERR_INVALID_ARGUMENT, "option \(option.rawValue) is not an integer server option")
                }
            }
        }
        return GH_OK
    }
}

@c @implementation
public func gh_server_set_str(_ s: OpaquePointer?, _ option: gh_opt, _ value: UnsafePointer<CChar>?) -> Int32 {
    boundary { () throws -> gh_error in
        _ = try borrow(s, ServerBox.self, "server")
        throw ExportError(GH_ERR_INVALID_ARGUMENT, "option \(option.rawValue) is not a string server option")
    }
}

@c @implementation
public func gh_server_add_listener(_ s: OpaquePointer?, _ address: UnsafePointer<CChar>?) -> Int32 {
    boundary {
        try borrow(s, ServerBox.self, "server").server.addListener(try string(address, "address"))
        return GH_OK
    }
}

@c @implementation
public func gh_server_bind(_ s: OpaquePointer?, _ address: UnsafePointer<CChar>?, _ port: UnsafeMutablePointer<Int32>?) -> Int32 {
    boundary {
        let p = try borrow(s, ServerBox.self, "server").server.bindNow(try string(address, "address"))
        port?.pointee = Int32(p)
        return GH_OK
    }
}

@c @implementation
public func gh_server_register(_ s: OpaquePointer?, _ method: UnsafePointer<CChar>?, _ cardinality: gh_cardinality,
                               _ fn: gh_handler_fn?, _ userData: UnsafeMutableRawPointer?,
                               _ freeUserData: gh_free_fn?) -> Int32 {
    boundary {
        let box = try borrow(s, ServerBox.self, "server")
        let m = try string(method, "method")
        guard let card = RPCCardinality(rawValue: Int(cardinality.rawValue)) else {
            throw ExportError(GH_ERR_INVALID_ARGUMENT, "invalid cardinality \(cardinality.rawValue)")
        }
        guard let fn = fn else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "handler is NULL") }
        try box.server.register(m, cardinality: card, handler: cHandler(fn, CPointer(raw: userData)))
        if let f = freeUserData { box.userData.append((CPointer(raw: userData), f)) }
        return GH_OK
    }
}

@c @implementation
public func gh_server_register_fallback(_ s: OpaquePointer?, _ fn: gh_handler_fn?, _ userData: UnsafeMutableRawPointer?,
                                        _ freeUserData: gh_free_fn?) -> Int32 {
    boundary {
        let box = try borrow(s, ServerBox.self, "server")
        guard let fn = fn else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "handler is NULL") }
        try box.server.registerFallback(handler: cHandler(fn, CPointer(raw: userData)))
        if let f = freeUserData { box.userData.append((CPointer(raw: userData), f)) }
        return GH_OK
    }
}

/// Runs a C handler on a call, with the call boxed as a handle for the handler's duration.
private func cHandler(_ fn: gh_handler_fn, _ ud: CPointer) -> ServerHandler {
    .blocking { call in
        let h = makeHandle(ServerCallBox(call))
        fn(h, ud.raw)
        release(h, ServerCallBox.self)
    }
}

@c @implementation
public func gh_server_start(_ s: OpaquePointer?) -> Int32 {
    boundary {
        try borrow(s, ServerBox.self, "server").server.start()
        return GH_OK
    }
}

@c @implementation
public func gh_server_port(_ s: OpaquePointer?, _ index: Int, _ port: UnsafeMutablePointer<Int32>?) -> Int32 {
    boundary {
        let server = try borrow(s, ServerBox.self, "server").server
        guard server.isStarted else { throw ExportError(GH_ERR_INVALID_STATE, "server not started") }
        guard let p = server.port(listener: index) else {
            throw ExportError(GH_ERR_INVALID_ARGUMENT, "no listener \(index)")
        }
        port?.pointee = Int32(p)
        return GH_OK
    }
}

@c @implementation
public func gh_server_shutdown(_ s: OpaquePointer?, _ grace: Double) -> Int32 {
    boundary {
        let server = try borrow(s, ServerBox.self, "server").server
        // A server never bound or started has nothing to stop (and can still be started).
        if server.isBound { server.shutdown(grace: grace < 0 ? nil : grace) }
        return GH_OK
    }
}

@c @implementation
public func gh_server_begin_shutdown(_ s: OpaquePointer?, _ grace: Double, _ onStopped: gh_server_stopped_fn?,
                                     _ userData: UnsafeMutableRawPointer?) -> Int32 {
    boundary {
        let server = try borrow(s, ServerBox.self, "server").server
        let ud = CPointer(raw: userData)
        guard server.isBound else {
            onStopped?(ud.raw)
            return GH_OK
        }
        server.beginShutdown(grace: grace < 0 ? nil : grace, whenStopped: { onStopped?(ud.raw) })
        return GH_OK
    }
}

@c @implementation
public func gh_server_wait(_ s: OpaquePointer?) -> Int32 {
    boundary {
        let server = try borrow(s, ServerBox.self, "server").server
        guard server.isStarted else { throw ExportError(GH_ERR_INVALID_STATE, "server not started") }
        server.wait()
        return GH_OK
    }
}

@c @implementation
public func gh_server_free(_ s: OpaquePointer?) {
    guard let s = s, let box = try? borrow(s, ServerBox.self, "server") else { return }
    if box.server.isBound { box.server.shutdown(grace: 0) }
    box.freeUserData()
    release(s, ServerBox.self)
}

@c @implementation
public func gh_server_release(_ s: OpaquePointer?) {
    guard let s = s else { return }
    let handle = Unmanaged<ServerBox>.fromOpaque(UnsafeRawPointer(s))
    // A reference of the server's own for Server.release; the box keeps its one until the
    // end (a statement of its own: no temporary of it outlives this line).
    let server = Unmanaged.passRetained(handle.takeUnretainedValue().server)
    // On the releasing thread, once the server has stopped: the user data, then the
    // caller's handle (the box), then the server.
    Server.release(server) {
        handle.takeRetainedValue().freeUserData()
    }
}

// MARK: - server call

final class ServerCallBox {
    let call: ServerCall
    let method: OwnedCString
    let peer: OwnedCString
    let metadata: MetadataBox
    let userAgent: OwnedCString?
    let message = OwnedBytes()
    init(_ call: ServerCall) {
        self.call = call
        method = OwnedCString(call.method)
        peer = OwnedCString(call.peer)
        userAgent = call.userAgent.map(OwnedCString.init)
        metadata = MetadataBox(call.requestMetadata)
    }
}

@c @implementation
public func gh_server_call_method(_ c: OpaquePointer?) -> UnsafePointer<CChar>? {
    (try? borrow(c, ServerCallBox.self, "call")).map { UnsafePointer($0.method.pointer) }
}

@c @implementation
public func gh_server_call_request_metadata(_ c: OpaquePointer?) -> OpaquePointer? {
    guard let box = try? borrow(c, ServerCallBox.self, "call") else { return nil }
    return OpaquePointer(Unmanaged.passUnretained(box.metadata).toOpaque())
}

@c @implementation
public func gh_server_call_peer(_ c: OpaquePointer?) -> UnsafePointer<CChar>? {
    (try? borrow(c, ServerCallBox.self, "call")).map { UnsafePointer($0.peer.pointer) }
}

@c @implementation
public func gh_server_call_time_remaining(_ c: OpaquePointer?) -> Double {
    guard let box = try? borrow(c, ServerCallBox.self, "call") else { return Double.infinity }
    return box.call.timeRemaining ?? Double.infinity
}

@c @implementation
public func gh_server_call_is_cancelled(_ c: OpaquePointer?) -> Int32 {
    guard let box = try? borrow(c, ServerCallBox.self, "call") else { return 1 }
    return box.call.isCancelled ? 1 : 0
}

@c @implementation
public func gh_server_call_user_agent(_ c: OpaquePointer?) -> UnsafePointer<CChar>? {
    guard let box = try? borrow(c, ServerCallBox.self, "call"), let ua = box.userAgent else { return nil }
    return UnsafePointer(ua.pointer)
}

@c @implementation
public func gh_server_call_wait_done(_ c: OpaquePointer?, _ timeout: Double) -> Int32 {
    boundary {
        let box = try borrow(c, ServerCallBox.self, "call")
        return box.call.waitUntilEnded(timeout: timeout < 0 ? nil : timeout) ? 1 : 0
    }
}

@c @implementation
public func gh_server_call_read(_ c: OpaquePointer?, _ data: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
                                _ len: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let box = try borrow(c, ServerCallBox.self, "call")
        return lendMessage(try box.call.receiveMessage(), box.message, data, len)
    }
}

@c @implementation
public func gh_server_call_send_initial_metadata(_ c: OpaquePointer?, _ md: OpaquePointer?) -> Int32 {
    boundary {
        let box = try borrow(c, ServerCallBox.self, "call")
        try box.call.sendInitialMetadata(try metadataArg(md))
        return GH_OK
    }
}

@c @implementation
public func gh_server_call_set_compression(_ c: OpaquePointer?, _ value: Int32) -> Int32 {
    boundary {
        let box = try borrow(c, ServerCallBox.self, "call")
        guard let alg = try compression(Int64(value)) else { return GH_OK }
        try box.call.setCompression(alg)
        return GH_OK
    }
}

@c @implementation
public func gh_server_call_send(_ c: OpaquePointer?, _ data: UnsafePointer<UInt8>?, _ len: Int,
                                _ flags: Int32) -> Int32 {
    boundary {
        let box = try borrow(c, ServerCallBox.self, "call")
        try box.call.sendMessage(try bytes(data, len), compress: flags & 1 == 0)
        return GH_OK
    }
}

@c @implementation
public func gh_server_call_set_trailing_metadata(_ c: OpaquePointer?, _ md: OpaquePointer?) -> Int32 {
    boundary {
        let box = try borrow(c, ServerCallBox.self, "call")
        box.call.setTrailingMetadata(try metadataArg(md))
        return GH_OK
    }
}

@c @implementation
public func gh_server_call_finish(_ c: OpaquePointer?, _ code: Int32, _ message: UnsafePointer<CChar>?,
                                  _ details: UnsafePointer<UInt8>?, _ detailsLen: Int) -> Int32 {
    boundary {
        let box = try borrow(c, ServerCallBox.self, "call")
        guard (0...16).contains(code) else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "invalid status code \(code)") }
        let d: [UInt8]? = details == nil ? nil : try bytes(details, detailsLen)
        let msg = message.map { String(cString: $0) } ?? ""
        try box.call.finish(Status(StatusCode(rawValue: code), msg, details: d))
        return GH_OK
    }
}
