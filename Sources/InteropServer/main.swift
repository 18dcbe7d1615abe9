// The gRPC interop test server: grpc.testing.TestService as described in grpc/grpc's
// doc/interop-test-descriptions.md ("Server" section). UnimplementedService and
// TestService/UnimplementedCall are deliberately not registered (→ UNIMPLEMENTED).
//
//   interop-server [--port=N]     (0 or none: an ephemeral port)
//
// Prints "listening on port N" once serving; stops on SIGINT/SIGTERM. It also serves
// grpc.health.v1.Health (GRPCHelper's HealthService): "" and grpc.testing.TestService
// SERVING until the shutdown begins.
import Foundation
import GRPCHelper
import GRPCHelperCore
import InteropMessages
import SwiftProtobuf
#if canImport(Glibc)
import Glibc
#endif


let service = testServicePath
let echoInitialKey = "x-grpc-test-echo-initial"
let echoTrailingKey = "x-grpc-test-echo-trailing-bin"

// MARK: command line

func usage(_ message: String) -> Never {
    printToStderr("interop-server: \(message)\nusage: interop-server [--port=N] [--use_tls=false]\n")
    exit(2)
}

let flags = parseInteropFlags(CommandLine.arguments.dropFirst(), program: "interop-server",
                              known: ["port", "use_tls"], usage: usage)
var port = 0
if let v = flags["port"] {
    guard let p = Int(v), (0...65535).contains(p) else { usage("invalid --port") }
    port = p
}
if let tls = flags["use_tls"], tls != "false" { usage("TLS is not supported (--use_tls=false only)") }

// MARK: helpers

func decode<M: SwiftProtobuf.Message>(_ type: M.Type, _ bytes: [UInt8]) throws -> M {
    do {
        return try M(serializedBytes: bytes)
    } catch {
        throw RPCError(.invalidArgument, "cannot parse \(M.protoMessageName): \(error)")
    }
}

func encode<M: SwiftProtobuf.Message>(_ message: M) throws -> [UInt8] {
    try message.serializedBytes()
}

/// A payload of `size` zero bytes, of the requested type (only COMPRESSABLE exists).
func makePayload(_ type: Grpc_Testing_PayloadType, size: Int32) throws -> Payload {
    guard type == .compressable else {
        throw RPCError(.invalidArgument, "unsupported response type \(type)")
    }
    guard size >= 0 else { throw RPCError(.invalidArgument, "negative response size \(size)") }
    var p = Payload()
    p.type = .compressable
    p.body = Data(count: Int(size))
    return p
}

/// The first request of a unary-request method; INVALID_ARGUMENT when there is none.
func receiveRequest<M: SwiftProtobuf.Message>(_ call: ServerCall, _ type: M.Type) async throws -> M {
    guard let bytes = try await call.receive() else {
        throw RPCError(.invalidArgument, "no request message")
    }
    return try decode(type, bytes)
}

/// Compresses responses with gzip if the client accepts it (individual messages may
/// still be sent uncompressed). Must run before the response headers go out.
func useGzipIfAccepted(_ call: ServerCall) throws {
    if call.clientAcceptEncoding.contains(CompressionAlgorithm.gzip.name) {
        try call.setCompression(.gzip)
    }
}

/// Echo Metadata: "x-grpc-test-echo-initial" back as initial metadata (sent now),
/// "x-grpc-test-echo-trailing-bin" back as trailing metadata.
func echoMetadata(_ call: ServerCall) throws {
    var initial = Metadata()
    for case .string(let v) in call.requestMetadata.values(forKey: echoInitialKey) {
        try initial.add(echoInitialKey, v)
    }
    var trailing = Metadata()
    for case .binary(let v) in call.requestMetadata.values(forKey: echoTrailingKey) {
        try trailing.addBinary(echoTrailingKey, v)
    }
    if !trailing.isEmpty { call.setTrailingMetadata(trailing) }
    if !initial.isEmpty { try call.sendInitialMetadata(initial) }
}

/// CompressedRequest: expect_compressed=true needs a compressed message; an explicit
/// expect_compressed=false needs an uncompressed one.
func checkExpectedCompression(_ call: ServerCall, has: Bool, expected: Bool) throws {
    guard has else { return }
    let got = call.lastMessageWasCompressed
    if expected && !got {
        throw RPCError(.invalidArgument, "expected a compressed request message")
    }
    if !expected && got {
        throw RPCError(.invalidArgument, "expected an uncompressed request message")
    }
}

/// Echo Status: ends the call with the requested status. Returns true if it did.
func echoStatus(_ call: ServerCall, has: Bool, _ status: Grpc_Testing_EchoStatus) throws -> Bool {
    guard has, status.code != 0 else { return false }
    try call.finish(Status(StatusCode(rawValue: status.code), status.message))
    return true
}

/// Sends one StreamingOutputCallResponse per parameter, honouring interval_us and
/// ResponseParameters.compressed.
func sendResponses(_ call: ServerCall, _ request: StreamingOutputCallRequest) async throws {
    for p in request.responseParameters {
        if p.intervalUs > 0 {
            try await Task.sleep(nanoseconds: UInt64(p.intervalUs) * 1000)
        }
        var response = StreamingOutputCallResponse()
        response.payload = try makePayload(request.responseType, size: p.size)
        try await call.send(try encode(response), compress: p.compressed.value)
    }
}

// Stop on SIGINT/SIGTERM: block them before any thread starts (threads inherit the
// mask, so no other thread takes the default action) and sigwait on the main thread.
var signals = sigset_t()
sigemptyset(&signals)
sigaddset(&signals, SIGINT)
sigaddset(&signals, SIGTERM)
pthread_sigmask(SIG_BLOCK, &signals, nil)

// MARK: TestService

let server = Server()
try server.addListener("0.0.0.0:\(port)")

try server.register("\(service)/EmptyCall", cardinality: .unary, handler: .async { call in
    _ = try await receiveRequest(call, Empty.self)
    try echoMetadata(call)
    try await call.send(try encode(Empty()), compress: false)
})

try server.register("\(service)/UnaryCall", cardinality: .unary, handler: .async { call in
    let request = try await receiveRequest(call, SimpleRequest.self)
    let compressResponse = request.responseCompressed.value
    if compressResponse { try useGzipIfAccepted(call) }
    try echoMetadata(call)
    try checkExpectedCompression(call, has: request.hasExpectCompressed, expected: request.expectCompressed.value)
    if try echoStatus(call, has: request.hasResponseStatus, request.responseStatus) { return }
    var response = SimpleResponse()
    response.payload = try makePayload(request.responseType, size: request.responseSize)
    try await call.send(try encode(response), compress: compressResponse)
})

try server.register("\(service)/StreamingOutputCall", cardinality: .serverStreaming, handler: .async { call in
    let request = try await receiveRequest(call, StreamingOutputCallRequest.self)
    if request.responseParameters.contains(where: { $0.compressed.value }) { try useGzipIfAccepted(call) }
    try echoMetadata(call)
    if try echoStatus(call, has: request.hasResponseStatus, request.responseStatus) { return }
    try await sendResponses(call, request)
})

try server.register("\(service)/StreamingInputCall", cardinality: .clientStreaming, handler: .async { call in
    try echoMetadata(call)
    var total = 0
    while let bytes = try await call.receive() {
        let request = try decode(StreamingInputCallRequest.self, bytes)
        try checkExpectedCompression(call, has: request.hasExpectCompressed, expected: request.expectCompressed.value)
        total += request.payload.body.count
    }
    var response = StreamingInputCallResponse()
    response.aggregatedPayloadSize = Int32(clamping: total)
    try await call.send(try encode(response), compress: false)
})

// Responses follow each request as it arrives.
try server.register("\(service)/FullDuplexCall", cardinality: .bidiStreaming, handler: .async { call in
    try useGzipIfAccepted(call)
    try echoMetadata(call)
    while let bytes = try await call.receive() {
        let request = try decode(StreamingOutputCallRequest.self, bytes)
        if try echoStatus(call, has: request.hasResponseStatus, request.responseStatus) { return }
        try await sendResponses(call, request)
    }
})

// Requests are buffered until the client half-closes, then answered in order.
try server.register("\(service)/HalfDuplexCall", cardinality: .bidiStreaming, handler: .async { call in
    try useGzipIfAccepted(call)
    try echoMetadata(call)
    var requests: [StreamingOutputCallRequest] = []
    while let bytes = try await call.receive() {
        requests.append(try decode(StreamingOutputCallRequest.self, bytes))
    }
    for request in requests {
        if try echoStatus(call, has: request.hasResponseStatus, request.responseStatus) { return }
        try await sendResponses(call, request)
    }
})

do {
    try HealthService().add(to: server)
    try server.start()
} catch {
    printToStderr("interop-server: \(error)\n")
    exit(1)
}
print("listening on port \(server.port() ?? 0)")
fflush(nil)

var received: Int32 = 0
sigwait(&signals, &received)
print("signal \(received): shutting down")
server.shutdown(grace: 5)
