import Testing
@testable import GRPCHelperCore

/// A message as the deframer reports it, comparable in expectations.
private struct Message: Equatable, CustomStringConvertible {
    var compressed: Bool
    var payload: [UInt8]
    var description: String { "(\(compressed ? "compressed" : "plain"), \(payload.count) bytes)" }
}

@Suite struct MessageFramingTests {
    /// Messages of varied sizes, including empty and compressed-flag ones.
    private static let messages: [Message] = [
        Message(compressed: false, payload: []),
        Message(compressed: false, payload: Array("hello".utf8)),
        Message(compressed: true, payload: []),
        Message(compressed: true, payload: (0 ..< 257).map { UInt8(truncatingIfNeeded: $0 * 31) }),
        Message(compressed: false, payload: [0]),
        Message(compressed: false, payload: (0 ..< 600).map { UInt8(truncatingIfNeeded: $0) }),
        Message(compressed: false, payload: []),
    ]

    private static let stream: [UInt8] = {
        var out: [UInt8] = []
        for message in messages {
            MessageFramer.appendFrame(message.payload, compressed: message.compressed, to: &out)
        }
        return out
    }()

    /// Drains every complete message currently available.
    private static func drain(_ deframer: inout MessageDeframer) throws -> [Message] {
        var result: [Message] = []
        while let next = try deframer.next() {
            result.append(Message(compressed: next.compressed, payload: next.payload))
        }
        return result
    }

    /// A prefix declaring a large message costs only the bytes that arrived (issue 15,
    /// defect 2: the deframer used to reserve the declared length at once).
    @Test func aDeclaredLengthReservesNothing() throws {
        var d = MessageDeframer(maxMessageSize: 4 << 20)
        d.append([0, 0x00, 0x40, 0x00, 0x00, 1, 2, 3])   // 4 MiB declared, 3 bytes sent
        #expect(try d.next() == nil)
        #expect(d.bufferedByteCount == 8)
        #expect(d.bufferCapacity < 4096, "capacity \(d.bufferCapacity)")
        // It grows with what arrives, and the message completes.
        let rest = [UInt8](repeating: 7, count: (4 << 20) - 3)
        d.append(rest)
        let m = try d.next()
        #expect(m?.payload.count == 4 << 20)
    }

    @Test func frameLayout() {
        #expect(MessageFramer.frame([], compressed: false) == [0, 0, 0, 0, 0])
        #expect(MessageFramer.frame([0xAB], compressed: true) == [1, 0, 0, 0, 1, 0xAB])
        let big = [UInt8](repeating: 7, count: 0x01_02_03)
        let framed = MessageFramer.frame(big, compressed: false)
        #expect(Array(framed.prefix(5)) == [0, 0x00, 0x01, 0x02, 0x03])
        #expect(Array(framed.dropFirst(5)) == big)

        var out: [UInt8] = [9, 9]
        MessageFramer.appendFrame([1, 2], compressed: false, to: &out)
        MessageFramer.appendFrame([3], compressed: true, to: &out)
        #expect(out == [9, 9, 0, 0, 0, 0, 2, 1, 2, 1, 0, 0, 0, 1, 3])
    }

    @Test func wholeStreamAtOnce() throws {
        var deframer = MessageDeframer(maxMessageSize: 4096)
        deframer.append(Self.stream)
        #expect(try Self.drain(&deframer) == Self.messages)
        #expect(deframer.bufferedByteCount == 0)
        #expect(try deframer.next() == nil)
    }

    @Test func splitInTwoAtEveryOffset() throws {
        let stream = Self.stream
        for split in 0 ... stream.count {
            var deframer = MessageDeframer(maxMessageSize: 4096)
            deframer.append(Array(stream[..<split]))
            var received = try Self.drain(&deframer)
            deframer.append(Array(stream[split...]))
            received += try Self.drain(&deframer)
            #expect(received == Self.messages, "split at \(split)")
            #expect(deframer.bufferedByteCount == 0, "split at \(split)")
        }
    }

    @Test func splitInTwoAtEveryOffsetUsingRawBuffers() throws {
        let stream = Self.stream
        for split in 0 ... stream.count {
            var deframer = MessageDeframer(maxMessageSize: 4096)
            var received: [Message] = []
            try stream.withUnsafeBytes { bytes in
                deframer.append(UnsafeRawBufferPointer(rebasing: bytes[..<split]))
                received += try Self.drain(&deframer)
                deframer.append(UnsafeRawBufferPointer(rebasing: bytes[split...]))
                received += try Self.drain(&deframer)
            }
            #expect(received == Self.messages, "split at \(split)")
        }
    }

    @Test func byteByByte() throws {
        var deframer = MessageDeframer(maxMessageSize: 4096)
        var received: [Message] = []
        var boundaries: [Int] = []
        for (index, byte) in Self.stream.enumerated() {
            deframer.append([byte])
            let new = try Self.drain(&deframer)
            if !new.isEmpty { boundaries.append(index + 1) }
            received += new
        }
        #expect(received == Self.messages)
        #expect(deframer.bufferedByteCount == 0)

        // A message becomes available exactly when its last byte arrives.
        var expectedBoundaries: [Int] = []
        var offset = 0
        for message in Self.messages {
            offset += 5 + message.payload.count
            expectedBoundaries.append(offset)
        }
        #expect(boundaries == expectedBoundaries)
    }

    @Test(arguments: [2, 3, 7, 64, 1000])
    func fixedChunksWithoutDrainingInBetween(chunk: Int) throws {
        // Several appends before the first next() exercise buffering and compaction.
        var deframer = MessageDeframer(maxMessageSize: 4096)
        var received: [Message] = []
        var start = 0
        while start < Self.stream.count {
            let end = min(start + chunk, Self.stream.count)
            deframer.append(Array(Self.stream[start ..< end]))
            if (start / chunk) % 3 == 2 { received += try Self.drain(&deframer) }
            start = end
        }
        received += try Self.drain(&deframer)
        #expect(received == Self.messages)
    }

    @Test func truncatedMessageLeavesBufferedBytes() throws {
        var deframer = MessageDeframer(maxMessageSize: 100)
        deframer.append([0, 0, 0, 0, 3, 1, 2])
        #expect(try deframer.next() == nil)
        #expect(deframer.bufferedByteCount == 7)
        deframer.append([3, 0, 0])
        let message = try #require(try deframer.next())
        #expect(message.payload == [1, 2, 3])
        #expect(!message.compressed)
        #expect(try deframer.next() == nil)
        #expect(deframer.bufferedByteCount == 2)
    }

    @Test func messageAtTheLimitIsAccepted() throws {
        var deframer = MessageDeframer(maxMessageSize: 10)
        deframer.append(MessageFramer.frame([UInt8](repeating: 1, count: 10), compressed: false))
        #expect(try deframer.next()?.payload.count == 10)

        var zeroLimit = MessageDeframer(maxMessageSize: 0)
        zeroLimit.append(MessageFramer.frame([], compressed: true))
        #expect(try zeroLimit.next()?.payload == [])
    }

    @Test(arguments: [11, 1 << 20, Int(UInt32.max)])
    func oversizeMessageFailsOnPrefixAlone(size: Int) {
        var deframer = MessageDeframer(maxMessageSize: 10)
        let length = UInt32(size)
        deframer.append([0, UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)])
        #expect(throws: DeframeError.messageTooLarge(size: size, limit: 10)) { try deframer.next() }
    }

    @Test func oversizeDescriptionMatchesGrpcio() {
        let error = DeframeError.messageTooLarge(size: 5000, limit: 4096)
        #expect(error.description == "received message larger than max (5000 vs. 4096)")
    }

    @Test(arguments: [2, 3, 0x80, 0xFF] as [UInt8])
    func invalidCompressedFlag(flag: UInt8) throws {
        var deframer = MessageDeframer(maxMessageSize: 100)
        deframer.append(MessageFramer.frame([1, 2, 3], compressed: false))
        deframer.append([flag, 0, 0, 0, 1, 9])
        #expect(try deframer.next()?.payload == [1, 2, 3])
        #expect(throws: DeframeError.invalidCompressedFlag(flag)) { try deframer.next() }
        #expect(DeframeError.invalidCompressedFlag(flag).description.contains("\(flag)"))
    }

    @Test func largeMessageAcrossManyAppends() throws {
        let payload = (0 ..< 300_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let framed = MessageFramer.frame(payload, compressed: true) + MessageFramer.frame([42], compressed: false)
        var deframer = MessageDeframer(maxMessageSize: 1 << 20)
        var received: [Message] = []
        var start = 0
        while start < framed.count {
            let end = min(start + 16_384, framed.count)
            deframer.append(Array(framed[start ..< end]))
            received += try Self.drain(&deframer)
            start = end
        }
        #expect(received == [Message(compressed: true, payload: payload), Message(compressed: false, payload: [42])])
        #expect(deframer.bufferedByteCount == 0)
    }
}
