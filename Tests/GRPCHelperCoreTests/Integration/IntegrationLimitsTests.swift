// Limits over real sockets: message size limits on both sides, MAX_CONCURRENT_STREAMS,
// and flow-control backpressure on a fast server stream to a client that does not read.
import Testing
@testable import GRPCHelperCore

private let MiB = 1 << 20

/// A message of `size` bytes whose content depends on `seed` (a 251-byte pattern, repeated).
private func message(_ size: Int, seed: Int = 0) -> [UInt8] {
    let pattern = (0..<251).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed) }
    var out: [UInt8] = []
    out.reserveCapacity(size + pattern.count)
    while out.count < size { out.append(contentsOf: pattern) }
    out.removeLast(out.count - size)
    return out
}

/// Unary echo that counts its runs.
private func countingEcho(_ runs: Locked<Int>) -> TestMethod {
    TestMethod("/test.Limits/Echo", .unary, .blocking { call in
        runs.withLock { $0 += 1 }
        guard let m = try call.receiveMessage() else { throw RPCError(.invalidArgument, "no request") }
        try call.sendMessage(m)
    })
}

@Suite("Integration: limits", .timeLimit(.minutes(1)))
struct IntegrationLimitsTests {
    /// The server's default 4 MiB receive limit: 5 MiB is refused, 3 MiB passes.
    @Test func serverReceiveLimit() async throws {
        let runs = Locked(0)
        try await withServer(methods: [countingEcho(runs)]) { h in
            #expect(h.server.options.maxReceiveMessageSize == 4 * MiB, "the default limit")
            let big = runCall(h.channel, "/test.Limits/Echo", [message(5 * MiB)])
            #expect(big.status.code == .resourceExhausted)
            #expect(big.messages.isEmpty)
            #expect(runs.value == 0, "the handler never ran")

            let ok = message(3 * MiB, seed: 7)
            let r = runCall(h.channel, "/test.Limits/Echo", [ok])
            #expect(r.status == .ok)
            #expect(r.messages.count == 1)
            #expect(r.messages.first == ok)

            // Exactly at the limit is allowed (also by the client's default 4 MiB limit).
            let atLimit = message(4 * MiB, seed: 3)
            let edge = runCall(h.channel, "/test.Limits/Echo", [atLimit])
            #expect(edge.status == .ok)
            #expect(edge.messages.first == atLimit)
            #expect(runs.value == 2)
        }
    }

    /// ChannelOptions.maxReceiveMessageSize limits responses.
    @Test func clientReceiveLimit() async throws {
        let handler = ServerHandler.blocking { call in
            guard let req = try call.receiveMessage(), let size = Int(text(req)!) else {
                throw RPCError(.invalidArgument, "expected a size")
            }
            try call.sendMessage(message(size))
        }
        var channelOptions = ChannelOptions()
        channelOptions.maxReceiveMessageSize = 1 * MiB
        try await withServer(channelOptions: channelOptions,
                             methods: [TestMethod("/test.Limits/Sized", .unary, handler)]) { h in
            let big = runCall(h.channel, "/test.Limits/Sized", [bytes("\(2 * MiB)")])
            #expect(big.status.code == .resourceExhausted)
            #expect(big.messages.isEmpty)

            let edge = runCall(h.channel, "/test.Limits/Sized", [bytes("\(1 * MiB)")])
            #expect(edge.status == .ok)
            #expect(edge.messages.first == message(1 * MiB))
        }
    }

    /// maxConcurrentStreams = 2: ten calls that each block until released all succeed,
    /// never more than two handlers at once (the client queues the other streams).
    @Test func maxConcurrentStreams() async throws {
        var options = testServerOptions()
        options.maxConcurrentStreams = 2
        try await expectAtMostTwoAtOnce(options: options, path: "/test.Limits/Block", count: 10)
    }

    /// A server stream of 64 MiB in 64 KiB messages to a client that reads nothing: the
    /// handler's sends block after a few MiB (flow control + send buffer), then everything
    /// arrives once the client reads.
    @Test func flowControlBackpressure() async throws {
        let chunk = 64 * 1024
        let total = 64 * MiB
        let sent = Locked(0)
        let handler = ServerHandler.blocking { call in
            _ = try call.receiveMessage()
            var m = [UInt8](repeating: 0xAB, count: chunk)
            for i in 0..<(total / chunk) {
                m[0] = UInt8(truncatingIfNeeded: i)
                m[1] = UInt8(truncatingIfNeeded: i >> 8)
                try call.sendMessage(m)
                sent.withLock { $0 += chunk }
            }
        }
        try await withServer(methods: [TestMethod("/test.Limits/Firehose", .serverStreaming, handler)]) { h in
            let call = h.channel.makeCall("/test.Limits/Firehose", options: CallOptions(timeout: 30))
            call.start()
            try call.send([])
            call.closeSend()

            // Wait (bounded) until the handler's progress has stalled for 300 ms.
            var last = -1
            var changedAt = now()
            let stalled = waitUntil(timeout: 10) {
                let s = sent.value
                if s != last { last = s; changedAt = now() }
                return s > 0 && now() - changedAt > 0.3
            }
            #expect(stalled, "the handler never stopped sending (sent \(sent.value) bytes)")
            let before = sent.value
            #expect(before > 0 && before <= 8 * MiB, "sent \(before) bytes before blocking")

            var count = 0
            var bytesReceived = 0
            var inOrder = true
            while let m = try call.receive() {
                if m.count != chunk || Int(m[0]) | Int(m[1]) << 8 != count & 0xFFFF { inOrder = false }
                count += 1
                bytesReceived += m.count
            }
            #expect(call.waitStatus() == .ok)
            #expect(inOrder)
            #expect(count == total / chunk)
            #expect(bytesReceived == total)
            #expect(sent.value == total)
        }
    }
}
