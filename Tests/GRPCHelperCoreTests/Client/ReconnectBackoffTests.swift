// gRPC's connection backoff (doc/connection-backoff.md) on a fake clock: attempt times
// computed from when each attempt began, the first retry after the initial backoff, then
// ×1.6 with ±20 % jitter, the wait capped at the maximum before its jitter.
import Testing
@testable import GRPCHelperCore

@Suite struct ReconnectBackoffTests {
    /// The start times (seconds on a fake clock) of `n` attempts that each fail after
    /// `attemptTakes` seconds (or at once), with the jitter drawn from `random`.
    private func attemptTimes(_ n: Int, initial: Double = 1, maximum: Double = 120, attemptTakes: Double = 0,
                              random: () -> Double) -> [Double] {
        var b = ReconnectBackoff(initial: initial, maximum: maximum)
        var start: UInt64 = 1_000_000_000   // the fake clock, in nanoseconds
        var times: [Double] = []
        for _ in 0..<n {
            times.append(Double(start - 1_000_000_000) / 1e9)
            let failedAt = start + UInt64(attemptTakes * 1e9)
            start = max(b.nextAttempt(after: start, random: random()), failedAt)
        }
        return times
    }

    private func close(_ a: [Double], _ b: [Double]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) < 1e-6 }
    }

    @Test func growsBy1Point6UpToTheMaximum() {
        // random 0.5: no jitter.
        let t = attemptTimes(14, random: { 0.5 })
        var expected: [Double] = [0]
        var wait = 1.0
        for i in 1..<14 {
            expected.append(expected[i - 1] + wait)
            wait = min(wait * 1.6, 120)
        }
        #expect(close(t, expected), "\(t)")
        // The waits: 1, 1.6, 2.56, ... then 120 from the 12th on.
        let waits = zip(t.dropFirst(), t).map { $0 - $1 }
        #expect(abs(waits[1] - 1.6) < 1e-9 && abs(waits[2] - 2.56) < 1e-9)
        #expect(waits.suffix(2).allSatisfy { abs($0 - 120) < 1e-9 })
    }

    @Test func jitterSpreadsEachWaitByTwentyPercentButNotTheFirst() {
        let low = attemptTimes(4, random: { 0 })
        let high = attemptTimes(4, random: { 0.999999999 })
        #expect(close(low, [0, 1, 1 + 1.6 * 0.8, 1 + 1.6 * 0.8 + 2.56 * 0.8]), "\(low)")
        #expect(abs(high[2] - (1 + 1.6 * 1.2)) < 1e-6, "\(high)")
        // At the cap: 120 s ± 20 %, never more than 144 s.
        var b = ReconnectBackoff(initial: 1, maximum: 120)
        for _ in 0..<30 { _ = b.nextDelay(random: 0.5) }
        #expect(abs(b.nextDelay(random: 0.999999999) - 144) < 1e-6)
        #expect(abs(b.nextDelay(random: 0) - 96) < 1e-6)
    }

    @Test func waitsCountFromTheAttemptsStart() {
        // Attempts that take 3 s to fail: the 1 s and 1.6 s waits are already over when
        // they fail, so the next one starts at once; 2.56 s and later are not.
        let t = attemptTimes(5, attemptTakes: 3, random: { 0.5 })
        #expect(close(t, [0, 3, 6, 9, 13.096]), "\(t)")
    }

    @Test func resetStartsOverAndOptionsAreHonoured() {
        var b = ReconnectBackoff(initial: 0.1, maximum: 0.3)
        #expect(b.nextDelay(random: 0.5) == 0.1)
        #expect(abs(b.nextDelay(random: 0.5) - 0.16) < 1e-9)
        #expect(abs(b.nextDelay(random: 0.5) - 0.256) < 1e-9)
        #expect(abs(b.nextDelay(random: 0.5) - 0.3) < 1e-9)
        b.reset()
        #expect(b.nextDelay(random: 0) == 0.1)
    }
}
