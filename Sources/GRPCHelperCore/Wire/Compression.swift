import CZlib

/// A message compression algorithm (`grpc-encoding` / `grpc-accept-encoding`).
public struct CompressionAlgorithm: Hashable, Sendable, CustomStringConvertible {
    /// The name used on the wire.
    public let name: String

    private init(uncheckedName name: String) {
        self.name = name
    }

    /// No compression.
    public static let identity = CompressionAlgorithm(uncheckedName: "identity")
    /// RFC 1952 gzip format (zlib windowBits 31).
    public static let gzip = CompressionAlgorithm(uncheckedName: "gzip")
    /// RFC 1950 zlib format (zlib windowBits 15), as HTTP's "deflate" means.
    public static let deflate = CompressionAlgorithm(uncheckedName: "deflate")

    /// Looks up one of the supported algorithms, case-insensitively.
    public init?(name: String) {
        switch name.lowercased() {
        case "identity": self = .identity
        case "gzip": self = .gzip
        case "deflate": self = .deflate
        default: return nil
        }
    }

    /// Every algorithm this library implements, in the order advertised.
    public static let supported: [CompressionAlgorithm] = [.identity, .deflate, .gzip]

    /// Value for `grpc-accept-encoding`.
    static let acceptEncodingHeader: String = supported.map(\.name).joined(separator: ",")

    /// Parses a grpc-accept-encoding value ("gzip, deflate,identity") into names
    /// (lowercased, trimmed, empty items dropped).
    static func parseAcceptEncoding(_ value: String) -> [String] {
        value.split(separator: ",").compactMap { item in
            let trimmed = item.utf8.drop(while: isSpace).reversed().drop(while: isSpace).reversed()
            return trimmed.isEmpty ? nil : String(decoding: trimmed, as: UTF8.self).lowercased()
        }
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }

    public var description: String { name }

    /// zlib windowBits selecting the container format.
    var zlibWindowBits: Int32 {
        self == .gzip ? 31 : 15
    }
}

/// A compression or decompression failure.
struct CompressionError: Error, Sendable, CustomStringConvertible {
    let message: String
    /// true when decompression stopped because the output exceeded the size limit.
    let limitExceeded: Bool

    init(_ message: String, limitExceeded: Bool = false) {
        self.message = message
        self.limitExceeded = limitExceeded
    }

    var description: String { message }
}

/// Describes a zlib failure, using zlib's own message when it set one.
private func zlibError(_ operation: String, _ code: Int32, _ stream: z_streamp) -> CompressionError {
    if let msg = stream.pointee.msg {
        return CompressionError("\(operation) failed: \(String(cString: msg)) (zlib error \(code))")
    }
    return CompressionError("\(operation) failed (zlib error \(code))")
}

/// Compresses messages with one zlib stream that is reset and reused for every
/// message. Not thread-safe: use one per stream direction.
final class MessageCompressor {
    let algorithm: CompressionAlgorithm
    // Heap-allocated because zlib keeps a pointer back to the z_stream.
    private let stream: z_streamp

    /// Creates a compressor; `algorithm` must not be `.identity`.
    init(_ algorithm: CompressionAlgorithm) {
        precondition(algorithm != .identity, "MessageCompressor needs a real compression algorithm")
        self.algorithm = algorithm
        stream = z_streamp.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let rc = gh_deflate_init2(stream, Z_DEFAULT_COMPRESSION, algorithm.zlibWindowBits)
        // Only fails on out-of-memory or bad parameters, neither of which a caller can handle.
        precondition(rc == Z_OK, "deflateInit2 failed with zlib error \(rc)")
    }

    deinit {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Compresses one whole message.
    func compress(_ input: [UInt8]) throws -> [UInt8] {
        guard input.count <= Int(UInt32.max) else {
            throw CompressionError("message too large to compress (\(input.count) bytes)")
        }
        defer { deflateReset(stream) }

        // deflateBound guarantees a single deflate(Z_FINISH) call completes.
        let bound = Int(deflateBound(stream, uLong(input.count)))
        var status: Int32 = Z_OK
        let output = input.withUnsafeBufferPointer { inBuf in
            [UInt8](unsafeUninitializedCapacity: bound) { outBuf, count in
                stream.pointee.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
                stream.pointee.avail_in = uInt(inBuf.count)
                stream.pointee.next_out = outBuf.baseAddress
                stream.pointee.avail_out = uInt(outBuf.count)
                status = deflate(stream, Z_FINISH)
                count = outBuf.count - Int(stream.pointee.avail_out)
                stream.pointee.next_in = nil
                stream.pointee.next_out = nil
            }
        }
        guard status == Z_STREAM_END else { throw zlibError("compression", status, stream) }
        return output
    }
}

/// Decompresses messages with one zlib stream that is reset and reused for every
/// message. Not thread-safe: use one per stream direction.
final class MessageDecompressor {
    let algorithm: CompressionAlgorithm
    private let stream: z_streamp

    /// Smallest first output buffer; grows by doubling from there.
    private static let minimumInitialCapacity = 1024

    /// Creates a decompressor; `algorithm` must not be `.identity`.
    init(_ algorithm: CompressionAlgorithm) {
        precondition(algorithm != .identity, "MessageDecompressor needs a real compression algorithm")
        self.algorithm = algorithm
        stream = z_streamp.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let rc = gh_inflate_init2(stream, algorithm.zlibWindowBits)
        precondition(rc == Z_OK, "inflateInit2 failed with zlib error \(rc)")
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Decompresses one message.
    ///
    /// Throws `CompressionError` when the data is corrupt, truncated or followed by
    /// trailing bytes, or with `limitExceeded == true` as soon as the output would
    /// exceed `limit` bytes. The output buffer never grows beyond `limit + 1` bytes
    /// (it doubles from a small first guess; during a doubling the previous, half
    /// as large buffer is briefly alive too), so a zip bomb stops early.
    func decompress(_ input: [UInt8], limit: Int) throws -> [UInt8] {
        precondition(limit >= 0, "limit must not be negative")
        guard input.count <= Int(UInt32.max) else {
            throw CompressionError("compressed message too large (\(input.count) bytes)")
        }
        defer {
            stream.pointee.next_in = nil
            stream.pointee.next_out = nil
            inflateReset(stream)
        }

        // Room for one byte beyond the limit tells "exactly limit" from "more".
        let hardCapacity = limit == Int.max ? limit : limit + 1
        var capacity = min(hardCapacity, max(Self.minimumInitialCapacity, input.count &* 4))
        var output: [UInt8] = []

        return try input.withUnsafeBufferPointer { inBuf in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
            stream.pointee.avail_in = uInt(inBuf.count)

            while true {
                var status: Int32 = Z_OK
                let previous = output
                // Each round moves what was produced so far into a larger buffer and
                // lets zlib fill the rest; the common case needs a single round.
                output = [UInt8](unsafeUninitializedCapacity: capacity) { outBuf, count in
                    let base = outBuf.baseAddress!
                    previous.withUnsafeBufferPointer { old in
                        if let oldBase = old.baseAddress {
                            base.initialize(from: oldBase, count: old.count)
                        }
                    }
                    count = previous.count
                    repeat {
                        let room = min(outBuf.count - count, Int(UInt32.max))
                        stream.pointee.next_out = base + count
                        stream.pointee.avail_out = uInt(room)
                        status = inflate(stream, Z_NO_FLUSH)
                        count += room - Int(stream.pointee.avail_out)
                    } while status == Z_OK && count < outBuf.count
                        && (stream.pointee.avail_in > 0 || stream.pointee.avail_out == 0)
                }

                switch status {
                case Z_STREAM_END:
                    if output.count > limit {
                        throw CompressionError(
                            "decompressed message larger than max (more than \(limit) bytes)",
                            limitExceeded: true)
                    }
                    if stream.pointee.avail_in != 0 {
                        throw CompressionError("decompression failed: \(stream.pointee.avail_in) trailing bytes after end of compressed data")
                    }
                    return output
                case Z_OK, Z_BUF_ERROR:
                    guard output.count == capacity else {
                        // Room left but zlib wants more input: the data is cut short.
                        throw CompressionError("decompression failed: compressed data is truncated")
                    }
                    guard capacity < hardCapacity else {
                        throw CompressionError(
                            "decompressed message larger than max (more than \(limit) bytes)",
                            limitExceeded: true)
                    }
                    capacity = capacity > hardCapacity / 2 ? hardCapacity : capacity * 2
                default:
                    throw zlibError("decompression", status, stream)
                }
            }
        }
    }
}
