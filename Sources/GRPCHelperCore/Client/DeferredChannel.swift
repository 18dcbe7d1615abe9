import NIOConcurrencyHelpers

/// A channel made before its options are known: they can be changed until the first
/// call needs the channel, which creates it then (the C ABI's `gh_channel`, whose options
/// are set one by one after `gh_channel_new`). Thread-safe.
public final class DeferredChannel: Sendable {
    public let target: String
    private struct State {
        var options = ChannelOptions()
        var channel: GRPCChannel?
        var closed = false
    }
    private let state = NIOLockedValueBox(State())

    /// Checks `target` ("host:port", "[v6]:port", "unix:PATH"); connects nothing.
    public init(target: String) throws {
        do { _ = try Endpoint.parseTarget(target) } catch let e as EndpointError {
            throw RuntimeError(.invalidArgument, "invalid target: \(e.message)")
        }
        self.target = target
    }

    /// Changes the options: only before the first call (else `RuntimeError(.invalidState)`,
    /// nothing changed). A throwing `change` changes nothing either.
    public func configure(_ change: (inout ChannelOptions) throws -> Void) throws {
        try state.withLockedValue { s in
            guard s.channel == nil else {
                throw RuntimeError(.invalidState, "channel options must be set before the first call")
            }
            var o = s.options
            try change(&o)
            s.options = o
        }
    }

    /// Whether the channel exists (a call needed it).
    public var isStarted: Bool { state.withLockedValue { $0.channel != nil } }

    /// The channel, created with the options on first use. Once closed, a channel made
    /// now is closed at once (calls on it end CANCELLED).
    public func channel() throws -> GRPCChannel {
        try state.withLockedValue { s in
            if let c = s.channel { return c }
            let c = try GRPCChannel(target: target, options: s.options)
            s.channel = c
            if s.closed { c.close() }
            return c
        }
    }

    /// Closes the channel if it exists; a later `channel()` gives a closed one.
    public func close() {
        state.withLockedValue { s -> GRPCChannel? in
            s.closed = true
            return s.channel
        }?.close()
    }
}
