import Testing
@testable import GRPCHelperCore

/// A channel whose options are set after it is made, until its first call.
@Suite struct DeferredChannelTests {
    @Test func optionsApplyUntilTheFirstCallThenAreFixed() throws {
        let deferred = try DeferredChannel(target: "127.0.0.1:1")
        defer { deferred.close() }
        try deferred.configure { $0.maxReceiveMessageSize = 1234 }
        try deferred.configure { $0.userAgentPrefix = "app/1" }
        #expect(!deferred.isStarted)
        let channel = try deferred.channel()
        #expect(deferred.isStarted)
        #expect(channel.options.maxReceiveMessageSize == 1234)
        #expect(channel.options.userAgentPrefix == "app/1")
        #expect(try deferred.channel() === channel, "one channel")
        let e = #expect(throws: RuntimeError.self) { try deferred.configure { $0.maxReceiveMessageSize = 1 } }
        #expect(e?.kind == .invalidState)
        #expect(try deferred.channel().options.maxReceiveMessageSize == 1234)
    }

    @Test func aThrowingChangeChangesNothing() throws {
        let deferred = try DeferredChannel(target: "127.0.0.1:1")
        defer { deferred.close() }
        struct Refused: Error {}
        #expect(throws: Refused.self) {
            try deferred.configure { o in
                o.maxReceiveMessageSize = 99
                throw Refused()
            }
        }
        #expect(try deferred.channel().options.maxReceiveMessageSize == ChannelOptions().maxReceiveMessageSize)
    }

    @Test func badTargetIsRefusedAtOnce() {
        let e = #expect(throws: RuntimeError.self) { _ = try DeferredChannel(target: "no-port") }
        #expect(e?.kind == .invalidArgument)
        #expect(e?.message.hasPrefix("invalid target") == true)
    }

    @Test func closedBeforeUseGivesAClosedChannel() throws {
        let deferred = try DeferredChannel(target: "127.0.0.1:1")
        deferred.close()
        let call = try deferred.channel().makeCall("/a.B/C", options: CallOptions(timeout: 5))
        let (_, status) = call.exchangeUnary([])
        #expect(status.code == .cancelled)
    }
}
