/// Counts live instances of the core's main classes, so tests can prove that calls,
/// connections, channels and servers are all released (no reference cycles).
/// The cost is one locked increment per object; always on.
enum LiveObjects {
    enum Kind: Int, CaseIterable {
        case server, serverConnection, serverCall, channel, clientConnection, clientCall, h2Session, h2Stream
    }
    private static let lock = Monitor()
    nonisolated(unsafe) private static var counts = [Int](repeating: 0, count: Kind.allCases.count)

    @inline(__always)
    static func created(_ k: Kind) { lock.withLock { counts[k.rawValue] += 1 } }
    @inline(__always)
    static func destroyed(_ k: Kind) { lock.withLock { counts[k.rawValue] -= 1 } }

    /// A snapshot of the live counts by kind.
    static func snapshot() -> [Kind: Int] {
        lock.withLock { Dictionary(uniqueKeysWithValues: Kind.allCases.map { ($0, counts[$0.rawValue]) }) }
    }
}
