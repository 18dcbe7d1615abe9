import Testing
@testable import GRPCHelperCore

@Suite struct TimeoutTests {
    @Test(arguments: [
        ("1n", Int64(1)),
        ("1u", 1_000),
        ("1m", 1_000_000),
        ("1S", 1_000_000_000),
        ("1M", 60_000_000_000),
        ("1H", 3_600_000_000_000),
        ("0n", 0),
        ("0H", 0),
        ("00000007S", 7_000_000_000),
        ("12345678m", 12_345_678_000_000),
        ("99999999n", 99_999_999),
        ("99999999S", 99_999_999_000_000_000),
        ("250m", 250_000_000),
        // 99999999 hours is beyond Int64 nanoseconds: saturates.
        ("99999999H", Int64.max),
        ("2562048H", Int64.max),
        ("99999999M", 5_999_999_940_000_000_000),
    ])
    func parsesEveryUnit(value: String, nanoseconds: Int64) {
        #expect(GRPCTimeout.parse(value) == nanoseconds)
    }

    @Test(arguments: [
        "", "1", "S", "n", "123456789S", "000000000n", "-1S", "+1S", "1x", "1s", "1h", "1U",
        " 1S", "1S ", "1 S", "1.5S", "1e3S", "0x1S", "1SS", "1Sm", "١S",
    ])
    func rejectsMalformedValues(value: String) {
        #expect(GRPCTimeout.parse(value) == nil)
    }

    @Test(arguments: [
        (Int64(0), "0n"),
        (-5, "0n"),
        (1, "1n"),
        (99_999_999, "99999999n"),
        (100_000_000, "100000u"),
        (100_000_001, "100001u"),       // rounded up, never shorter
        (1_000_000_000, "1000000u"),
        (99_999_999_000, "99999999u"),
        (99_999_999_999, "100000m"),          // 100000000u would need 9 digits
        (100_000_000_000, "100000m"),
        (99_999_999_000_000, "99999999m"),
        (99_999_999_000_001, "100000S"),       // 100000000m would need 9 digits
        (90_000_000_000, "90000000u"),
        (6_000_000_000_000_000, "6000000S"),
        (100_000_000_000_000_000, "1666667M"),   // 1e8 seconds do not fit in S
        (6_000_000_000_000_000_000, "1666667H"), // 1e8 minutes do not fit in M
        (Int64.max, "2562048H"),
    ])
    func encodesWithFinestFittingUnit(nanoseconds: Int64, expected: String) {
        #expect(GRPCTimeout.encode(nanoseconds: nanoseconds) == expected)
    }

    static let encodeSamples: [Int64] = {
        var samples: [Int64] = [1, 9, 10, 999, 1_000, 1_001, 123_456_789, 999_999_999_999,
                                3_600_000_000_000, 3_600_000_000_001, Int64.max - 1, Int64.max]
        // Powers of ten and their neighbours, then a deterministic pseudo-random spread.
        var power: Int64 = 1
        while power <= Int64.max / 10 {
            power *= 10
            samples += [power - 1, power, power + 1]
        }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0 ..< 2_000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let bits = Int(state >> 58)  // 0...63 → spread over magnitudes
            samples.append(Int64(bitPattern: state >> 1) >> (bits % 62))
        }
        return samples.filter { $0 > 0 }
    }()

    @Test func encodeThenParseIsNeverShorterAndFitsEightDigits() throws {
        for nanoseconds in Self.encodeSamples {
            let text = GRPCTimeout.encode(nanoseconds: nanoseconds)
            let digits = text.dropLast()
            #expect(!digits.isEmpty && digits.count <= 8, "\(nanoseconds) → \(text)")
            let parsed = try #require(GRPCTimeout.parse(text), "\(nanoseconds) → \(text)")
            #expect(parsed >= nanoseconds, "\(nanoseconds) → \(text) → \(parsed)")
        }
    }

    @Test func encodeUsesFinestUnit() throws {
        // The finest fitting unit loses less than one unit of the next finer one,
        // i.e. re-encoding with a finer unit would need more than 8 digits.
        let factors: [Character: Int64] = ["n": 1, "u": 1_000, "m": 1_000_000, "S": 1_000_000_000,
                                           "M": 60_000_000_000, "H": 3_600_000_000_000]
        let order: [Character] = ["n", "u", "m", "S", "M", "H"]
        for nanoseconds in Self.encodeSamples {
            let text = GRPCTimeout.encode(nanoseconds: nanoseconds)
            let unit = try #require(text.last)
            let index = try #require(order.firstIndex(of: unit))
            if index > 0 {
                let finer = try #require(factors[order[index - 1]])
                let needed = nanoseconds / finer + (nanoseconds % finer == 0 ? 0 : 1)
                #expect(needed > 99_999_999, "\(nanoseconds) → \(text) but \(needed)\(order[index - 1]) fits")
            }
        }
    }
}
