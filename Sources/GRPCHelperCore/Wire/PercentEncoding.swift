/// Percent-encoding of `grpc-message` (PROTOCOL-HTTP2.md):
///
///     Percent-Byte-Unencoded → 1*( %x20-%x24 / %x26-%x7E ) ; space and VCHAR, except %
///     Percent-Byte-Encoded   → "%" 2HEXDIG ; 0-9 A-F
///
/// The message is first UTF-8 encoded, then every byte outside the unencoded set is
/// written as `%XX`.
enum GRPCMessageCoding {
    private static let hexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

    @inline(__always)
    private static func needsEncoding(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte > 0x7E || byte == UInt8(ascii: "%")
    }

    /// Percent-encodes per PROTOCOL-HTTP2.md: UTF-8 bytes outside 0x20...0x7E and '%'
    /// itself become %XX (uppercase hex).
    static func encode(_ message: String) -> String {
        let utf8 = message.utf8
        // Fast path: most messages are plain ASCII and need no work.
        guard let firstIndex = utf8.firstIndex(where: needsEncoding) else { return message }

        var out: [UInt8] = []
        out.reserveCapacity(utf8.count + 16)
        out.append(contentsOf: utf8[..<firstIndex])
        for byte in utf8[firstIndex...] {
            if needsEncoding(byte) {
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            } else {
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes leniently: valid %XX (either case) become bytes, invalid sequences are
    /// kept literally; the bytes are decoded as UTF-8 with replacement characters for
    /// invalid sequences.
    static func decode(_ wire: String) -> String {
        let utf8 = wire.utf8
        // A String is always valid UTF-8, so without '%' there is nothing to do.
        guard utf8.contains(UInt8(ascii: "%")) else { return wire }

        let bytes = Array(utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let byte = bytes[i]
            if byte == UInt8(ascii: "%"), i + 2 < bytes.count,
               let high = hexValue(bytes[i + 1]), let low = hexValue(bytes[i + 2]) {
                out.append(high << 4 | low)
                i += 3
            } else {
                out.append(byte)
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    @inline(__always)
    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
}
