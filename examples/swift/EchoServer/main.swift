// A Swift echo server: the four call patterns on raw bytes.
//   echo-server [PORT]     (0 or none: an ephemeral port, printed as "listening on port N")
import GRPCHelperCore
#if canImport(Glibc)
import Glibc
#endif

let service = "/grpchelper.examples.Echo"
let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 0 : 0

let server = Server()
try server.addListener("127.0.0.1:\(port)")

/// Echoes "x-echo" request metadata back as initial metadata, "x-echo-trailer" as trailers.
func echoMetadata(_ call: ServerCall) throws {
    var initial = Metadata()
    for v in call.requestMetadata.values(forKey: "x-echo") { if case .string(let s) = v { try initial.add("x-echo", s) } }
    if !initial.isEmpty { try call.sendInitialMetadata(initial) }
    var trailing = Metadata()
    for v in call.requestMetadata.values(forKey: "x-echo-trailer") { if case .string(let s) = v { try trailing.add("x-echo-trailer", s) } }
    call.setTrailingMetadata(trailing)
}

// Unary: the response is the request.
try server.register("\(service)/Unary", cardinality: .unary, handler: .async { call in
    try echoMetadata(call)
    guard let request = try await call.receive() else { throw RPCError(.invalidArgument, "no request") }
    try await call.send(request)
})
// Server streaming: request "N:text" → N responses "text 0" ... "text N-1".
try server.register("\(service)/ServerStream", cardinality: .serverStreaming, handler: .async { call in
    try echoMetadata(call)
    guard let request = try await call.receive() else { throw RPCError(.invalidArgument, "no request") }
    let text = String(decoding: request, as: UTF8.self)
    let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
    guard parts.count == 2, let n = Int(parts[0]), (0...1000).contains(n) else {
        throw RPCError(.invalidArgument, "expected N:text with N in 0...1000")
    }
    for i in 0..<n { try await call.send(Array("\(parts[1]) \(i)".utf8)) }
})
// Client streaming: the response joins every request with ",".
try server.register("\(service)/ClientStream", cardinality: .clientStreaming, handler: .async { call in
    try echoMetadata(call)
    var all: [String] = []
    while let m = try await call.receive() { all.append(String(decoding: m, as: UTF8.self)) }
    try await call.send(Array(all.joined(separator: ",").utf8))
})
// Bidirectional: each request is echoed as it arrives.
try server.register("\(service)/Bidi", cardinality: .bidiStreaming, handler: .async { call in
    try echoMetadata(call)
    while let m = try await call.receive() { try await call.send(m) }
})

try server.start()
print("listening on port \(server.port() ?? 0)")
fflush(nil)  // all output streams (stdout included)

// Stop on SIGINT/SIGTERM: block them and wait with sigwait on the main thread.
var signals = sigset_t()
sigemptyset(&signals)
sigaddset(&signals, SIGINT)
sigaddset(&signals, SIGTERM)
pthread_sigmask(SIG_BLOCK, &signals, nil)
var received: Int32 = 0
sigwait(&signals, &received)
print("signal \(received): shutting down")
server.shutdown(grace: 5)
