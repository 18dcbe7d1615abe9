/// Standard-alphabet base64 (RFC 4648 §4), as used for `-bin` metadata values.
///
/// gRPC sends binary metadata unpadded and must accept both padded and unpadded
/// values, which Foundation's decoder does not do, hence this small codec.
enum Base64 {
    private static let alphabet: [UInt8] =
        Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Maps an ASCII byte to its 6-bit value; 0xFF marks bytes outside the alphabet.
    private static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() {
            table[Int(byte)] = UInt8(index)
        }
        return table
    }()

    /// Encodes `bytes` with the standard alphabet, with `=` padding only if `padded`.
    static func encode(_ bytes: [UInt8], padded: Bool = false) -> String {
        if bytes.isEmpty { return "" }
        let fullGroups = bytes.count / 3
        let remainder = bytes.count % 3
        let outputCount = fullGroups * 4 + (remainder == 0 ? 0 : (padded ? 4 : remainder + 1))

        let encoded = [UInt8](unsafeUninitializedCapacity: outputCount) { out, count in
            alphabet.withUnsafeBufferPointer { table in
                var o = 0
                var i = 0
                while i + 3 <= bytes.count {
                    let chunk = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
                    out[o] = table[Int(chunk >> 18 & 0x3F)]
                    out[o + 1] = table[Int(chunk >> 12 & 0x3F)]
                    out[o + 2] = table[Int(chunk >> 6 & 0x3F)]
                    out[o + 3] = table[Int(chunk & 0x3F)]
                    i += 3
                    o += 4
                }
                if remainder == 1 {
                    let chunk = UInt32(bytes[i]) << 16
                    out[o] = table[Int(chunk >> 18 & 0x3F)]
                    out[o + 1] = table[Int(chunk >> 12 & 0x3F)]
                    o += 2
                    if padded {
                        out[o] = UInt8(ascii: "=")
                        out[o + 1] = UInt8(ascii: "=")
                        o += 2
                    }
                } else if remainder == 2 {
                    let chunk = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
                    out[o] = table[Int(chunk >> 18 & 0x3F)]
                    out[o + 1] = table[Int(chunk >> 12 & 0x3F)]
                    out[o + 2] = table[Int(chunk >> 6 & 0x3F)]
                    o += 3
                    if padded {
                        out[o] = UInt8(ascii: "=")
                        o += 1
                    }
                }
                count = o
            }
        }
        return String(decoding: encoded, as: UTF8.self)
    }

    /// Decodes standard-alphabet base64. Accepts padded and unpadded input; nil on
    /// invalid characters/length (including misplaced `=` or whitespace). Unused
    /// trailing bits of the last character are ignored.
    static func decode(_ text: String) -> [UInt8]? {
        var input = Array(text.utf8)

        // Strip padding: at most two '=', only at the end, and only so that the
        // padded length is a multiple of four.
        var padding = 0
        while padding < 2, let last = input.last, last == UInt8(ascii: "=") {
            input.removeLast()
            padding += 1
        }
        if padding > 0, (input.count + padding) % 4 != 0 { return nil }

        let remainder = input.count % 4
        if remainder == 1 { return nil }  // one character cannot hold a whole byte

        let fullGroups = input.count / 4
        let outputCount = fullGroups * 3 + (remainder == 0 ? 0 : remainder - 1)

        // No zero-capacity unsafeUninitializedCapacity: it writes the count of the shared
        // empty-array storage, which other threads read (a race ThreadSanitizer reports).
        if outputCount == 0 { return [] }
        var valid = true
        let decoded = [UInt8](unsafeUninitializedCapacity: outputCount) { out, count in
            decodeTable.withUnsafeBufferPointer { table in
                var o = 0
                var i = 0
                // Any byte outside the alphabet maps to 0xFF, so OR-ing the four
                // lookups and testing bit 7 checks a whole group at once.
                while i + 4 <= input.count {
                    let a = table[Int(input[i])], b = table[Int(input[i + 1])]
                    let c = table[Int(input[i + 2])], d = table[Int(input[i + 3])]
                    if (a | b | c | d) & 0x80 != 0 { valid = false; break }
                    let chunk = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                    out[o] = UInt8(truncatingIfNeeded: chunk >> 16)
                    out[o + 1] = UInt8(truncatingIfNeeded: chunk >> 8)
                    out[o + 2] = UInt8(truncatingIfNeeded: chunk)
                    i += 4
                    o += 3
                }
                if valid, remainder >= 2 {
                    let a = table[Int(input[i])], b = table[Int(input[i + 1])]
                    let c = remainder == 3 ? table[Int(input[i + 2])] : 0
                    if (a | b | c) & 0x80 != 0 {
                        valid = false
                    } else {
                        let chunk = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6
                        out[o] = UInt8(truncatingIfNeeded: chunk >> 16)
                        o += 1
                        if remainder == 3 {
                            out[o] = UInt8(truncatingIfNeeded: chunk >> 8)
                            o += 1
                        }
                    }
                }
                count = valid ? o : 0
            }
        }
        return valid ? decoded : nil
    }
}
