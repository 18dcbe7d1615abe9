// The core client's C ABI (grpchelper/channel.h): `@c @implementation` functions, thin
// translations onto GRPCHelperCore's GRPCChannel and ClientCall.
import NIOConcurrencyHelpers
import GRPCHelperCore
import CGRPCHelper
#if canImport(Glibc)
import Glibc
#endif

// MARK: - channel

@c @implementation
public func gh_channel_new(_ out: UnsafeMutablePointer<OpaquePointer?>?, _ target: UnsafePointer<CChar>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        out.pointee = makeHandle(try DeferredChannel(target: try string(target, "target")))
        return GH_OK
    }
}

@c @implementation
public func gh_channel_set_int(_ ch: OpaquePointer?, _ option: gh_opt, _ value: Int64) -> Int32 {
    boundary {
        let channel = try borrow(ch, DeferredChannel.self, "channel")
        try channel.configure { options in
            switch option {
            case GH_OPT_MAX_RECV_MESSAGE_SIZE: options.maxReceiveMessageSize = try positive(value, "max receive message size")
            case GH_OPT_MAX_HEADER_LIST_SIZE: options.maxHeaderListSize = try positive(value, "max header list size")
            case GH_OPT_DEFAULT_COMPRESSION:
                guard let c = try compression(value) else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "default compression cannot be DEFAULT") }
                options.defaultCompression = c
            case GH_OPT_INITIAL_WINDOW_SIZE: options.initialWindowSize = try positive(value, "initial window size")
            case GH_OPT_CALLBACK_THREADS: options.callbackThreads = try positive(value, "callback threads", max: 1024)
            case GH_OPT_MAX_SEND_MESSAGE_SIZE:
                options.maxSendMessageSize = try nonNegative(value, "max send message size")
            case GH_OPT_PER_MESSAGE_DECOMPRESSION:
                options.decompressMessages = try flag(value, "per-message decompression")
            case GH_OPT_INITIAL_RECONNECT_BACKOFF_MS:
                options.initialReconnectBackoff = Double(try positive(value, "initial reconnect backoff")) / 1000
            case GH_OPT_MAX_RECONNECT_BACKOFF_MS:
                options.maxReconnectBackoff = Double(try positive(value, "max reconnect backoff")) / 1000
            default:
                guard try applyKeepaliveOption(option, value, time: &options.keepaliveTime,
                                               timeout: &options.keepaliveTimeout,
                                               permitWithoutCalls: &options.keepalivePermitWithoutCalls) else {
                    throw ExportError(GH_ERR_INVALID_ARGUMENT, "option \(option.rawValue) is not an integer channel option")
                }
            }
        }
        return GH_OK
    }
}

@c @implementation
public func gh_channel_set_str(_ ch: OpaquePointer?, _ option: gh_opt, _ value: UnsafePointer<CChar>?) -> Int32 {
    boundary {
        let channel = try borrow(ch, DeferredChannel.self, "channel")
        try channel.configure { options in
            switch option {
            case GH_OPT_USER_AGENT_PREFIX: options.userAgentPrefix = try string(value, "value")
            case GH_OPT_USER_AGENT_SUFFIX: options.userAgentSuffix = try string(value, "value")
            default: throw ExportError(GH_ERR_INVALID_ARGUMENT, "option \(option.rawValue) is not a string channel option")
            }
        }
        return GH_OK
    }
}

@c @implementation
public func gh_channel_free(_ ch: OpaquePointer?) {
    guard let ch = ch, let channel = try? borrow(ch, DeferredChannel.self, "channel") else { return }
    channel.close()
    release(ch, DeferredChannel.self)
}

// MARK: - connectivity

private func connectivityValue(_ s: ConnectivityState) -> Int32 { Int32(s.rawValue) }

@c @implementation
public func gh_channel_connectivity(_ ch: OpaquePointer?, _ tryToConnect: Int32) -> Int32 {
    boundary { () throws -> Int32 in
        let deferred = try borrow(ch, DeferredChannel.self, "channel")
        // A channel no call needed yet is IDLE; asking it to connect makes it.
        if tryToConnect == 0 && !deferred.isStarted { return connectivityValue(.idle) }
        return connectivityValue(try deferred.channel().connectivityState(tryToConnect: tryToConnect != 0))
    }
}

@c @implementation
public func gh_channel_watch_connectivity(_ ch: OpaquePointer?, _ tryToConnect: Int32, _ fn: gh_connectivity_fn?,
                                          _ userData: UnsafeMutableRawPointer?, _ freeUserData: gh_free_fn?,
                                          _ watch: UnsafeMutablePointer<UInt64>?) -> Int32 {
    // Freed with the last reference: the watch's handler, dropped once the watch has
    // ended and no call runs (or at return, when this fails).
    let data = UserData(userData, freeUserData)
    return boundary {
        let deferred = try borrow(ch, DeferredChannel.self, "channel")
        guard let fn = fn else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "fn is NULL") }
        guard let watch = watch else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "watch is NULL") }
        let channel = try deferred.channel()
        do {
            watch.pointee = try channel.watchConnectivity(tryToConnect: tryToConnect != 0) { state in
                fn(connectivityValue(state), data.raw)
            }
        } catch let e as RuntimeError {
            throw ExportError(GH_ERR_INVALID_STATE, e.message)
        }
        return GH_OK
    }
}

@c @implementation
public func gh_channel_unwatch_connectivity(_ ch: OpaquePointer?, _ watch: UInt64) -> Int32 {
    boundary {
        let deferred = try borrow(ch, DeferredChannel.self, "channel")
        guard deferred.isStarted, try deferred.channel().unwatchConnectivity(watch) else {
            throw ExportError(GH_ERR_INVALID_ARGUMENT, "no connectivity watch \(watch) on this channel")
        }
        return GH_OK
    }
}

// MARK: - client calls


final class CallBox {
    let channel: DeferredChannel
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
    init(channel: DeferredChannel, method: String) { self.channel = channel; self.method = method }

    func requireNotStarted() throws {
        guard call == nil else { throw ExportError(GH_ERR_INVALID_STATE, "call already started") }
    }
    func requireStarted() throws -> ClientCall {
        guard let c = call else { throw ExportError(GH_ERR_INVALID_STATE, "call not started") }
        return c
    }
    func makeCall() throws -> ClientCall {
        try requireNotStarted()
        let c = try channel.channel().makeCall(method, options: options)
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
        let box = try borrow(ch, DeferredChannel.self, "channel")
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
        return lendMessage(try box.requireStarted().receive(), box.message, data, len)
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

/// Starts the call in callback mode (`unary`: sending that request and half-closing).
private func startAsync(_ box: CallBox, _ handle: OpaquePointer, _ onMessage: gh_message_fn?,
                        _ onDone: gh_done_fn?, _ userData: UnsafeMutableRawPointer?,
                        unary request: [UInt8]? = nil) throws {
    let call = try box.makeCall()
    let ud = CPointer(raw: userData)
    let h = CPointer(raw: UnsafeMutableRawPointer(handle))
    // Callbacks hold the box weakly and stop once gh_call_free ran: the handle they would
    // pass is gone then.
    let message: ([UInt8]) -> Void = { [weak box] m in
        guard let f = onMessage, let box = box, !box.isFreed else { return }
        m.withUnsafeBufferPointer { f(OpaquePointer(h.raw), $0.baseAddress, m.count, ud.raw) }
    }
    let done: (Status) -> Void = { [weak box] s in
        guard let box = box, !box.isFreed else { return }
        box.cacheStatus(s)
        onDone?(OpaquePointer(h.raw), s.code.rawValue, ud.raw)
    }
    if let request {
        call.startUnary(request, onMessage: message, onDone: done)
    } else {
        call.start(onMessage: message, onDone: done)
    }
}

@c @implementation
public func gh_call_start_async(_ c: OpaquePointer?, _ onMessage: gh_message_fn?, _ onDone: gh_done_fn?,
                                _ userData: UnsafeMutableRawPointer?) -> Int32 {
    boundary {
        let box = try borrow(c, CallBox.self, "call")
        try startAsync(box, c!, onMessage, onDone, userData)
        return GH_OK
    }
}

@c @implementation
public func gh_call_start_unary_async(_ c: OpaquePointer?, _ request: UnsafePointer<UInt8>?, _ requestLen: Int,
                                      _ onMessage: gh_message_fn?, _ onDone: gh_done_fn?,
                                      _ userData: UnsafeMutableRawPointer?) -> Int32 {
    boundary {
        let box = try borrow(c, CallBox.self, "call")
        try startAsync(box, c!, onMessage, onDone, userData, unary: try bytes(request, requestLen))
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
