/// The `grpc-timeout` header (PROTOCOL-HTTP2.md):
///
///     Timeout     → "grpc-timeout" TimeoutValue TimeoutUnit
///     TimeoutValue → positive integer as ASCII string of at most 8 digits
///     TimeoutUnit → "H" / "M" / "S" / "m" / "u" / "n"
enum GRPCTimeout {
    /// Largest value that fits in the 8 digits allowed by the spec.
    static let maxValue: Int64 = 99_999_999

    /// Units from finest to coarsest, with their length in nanoseconds.
    private static let units: [(unit: UInt8, nanoseconds: Int64)] = [
        (UInt8(ascii: "n"), 1),
        (UInt8(ascii: "u"), 1_000),
        (UInt8(ascii: "m"), 1_000_000),
        (UInt8(ascii: "S"), 1_000_000_000),
        (UInt8(ascii: "M"), 60_000_000_000),
        (UInt8(ascii: "H"), 3_600_000_000_000),
    ]

    /// Parses a grpc-timeout header value: 1 to 8 ASCII digits followed by exactly
    /// one unit H M S m u n. Returns the duration in nanoseconds (saturating at
    /// `Int64.max`), nil when malformed (empty, >8 digits, bad unit, non-digits,
    /// sign, spaces).
    static func parse(_ value: String) -> Int64? {
        let bytes = value.utf8
        // At least one digit plus the unit, at most eight digits plus the unit.
        guard bytes.count >= 2, bytes.count <= 9, let unitByte = bytes.last else { return nil }

        let factor: Int64
        switch unitByte {
        case UInt8(ascii: "n"): factor = 1
        case UInt8(ascii: "u"): factor = 1_000
        case UInt8(ascii: "m"): factor = 1_000_000
        case UInt8(ascii: "S"): factor = 1_000_000_000
        case UInt8(ascii: "M"): factor = 60_000_000_000
        case UInt8(ascii: "H"): factor = 3_600_000_000_000
        default: return nil
        }

        var amount: Int64 = 0
        for byte in bytes.dropLast() {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            amount = amount * 10 + Int64(byte &- UInt8(ascii: "0"))  // ≤ 8 digits: no overflow
        }

        let (product, overflow) = amount.multipliedReportingOverflow(by: factor)
        return overflow ? Int64.max : product
    }

    /// Encodes a non-negative duration in nanoseconds as a grpc-timeout value with at
    /// most 8 digits, choosing the finest unit that fits (n, u, m, S, M, H) and
    /// rounding up so the peer never sees a shorter deadline. 0 (or a negative
    /// duration) gives "0n"; values beyond the range clamp to "99999999H".
    static func encode(nanoseconds: Int64) -> String {
        guard nanoseconds > 0 else { return "0n" }
        for (unit, length) in units {
            // Ceiling division without risking overflow near Int64.max.
            let (quotient, remainder) = nanoseconds.quotientAndRemainder(dividingBy: length)
            let amount = remainder == 0 ? quotient : quotient + 1
            if amount <= maxValue {
                return String(amount) + String(UnicodeScalar(unit))
            }
        }
        // Unreachable with Int64 input (Int64.max is about 2.6 million hours), kept
        // so the function is total.
        return "99999999H"
    }
}
