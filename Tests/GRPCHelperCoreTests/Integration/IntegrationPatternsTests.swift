// The four call patterns over real sockets, with blocking and async handlers.
import Testing
@testable import GRPCHelperCore

enum HandlerKind: String, CaseIterable, Sendable {
    case blocking, async
}

/// An echo service in either handler style:
/// - Unary: "echo:" + request
/// - ClientStream: "<count>:" + requests joined with ","
/// - ServerStream: request "N" → "item 0" ... "item N-1"
/// - Bidi: each request "x" → "pong:x", as it arrives
func echoService(_ kind: HandlerKind, prefix: String = "/test.Echo") -> [TestMethod] {
    switch kind {
    case .blocking:
        return [
            TestMethod("\(prefix)/Unary", .unary, .blocking { call in
                guard let req = try call.receiveMessage() else { throw RPCError(.invalidArgument, "no request") }
                guard try call.receiveMessage() == nil else { throw RPCError(.internalError, "second request") }
                try call.sendMessage(bytes("echo:") + req)
            }),
            TestMethod("\(prefix)/ClientStream", .clientStreaming, .blocking { call in
                var all: [String] = []
                while let m = try call.receiveMessage() { all.append(text(m)!) }
                try call.sendMessage(bytes("\(all.count):" + all.joined(separator: ",")))
            }),
            TestMethod("\(prefix)/ServerStream", .serverStreaming, .blocking { call in
                let n = try itemCount(try call.receiveMessage())
                for i in 0..<n { try call.sendMessage(bytes("item \(i)")) }
            }),
            TestMethod("\(prefix)/Bidi", .bidiStreaming, .blocking { call in
                while let m = try call.receiveMessage() { try call.sendMessage(bytes("pong:") + m) }
            }),
        ]
    case .async:
        return [
            TestMethod("\(prefix)/Unary", .unary, .async { call in
                guard let req = try await call.receive() else { throw RPCError(.invalidArgument, "no request") }
                guard try await call.receive() == nil else { throw RPCError(.internalError, "second request") }
                try await call.send(bytes("echo:") + req)
            }),
            TestMethod("\(prefix)/ClientStream", .clientStreaming, .async { call in
                var all: [String] = []
                while let m = try await call.receive() { all.append(text(m)!) }
                try await call.send(bytes("\(all.count):" + all.joined(separator: ",")))
            }),
            TestMethod("\(prefix)/ServerStream", .serverStreaming, .async { call in
                let n = try itemCount(try await call.receive())
                for i in 0..<n { try await call.send(bytes("item \(i)")) }
            }),
            TestMethod("\(prefix)/Bidi", .bidiStreaming, .async { call in
                while let m = try await call.receive() { try await call.send(bytes("pong:") + m) }
            }),
        ]
    }
}

private func itemCount(_ request: [UInt8]?) throws -> Int {
    guard let r = request, let n = Int(text(r)!) else { throw RPCError(.invalidArgument, "expected a count") }
    return n
}

@Suite("Integration: call patterns", .timeLimit(.minutes(1)))
struct IntegrationPatternsTests {
    @Test(arguments: HandlerKind.allCases)
    func unary(kind: HandlerKind) async throws {
        try await withServer(methods: echoService(kind)) { h in
            let reply = try h.channel.unary("/test.Echo/Unary", bytes("hello"),
                                            options: CallOptions(timeout: testTimeout))
            #expect(text(reply) == "echo:hello")

            // An empty message is a message too.
            let r = runCall(h.channel, "/test.Echo/Unary", [[]])
            #expect(r.status == .ok)
            #expect(r.messages.map { text($0) } == ["echo:"])
        }
    }

    @Test(arguments: HandlerKind.allCases)
    func clientStreaming(kind: HandlerKind) async throws {
        try await withServer(methods: echoService(kind)) { h in
            let r = runCall(h.channel, "/test.Echo/ClientStream", ["a", "b", "c", "d", "e"].map(bytes))
            #expect(r.status == .ok)
            #expect(r.messages.map { text($0) } == ["5:a,b,c,d,e"])

            let empty = runCall(h.channel, "/test.Echo/ClientStream", [])
            #expect(empty.status == .ok)
            #expect(empty.messages.map { text($0) } == ["0:"])
        }
    }

    @Test(arguments: HandlerKind.allCases)
    func serverStreaming(kind: HandlerKind) async throws {
        try await withServer(methods: echoService(kind)) { h in
            let r = runCall(h.channel, "/test.Echo/ServerStream", [bytes("7")])
            #expect(r.status == .ok)
            #expect(r.messages.map { text($0)! } == (0..<7).map { "item \($0)" })

            let none = runCall(h.channel, "/test.Echo/ServerStream", [bytes("0")])
            #expect(none.status == .ok)
            #expect(none.messages.isEmpty)
        }
    }

    @Test(arguments: HandlerKind.allCases)
    func bidiPingPong(kind: HandlerKind) async throws {
        try await withServer(methods: echoService(kind)) { h in
            let call = h.channel.makeCall("/test.Echo/Bidi", options: CallOptions(timeout: testTimeout))
            call.start()
            // Each response must arrive before the next request is sent.
            for i in 0..<10 {
                try call.send(bytes("ping \(i)"))
                let reply = try call.receive()
                #expect(text(reply) == "pong:ping \(i)")
                #expect(call.status == nil, "the call is still running")
            }
            call.closeSend()
            #expect(try call.receive() == nil)
            #expect(call.waitStatus() == .ok)
        }
    }

    /// The async client API against both handler styles.
    @Test(arguments: HandlerKind.allCases)
    func asyncClient(kind: HandlerKind) async throws {
        try await withServerAsync(methods: echoService(kind)) { h in
            let reply = try await h.channel.unary("/test.Echo/Unary", bytes("async"),
                                                  options: CallOptions(timeout: testTimeout))
            #expect(text(reply) == "echo:async")

            let call = h.channel.makeCall("/test.Echo/Bidi", options: CallOptions(timeout: testTimeout))
            call.start()
            for i in 0..<5 {
                try await call.send(bytes("\(i)"))
                #expect(text(try await call.receive()) == "pong:\(i)")
            }
            call.closeSend()
            #expect(try await call.receive() == nil)
            #expect(await call.statusAsync() == .ok)
        }
    }
}
