/// Length-prefixed message framing (PROTOCOL-HTTP2.md):
///
///     Length-Prefixed-Message → Compressed-Flag Message-Length Message
///     Compressed-Flag → 0 / 1            ; 1 byte
///     Message-Length  → {length of Message} ; 4 bytes, big-endian unsigned
enum MessageFramer {
    /// Size of the prefix preceding each message.
    static let prefixLength = 5

    /// 5-byte prefix (flag 0/1, big-endian UInt32 length) + payload.
    static func frame(_ payload: [UInt8], compressed: Bool) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(prefixLength + payload.count)
        appendFrame(payload, compressed: compressed, to: &out)
        return out
    }

    /// Appends the 5-byte prefix and `payload` to `out`.
    static func appendFrame(_ payload: [UInt8], compressed: Bool, to out: inout [UInt8]) {
        precondition(payload.count <= Int(UInt32.max), "gRPC message larger than 4 GiB")
        let length = UInt32(truncatingIfNeeded: payload.count)
        out.reserveCapacity(out.count + prefixLength + payload.count)
        out.append(compressed ? 1 : 0)
        out.append(UInt8(truncatingIfNeeded: length >> 24))
        out.append(UInt8(truncatingIfNeeded: length >> 16))
        out.append(UInt8(truncatingIfNeeded: length >> 8))
        out.append(UInt8(truncatingIfNeeded: length))
        out.append(contentsOf: payload)
    }
}

/// A protocol violation found while splitting the byte stream into messages.
enum DeframeError: Error, Equatable, CustomStringConvertible {
    /// A prefix announced a message longer than the receive limit.
    case messageTooLarge(size: Int, limit: Int)
    /// The compressed flag was neither 0 nor 1.
    case invalidCompressedFlag(UInt8)

    var description: String {
        switch self {
        case let .messageTooLarge(size, limit):
            return "received message larger than max (\(size) vs. \(limit))"
        case let .invalidCompressedFlag(flag):
            return "invalid compressed flag \(flag) in message prefix (must be 0 or 1)"
        }
    }
}

/// Reassembles length-prefixed messages from arbitrarily split DATA frame payloads.
///
/// Bytes go into one growing buffer consumed through a read index; consumed bytes
/// are dropped (one memmove) once they make up more than half of the buffer, so the
/// cost stays linear in the bytes received.
struct MessageDeframer {
    private let maxMessageSize: Int
    private var buffer: [UInt8] = []
    private var readIndex = 0

    init(maxMessageSize: Int) {
        precondition(maxMessageSize >= 0, "maxMessageSize must not be negative")
        self.maxMessageSize = maxMessageSize
    }

    /// Appends received bytes.
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        compactIfWorthwhile()
        bytes.withMemoryRebound(to: UInt8.self) { buffer.append(contentsOf: $0) }
    }

    /// Appends received bytes.
    mutating func append(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        compactIfWorthwhile()
        buffer.append(contentsOf: bytes)
    }

    /// Returns the next complete message, nil when more bytes are needed.
    ///
    /// Throws as soon as a prefix announces a length above `maxMessageSize` (before
    /// buffering the payload) or has a flag other than 0/1. After an error the
    /// stream is unusable and should be reset.
    mutating func next() throws -> (compressed: Bool, payload: [UInt8])? {
        let available = buffer.count - readIndex
        guard available >= MessageFramer.prefixLength else { return nil }

        let (flag, length) = buffer.withUnsafeBufferPointer { bytes -> (UInt8, Int) in
            let p = readIndex
            let length = UInt32(bytes[p + 1]) << 24 | UInt32(bytes[p + 2]) << 16
                | UInt32(bytes[p + 3]) << 8 | UInt32(bytes[p + 4])
            return (bytes[p], Int(length))
        }
        guard flag <= 1 else { throw DeframeError.invalidCompressedFlag(flag) }
        guard length <= maxMessageSize else {
            throw DeframeError.messageTooLarge(size: length, limit: maxMessageSize)
        }
        guard available - MessageFramer.prefixLength >= length else {
            // The buffer grows with the bytes that arrive, never with what a prefix
            // declares: a peer announcing 4 MiB and sending 3 bytes costs 3 bytes.
            return nil
        }

        let start = readIndex + MessageFramer.prefixLength
        let payload = Array(buffer[start ..< start + length])
        readIndex = start + length
        if readIndex == buffer.count {
            // Everything consumed: restart at the front without freeing capacity.
            buffer.removeAll(keepingCapacity: true)
            readIndex = 0
        }
        return (compressed: flag == 1, payload: payload)
    }

    /// Bytes buffered that do not yet form a complete message (non-zero at end of
    /// stream means a truncated message).
    var bufferedByteCount: Int {
        buffer.count - readIndex
    }

    /// The buffer's capacity (what it holds in memory), for tests.
    var bufferCapacity: Int { buffer.capacity }

    /// Drops consumed bytes once they exceed half of the buffer.
    private mutating func compactIfWorthwhile() {
        guard readIndex > 0 else { return }
        if readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            readIndex = 0
        } else if readIndex > buffer.count / 2 {
            buffer.removeSubrange(0 ..< readIndex)
            readIndex = 0
        }
    }
}
