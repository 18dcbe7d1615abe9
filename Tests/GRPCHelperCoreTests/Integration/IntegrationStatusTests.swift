// Status over real sockets: code, message (whitespace, Unicode) and details reach the
// client exactly; trailers-only responses; errors after streamed messages; non-RPCError.
import Testing
@testable import GRPCHelperCore

private let awkwardMessage = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
private let details: [UInt8] = [0, 1, 2, 255]

private struct NotAnRPCError: Error {}

@Suite("Integration: status", .timeLimit(.minutes(1)))
struct IntegrationStatusTests {
    /// The handler throws before sending anything (a trailers-only response) or after
    /// sending initial metadata (status in real trailers).
    @Test(arguments: HandlerKind.allCases, [false, true])
    func statusCodeMessageAndDetails(kind: HandlerKind, headersFirst: Bool) async throws {
        let handler: ServerHandler
        switch kind {
        case .blocking:
            handler = .blocking { call in
                if headersFirst { try call.sendInitialMetadata(Metadata()) }
                throw RPCError(.notFound, awkwardMessage, details: details)
            }
        case .async:
            handler = .async { call in
                if headersFirst { try call.sendInitialMetadata(Metadata()) }
                throw RPCError(.notFound, awkwardMessage, details: details)
            }
        }
        try await withServer(methods: [TestMethod("/test.Status/Fail", .unary, handler)]) { h in
            let r = runCall(h.channel, "/test.Status/Fail", [bytes("x")])
            #expect(r.status.code == .notFound)
            #expect(r.status.message == awkwardMessage)
            #expect(r.status.details == details)
            #expect(r.status == Status(.notFound, awkwardMessage, details: details))
            #expect(r.messages.isEmpty)
            #expect(r.initialMetadata.isEmpty)

            // The unary convenience throws the same status.
            do {
                _ = try h.channel.unary("/test.Status/Fail", [], options: CallOptions(timeout: testTimeout))
                Issue.record("unary returned instead of throwing")
            } catch let e as RPCError {
                #expect(e.status == Status(.notFound, awkwardMessage, details: details))
            }
        }
    }

    /// Trailers-only: no response headers before the status, so initial metadata is empty
    /// even though the handler prepared some trailers.
    @Test func trailersOnly() async throws {
        let handler = ServerHandler.blocking { _ in
            var t = Metadata()
            try t.add("x-why", "trailers-only")
            throw RPCError(.permissionDenied, "no", trailers: t)
        }
        try await withServer(methods: [TestMethod("/test.Status/Deny", .serverStreaming, handler)]) { h in
            let call = h.channel.makeCall("/test.Status/Deny", options: CallOptions(timeout: testTimeout))
            call.start()
            try call.send([])
            call.closeSend()
            let initial = call.waitInitialMetadata()
            #expect(initial.isEmpty)
            #expect(try call.receive() == nil)
            #expect(call.waitStatus() == Status(.permissionDenied, "no"))
            #expect(call.trailingMetadata.first("x-why") == "trailers-only")
        }
    }

    /// An error after some streamed messages: the client gets the messages, then the status.
    @Test(arguments: HandlerKind.allCases)
    func errorAfterMessages(kind: HandlerKind) async throws {
        let handler: ServerHandler
        switch kind {
        case .blocking:
            handler = .blocking { call in
                _ = try call.receiveMessage()
                for i in 0..<3 { try call.sendMessage(bytes("m\(i)")) }
                throw RPCError(.aborted, "stopped after 3", details: [9, 9])
            }
        case .async:
            handler = .async { call in
                _ = try await call.receive()
                for i in 0..<3 { try await call.send(bytes("m\(i)")) }
                throw RPCError(.aborted, "stopped after 3", details: [9, 9])
            }
        }
        try await withServer(methods: [TestMethod("/test.Status/Partial", .serverStreaming, handler)]) { h in
            let r = runCall(h.channel, "/test.Status/Partial", [bytes("go")])
            #expect(r.messages.map { text($0) } == ["m0", "m1", "m2"])
            #expect(r.status == Status(.aborted, "stopped after 3", details: [9, 9]))
        }
    }

    /// Any other error becomes UNKNOWN; returning from a unary handler without a response is INTERNAL.
    @Test(arguments: HandlerKind.allCases)
    func otherErrorsAndMissingResponse(kind: HandlerKind) async throws {
        let throwing: ServerHandler
        let silent: ServerHandler
        switch kind {
        case .blocking:
            throwing = .blocking { _ in throw NotAnRPCError() }
            silent = .blocking { call in _ = try call.receiveMessage() }
        case .async:
            throwing = .async { _ in throw NotAnRPCError() }
            silent = .async { call in _ = try await call.receive() }
        }
        try await withServer(methods: [TestMethod("/test.Status/Throw", .unary, throwing),
                                        TestMethod("/test.Status/Silent", .unary, silent)]) { h in
            let r = runCall(h.channel, "/test.Status/Throw", [[]])
            #expect(r.status.code == .unknown)
            #expect(r.messages.isEmpty)

            let s = runCall(h.channel, "/test.Status/Silent", [[]])
            #expect(s.status.code == .internalError)
            #expect(s.messages.isEmpty)
        }
    }
}
