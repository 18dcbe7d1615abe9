import Testing
@testable import GRPCHelperCore

@Suite struct CompressionTests {
    @Test(arguments: [
        ("identity", CompressionAlgorithm.identity), ("gzip", .gzip), ("deflate", .deflate),
        ("GZIP", .gzip), ("Deflate", .deflate), ("IDENTITY", .identity),
    ])
    func lookupByName(name: String, expected: CompressionAlgorithm) {
        #expect(CompressionAlgorithm(name: name) == expected)
        #expect(CompressionAlgorithm(name: name)?.name == name.lowercased())
    }

    @Test(arguments: ["", "br", "snappy", "zstd", " gzip", "x-gzip"])
    func unknownNames(name: String) {
        #expect(CompressionAlgorithm(name: name) == nil)
    }

    @Test func supportedAndAdvertised() {
        #expect(CompressionAlgorithm.supported == [.identity, .deflate, .gzip])
        #expect(CompressionAlgorithm.acceptEncodingHeader == "identity,deflate,gzip")
        #expect(CompressionAlgorithm.gzip.description == "gzip")
    }

    @Test(arguments: [
        ("gzip, deflate,identity", ["gzip", "deflate", "identity"]),
        ("gzip", ["gzip"]),
        ("", []),
        (" , ,", []),
        ("  GZip\t,\tSnappy  ", ["gzip", "snappy"]),
        ("identity,,deflate,", ["identity", "deflate"]),
    ])
    func acceptEncodingParsing(value: String, expected: [String]) {
        #expect(CompressionAlgorithm.parseAcceptEncoding(value) == expected)
    }

    static let algorithms: [CompressionAlgorithm] = [.gzip, .deflate]

    /// Round-trip inputs by name (names keep the test report readable).
    static let inputs: [String: [UInt8]] = {
        var random: [UInt8] = []
        random.reserveCapacity(1 << 20)
        var state: UInt32 = 12345
        for _ in 0 ..< (1 << 20) {
            state = state &* 1_664_525 &+ 1_013_904_223
            random.append(UInt8(truncatingIfNeeded: state >> 24))
        }
        let sentence = "The quick brown fox jumps over the lazy gRPC. "
        let text = Array(String(repeating: sentence, count: (1 << 20) / sentence.utf8.count + 1).utf8.prefix(1 << 20))
        return [
            "empty": [],
            "one byte": [0x42],
            "short text": Array("hello gRPC".utf8),
            "1 MiB text": text,        // compresses well: output grows past the first guess
            "1 MiB random": random,    // incompressible: compressed data is larger than its input
        ]
    }()

    @Test(arguments: algorithms, ["empty", "one byte", "short text", "1 MiB text", "1 MiB random"])
    func roundTrip(algorithm: CompressionAlgorithm, inputName: String) throws {
        let input = try #require(Self.inputs[inputName])
        if inputName.hasPrefix("1 MiB") { #expect(input.count == 1 << 20) }
        let compressor = MessageCompressor(algorithm)
        let decompressor = MessageDecompressor(algorithm)
        // Twice, to check that the reused zlib streams are reset between messages.
        for _ in 0 ..< 2 {
            let compressed = try compressor.compress(input)
            #expect(!compressed.isEmpty)
            let restored = try decompressor.decompress(compressed, limit: input.count)
            #expect(restored == input)
        }
    }

    @Test func containerFormats() throws {
        let gzip = try MessageCompressor(.gzip).compress(Array("hello".utf8))
        #expect(Array(gzip.prefix(2)) == [0x1F, 0x8B])
        let deflate = try MessageCompressor(.deflate).compress(Array("hello".utf8))
        #expect(deflate.first == 0x78)
        // Each decoder accepts only its own container.
        #expect(throws: CompressionError.self) { try MessageDecompressor(.deflate).decompress(gzip, limit: 100) }
        #expect(throws: CompressionError.self) { try MessageDecompressor(.gzip).decompress(deflate, limit: 100) }
    }

    /// Output of Python's zlib.compress / gzip.compress(mtime=0) for "hello gRPC".
    @Test func decodesOtherImplementations() throws {
        let zlibData: [UInt8] = [120, 156, 203, 72, 205, 201, 201, 87, 72, 15, 10, 112, 6, 0, 20, 170, 3, 129]
        let gzipData: [UInt8] = [31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 203, 72, 205, 201, 201, 87, 72, 15, 10, 112,
                                 6, 0, 237, 145, 216, 88, 10, 0, 0, 0]
        #expect(try MessageDecompressor(.deflate).decompress(zlibData, limit: 100) == Array("hello gRPC".utf8))
        #expect(try MessageDecompressor(.gzip).decompress(gzipData, limit: 100) == Array("hello gRPC".utf8))
    }

    @Test(arguments: algorithms)
    func corruptInputFails(algorithm: CompressionAlgorithm) throws {
        let decompressor = MessageDecompressor(algorithm)
        let valid = try MessageCompressor(algorithm).compress(Array(String(repeating: "payload ", count: 100).utf8))

        let garbage: [UInt8] = Array("this is not compressed data at all".utf8)
        var flipped = valid
        flipped[flipped.count / 2] ^= 0xFF
        let corrupt: [[UInt8]] = [
            [],                                // nothing at all
            garbage,
            Array(valid.prefix(valid.count / 2)), // truncated
            Array(valid.dropLast()),              // missing last checksum byte
            valid + [0, 1, 2],                    // trailing bytes
            flipped,
        ]
        for input in corrupt {
            let error = #expect(throws: CompressionError.self) { try decompressor.decompress(input, limit: 1 << 20) }
            #expect(error?.limitExceeded == false)
            #expect(error?.message.isEmpty == false)
        }
        // The stream is still usable after errors.
        #expect(try decompressor.decompress(valid, limit: 1 << 20) == Array(String(repeating: "payload ", count: 100).utf8))
    }

    @Test(arguments: algorithms)
    func zipBombStopsAtLimit(algorithm: CompressionAlgorithm) throws {
        let bomb = try MessageCompressor(algorithm).compress([UInt8](repeating: 0, count: 50 << 20))
        #expect(bomb.count < 100_000)
        let decompressor = MessageDecompressor(algorithm)
        let error = #expect(throws: CompressionError.self) { try decompressor.decompress(bomb, limit: 4 << 20) }
        #expect(error?.limitExceeded == true)
        // Still usable afterwards.
        #expect(try decompressor.decompress(try MessageCompressor(algorithm).compress([1, 2, 3]), limit: 3) == [1, 2, 3])
    }

    @Test(arguments: algorithms, [0, 1, 1000, 1024, 4096, 100_000])
    func limitIsExact(algorithm: CompressionAlgorithm, size: Int) throws {
        let input = (0 ..< size).map { UInt8(truncatingIfNeeded: $0 % 7) }
        let compressed = try MessageCompressor(algorithm).compress(input)
        let decompressor = MessageDecompressor(algorithm)
        #expect(try decompressor.decompress(compressed, limit: size) == input)
        if size > 0 {
            let error = #expect(throws: CompressionError.self) { try decompressor.decompress(compressed, limit: size - 1) }
            #expect(error?.limitExceeded == true)
        }
    }
}
