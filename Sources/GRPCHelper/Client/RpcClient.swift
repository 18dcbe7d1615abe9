// The retrying client of managed services (grpc-helper's RpcClient): every call carries
// the client's identity metadata and its stub's API version; UNAVAILABLE is retried
// (0.5 s, doubling) until the client's timeout; error results raise.
import NIOConcurrencyHelpers
import Foundation
import GRPCHelperCore
import Logging
import SwiftProtobuf
#if canImport(Glibc)
import Glibc
#endif

/// The identity a client sends with every call (WIRE.md: `client`, `user`, `host`, `ip`).
public struct RpcClientIdentity: Sendable, Equatable {
    public var client: String
    public var user: String
    public var host: String
    public var ip: String

    /// The local identity to reach `host:port`: the user of this process's uid, this
    /// machine's name, and the local address of the interface the system would use to
    /// reach the server (a UDP socket's route lookup: no packet is sent).
    public static func local(client: String, reaching host: String, port: Int) -> RpcClientIdentity {
        RpcClientIdentity(client: client, user: currentUser(), host: hostName(), ip: localAddress(toward: host, port: port))
    }

    public init(client: String, user: String, host: String, ip: String) {
        self.client = client
        self.user = user
        self.host = host
        self.ip = ip
    }

    static func currentUser() -> String {
        let uid = getuid()
        if let pw = getpwuid(uid), let name = pw.pointee.pw_name { return String(cString: name) }
        return String(uid)
    }

    static func hostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "" }
        return stringFromCBuffer(buf)
    }

    /// "" when there is no route (the key is then not sent).
    static func localAddress(toward host: String, port: Int) -> String {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &res) == 0, let first = res else { return "" }
        defer { freeaddrinfo(res) }
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            defer { ai = a.pointee.ai_next }
            let fd = socket(a.pointee.ai_family, Int32(SOCK_DGRAM.rawValue), 0)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            guard connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 else { continue }
            var storage = sockaddr_storage()
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let ok = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
            }
            guard ok == 0 else { continue }
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            let family = Int32(storage.ss_family)
            withUnsafePointer(to: &storage) { p in
                if family == AF_INET {
                    p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                        var addr = sin.pointee.sin_addr
                        _ = inet_ntop(AF_INET, &addr, &text, socklen_t(text.count))
                    }
                } else if family == AF_INET6 {
                    p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                        var addr = sin6.pointee.sin6_addr
                        _ = inet_ntop(AF_INET6, &addr, &text, socklen_t(text.count))
                    }
                }
            }
            let s = stringFromCBuffer(text)
            if !s.isEmpty { return s }
        }
        return ""
    }

    /// The call metadata: the non-empty identity values, then `api_version` if given.
    public func metadata(apiVersion: UInt32?) -> Metadata {
        var md = Metadata()
        for (k, v) in [("client", client), ("user", user), ("host", host), ("ip", ip)] where !v.isEmpty {
            try? md.add(k, v)
        }
        if let v = apiVersion { try? md.add("api_version", String(v)) }
        return md
    }
}

/// A client of one or more managed services on one server (grpc-helper's RpcClient).
// @unchecked Sendable: `stubSpecs` guarded by `stubLock`; the rest immutable.
public final class RpcClient: @unchecked Sendable {
    /// "host:port"
    public let target: String
    /// How long UNAVAILABLE is retried, in seconds (nil: not retried).
    public let timeout: Double?
    public let identity: RpcClientIdentity
    /// Whether error results (0 < code < ERROR_CUSTOM) are thrown.
    public let raisesErrors: Bool
    let logger: Logger?
    let makeError: @Sendable (_ message: String, _ code: RpcResultCode) -> Error
    let channel: GRPCChannel
    /// The stubs map (grpc-helper's stubs_map): attribute name → service and API version.
    /// (Kept as specs: a stored stub would hold the client, which could then never go.)
    private var stubSpecs: [String: (serviceName: String, apiVersion: UInt32?)]
    private let stubLock = NIOLock()

    /// - name: the client's name in the servers' logs (metadata `client`).
    /// - exception: false returns error results instead of throwing them.
    /// - customError: what is thrown for an error result instead of RpcException.
    /// The client closes its connection when it goes (or on `close()`).
    public init(host: String, port: Int, timeout: Double? = 60, name: String = "", logger: Logger? = nil,
                exception: Bool = true,
                customError: (@Sendable (_ message: String, _ code: RpcResultCode) -> Error)? = nil,
                stubs: [String: (serviceName: String, apiVersion: UInt32?)] = [:],
                identity: RpcClientIdentity? = nil) throws {
        let h = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        target = "\(h):\(port)"
        self.timeout = timeout
        self.identity = identity ?? .local(client: name, reaching: host, port: port)
        raisesErrors = exception
        self.logger = logger
        makeError = customError ?? { RpcException($0, code: $1) }
        channel = try GRPCChannel(target: target)
        stubSpecs = stubs
    }

    /// The stubs map's stubs, by name.
    public var stubs: [String: RpcStub] {
        stubLock.withLock { stubSpecs }.mapValues { RpcStub(client: self, serviceName: $0.serviceName, apiVersion: $0.apiVersion) }
    }

    /// A stub of the stubs map by its name ("srv", "config", ...).
    public subscript(_ name: String) -> RpcStub? {
        guard let s = stubLock.withLock({ stubSpecs[name] }) else { return nil }
        return RpcStub(client: self, serviceName: s.serviceName, apiVersion: s.apiVersion)
    }

    /// Adds (or replaces) a stub of the stubs map.
    public func addStub(_ name: String, serviceName: String, apiVersion: UInt32?) {
        stubLock.withLock { stubSpecs[name] = (serviceName, apiVersion) }
    }

    deinit { channel.close() }

    /// Closes the connection; later calls fail.
    public func close() { channel.close() }

    /// The stub of a service: its gRPC service name and the API version its calls carry.
    public func stub(_ serviceName: String, apiVersion: UInt32?) -> RpcStub {
        RpcStub(client: self, serviceName: serviceName, apiVersion: apiVersion)
    }

    // MARK: calls on bytes (the C ABI's; the typed stub builds on them)

    /// A unary call: retried while UNAVAILABLE until the client's timeout; then, or on
    /// any other failed status, RpcException(ERROR_RPC) naming the method and target. The
    /// response's result (field 1) is checked as `checkResult` says.
    public func unary(_ path: String, _ request: [UInt8], apiVersion: UInt32?, callTimeout: Double? = nil,
                      checkResult: Bool = true) throws -> [UInt8] {
        let options = CallOptions(timeout: callTimeout, metadata: identity.metadata(apiVersion: apiVersion))
        var delay = 0.5
        let start = Date()
        logger?.debug("<RPC> >> \(path) @ \(target)")
        while true {
            do {
                let response = try channel.unary(path, request, options: options)
                if checkResult { try check(response, path) }
                return response
            } catch let e as RPCError {
                try retryOrThrow(e, path: path, start: start, delay: &delay)
            }
        }
    }

    /// A server-streaming call: retried while UNAVAILABLE until the first message.
    public func serverStreaming(_ path: String, _ request: [UInt8], apiVersion: UInt32?,
                                callTimeout: Double? = nil, checkResult: Bool = true) throws -> RpcResponses {
        let options = CallOptions(timeout: callTimeout, metadata: identity.metadata(apiVersion: apiVersion))
        var delay = 0.5
        let start = Date()
        while true {
            let call = channel.makeCall(path, options: options)
            call.start()
            try? call.send(request)
            call.closeSend()
            do {
                let first = try call.receive()
                if first == nil {
                    let status = call.waitStatus()
                    if !status.isOK { throw RPCError(status) }
                }
                return RpcResponses(client: self, path: path, call: call, first: first, checkResult: checkResult)
            } catch let e as RPCError {
                try retryOrThrow(e, path: path, start: start, delay: &delay)
            }
        }
    }

    /// A client-streaming call: sends `requests`, half-closes, returns the one response
    /// (its result checked as `checkResult` says). Retried (every request sent again) while
    /// UNAVAILABLE until the client's timeout, as a unary call.
    public func clientStreaming(_ path: String, _ requests: [[UInt8]], apiVersion: UInt32?,
                                callTimeout: Double? = nil, checkResult: Bool = true) throws -> [UInt8] {
        let options = CallOptions(timeout: callTimeout, metadata: identity.metadata(apiVersion: apiVersion))
        var delay = 0.5
        let start = Date()
        logger?.debug("<RPC> >> \(path) @ \(target)")
        while true {
            let call = channel.makeCall(path, options: options)
            call.start()
            for r in requests {
                do { try call.send(r) } catch { break }   // ended: its status says why
            }
            call.closeSend()
            let response = (try? call.receive()) ?? nil
            let status = call.waitStatus()
            do {
                guard status.isOK else { throw RPCError(status) }
                guard let r = response else { throw RPCError(.internalError, "no response message") }
                if checkResult { try check(r, path) }
                return r
            } catch let e as RPCError {
                try retryOrThrow(e, path: path, start: start, delay: &delay)
            }
        }
    }

    /// A bidirectional-streaming call (or a client-streaming one whose requests are made as
    /// it goes): `send` requests, `closeSend`, read responses with `next` (results checked
    /// as `checkResult` says). While the server is unreachable it waits for the connection
    /// until the client's timeout (as the other calls retry UNAVAILABLE), then the call runs
    /// for `callTimeout`; an unreachable server then → RpcException(ERROR_RPC).
    public func bidiStreaming(_ path: String, apiVersion: UInt32?, callTimeout: Double? = nil,
                              checkResult: Bool = true) throws -> RpcStreamingCall {
        logger?.debug("<RPC> >> \(path) @ \(target)")
        if let t = timeout, t > 0 { waitReady(seconds: t) }
        let call = channel.makeCall(path, options: CallOptions(timeout: callTimeout,
                                                                 metadata: identity.metadata(apiVersion: apiVersion)))
        call.start()
        return RpcStreamingCall(responses: RpcResponses(client: self, path: path, call: call, first: nil,
                                                        checkResult: checkResult))
    }

    /// Waits until the channel is READY (connecting meanwhile) or `seconds` passed.
    private func waitReady(seconds: Double) {
        let ready = NIOLockedValueBox(false)
        let condition = NSCondition()
        guard let id = try? channel.watchConnectivity(tryToConnect: true, { state in
            guard state == .ready || state == .shutdown else { return }
            condition.lock()
            ready.withLockedValue { $0 = true }
            condition.broadcast()
            condition.unlock()
        }) else { return }
        defer { channel.unwatchConnectivity(id) }
        let deadline = Date(timeIntervalSinceNow: seconds)
        condition.lock()
        while !ready.withLockedValue({ $0 }) && condition.wait(until: deadline) {}
        condition.unlock()
    }

    /// UNAVAILABLE before the client's timeout has elapsed: sleeps (0.5 s, doubling, never
    /// past the timeout) and returns for another try. Anything else throws.
    private func retryOrThrow(_ e: RPCError, path: String, start: Date, delay: inout Double) throws {
        if e.status.code == .unavailable, let t = timeout {
            let remaining = t - Date().timeIntervalSince(start)
            if remaining > 0 {
                logger?.debug("<RPC> >> \(path) @ \(target)... retry (unavailable: \(e.status.message))")
                Thread.sleep(forTimeInterval: min(delay, remaining))
                delay *= 2
                return
            }
        }
        throw RpcException("RPC error (on \(path) @ \(target)): \(e.status.code): \(e.status.message)", code: .errorRpc)
    }

    /// Throws for an error result (0 < code < ERROR_CUSTOM) when the client raises them.
    func check(_ response: [UInt8], _ path: String) throws {
        guard raisesErrors, let status = try? RpcResultStatus(serializedBytes: response) else { return }
        let code = status.r.code.rawValue
        if code > 0 && code < RpcResultCode.errorCustom.rawValue {
            // grpc-helper's text, word for word (the code is the exception's).
            throw makeError("RPC returned error: \(status.r.msg)", status.r.code)
        }
    }
}

/// The responses of a server-streaming call.
// @unchecked Sendable: one reader at a time (documented); the call is thread-safe.
public final class RpcResponses: @unchecked Sendable {
    let client: RpcClient
    let path: String
    let call: ClientCall
    private var pending: [UInt8]?
    private let checkResult: Bool

    init(client: RpcClient, path: String, call: ClientCall, first: [UInt8]?, checkResult: Bool) {
        self.client = client
        self.path = path
        self.call = call
        pending = first
        self.checkResult = checkResult
    }

    /// The next response; nil at the end. A failed status → RpcException(ERROR_RPC).
    public func next() throws -> [UInt8]? {
        let message: [UInt8]?
        if let p = pending {
            pending = nil
            message = p
        } else {
            do { message = try call.receive() } catch let e as RPCError {
                throw streamError(e.status)
            }
            if message == nil {
                // The end: a complete stream, or one that failed after its first message
                // (deadline, cancel, lost connection, an error status).
                let status = call.waitStatus()
                if !status.isOK { throw streamError(status) }
            }
        }
        if let m = message, checkResult { try client.check(m, path) }
        return message
    }

    private func streamError(_ status: Status) -> RpcException {
        RpcException("RPC error (on \(path) @ \(client.target)): \(status.code): \(status.message)", code: .errorRpc)
    }

    /// Stops the call.
    public func cancel() { call.cancel() }
}

/// A streaming call of an RpcClient: requests sent as the caller goes, responses read
/// with `next` (grpc-helper's request-streaming and bidi calls).
// @unchecked Sendable: one sender and one reader at a time (documented); the call is thread-safe.
public final class RpcStreamingCall: @unchecked Sendable {
    public let responses: RpcResponses

    init(responses: RpcResponses) { self.responses = responses }

    /// Sends a request; blocks while the server is not reading. Once the call has ended:
    /// RpcException(ERROR_RPC) with its status.
    public func send(_ request: [UInt8]) throws {
        do { try responses.call.send(request) } catch let e as RPCError {
            throw RpcException("RPC error (on \(responses.path) @ \(responses.client.target)): \(e.status.code): \(e.status.message)",
                               code: .errorRpc)
        }
    }

    /// No more requests.
    public func closeSend() { responses.call.closeSend() }

    /// The next response; nil at the end (a failed status → RpcException(ERROR_RPC)).
    public func next() throws -> [UInt8]? { try responses.next() }

    /// Stops the call.
    public func cancel() { responses.cancel() }
}

/// A service's stub on a client: typed calls over SwiftProtobuf messages. Error results
/// are checked (and thrown) for response types that conform to `RpcResultCarrying`
/// (`extension MyStatus: RpcResultCarrying {}`: types with grpc-helper's `Result r = 1`),
/// as grpc-helper checks only responses with a Result `r`.
public struct RpcStub: Sendable {
    public let client: RpcClient
    public let serviceName: String
    public let apiVersion: UInt32?

    func path(_ method: String) -> String { "/\(serviceName)/\(method)" }

    public func call<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ method: String, _ request: Request, as type: Response.Type = Response.self, timeout: Double? = nil) throws -> Response {
        let bytes = try client.unary(path(method), try request.serializedBytes(), apiVersion: apiVersion,
                                     callTimeout: timeout, checkResult: Response.self is RpcResultCarrying.Type)
        return try Response(serializedBytes: bytes)
    }

    /// Async variant of `call` (the blocking call runs on a thread of its own).
    public func callAsync<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ method: String, _ request: Request, as type: Response.Type = Response.self, timeout: Double? = nil)
        async throws -> Response {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Response, Error>) in
            NativeThread.startOrRun(name: "gh-rpc-call") {
                c.resume(with: Result { try self.call(method, request, as: Response.self, timeout: timeout) })
            }
        }
    }

    /// A client-streaming call: every request of `requests`, one response.
    public func clientStream<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ method: String, _ requests: [Request], as type: Response.Type = Response.self, timeout: Double? = nil)
        throws -> Response {
        let bytes = try client.clientStreaming(path(method), try requests.map { try $0.serializedBytes() },
                                               apiVersion: apiVersion, callTimeout: timeout,
                                               checkResult: Response.self is RpcResultCarrying.Type)
        return try Response(serializedBytes: bytes)
    }

    /// A bidi (or request-streaming) call: send requests, read responses as they come.
    public func bidi<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ method: String, sending requestType: Request.Type = Request.self, as type: Response.Type = Response.self,
        timeout: Double? = nil) throws -> RpcTypedStream<Request, Response> {
        RpcTypedStream(raw: try client.bidiStreaming(path(method), apiVersion: apiVersion, callTimeout: timeout,
                                                     checkResult: Response.self is RpcResultCarrying.Type))
    }

    public func stream<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ method: String, _ request: Request, as type: Response.Type = Response.self, timeout: Double? = nil)
        throws -> RpcTypedResponses<Response> {
        RpcTypedResponses(raw: try client.serverStreaming(path(method), try request.serializedBytes(),
                                                          apiVersion: apiVersion, callTimeout: timeout,
                                                          checkResult: Response.self is RpcResultCarrying.Type))
    }
}

/// A typed streaming call (request-streaming or bidi) of a stub.
public struct RpcTypedStream<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>: Sendable {
    public let raw: RpcStreamingCall
    public func send(_ request: Request) throws { try raw.send(try request.serializedBytes()) }
    public func closeSend() { raw.closeSend() }
    public func next() throws -> Response? {
        guard let b = try raw.next() else { return nil }
        return try Response(serializedBytes: b)
    }
    public func cancel() { raw.cancel() }
}

/// Typed responses of a server-streaming call.
public struct RpcTypedResponses<Response: SwiftProtobuf.Message>: Sendable {
    public let raw: RpcResponses
    public func next() throws -> Response? {
        guard let b = try raw.next() else { return nil }
        return try Response(serializedBytes: b)
    }
}
