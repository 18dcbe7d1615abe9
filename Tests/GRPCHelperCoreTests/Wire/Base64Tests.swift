import Testing
@testable import GRPCHelperCore

@Suite struct Base64Tests {
    /// RFC 4648 §10 test vectors: (input, padded, unpadded).
    @Test(arguments: [
        ("", "", ""),
        ("f", "Zg==", "Zg"),
        ("fo", "Zm8=", "Zm8"),
        ("foo", "Zm9v", "Zm9v"),
        ("foob", "Zm9vYg==", "Zm9vYg"),
        ("fooba", "Zm9vYmE=", "Zm9vYmE"),
        ("foobar", "Zm9vYmFy", "Zm9vYmFy"),
    ])
    func rfcVectors(input: String, padded: String, unpadded: String) {
        let bytes = Array(input.utf8)
        #expect(Base64.encode(bytes, padded: true) == padded)
        #expect(Base64.encode(bytes, padded: false) == unpadded)
        #expect(Base64.encode(bytes) == unpadded, "default is unpadded")
        #expect(Base64.decode(padded) == bytes)
        #expect(Base64.decode(unpadded) == bytes)
    }

    @Test func usesStandardAlphabet() {
        #expect(Base64.encode([0xFB, 0xFF, 0xBF]) == "+/+/")
        #expect(Base64.decode("+/+/") == [0xFB, 0xFF, 0xBF])
        #expect(Base64.decode("-_-_") == nil, "URL-safe alphabet is not accepted")
    }

    @Test(arguments: 0 ..< 10)
    func allByteValuesRoundTrip(offset: Int) {
        let bytes = (0 ..< 256 + offset).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ offset) }
        for padded in [false, true] {
            let text = Base64.encode(bytes, padded: padded)
            #expect(padded ? text.utf8.count % 4 == 0 : !text.hasSuffix("="))
            #expect(Base64.decode(text) == bytes)
        }
    }

    @Test(arguments: [
        "Z",            // a single trailing character cannot encode a byte
        "Zm9vY",
        "=",
        "==",
        "Zg=",          // padding must complete a 4-character group
        "Zg===",
        "Zm9v=",
        "Zm9v====",
        "=Zg",
        "Z=g=",
        "Zg==Zg==",     // padding only at the very end
        "Zm 9v",
        "Zm9v\n",
        " Zm9v",
        "Zm9v!",
        "Zm9vYmFyé",
        "Zm9v.mFy",
    ])
    func rejectsInvalidInput(text: String) {
        #expect(Base64.decode(text) == nil)
    }
}
