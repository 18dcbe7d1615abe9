// The core's C ABI (grpchelper/{version,errors,metadata,server,channel}.h): `@c
// @implementation` functions only, each checked by the compiler against its declaration
// and each a thin translation of handles and buffers onto GRPCHelperCore.
import NIOConcurrencyHelpers
import GRPCHelperCore
import CGRPCHelper
#if canImport(Glibc)
import Glibc
#endif

// MARK: - version, errors, memory

// The static gh_info and error texts: written once (lazily, thread-safe), never modified.
nonisolated(unsafe) private let versionInfo: UnsafeMutablePointer<gh_info> = {
    let p = UnsafeMutablePointer<gh_info>.allocate(capacity: 1)
    p.initialize(to: gh_info(age: 1, version_num: Int32(GRPCHelperVersion.number),
                             version_str: UnsafePointer(strdup(GRPCHelperVersion.string)!)))
    return p
}()

@c @implementation
public func gh_version(_ least: Int32) -> UnsafePointer<gh_info>? {
    Int(least) > GRPCHelperVersion.number ? nil : UnsafePointer(versionInfo)
}

nonisolated(unsafe) private let errorTexts: [Int32: UnsafeMutablePointer<CChar>] = [
    GH_OK.rawValue: strdup("success")!,
    GH_ERR_INVALID_ARGUMENT.rawValue: strdup("invalid argument")!,
    GH_ERR_INVALID_STATE.rawValue: strdup("invalid state")!,
    GH_ERR_CLOSED.rawValue: strdup("call closed")!,
    GH_ERR_BIND.rawValue: strdup("cannot bind address")!,
    GH_ERR_RPC.rawValue: strdup("RPC failed with a non-OK status")!,
    GH_ERR_TOO_LARGE.rawValue: strdup("message too large")!,
    GH_ERR_RESULT.rawValue: strdup("operation failed with a result code")!,
    GH_ERR_FATAL.rawValue: strdup("fatal error")!,
    GH_ERR_NOMEM.rawValue: strdup("out of memory")!,
    GH_ERR_INTERNAL.rawValue: strdup("internal error")!,
]
nonisolated(unsafe) private let unknownErrorText = strdup("unknown error code")!

@c @implementation
public func gh_strerror(_ code: Int32) -> UnsafePointer<CChar>? {
    UnsafePointer(errorTexts[code] ?? unknownErrorText)
}

@c @implementation
public func gh_is_fatal(_ code: Int32) -> Int32 { code <= GH_ERR_FATAL.rawValue ? 1 : 0 }

@c @implementation
public func gh_last_error() -> UnsafePointer<CChar>? { lastErrorPointer() }

@c @implementation
public func gh_free(_ p: UnsafeMutableRawPointer?) { free(p) }

@c @implementation
public func gh_strdup(_ s: UnsafePointer<CChar>?) -> UnsafeMutablePointer<CChar>? {
    s.flatMap { strdup($0) }
}

// MARK: - metadata

/// A metadata list plus the NUL-terminated copies handed out by gh_metadata_get.
final class MetadataBox {
    var md: Metadata { didSet { lock.withLock { cache = nil } } }
    private var cache: [(key: OwnedCString, value: OwnedBytes)]?
    /// Readers on several threads may build the cache at once (request metadata is read
    /// from any thread): the cache is built under this lock.
    private let lock = NIOLock()
    init(_ md: Metadata = Metadata()) { self.md = md }

    func entry(_ i: Int) -> (key: OwnedCString, value: OwnedBytes)? {
        lock.withLock { entryLocked(i) }
    }

    private func entryLocked(_ i: Int) -> (key: OwnedCString, value: OwnedBytes)? {
        if cache == nil {
            cache = md.map { e in
                let v = OwnedBytes()
                switch e.value {
                case .string(let s): v.set(Array(s.utf8), nulTerminated: true)
                case .binary(let b): v.set(b)
                }
                return (OwnedCString(e.key), v)
            }
        }
        guard i >= 0, i < cache!.count else { return nil }
        return cache![i]
    }
}

@c @implementation
public func gh_metadata_new(_ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        out.pointee = makeHandle(MetadataBox())
        return GH_OK
    }
}

@c @implementation
public func gh_metadata_free(_ md: OpaquePointer?) {
    if let md = md { release(md, MetadataBox.self) }
}

@c @implementation
public func gh_metadata_add(_ md: OpaquePointer?, _ key: UnsafePointer<CChar>?,
                            _ value: UnsafePointer<CChar>?) -> Int32 {
    boundary {
        let box = try borrow(md, MetadataBox.self, "metadata")
        try box.md.add(try string(key, "key"), try string(value, "value"))
        return GH_OK
    }
}

@c @implementation
public func gh_metadata_add_bin(_ md: OpaquePointer?, _ key: UnsafePointer<CChar>?,
                                _ value: UnsafePointer<UInt8>?, _ len: Int) -> Int32 {
    boundary {
        let box = try borrow(md, MetadataBox.self, "metadata")
        try box.md.addBinary(try string(key, "key"), try bytes(value, len))
        return GH_OK
    }
}

@c @implementation
public func gh_metadata_count(_ md: OpaquePointer?) -> Int {
    guard let box = try? borrow(md, MetadataBox.self, "metadata") else { return 0 }
    return box.md.count
}

@c @implementation
public func gh_metadata_get(_ md: OpaquePointer?, _ index: Int,
                            _ key: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
                            _ value: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
                            _ len: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let box = try borrow(md, MetadataBox.self, "metadata")
        guard let e = box.entry(index) else {
            throw ExportError(GH_ERR_INVALID_ARGUMENT, "index \(index) out of range (count \(box.md.count))")
        }
        key?.pointee = UnsafePointer(e.key.pointer)
        value?.pointee = UnsafePointer(e.value.pointer)
        len?.pointee = e.value.count
        return GH_OK
    }
}

@c @implementation
public func gh_metadata_find(_ md: OpaquePointer?, _ key: UnsafePointer<CChar>?,
                             _ value: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
                             _ len: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let box = try borrow(md, MetadataBox.self, "metadata")
        let k = try string(key, "key")
        for (i, e) in box.md.enumerated() where e.key == k {
            let entry = box.entry(i)!
            value?.pointee = UnsafePointer(entry.value.pointer)
            len?.pointee = entry.value.count
            return GH_OK
        }
        throw ExportError(GH_ERR_INVALID_ARGUMENT, "no metadata entry '\(k)'")
    }
}

func metadataArg(_ md: OpaquePointer?) throws -> Metadata {
    guard md != nil else { return Metadata() }
    return try borrow(md, MetadataBox.self, "metadata").md
}

// MARK: - options


private func positive(_ v: Int64, _ name: String, max: Int64 = Int64(Int32.max)) throws -> Int {
    guard v > 0, v <= max else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "\(name) must be in 1...\(max), got \(v)") }
    return Int(v)
}

// MARK: - server


/// A server handle: the core server plus the user data its C handlers were given (freed
/// by gh_server_free, after the server stopped).
final class ServerBox {
    let server = Server()
    var userData: [(CPointer, gh_free_fn)] = []
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
            default: throw ExportError(GH_ERR_INVALID_ARGUMENT, "option \(option.rawValue) is not an integer server option")
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
    for (ud, f) in box.userData { f(ud.raw) }
    box.userData.removeAll()
    release(s, ServerBox.self)
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
        guard let m = try box.call.receiveMessage() else {
            box.message.clear()
            data?.pointee = nil
            len?.pointee = 0
            return 0
        }
        box.message.set(m)
        data?.pointee = UnsafePointer(box.message.pointer)
        len?.pointee = m.count
        return 1
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

// MARK: - channel

final class ChannelBox {
    let target: String
    var options = ChannelOptions()
    private var channel: GRPCChannel?
    let lock = NIOLock()
    init(target: String) { self.target = target }

    var closed = false

    /// The channel, created on first use so options set before it apply. Once the box is
    /// closed, a channel made now is closed at once (calls on it end CANCELLED).
    func get() throws -> GRPCChannel {
        try lock.withLock {
            if let c = channel { return c }
            let c = try GRPCChannel(target: target, options: options)
            channel = c
            if closed { c.close() }
            return c
        }
    }
    var started: Bool { lock.withLock { channel != nil } }
    func close() { lock.withLock { closed = true; return channel }?.close() }
}

@c @implementation
public func gh_channel_new(_ out: UnsafeMutablePointer<OpaquePointer?>?, _ target: UnsafePointer<CChar>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        let t = try string(target, "target")
        do { _ = try Endpoint.parseTarget(t) } catch {
            throw ExportError(GH_ERR_INVALID_ARGUMENT, "invalid target: \(error)")
        }
        out.pointee = makeHandle(ChannelBox(target: t))
        return GH_OK
    }
}

@c @implementation
public func gh_channel_set_int(_ ch: OpaquePointer?, _ option: gh_opt, _ value: Int64) -> Int32 {
    boundary {
        let box = try borrow(ch, ChannelBox.self, "channel")
        guard !box.started else { throw ExportError(GH_ERR_INVALID_STATE, "channel options must be set before the first call") }
        switch option {
        case GH_OPT_MAX_RECV_MESSAGE_SIZE: box.options.maxReceiveMessageSize = try positive(value, "max receive message size")
        case GH_OPT_MAX_HEADER_LIST_SIZE: box.options.maxHeaderListSize = try positive(value, "max header list size")
        case GH_OPT_DEFAULT_COMPRESSION:
            guard let c = try compression(value) else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "default compression cannot be DEFAULT") }
            box.options.defaultCompression = c
        case GH_OPT_INITIAL_WINDOW_SIZE: box.options.initialWindowSize = try positive(value, "initial window size")
        case GH_OPT_CALLBACK_THREADS: box.options.callbackThreads = try positive(value, "callback threads", max: 1024)
        default: throw ExportError(GH_ERR_INVALID_ARGUMENT, "option \(option.rawValue) is not an integer channel option")
        }
        return GH_OK
    }
}

@c @implementation
public func gh_channel_set_str(_ ch: OpaquePointer?, _ option: gh_opt, _ value: UnsafePointer<CChar>?) -> Int32 {
    boundary {
        let box = try borrow(ch, ChannelBox.self, "channel")
        guard !box.started else { throw ExportError(GH_ERR_INVALID_STATE, "channel options must be set before the first call") }
        switch option {
        case GH_OPT_USER_AGENT_PREFIX: box.options.userAgentPrefix = try string(value, "value")
        default: throw ExportError(GH_ERR_INVALID_ARGUMENT, "option \(option.rawValue) is not a string channel option")
        }
        return GH_OK
    }
}

@c @implementation
public func gh_channel_free(_ ch: OpaquePointer?) {
    guard let ch = ch, let box = try? borrow(ch, ChannelBox.self, "channel") else { return }
    box.close()
    release(ch, ChannelBox.self)
}

// MARK: - client calls


final class CallBox {
    let channel: ChannelBox
    let method: String
    var options = CallOptions()
    var call: ClientCall?
    let message = OwnedBytes()
    var statusMessage: OwnedCString?
    let details = OwnedBytes()
    var hasDetails = false
    var initial: MetadataBox?
    var trailing: MetadataBox?
    let lock = NIOLock()
    /// gh_call_free ran: no callback may use the handle any more.
    var freed = false
    var isFreed: Bool { lock.withLock { freed } }
    init(channel: ChannelBox, method: String) { self.channel = channel; self.method = method }

    func requireNotStarted() throws {
        guard call == nil else { throw ExportError(GH_ERR_INVALID_STATE, "call already started") }
    }
    func requireStarted() throws -> ClientCall {
        guard let c = call else { throw ExportError(GH_ERR_INVALID_STATE, "call not started") }
        return c
    }
    func makeCall() throws -> ClientCall {
        try requireNotStarted()
        let c = try channel.get().makeCall(method, options: options)
        call = c
        return c
    }
    /// Caches the status strings once the call has ended.
    func cacheStatus(_ s: Status) {
        lock.withLock {
            guard statusMessage == nil else { return }
            statusMessage = OwnedCString(s.message)
            if let d = s.details { details.set(d); hasDetails = true }
            trailing = MetadataBox(call?.trailingMetadata ?? Metadata())
        }
    }
}

@c @implementation
public func gh_call_new(_ ch: OpaquePointer?, _ method: UnsafePointer<CChar>?,
                        _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        let box = try borrow(ch, ChannelBox.self, "channel")
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        let m = try string(method, "method")
        guard m.hasPrefix("/") else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "method must start with '/', got '\(m)'") }
        out.pointee = makeHandle(CallBox(channel: box, method: m))
        return GH_OK
    }
}

@c @implementation
public func gh_call_set_timeout(_ c: OpaquePointer?, _ seconds: Double) -> Int32 {
    boundary {
        let box = try borrow(c, CallBox.self, "call")
        try box.requireNotStarted()
        box.options.timeout = seconds > 0 ? seconds : nil
        return GH_OK
    }
}

@c @implementation
public func gh_call_set_metadata(_ c: OpaquePointer?, _ md: OpaquePointer?) -> Int32 {
    boundary {
        let box = try borrow(c, CallBox.self, "call")
        try box.requireNotStarted()
        box.options.metadata = try metadataArg(md)
        return GH_OK
    }
}

@c @implementation
public func gh_call_set_compression(_ c: OpaquePointer?, _ value: Int32) -> Int32 {
    boundary {
        let box = try borrow(c, CallBox.self, "call")
        try box.requireNotStarted()
        box.options.compression = try compression(Int64(value))
        return GH_OK
    }
}

@c @implementation
public func gh_call_set_wait_for_ready(_ c: OpaquePointer?, _ enabled: Int32) -> Int32 {
    boundary {
        let box = try borrow(c, CallBox.self, "call")
        try box.requireNotStarted()
        box.options.waitForReady = enabled != 0
        return GH_OK
    }
}

@c @implementation
public func gh_call_start(_ c: OpaquePointer?) -> Int32 {
    boundary {
        let box = try borrow(c, CallBox.self, "call")
        try box.makeCall().start()
        return GH_OK
    }
}

@c @implementation
public func gh_call_send(_ c: OpaquePointer?, _ data: UnsafePointer<UInt8>?, _ len: Int, _ flags: Int32) -> Int32 {
    boundary {
        let box = try borrow(c, CallBox.self, "call")
        let call = try box.requireStarted()
        try call.send(try bytes(data, len), compress: flags & 1 == 0)
        return GH_OK
    }
}

@c @implementation
public func gh_call_close_send(_ c: OpaquePointer?) -> Int32 {
    boundary {
        let box = try borrow(c, CallBox.self, "call")
        try box.requireStarted().closeSend()
        return GH_OK
    }
}

@c @implementation
public func gh_call_recv(_ c: OpaquePointer?, _ data: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
                         _ len: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let box = try borrow(c, CallBox.self, "call")
        let call = try box.requireStarted()
        guard let m = try call.receive() else {
            data?.pointee = nil
            len?.pointee = 0
            return 0
        }
        box.message.set(m)
        data?.pointee = UnsafePointer(box.message.pointer)
        len?.pointee = m.count
        return 1
    }
}

@c @implementation
public func gh_call_wait(_ c: OpaquePointer?) -> Int32 {
    boundary {
        let box = try borrow(c, CallBox.self, "call")
        let s = try box.requireStarted().waitStatus()
        box.cacheStatus(s)
        return s.code.rawValue
    }
}

@c @implementation
public func gh_call_status(_ c: OpaquePointer?) -> Int32 {
    guard let box = try? borrow(c, CallBox.self, "call"), let s = box.call?.status else { return -1 }
    box.cacheStatus(s)
    return s.code.rawValue
}

@c @implementation
public func gh_call_status_message(_ c: OpaquePointer?) -> UnsafePointer<CChar>? {
    guard let box = try? borrow(c, CallBox.self, "call"), let s = box.call?.status else { return nil }
    box.cacheStatus(s)
    return box.lock.withLock { box.statusMessage.map { UnsafePointer($0.pointer) } }
}

@c @implementation
public func gh_call_status_details(_ c: OpaquePointer?, _ data: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
                                   _ len: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let box = try borrow(c, CallBox.self, "call")
        guard let s = box.call?.status else { throw ExportError(GH_ERR_INVALID_STATE, "call still running") }
        box.cacheStatus(s)
        box.lock.withLock {
            data?.pointee = box.hasDetails ? UnsafePointer(box.details.pointer) : nil
            len?.pointee = box.hasDetails ? box.details.count : 0
        }
        return GH_OK
    }
}

@c @implementation
public func gh_call_initial_metadata(_ c: OpaquePointer?) -> OpaquePointer? {
    guard let box = try? borrow(c, CallBox.self, "call"), let call = box.call else { return nil }
    let md = call.waitInitialMetadata()
    let mbox: MetadataBox = box.lock.withLock {
        if let m = box.initial { return m }
        let m = MetadataBox(md)
        box.initial = m
        return m
    }
    return OpaquePointer(Unmanaged.passUnretained(mbox).toOpaque())
}

@c @implementation
public func gh_call_trailing_metadata(_ c: OpaquePointer?) -> OpaquePointer? {
    guard let box = try? borrow(c, CallBox.self, "call"), let s = box.call?.status else { return nil }
    box.cacheStatus(s)
    return box.lock.withLock { box.trailing.map { OpaquePointer(Unmanaged.passUnretained($0).toOpaque()) } }
}

@c @implementation
public func gh_call_cancel(_ c: OpaquePointer?) -> Int32 {
    boundary {
        let box = try borrow(c, CallBox.self, "call")
        box.call?.cancel()
        return GH_OK
    }
}

@c @implementation
public func gh_call_unary(_ c: OpaquePointer?, _ request: UnsafePointer<UInt8>?, _ requestLen: Int,
                          _ response: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
                          _ responseLen: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let box = try borrow(c, CallBox.self, "call")
        let req = try bytes(request, requestLen)
        let (m, s) = try box.makeCall().exchangeUnary(req)
        box.cacheStatus(s)
        guard s.isOK else {
            setLastError("RPC failed: \(s.code) \(s.message)")
            return GH_ERR_RPC
        }
        guard let msg = m else {
            setLastError("RPC returned OK without a response message")
            return GH_ERR_RPC
        }
        box.message.set(msg)
        response?.pointee = UnsafePointer(box.message.pointer)
        responseLen?.pointee = msg.count
        return GH_OK
    }
}

private func startAsync(_ box: CallBox, _ handle: OpaquePointer, _ onMessage: gh_message_fn?,
                        _ onDone: gh_done_fn?, _ userData: UnsafeMutableRawPointer?) throws -> ClientCall {
    let call = try box.makeCall()
    let ud = CPointer(raw: userData)
    let h = CPointer(raw: UnsafeMutableRawPointer(handle))
    // Callbacks hold the box weakly and stop once gh_call_free ran: the handle they would
    // pass is gone then.
    call.start(onMessage: { [weak box] m in
        guard let f = onMessage, let box = box, !box.isFreed else { return }
        m.withUnsafeBufferPointer { f(OpaquePointer(h.raw), $0.baseAddress, m.count, ud.raw) }
    }, onDone: { [weak box] s in
        guard let box = box, !box.isFreed else { return }
        box.cacheStatus(s)
        onDone?(OpaquePointer(h.raw), s.code.rawValue, ud.raw)
    })
    return call
}

@c @implementation
public func gh_call_start_async(_ c: OpaquePointer?, _ onMessage: gh_message_fn?, _ onDone: gh_done_fn?,
                                _ userData: UnsafeMutableRawPointer?) -> Int32 {
    boundary {
        let box = try borrow(c, CallBox.self, "call")
        _ = try startAsync(box, c!, onMessage, onDone, userData)
        return GH_OK
    }
}

@c @implementation
public func gh_call_start_unary_async(_ c: OpaquePointer?, _ request: UnsafePointer<UInt8>?, _ requestLen: Int,
                                      _ onMessage: gh_message_fn?, _ onDone: gh_done_fn?,
                                      _ userData: UnsafeMutableRawPointer?) -> Int32 {
    boundary {
        let box = try borrow(c, CallBox.self, "call")
        let req = try bytes(request, requestLen)
        let call = try startAsync(box, c!, onMessage, onDone, userData)
        try? call.send(req)
        call.closeSend()
        return GH_OK
    }
}

@c @implementation
public func gh_call_free(_ c: OpaquePointer?) {
    guard let c = c, let box = try? borrow(c, CallBox.self, "call") else { return }
    box.lock.withLock { box.freed = true }
    if let call = box.call, call.status == nil { call.cancel() }
    release(c, CallBox.self)
}
