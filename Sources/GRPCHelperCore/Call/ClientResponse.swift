import CNghttp2

/// How a client reads what the server sent: the response headers, the trailers, a reset
/// stream. Pure functions (the event loop applies their results to the call).
enum ClientResponse {
    /// Checks the response headers. Returns the response's message encoding (nil:
    /// identity), or the status that ends the call.
    static func checkHeaders(_ fields: [HeaderField]) -> Result<CompressionAlgorithm?, Status> {
        var httpStatus = 0
        var contentType: String?
        var encoding: String?
        for f in fields {
            switch f.name {
            case ":status": httpStatus = Int(f.value) ?? 0
            case "content-type": contentType = f.value
            case "grpc-encoding": encoding = f.value
            default: break
            }
        }
        if httpStatus != 200 {
            return .failure(Status(StatusCode(httpStatus: httpStatus),
                                   "Received http2 header with status: \(httpStatus)"))
        }
        guard let ct = contentType, ct.hasPrefix("application/grpc") else {
            return .failure(Status(.unknown, "invalid content-type '\(contentType ?? "")' in response"))
        }
        guard let e = encoding, e != "identity" else { return .success(nil) }
        guard let alg = CompressionAlgorithm(name: e) else {
            return .failure(Status(.internalError, "response uses unsupported compression '\(e)'"))
        }
        return .success(alg)
    }

    /// The status the trailers (or a trailers-only response) carry.
    static func status(fromTrailers fields: [HeaderField]) -> Status {
        var code: StatusCode?
        var message = ""
        var details: [UInt8]?
        for f in fields {
            switch f.name {
            case "grpc-status":
                // 1*DIGIT; a value outside the defined codes is UNKNOWN.
                if !f.value.isEmpty, f.value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                   let v = Int32(f.value) {
                    code = v <= 16 ? StatusCode(rawValue: v) : .unknown
                } else {
                    code = .unknown
                    message = "invalid grpc-status '\(f.value)'"
                }
            case "grpc-message": message = GRPCMessageCoding.decode(f.value)
            case "grpc-status-details-bin": details = Base64.decode(f.value)
            default: break
            }
        }
        return code.map { Status($0, message, details: details) }
            ?? Status(.unknown, "missing grpc-status in trailers")
    }

    /// The status of a call whose stream closed (RST_STREAM, connection loss) before a
    /// status arrived.
    static func status(forReset errorCode: UInt32, deadlinePassed: Bool, connectionLost: Bool,
                       lostBecause: String? = nil) -> Status {
        switch errorCode {
        case NGHTTP2_REFUSED_STREAM.rawValue: return Status(.unavailable, "stream refused by the server")
        case NGHTTP2_CANCEL.rawValue:
            // A server whose deadline timer fired first resets with CANCEL (gRPC core maps
            // CANCEL to DEADLINE_EXCEEDED once the deadline has passed).
            return deadlinePassed ? Status(.deadlineExceeded, "Deadline Exceeded")
                : Status(.cancelled, "stream cancelled by the server")
        case NGHTTP2_ENHANCE_YOUR_CALM.rawValue: return Status(.resourceExhausted, "ENHANCE_YOUR_CALM")
        case NGHTTP2_INADEQUATE_SECURITY.rawValue: return Status(.permissionDenied, "INADEQUATE_SECURITY")
        case NGHTTP2_NO_ERROR.rawValue: return Status(.internalError, "stream closed without a status")
        default:
            return connectionLost ? Status(.unavailable, "connection lost" + (lostBecause.map { ": " + $0 } ?? ""))
                : Status(.internalError, "stream reset with HTTP/2 error \(errorCode)")
        }
    }
}
