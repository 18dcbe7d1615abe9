/// A gRPC status code (`grpc-status`).
///
/// Codes are open-ended on the wire: a peer may send a number this library does not
/// know, so the type wraps the raw value instead of being a closed enum.
public struct StatusCode: Hashable, Sendable, CustomStringConvertible {
    /// The numeric code as sent in the `grpc-status` trailer.
    public let rawValue: Int32

    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    public static let ok = StatusCode(rawValue: 0)
    public static let cancelled = StatusCode(rawValue: 1)
    public static let unknown = StatusCode(rawValue: 2)
    public static let invalidArgument = StatusCode(rawValue: 3)
    public static let deadlineExceeded = StatusCode(rawValue: 4)
    public static let notFound = StatusCode(rawValue: 5)
    public static let alreadyExists = StatusCode(rawValue: 6)
    public static let permissionDenied = StatusCode(rawValue: 7)
    public static let resourceExhausted = StatusCode(rawValue: 8)
    public static let failedPrecondition = StatusCode(rawValue: 9)
    public static let aborted = StatusCode(rawValue: 10)
    public static let outOfRange = StatusCode(rawValue: 11)
    public static let unimplemented = StatusCode(rawValue: 12)
    public static let internalError = StatusCode(rawValue: 13)
    public static let unavailable = StatusCode(rawValue: 14)
    public static let dataLoss = StatusCode(rawValue: 15)
    public static let unauthenticated = StatusCode(rawValue: 16)

    /// The canonical upper-case name ("OK", "CANCELLED", …), or "CODE_<n>" for a
    /// number outside the known range.
    public var description: String {
        switch rawValue {
        case 0: return "OK"
        case 1: return "CANCELLED"
        case 2: return "UNKNOWN"
        case 3: return "INVALID_ARGUMENT"
        case 4: return "DEADLINE_EXCEEDED"
        case 5: return "NOT_FOUND"
        case 6: return "ALREADY_EXISTS"
        case 7: return "PERMISSION_DENIED"
        case 8: return "RESOURCE_EXHAUSTED"
        case 9: return "FAILED_PRECONDITION"
        case 10: return "ABORTED"
        case 11: return "OUT_OF_RANGE"
        case 12: return "UNIMPLEMENTED"
        case 13: return "INTERNAL"
        case 14: return "UNAVAILABLE"
        case 15: return "DATA_LOSS"
        case 16: return "UNAUTHENTICATED"
        default: return "CODE_\(rawValue)"
        }
    }

    /// Maps the HTTP status of a response that carried no `grpc-status`, following
    /// gRPC's http-grpc-status-mapping.md. Only meant for that situation: a response
    /// with `grpc-status` must use it instead.
    public init(httpStatus: Int) {
        switch httpStatus {
        case 400: self = .internalError
        case 401: self = .unauthenticated
        case 403: self = .permissionDenied
        case 404: self = .unimplemented
        case 429, 502, 503, 504: self = .unavailable
        default: self = .unknown
        }
    }
}

/// The outcome of an RPC: a code, a human-readable message and optional rich details.
public struct Status: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: StatusCode
    /// The (already percent-decoded) `grpc-message`.
    public var message: String
    /// Raw bytes of `grpc-status-details-bin` (usually a serialized google.rpc.Status).
    public var details: [UInt8]?

    public init(_ code: StatusCode, _ message: String = "", details: [UInt8]? = nil) {
        self.code = code
        self.message = message
        self.details = details
    }

    public static let ok = Status(.ok)

    public var isOK: Bool { code == .ok }

    /// "CODE" or "CODE: message".
    public var description: String {
        message.isEmpty ? code.description : "\(code): \(message)"
    }
}
