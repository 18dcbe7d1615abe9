internal import CGRPCHelper
import NIOCore

/// The library version, as reported by `gh_version()` and in the user-agent: the public
/// header's (grpchelper/version.h), the one place it is written.
public enum GRPCHelperVersion {
    public static let major = Int(GH_VERSION_MAJOR), minor = Int(GH_VERSION_MINOR), patch = Int(GH_VERSION_PATCH)
    public static let string = "\(major).\(minor).\(patch)"
    public static let number = (major << 16) | (minor << 8) | patch  // GH_VERSION_NUM
    public static let userAgent = "grpchelper-swift/\(string)"
}

/// The four call patterns.
public enum RPCCardinality: Int, Sendable {
    case unary = 0, clientStreaming = 1, serverStreaming = 2, bidiStreaming = 3
    public var streamsRequests: Bool { self == .clientStreaming || self == .bidiStreaming }
    public var streamsResponses: Bool { self == .serverStreaming || self == .bidiStreaming }
}

/// A failed RPC thrown by a handler: its status plus trailing metadata.
public struct RPCError: Error, Sendable, CustomStringConvertible {
    public var status: Status
    public var trailers: Metadata
    public init(_ status: Status, trailers: Metadata = Metadata()) {
        self.status = status
        self.trailers = trailers
    }
    public init(_ code: StatusCode, _ message: String, details: [UInt8]? = nil, trailers: Metadata = Metadata()) {
        self.init(Status(code, message, details: details), trailers: trailers)
    }
    public var description: String { "RPCError(\(status))" }
}

/// Misuse of a call: an operation its state does not allow (a second finish, a send after
/// finish or closeSend, initial metadata twice, ...). Distinct from `RPCError`, which a
/// call operation throws once the call itself has ended (cancelled, expired, failed).
public struct CallStateError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A server method handler.
public enum ServerHandler: Sendable {
    /// Runs on the server's bounded worker pool; may block (reads and sends block).
    case blocking(@Sendable (ServerCall) throws -> Void)
    /// Runs as a Swift task; use the `async` read and send functions.
    case async(@Sendable (ServerCall) async throws -> Void)
    /// Runs on the connection's event loop when the call starts (a single-request method:
    /// once its request arrived) and returns at once: it takes the requests with
    /// `receiveInline`, sends with `sendNonBlocking` / `onSendReady`, and finishes the call
    /// itself, from any thread, at any later time; nothing of it may block. The call
    /// counts as running (for `maxConcurrentRPCs` and shutdown) until it has ended
    /// (`whenEnded`). A throw from the body finishes the call as a handler's would.
    case eventLoop(@Sendable (ServerCall) throws -> Void)
}

/// Server settings.
public struct ServerOptions: Sendable {
    /// Worker threads running blocking handlers.
    public var maxWorkers = 30
    /// The most workers the blocking calls of one connection hold at once; its further
    /// calls wait, in order, until one of its own ends. nil: `maxWorkers` (one client may
    /// run as many handlers at once as with grpcio's thread pool of that size).
    public var maxWorkersPerConnection: Int?
    /// Workers beyond `maxWorkers`, kept for calls of connections that hold no worker: when
    /// one peer holds all `maxWorkers`, the others are still served. nil: a quarter of
    /// `maxWorkers`, at least 1; 0: none.
    public var reservedWorkers: Int?
    /// Seconds a blocking call may wait for a worker (behind its connection's share, or for
    /// a free one); then it ends RESOURCE_EXHAUSTED without its handler having run. nil:
    /// it waits for as long as it takes (as grpcio's thread pool).
    public var workerWaitTimeout: Double? = 30
    /// Largest request message accepted (after decompression, when it is on).
    public var maxReceiveMessageSize = 4 * 1024 * 1024
    /// Largest response message sent (before compression); a larger one ends the call
    /// RESOURCE_EXHAUSTED ("SERVER: Sent message larger than max (N vs. M)"), as gRPC's.
    public var maxSendMessageSize = Int.max
    /// Compressed request messages are decompressed (false: handed to the handler as they
    /// came, compressed, as gRPC's per-message decompression off).
    public var decompressMessages = true
    /// SO_REUSEPORT on the listening sockets: other sockets with it may bind the same
    /// port (the kernel spreads connections), as gRPC's grpc.so_reuseport.
    public var reusePort = false
    /// SETTINGS_MAX_CONCURRENT_STREAMS advertised to clients.
    public var maxConcurrentStreams = 100
    /// Largest request header list accepted (also advertised).
    public var maxHeaderListSize = 16 * 1024
    /// The most bytes of request messages not yet complete that one connection's calls
    /// may hold together (a message is held until its last byte arrives); past it the
    /// call whose bytes went over ends RESOURCE_EXHAUSTED.
    public var maxPartialMessageBytesPerConnection = 64 << 20
    /// The same for all the server's connections together.
    public var maxPartialMessageBytes = 256 << 20
    /// Seconds a new connection has to send the HTTP/2 connection preface and its first
    /// SETTINGS; then it is closed (gRPC's grpc.server_handshake_timeout_ms: 120 s). nil:
    /// no limit.
    public var handshakeTimeout: Double? = 120
    /// The most connections open at once; a connection beyond it is closed as soon as it
    /// is accepted (gRPC's grpc.max_allowed_incoming_connections). nil: no limit.
    public var maxConnections: Int?
    /// Response compression when the request names none the server supports.
    public var defaultCompression = CompressionAlgorithm.identity
    /// I/O threads.
    public var eventLoopThreads = System.coreCount
    /// HTTP/2 initial stream window.
    public var initialWindowSize = 1 << 20
    /// Keepalive: seconds without anything read from a client before the server PINGs it
    /// (gRPC's grpc.keepalive_time_ms: 2 hours); nil: never.
    public var keepaliveTime: Double? = 7200
    /// Seconds the PING's acknowledgement may take; then the connection is closed and its
    /// calls cancelled (grpc.keepalive_timeout_ms: 20 s).
    public var keepaliveTimeout: Double = 20
    /// Clients may PING while no call is open, as often as `minPingIntervalWithoutData`
    /// (grpc.keepalive_permit_without_calls); otherwise once in 2 hours then.
    public var keepalivePermitWithoutCalls = false
    /// The shortest interval between a client's PINGs while the server sends it no data
    /// (grpc.http2.min_recv_ping_interval_without_data_ms: 5 minutes); each PING sooner is
    /// a strike (HEADERS or DATA sent clear them).
    public var minPingIntervalWithoutData: Double = 300
    /// Strikes allowed; one more ends the connection with GOAWAY ENHANCE_YOUR_CALM
    /// "too_many_pings" (grpc.http2.max_ping_strikes: 2; 0: no limit).
    public var maxPingStrikes = 2
    /// Seconds a connection may stay without calls; then the server sends GOAWAY and the
    /// client reconnects when it next needs to (grpc.max_connection_idle_ms). nil: no limit.
    public var maxConnectionIdle: Double?
    /// Seconds a connection may live (±10 %); then the server sends GOAWAY, and its calls
    /// have `maxConnectionAgeGrace` to end (grpc.max_connection_age_ms). nil: no limit.
    public var maxConnectionAge: Double?
    /// Seconds calls may go on after the age's GOAWAY; then they are cancelled and the
    /// connection closed (grpc.max_connection_age_grace_ms). nil: no limit.
    public var maxConnectionAgeGrace: Double?
    /// Calls allowed to run or wait for a worker at once, over all connections; a call
    /// beyond it is answered RESOURCE_EXHAUSTED at once. nil: no limit.
    public var maxConcurrentRPCs: Int?
    public init() {}

    /// `maxWorkersPerConnection`, or its default.
    public var workersPerConnection: Int { max(1, min(maxWorkers, maxWorkersPerConnection ?? maxWorkers)) }
    /// `reservedWorkers`, or its default.
    public var reserveWorkerCount: Int { max(0, reservedWorkers ?? max(1, maxWorkers / 4)) }
}

/// Where a server listens or a channel connects.
public enum Endpoint: Sendable, Equatable, CustomStringConvertible {
    case host(String, port: Int)
    case unix(String)

    /// Parses "host:port", "[v6]:port", "unix:PATH" (also "unix://PATH").
    public static func parse(_ text: String) throws -> Endpoint {
        if text.hasPrefix("unix:") {
            var path = String(text.dropFirst(5))
            if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
            guard !path.isEmpty else { throw EndpointError("empty unix socket path in '\(text)'") }
            return .unix(path)
        }
        var host: Substring
        var rest: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw EndpointError("missing ']' in '\(text)'") }
            host = text[text.index(after: text.startIndex)..<close]
            rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw EndpointError("missing port in '\(text)'") }
            rest = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw EndpointError("missing port in '\(text)'") }
            host = text[..<colon]
            rest = text[text.index(after: colon)...]
            if host.contains(":") { throw EndpointError("IPv6 address must be in brackets in '\(text)'") }
        }
        guard let port = Int(rest), (0...65535).contains(port) else {
            throw EndpointError("invalid port '\(rest)' in '\(text)'")
        }
        if host.isEmpty { host = "0.0.0.0" }
        return .host(String(host), port: port)
    }

    /// Parses a channel target: as `parse`, and a TCP target needs a real port (not 0).
    public static func parseTarget(_ text: String) throws -> Endpoint {
        let e = try parse(text)
        if case .host(_, let p) = e, p == 0 { throw EndpointError("port 0 in target '\(text)'") }
        return e
    }

    public var description: String {
        switch self {
        case .host(let h, let p): return h.contains(":") ? "[\(h)]:\(p)" : "\(h):\(p)"
        case .unix(let p): return "unix:\(p)"
        }
    }
}

public struct EndpointError: Error, CustomStringConvertible, Sendable {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A failure of the server or channel as a whole (not of one RPC).
public struct RuntimeError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable { case bind, invalidState, invalidArgument }
    public let kind: Kind
    public let message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }
}

func peerDescription(_ address: SocketAddress?) -> String {
    guard let address = address else { return "unknown" }
    switch address {
    case .v4(let a): return "ipv4:\(a.host):\(address.port ?? 0)"
    case .v6(let a): return "ipv6:[\(a.host)]:\(address.port ?? 0)"
    case .unixDomainSocket: return "unix:\(address.pathname ?? "")"
    }
}
