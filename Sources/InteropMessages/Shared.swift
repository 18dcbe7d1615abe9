#if canImport(Glibc)
import Glibc
#endif

/// Writes `text` to standard error (unbuffered; no shared C stream involved).
public func printToStderr(_ text: String) {
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
}

// Short names for the grpc.testing messages, shared by interop-server and interop-client.
public typealias Empty = Grpc_Testing_Empty
public typealias Payload = Grpc_Testing_Payload
public typealias SimpleRequest = Grpc_Testing_SimpleRequest
public typealias SimpleResponse = Grpc_Testing_SimpleResponse
public typealias StreamingInputCallRequest = Grpc_Testing_StreamingInputCallRequest
public typealias StreamingInputCallResponse = Grpc_Testing_StreamingInputCallResponse
public typealias StreamingOutputCallRequest = Grpc_Testing_StreamingOutputCallRequest
public typealias StreamingOutputCallResponse = Grpc_Testing_StreamingOutputCallResponse
public typealias ResponseParameters = Grpc_Testing_ResponseParameters

/// The TestService's path prefix.
public let testServicePath = "/grpc.testing.TestService"

/// Parses the `--key=value` / `--key value` flags of an interop program (the spelling the
/// gRPC interop runners use). Keys in `known` take a value; any other flag is ignored with
/// a warning on stderr. `usage` reports a malformed command line and exits.
public func parseInteropFlags(_ arguments: ArraySlice<String>, program: String, known: Set<String>,
                              usage: (String) -> Never) -> [String: String] {
    var args = arguments
    var flags: [String: String] = [:]
    while let arg = args.popFirst() {
        guard arg.hasPrefix("--") else { usage("unexpected argument '\(arg)'") }
        var key = String(arg.dropFirst(2))
        var value: String?
        if let eq = key.firstIndex(of: "=") {
            value = String(key[key.index(after: eq)...])
            key = String(key[..<eq])
        }
        guard known.contains(key) else {
            printToStderr("\(program): warning: ignoring unknown flag '\(arg)'\n")
            continue
        }
        if value == nil { value = args.popFirst() }
        guard let v = value else { usage("--\(key) needs a value") }
        flags[key] = v
    }
    return flags
}

