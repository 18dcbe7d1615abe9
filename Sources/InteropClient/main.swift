// The gRPC interop test client: the test cases of grpc/grpc's
// doc/interop-test-descriptions.md ("Client" section) that need no credentials.
//
//   interop-client --server_host=HOST --server_port=PORT --test_case=NAME|all [--use_tls=false]
//
// Prints "PASS name" or "FAIL name: why" per case and a final "N passed, M failed";
// exits 0 only when every case passed (2 for a usage error).
import Foundation
import GRPCHelperCore
import InteropMessages
import SwiftProtobuf
#if canImport(Glibc)
import Glibc
#endif


let service = testServicePath
/// Deadline of every call that is not testing deadlines: a hung case fails, it does not hang.
let callTimeout = 30.0

// MARK: command line

func usage(_ message: String) -> Never {
    printToStderr("""
        interop-client: \(message)
        usage: interop-client --server_host=HOST --server_port=PORT --test_case=NAME|all [--use_tls=false]

        """)
    exit(2)
}

let flags = parseInteropFlags(CommandLine.arguments.dropFirst(), program: "interop-client",
                              known: ["server_host", "server_port", "test_case", "use_tls"], usage: usage)
let serverHost = flags["server_host"] ?? "localhost"
guard let portText = flags["server_port"] else { usage("--server_port is required") }
guard let port = Int(portText), (1...65535).contains(port) else { usage("invalid --server_port") }
guard let testCaseName = flags["test_case"] else { usage("--test_case is required") }
if let tls = flags["use_tls"], tls != "false" { usage("TLS is not supported (--use_tls=false only)") }

// MARK: assertions and helpers

struct TestFailure: Error, CustomStringConvertible {
    let description: String
}

func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw TestFailure(description: message()) }
}

func expectStatus(_ status: Status, _ code: StatusCode, _ what: String) throws {
    try expect(status.code == code, "\(what): expected status \(code), got \(status)")
}

func decode<M: SwiftProtobuf.Message>(_ type: M.Type, _ bytes: [UInt8]?, _ what: String) throws -> M {
    guard let bytes = bytes else { throw TestFailure(description: "\(what): no response message") }
    do {
        return try M(serializedBytes: bytes)
    } catch {
        throw TestFailure(description: "\(what): cannot parse \(M.protoMessageName): \(error)")
    }
}

func encode<M: SwiftProtobuf.Message>(_ message: M) throws -> [UInt8] {
    try message.serializedBytes()
}

func zeros(_ n: Int) -> Payload {
    var p = Payload()
    p.body = Data(count: n)
    return p
}

func boolValue(_ b: Bool) -> Grpc_Testing_BoolValue {
    var v = Grpc_Testing_BoolValue()
    v.value = b
    return v
}

func responseParameters(_ size: Int32, compressed: Bool? = nil) -> ResponseParameters {
    var p = ResponseParameters()
    p.size = size
    if let c = compressed { p.compressed = boolValue(c) }
    return p
}

func expectZeroPayload(_ payload: Payload, size: Int, _ what: String) throws {
    try expect(payload.body.count == size, "\(what): payload of \(payload.body.count) bytes, expected \(size)")
    try expect(payload.body.allSatisfy { $0 == 0 }, "\(what): payload is not all zeros")
}

/// The outcome of a call with a single request.
struct UnaryResult {
    let response: [UInt8]?
    let responseCompressed: Bool
    let status: Status
    let initialMetadata: Metadata
    let trailingMetadata: Metadata
}

final class InteropClient {
    let channel: GRPCChannel

    init(channel: GRPCChannel) { self.channel = channel }

    /// One request, one (optional) response; checks that no second response follows.
    func unary(_ method: String, _ request: [UInt8], options: CallOptions = CallOptions(timeout: callTimeout),
               compress: Bool = true) throws -> UnaryResult {
        let call = channel.makeCall(method, options: options)
        call.start()
        // A failed send shows in the status.
        try? call.send(request, compress: compress)
        call.closeSend()
        let response = try call.receive()
        let compressed = call.lastMessageWasCompressed
        if response != nil {
            try expect(try call.receive() == nil, "\(method): more than one response")
        }
        let status = call.waitStatus()
        return UnaryResult(response: response, responseCompressed: compressed, status: status,
                           initialMetadata: call.waitInitialMetadata(), trailingMetadata: call.trailingMetadata)
    }

    func largeUnaryRequest() -> SimpleRequest {
        var r = SimpleRequest()
        r.responseSize = 314159
        r.payload = zeros(271828)
        return r
    }

    /// A successful UnaryCall answered with 314159 zero bytes.
    func expectLargeResponse(_ r: UnaryResult, _ what: String) throws {
        try expectStatus(r.status, .ok, what)
        let response = try decode(SimpleResponse.self, r.response, what)
        try expectZeroPayload(response.payload, size: 314159, what)
    }

    // MARK: test cases

    func emptyUnary() throws {
        let r = try unary("\(service)/EmptyCall", try encode(Empty()))
        try expectStatus(r.status, .ok, "EmptyCall")
        try expect(r.response != nil, "EmptyCall: no response")
        try expect(r.response!.isEmpty, "EmptyCall: response of \(r.response!.count) bytes, expected 0")
        _ = try decode(Empty.self, r.response, "EmptyCall")
    }

    func largeUnary() throws {
        let r = try unary("\(service)/UnaryCall", try encode(largeUnaryRequest()))
        try expectLargeResponse(r, "UnaryCall")
    }

    func clientCompressedUnary() throws {
        var request = largeUnaryRequest()
        request.expectCompressed = boolValue(true)
        // The probe: an uncompressed message that claims to be compressed.
        let probe = try unary("\(service)/UnaryCall", try encode(request))
        try expectStatus(probe.status, .invalidArgument, "probe (uncompressed, expect_compressed=true)")
        let gzip = CallOptions(timeout: callTimeout, compression: .gzip)
        let compressed = try unary("\(service)/UnaryCall", try encode(request), options: gzip)
        try expectLargeResponse(compressed, "compressed request")
        request.expectCompressed = boolValue(false)
        let plain = try unary("\(service)/UnaryCall", try encode(request), options: gzip, compress: false)
        try expectLargeResponse(plain, "uncompressed request")
    }

    func serverCompressedUnary() throws {
        for compressed in [true, false] {
            var request = largeUnaryRequest()
            request.responseCompressed = boolValue(compressed)
            let what = "response_compressed=\(compressed)"
            let r = try unary("\(service)/UnaryCall", try encode(request))
            try expectLargeResponse(r, what)
            try expect(r.responseCompressed == compressed,
                       "\(what): response compressed flag is \(r.responseCompressed)")
        }
    }

    func clientStreaming() throws {
        let call = channel.makeCall("\(service)/StreamingInputCall", options: CallOptions(timeout: callTimeout))
        call.start()
        for n in [27182, 8, 1828, 45904] {
            var request = StreamingInputCallRequest()
            request.payload = zeros(n)
            try call.send(try encode(request))
        }
        call.closeSend()
        let response = try call.receive()
        let status = call.waitStatus()
        try expectStatus(status, .ok, "StreamingInputCall")
        let r = try decode(StreamingInputCallResponse.self, response, "StreamingInputCall")
        try expect(r.aggregatedPayloadSize == 74922, "aggregated_payload_size \(r.aggregatedPayloadSize), expected 74922")
    }

    func clientCompressedStreaming() throws {
        var first = StreamingInputCallRequest()
        first.expectCompressed = boolValue(true)
        first.payload = zeros(27182)
        // The probe: the same message, uncompressed.
        let probe = channel.makeCall("\(service)/StreamingInputCall", options: CallOptions(timeout: callTimeout))
        probe.start()
        try? probe.send(try encode(first))
        probe.closeSend()
        while try probe.receive() != nil {}
        try expectStatus(probe.waitStatus(), .invalidArgument, "probe (uncompressed, expect_compressed=true)")

        let call = channel.makeCall("\(service)/StreamingInputCall",
                                    options: CallOptions(timeout: callTimeout, compression: .gzip))
        call.start()
        try call.send(try encode(first))
        var second = StreamingInputCallRequest()
        second.expectCompressed = boolValue(false)
        second.payload = zeros(45904)
        try call.send(try encode(second), compress: false)
        call.closeSend()
        let response = try call.receive()
        let status = call.waitStatus()
        try expectStatus(status, .ok, "StreamingInputCall")
        let r = try decode(StreamingInputCallResponse.self, response, "StreamingInputCall")
        try expect(r.aggregatedPayloadSize == 73086, "aggregated_payload_size \(r.aggregatedPayloadSize), expected 73086")
    }

    /// Runs StreamingOutputCall; returns each response's payload size and compressed flag.
    func streamingOutput(_ parameters: [ResponseParameters]) throws -> [(Int, Bool)] {
        var request = StreamingOutputCallRequest()
        request.responseParameters = parameters
        let call = channel.makeCall("\(service)/StreamingOutputCall", options: CallOptions(timeout: callTimeout))
        call.start()
        try call.send(try encode(request))
        call.closeSend()
        var got: [(Int, Bool)] = []
        while let bytes = try call.receive() {
            let response = try decode(StreamingOutputCallResponse.self, bytes, "StreamingOutputCall")
            try expectZeroPayload(response.payload, size: response.payload.body.count, "StreamingOutputCall")
            got.append((response.payload.body.count, call.lastMessageWasCompressed))
        }
        try expectStatus(call.waitStatus(), .ok, "StreamingOutputCall")
        return got
    }

    func serverStreaming() throws {
        let sizes: [Int32] = [31415, 9, 2653, 58979]
        let got = try streamingOutput(sizes.map { responseParameters($0) })
        try expect(got.map { $0.0 } == sizes.map(Int.init), "response sizes \(got.map { $0.0 }), expected \(sizes)")
    }

    func serverCompressedStreaming() throws {
        let got = try streamingOutput([responseParameters(31415, compressed: true),
                                       responseParameters(92653, compressed: false)])
        try expect(got.map { $0.0 } == [31415, 92653], "response sizes \(got.map { $0.0 }), expected [31415, 92653]")
        try expect(got[0].1, "first response (compressed=true) does not have the compressed flag")
        try expect(!got[1].1, "second response (compressed=false) has the compressed flag")
    }

    func pingPong() throws {
        let call = channel.makeCall("\(service)/FullDuplexCall", options: CallOptions(timeout: callTimeout))
        call.start()
        for (size, body) in [(31415, 27182), (9, 8), (2653, 1828), (58979, 45904)] {
            var request = StreamingOutputCallRequest()
            request.responseParameters = [responseParameters(Int32(size))]
            request.payload = zeros(body)
            try call.send(try encode(request))
            guard let bytes = try call.receive() else {
                throw TestFailure(description: "no response to the request for \(size) bytes: \(call.waitStatus())")
            }
            let response = try decode(StreamingOutputCallResponse.self, bytes, "FullDuplexCall")
            try expectZeroPayload(response.payload, size: size, "FullDuplexCall")
        }
        call.closeSend()
        try expect(try call.receive() == nil, "FullDuplexCall: more than four responses")
        try expectStatus(call.waitStatus(), .ok, "FullDuplexCall")
    }

    func emptyStream() throws {
        let call = channel.makeCall("\(service)/FullDuplexCall", options: CallOptions(timeout: callTimeout))
        call.start()
        call.closeSend()
        try expect(try call.receive() == nil, "FullDuplexCall: got a response")
        try expectStatus(call.waitStatus(), .ok, "FullDuplexCall")
    }

    func timeoutOnSleepingServer() throws {
        let call = channel.makeCall("\(service)/FullDuplexCall", options: CallOptions(timeout: 0.001))
        call.start()
        var request = StreamingOutputCallRequest()
        request.payload = zeros(27182)
        // The deadline may already have passed: the send then fails, the status tells.
        try? call.send(try encode(request))
        while try call.receive() != nil {}
        try expectStatus(call.waitStatus(), .deadlineExceeded, "FullDuplexCall with a 1 ms timeout")
    }

    func cancelAfterBegin() throws {
        let call = channel.makeCall("\(service)/StreamingInputCall", options: CallOptions(timeout: callTimeout))
        call.start()
        call.cancel()
        try expectStatus(call.waitStatus(), .cancelled, "StreamingInputCall cancelled after begin")
    }

    func cancelAfterFirstResponse() throws {
        let call = channel.makeCall("\(service)/FullDuplexCall", options: CallOptions(timeout: callTimeout))
        call.start()
        var request = StreamingOutputCallRequest()
        request.responseParameters = [responseParameters(31415)]
        request.payload = zeros(27182)
        try call.send(try encode(request))
        guard let bytes = try call.receive() else {
            throw TestFailure(description: "FullDuplexCall: no response: \(call.waitStatus())")
        }
        _ = try decode(StreamingOutputCallResponse.self, bytes, "FullDuplexCall")
        call.cancel()
        try expectStatus(call.waitStatus(), .cancelled, "FullDuplexCall cancelled after the first response")
    }

    /// UnaryCall and FullDuplexCall asking for `code` and `message` as their status.
    func expectEchoedStatus(code: Int32, message: String, unaryOnly: Bool = false) throws {
        var echo = Grpc_Testing_EchoStatus()
        echo.code = code
        echo.message = message
        let expected = Status(StatusCode(rawValue: code), message)

        var request = SimpleRequest()
        request.responseStatus = echo
        let r = try unary("\(service)/UnaryCall", try encode(request))
        try expect(r.status.code == expected.code && r.status.message == expected.message,
                   "UnaryCall: expected \(expected.code) \(message.debugDescription), got \(r.status.code) \(r.status.message.debugDescription)")
        if unaryOnly { return }

        var streamRequest = StreamingOutputCallRequest()
        streamRequest.responseStatus = echo
        let call = channel.makeCall("\(service)/FullDuplexCall", options: CallOptions(timeout: callTimeout))
        call.start()
        try? call.send(try encode(streamRequest))
        call.closeSend()
        while try call.receive() != nil {}
        let status = call.waitStatus()
        try expect(status.code == expected.code && status.message == expected.message,
                   "FullDuplexCall: expected \(expected.code) \(message.debugDescription), got \(status.code) \(status.message.debugDescription)")
    }

    func statusCodeAndMessage() throws {
        try expectEchoedStatus(code: 2, message: "test status message")
    }

    func specialStatusMessage() throws {
        try expectEchoedStatus(code: 2, message: "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n",
                               unaryOnly: true)
    }

    func customMetadata() throws {
        let initialKey = "x-grpc-test-echo-initial", initialValue = "test_initial_metadata_value"
        let trailingKey = "x-grpc-test-echo-trailing-bin", trailingValue: [UInt8] = [0xab, 0xab, 0xab]
        var md = Metadata()
        try md.add(initialKey, initialValue)
        try md.addBinary(trailingKey, trailingValue)
        let options = CallOptions(timeout: callTimeout, metadata: md)

        func checkMetadata(_ initial: Metadata, _ trailing: Metadata, _ what: String) throws {
            try expect(initial.first(initialKey) == initialValue,
                       "\(what): initial metadata \(initial), expected \(initialKey): \(initialValue)")
            try expect(trailing.firstBinary(trailingKey) == trailingValue,
                       "\(what): trailing metadata \(trailing), expected \(trailingKey): ababab")
        }

        let r = try unary("\(service)/UnaryCall", try encode(largeUnaryRequest()), options: options)
        try expectLargeResponse(r, "UnaryCall")
        try checkMetadata(r.initialMetadata, r.trailingMetadata, "UnaryCall")

        var request = StreamingOutputCallRequest()
        request.responseParameters = [responseParameters(314159)]
        request.payload = zeros(271828)
        let call = channel.makeCall("\(service)/FullDuplexCall", options: options)
        call.start()
        try call.send(try encode(request))
        call.closeSend()
        var sizes: [Int] = []
        while let bytes = try call.receive() {
            sizes.append(try decode(StreamingOutputCallResponse.self, bytes, "FullDuplexCall").payload.body.count)
        }
        try expectStatus(call.waitStatus(), .ok, "FullDuplexCall")
        try expect(sizes == [314159], "FullDuplexCall: response sizes \(sizes), expected [314159]")
        try checkMetadata(call.waitInitialMetadata(), call.trailingMetadata, "FullDuplexCall")
    }

    func unimplementedMethod() throws {
        let r = try unary("\(service)/UnimplementedCall", try encode(Empty()))
        try expectStatus(r.status, .unimplemented, "TestService/UnimplementedCall")
    }

    func unimplementedService() throws {
        let r = try unary("/grpc.testing.UnimplementedService/UnimplementedCall", try encode(Empty()))
        try expectStatus(r.status, .unimplemented, "UnimplementedService/UnimplementedCall")
    }

    /// Not a standard case (not in "all"): 1 GiB streamed by the server (1024 x 1 MiB) to
    /// this client reading slowly. HTTP/2 flow control must hold the server back, so this
    /// process's memory stays flat: its resident size may not grow by more than 64 MiB.
    func largeStreamBackpressure() throws {
        var request = StreamingOutputCallRequest()
        request.responseParameters = (0..<1024).map { _ in responseParameters(1 << 20) }
        let call = channel.makeCall("\(service)/StreamingOutputCall", options: CallOptions(timeout: 300))
        call.start()
        try call.send(try encode(request))
        call.closeSend()
        let baseline = residentBytes()
        var peak = baseline, count = 0, total = 0
        while let bytes = try call.receive() {
            count += 1
            total += bytes.count
            if count % 8 == 0 {
                peak = max(peak, residentBytes())
                usleep(4_000)  // a slow reader: about 250 MiB/s at most
            }
        }
        try expectStatus(call.waitStatus(), .ok, "StreamingOutputCall")
        try expect(count == 1024, "received \(count) messages, expected 1024")
        let growth = peak > baseline ? peak - baseline : 0
        print("large_stream_backpressure: \(total >> 20) MiB received, client RSS grew \(growth >> 20) MiB")
        try expect(growth < 64 << 20, "client RSS grew by \(growth >> 20) MiB while reading 1 GiB slowly")
    }
}

/// Resident set size of this process (from /proc/self/statm).
func residentBytes() -> Int {
    guard let f = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(f) }
    var size = 0, resident = 0
    withUnsafeMutablePointer(to: &size) { s in
        withUnsafeMutablePointer(to: &resident) { r in
            _ = withVaList([s, r]) { vfscanf(f, "%ld %ld", $0) }
        }
    }
    return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
}

// MARK: main

let testCases: [(String, (InteropClient) -> () throws -> Void)] = [
    ("empty_unary", InteropClient.emptyUnary),
    ("large_unary", InteropClient.largeUnary),
    ("client_streaming", InteropClient.clientStreaming),
    ("server_streaming", InteropClient.serverStreaming),
    ("ping_pong", InteropClient.pingPong),
    ("empty_stream", InteropClient.emptyStream),
    ("timeout_on_sleeping_server", InteropClient.timeoutOnSleepingServer),
    ("cancel_after_begin", InteropClient.cancelAfterBegin),
    ("cancel_after_first_response", InteropClient.cancelAfterFirstResponse),
    ("status_code_and_message", InteropClient.statusCodeAndMessage),
    ("special_status_message", InteropClient.specialStatusMessage),
    ("custom_metadata", InteropClient.customMetadata),
    ("unimplemented_method", InteropClient.unimplementedMethod),
    ("unimplemented_service", InteropClient.unimplementedService),
    ("client_compressed_unary", InteropClient.clientCompressedUnary),
    ("client_compressed_streaming", InteropClient.clientCompressedStreaming),
    ("server_compressed_unary", InteropClient.serverCompressedUnary),
    ("server_compressed_streaming", InteropClient.serverCompressedStreaming),
]

/// Extra cases of this project, run only when named.
let extraCases: [(String, (InteropClient) -> () throws -> Void)] = [
    ("large_stream_backpressure", InteropClient.largeStreamBackpressure),
]

let selected: [(String, (InteropClient) -> () throws -> Void)]
if testCaseName == "all" {
    selected = testCases
} else if let c = (testCases + extraCases).first(where: { $0.0 == testCaseName }) {
    selected = [c]
} else {
    usage("unknown test case '\(testCaseName)'; known: all, \(testCases.map { $0.0 }.joined(separator: ", "))")
}

let target = serverHost.contains(":") ? "[\(serverHost)]:\(port)" : "\(serverHost):\(port)"
let channel: GRPCChannel
do {
    channel = try GRPCChannel(target: target)
} catch {
    printToStderr("interop-client: \(error)\n")
    exit(2)
}
let client = InteropClient(channel: channel)
var passed = 0, failed = 0
for (name, body) in selected {
    do {
        try body(client)()
        passed += 1
        print("PASS \(name)")
    } catch {
        failed += 1
        print("FAIL \(name): \(error)")
    }
    fflush(nil)
}
channel.close()
print("\(passed) passed, \(failed) failed")
exit(failed == 0 ? 0 : 1)
