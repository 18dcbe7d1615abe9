/// Counts live instances of the core's main classes, so tests can prove that calls,
/// connections, channels and servers are all released (no reference cycles).
/// Debug builds only (the tests'): release builds compile the calls away.
enum LiveObjects {
    enum Kind: Int, CaseIterable {
        case server, serverConnection, serverCall, channel, clientConnection, clientCall, h2Session, h2Stream
    }
    private static let lock = Monitor()
    nonisolated(unsafe) private static var counts = [Int](repeating: 0, count: Kind.allCases.count)

    @inline(__always)
    static func created(_ k: Kind) {
        #if DEBUG
        lock.withLock { counts[k.rawValue] += 1 }
        #endif
    }
    @inline(__always)
    static func destroyed(_ k: Kind) {
        #if DEBUG
        lock.withLock { counts[k.rawValue] -= 1 }
        #endif
    }

    /// A snapshot of the live counts by kind.
    static func snapshot() -> [Kind: Int] {
        lock.withLock { Dictionary(uniqueKeysWithValues: Kind.allCases.map { ($0, counts[$0.rawValue]) }) }
    }
}
