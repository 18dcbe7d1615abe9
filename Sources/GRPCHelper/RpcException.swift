// The helper layer's error: a ResultCode and a message (grpc-helper's RpcException).

/// An error of the helper layer, carried to clients as a `Result` (code, msg, stack).
public struct RpcException: Error, CustomStringConvertible, Equatable, Sendable {
    public let code: RpcResultCode
    public let message: String
    /// A stack or trace text that came with the error (e.g. a binding's traceback).
    public let stack: String?

    public init(_ message: String, code: RpcResultCode = .error, stack: String? = nil) {
        self.code = code
        self.message = message
        self.stack = stack
    }

    public var description: String { "\(code.protoName): \(message)" }

    /// The error as a wire `Result` (`stack`: a backtrace or trace text, may be empty;
    /// the error's own stack when it has one).
    public func result(stack: String = "") -> RpcResult { RpcResult(code, message, stack: self.stack ?? stack) }
}

extension RpcResultCode {
    /// The .proto name ("ERROR_PARAM_MISSING"); the number for a code the enum lacks.
    public var protoName: String {
        if case .UNRECOGNIZED(let n) = self { return String(n) }
        var out = ""
        for ch in String(describing: self) {
            if ch.isUppercase { out += "_" }
            out += ch.uppercased()
        }
        return out
    }
}

/// The text of a NUL-terminated C character buffer (up to its first NUL).
func stringFromCBuffer(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
