import Testing
@testable import GRPCHelperCore

@Suite struct PercentEncodingTests {
    /// The status message used by gRPC's interop test "special_status_message".
    static let specMessage = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"

    @Test func specMessageRoundTrips() {
        let wire = GRPCMessageCoding.encode(Self.specMessage)
        #expect(wire == "%09%0Atest with whitespace%0D%0Aand Unicode BMP %E2%98%BA and non-BMP %F0%9F%98%88%09%0A")
        #expect(GRPCMessageCoding.decode(wire) == Self.specMessage)
    }

    @Test(arguments: [
        ("", ""),
        ("plain ASCII message", "plain ASCII message"),
        (" !\"#$&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~", " !\"#$&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~"),
        ("100%", "100%25"),
        ("%41", "%2541"),
        ("a\u{0}b", "a%00b"),
        ("\u{1F}\u{7F}", "%1F%7F"),
        ("é", "%C3%A9"),
        ("☺", "%E2%98%BA"),
        ("😈", "%F0%9F%98%88"),
    ])
    func exactWireForm(message: String, wire: String) {
        #expect(GRPCMessageCoding.encode(message) == wire)
        #expect(GRPCMessageCoding.decode(wire) == message)
    }

    @Test(arguments: [
        ("%", "%"),
        ("%4", "%4"),
        ("%zz", "%zz"),
        ("%4z", "%4z"),
        ("abc%", "abc%"),
        ("%%41", "%A"),
        ("%41%", "A%"),
        ("%e2%98%ba", "☺"),           // lowercase hex accepted
        ("%FF", "\u{FFFD}"),          // invalid UTF-8 → replacement character
        ("%E2%98", "\u{FFFD}"),       // truncated UTF-8 sequence
        ("no escapes ☺", "no escapes ☺"),
    ])
    func lenientDecode(wire: String, expected: String) {
        #expect(GRPCMessageCoding.decode(wire) == expected)
    }

    @Test func encodedFormIsAlwaysPrintableASCII() {
        var all = ""
        for scalar in (0 ... 0x2FF).compactMap(Unicode.Scalar.init) { all.unicodeScalars.append(scalar) }
        let wire = GRPCMessageCoding.encode(all)
        #expect(wire.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E })
        #expect(GRPCMessageCoding.decode(wire) == all)
    }
}
