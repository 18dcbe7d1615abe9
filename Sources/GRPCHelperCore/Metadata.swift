/// A metadata value: text for ordinary keys, raw bytes for keys ending in "-bin".
public enum MetadataValue: Sendable, Hashable {
    case string(String)
    case binary([UInt8])
}

/// Thrown when an entry cannot be added to `Metadata`.
public struct MetadataError: Error, Sendable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// Custom (user) metadata of a call: ordered key/value pairs, several values per key
/// allowed, as carried in HTTP/2 headers and trailers.
///
/// Keys are lowercase (`[0-9a-z_.-]`); lookups are exact, so use lowercase keys.
/// Protocol headers (pseudo-headers, `grpc-*`, `content-type`, `te`, …) are not user
/// metadata and are refused by `add`/`addBinary`.
public struct Metadata: Sendable, Sequence, CustomStringConvertible {
    public typealias Element = (key: String, value: MetadataValue)

    private var entries: [Element]

    public init() {
        entries = []
    }

    /// Wraps entries without validation; for the transport, which builds metadata
    /// from fields it has already checked.
    internal init(unchecked entries: [Element]) {
        self.entries = entries
    }

    // MARK: Adding

    /// Adds a text entry.
    ///
    /// Throws `MetadataError` when the key is empty, has a character outside
    /// `[0-9a-z_.-]` (uppercase is refused, not folded), ends with "-bin" (use
    /// `addBinary`), or is reserved (see `isReserved`); or when the value has a byte
    /// outside printable ASCII 0x20...0x7E, or starts or ends with a space (RFC 9113).
    public mutating func add(_ key: String, _ value: String) throws {
        try Metadata.validateKey(key)
        if Metadata.isBinaryKey(key) {
            throw MetadataError("metadata key '\(key)' ends with \"-bin\"; use addBinary for binary values")
        }
        for byte in value.utf8 where byte < 0x20 || byte > 0x7E {
            throw MetadataError(
                "metadata value for key '\(key)' contains byte 0x\(String(byte, radix: 16, uppercase: true)); "
                    + "only printable ASCII (0x20...0x7E) is allowed (use a \"-bin\" key for other data)")
        }
        // RFC 9113 8.2.1: a field value must not start or end with whitespace.
        if let first = value.utf8.first, let last = value.utf8.last,
           first == 0x20 || first == 0x09 || last == 0x20 || last == 0x09 {
            throw MetadataError("metadata value for key '\(key)' starts or ends with whitespace, which HTTP/2 forbids")
        }
        entries.append((key: key, value: .string(value)))
    }

    /// Adds a binary entry; the key must end with "-bin" (same key rules otherwise);
    /// any bytes are allowed.
    public mutating func addBinary(_ key: String, _ value: [UInt8]) throws {
        try Metadata.validateKey(key)
        guard Metadata.isBinaryKey(key) else {
            throw MetadataError("binary metadata key '\(key)' must end with \"-bin\"")
        }
        entries.append((key: key, value: .binary(value)))
    }

    // MARK: Reading

    /// All values stored under `key`, in insertion order.
    public func values(forKey key: String) -> [MetadataValue] {
        entries.compactMap { $0.key == key ? $0.value : nil }
    }

    /// The first text value of `key`; nil if there is none (or the value is binary).
    public func first(_ key: String) -> String? {
        guard let entry = entries.first(where: { $0.key == key }),
              case .string(let text) = entry.value else { return nil }
        return text
    }

    /// The first binary value of `key`; nil if there is none (or the value is text).
    public func firstBinary(_ key: String) -> [UInt8]? {
        guard let entry = entries.first(where: { $0.key == key }),
              case .binary(let bytes) = entry.value else { return nil }
        return bytes
    }

    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }

    /// Iterates the entries in insertion order.
    public func makeIterator() -> IndexingIterator<[Element]> {
        entries.makeIterator()
    }

    public var description: String {
        let items = entries.map { entry -> String in
            switch entry.value {
            case .string(let text): return "\(entry.key): \(text)"
            case .binary(let bytes): return "\(entry.key): <\(bytes.count) bytes>"
            }
        }
        return "[" + items.joined(separator: ", ") + "]"
    }

    // MARK: Wire conversion

    /// HTTP/2 header fields for the wire: -bin values base64 (unpadded), text as is.
    public func headerFields() -> [(name: String, value: String)] {
        entries.map { entry in
            switch entry.value {
            case .string(let text): return (name: entry.key, value: text)
            case .binary(let bytes): return (name: entry.key, value: Base64.encode(bytes, padded: false))
            }
        }
    }

    /// Builds user metadata from received header fields, skipping pseudo-headers,
    /// reserved keys (including every `grpc-*` key) and -bin entries whose base64
    /// (padded or unpadded) does not decode. Values of -bin keys are decoded to bytes.
    /// Names are expected in lowercase, as HTTP/2 requires; any uppercase ASCII is
    /// folded. Never throws.
    public static func fromHeaderFields<S: Sequence>(_ fields: S) -> Metadata
    where S.Element == (name: String, value: String) {
        var result: [Element] = []
        result.reserveCapacity(fields.underestimatedCount)
        for (rawName, value) in fields {
            let name = rawName.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") })
                ? rawName.lowercased() : rawName
            if name.isEmpty || isReserved(name) { continue }
            if isBinaryKey(name) {
                guard let bytes = Base64.decode(value) else { continue }
                result.append((key: name, value: .binary(bytes)))
            } else {
                result.append((key: name, value: .string(value)))
            }
        }
        return Metadata(unchecked: result)
    }

    /// Header names that belong to HTTP/2 or gRPC itself, not to user metadata.
    /// ("host" is not among them: grpcio carries it as metadata, and grpc-helper's
    /// clients send it.)
    private static let reservedNames: Set<String> = [
        "content-type", "te", "user-agent", "connection", "keep-alive",
        "proxy-connection", "transfer-encoding", "upgrade",
    ]

    /// The headers the library sets itself on every call (grpcio drops them from a
    /// call's metadata): user-agent, te, content-type, grpc-timeout, grpc-encoding,
    /// grpc-accept-encoding. Case-insensitive.
    public static func isManagedByCall(_ name: String) -> Bool {
        managedNames.contains(name.lowercased())
    }

    private static let managedNames: Set<String> = [
        "user-agent", "te", "content-type", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding",
    ]

    /// true if `name` is reserved (not user metadata): pseudo-headers (":…"), any
    /// "grpc-…" key, and the HTTP headers gRPC manages itself. Case-insensitive.
    public static func isReserved(_ name: String) -> Bool {
        let utf8 = name.utf8
        if utf8.first == UInt8(ascii: ":") { return true }
        if utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) {
            return isReserved(name.lowercased())
        }
        if utf8.starts(with: "grpc-".utf8) { return true }
        return reservedNames.contains(name)
    }

    // MARK: Validation helpers

    @inline(__always)
    static func isBinaryKey(_ key: String) -> Bool {
        key.utf8.suffix(4).elementsEqual("-bin".utf8)
    }

    private static func validateKey(_ key: String) throws {
        if key.isEmpty {
            throw MetadataError("metadata key must not be empty")
        }
        if isReserved(key) {
            throw MetadataError("metadata key '\(key)' is reserved for the gRPC protocol")
        }
        for byte in key.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"):
                continue
            case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                throw MetadataError("metadata key '\(key)' contains uppercase characters; keys must be lowercase")
            default:
                throw MetadataError("metadata key '\(key)' contains an invalid character; allowed are 0-9 a-z _ . -")
            }
        }
    }
}
