// The core's C ABI, part 1 (grpchelper/{version,errors,metadata}.h): `@c @implementation`
// functions only, each checked by the compiler against its declaration and each a thin
// translation of handles and buffers onto GRPCHelperCore. Servers: ServerExports.swift;
// channels and calls: ChannelExports.swift.
import NIOConcurrencyHelpers
import GRPCHelperCore
import CGRPCHelper
#if canImport(Glibc)
import Glibc
#endif

// MARK: - version, errors, memory

// The static gh_info and error texts: written once (lazily, thread-safe), never modified.
nonisolated(unsafe) private let versionInfo: UnsafeMutablePointer<gh_info> = {
    let p = UnsafeMutablePointer<gh_info>.allocate(capacity: 1)
    p.initialize(to: gh_info(age: 1, version_num: Int32(GRPCHelperVersion.number),
                             version_str: UnsafePointer(strdup(GRPCHelperVersion.string)!)))
    return p
}()

@c @implementation
public func gh_version(_ least: Int32) -> UnsafePointer<gh_info>? {
    Int(least) > GRPCHelperVersion.number ? nil : UnsafePointer(versionInfo)
}

nonisolated(unsafe) private let errorTexts: [Int32: UnsafeMutablePointer<CChar>] = [
    GH_OK.rawValue: strdup("success")!,
    GH_ERR_INVALID_ARGUMENT.rawValue: strdup("invalid argument")!,
    GH_ERR_INVALID_STATE.rawValue: strdup("invalid state")!,
    GH_ERR_CLOSED.rawValue: strdup("call closed")!,
    GH_ERR_BIND.rawValue: strdup("cannot bind address")!,
    GH_ERR_RPC.rawValue: strdup("RPC failed with a non-OK status")!,
    GH_ERR_TOO_LARGE.rawValue: strdup("message too large")!,
    GH_ERR_RESULT.rawValue: strdup("operation failed with a result code")!,
    GH_ERR_FATAL.rawValue: strdup("fatal error")!,
    GH_ERR_NOMEM.rawValue: strdup("out of memory")!,
    GH_ERR_INTERNAL.rawValue: strdup("internal error")!,
]
nonisolated(unsafe) private let unknownErrorText = strdup("unknown error code")!

@c @implementation
public func gh_strerror(_ code: Int32) -> UnsafePointer<CChar>? {
    UnsafePointer(errorTexts[code] ?? unknownErrorText)
}

@c @implementation
public func gh_is_fatal(_ code: Int32) -> Int32 { code <= GH_ERR_FATAL.rawValue ? 1 : 0 }

@c @implementation
public func gh_last_error() -> UnsafePointer<CChar>? { lastErrorPointer() }

@c @implementation
public func gh_free(_ p: UnsafeMutableRawPointer?) { free(p) }

@c @implementation
public func gh_strdup(_ s: UnsafePointer<CChar>?) -> UnsafeMutablePointer<CChar>? {
    s.flatMap { strdup($0) }
}

@c @implementation
public func gh_thread_is_library() -> Int32 { LibraryThread.isCurrent ? 1 : 0 }

// MARK: - metadata

/// A metadata list plus the NUL-terminated copies handed out by gh_metadata_get.
final class MetadataBox {
    var md: Metadata { didSet { lock.withLock { cache = nil } } }
    private var cache: [(key: OwnedCString, value: OwnedBytes)]?
    /// Readers on several threads may build the cache at once (request metadata is read
    /// from any thread): the cache is built under this lock.
    private let lock = NIOLock()
    init(_ md: Metadata = Metadata()) { self.md = md }

    func entry(_ i: Int) -> (key: OwnedCString, value: OwnedBytes)? {
        lock.withLock { entryLocked(i) }
    }

    private func entryLocked(_ i: Int) -> (key: OwnedCString, value: OwnedBytes)? {
        if cache == nil {
            cache = md.map { e in
                let v = OwnedBytes()
                switch e.value {
                case .string(let s): v.set(Array(s.utf8), nulTerminated: true)
                case .binary(let b): v.set(b)
                }
                return (OwnedCString(e.key), v)
            }
        }
        guard i >= 0, i < cache!.count else { return nil }
        return cache![i]
    }
}

@c @implementation
public func gh_metadata_new(_ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        out.pointee = makeHandle(MetadataBox())
        return GH_OK
    }
}

@c @implementation
public func gh_metadata_free(_ md: OpaquePointer?) {
    if let md = md { release(md, MetadataBox.self) }
}

@c @implementation
public func gh_metadata_add(_ md: OpaquePointer?, _ key: UnsafePointer<CChar>?,
                            _ value: UnsafePointer<CChar>?) -> Int32 {
    boundary {
        let box = try borrow(md, MetadataBox.self, "metadata")
        try box.md.add(try string(key, "key"), try string(value, "value"))
        return GH_OK
    }
}

@c @implementation
public func gh_metadata_key_is_managed(_ key: UnsafePointer<CChar>?) -> Int32 {
    guard let key = key else { return 0 }
    return Metadata.isManagedByCall(String(cString: key)) ? 1 : 0
}

@c @implementation
public func gh_metadata_add_bin(_ md: OpaquePointer?, _ key: UnsafePointer<CChar>?,
                                _ value: UnsafePointer<UInt8>?, _ len: Int) -> Int32 {
    boundary {
        let box = try borrow(md, MetadataBox.self, "metadata")
        try box.md.addBinary(try string(key, "key"), try bytes(value, len))
        return GH_OK
    }
}

@c @implementation
public func gh_metadata_count(_ md: OpaquePointer?) -> Int {
    guard let box = try? borrow(md, MetadataBox.self, "metadata") else { return 0 }
    return box.md.count
}

@c @implementation
public func gh_metadata_get(_ md: OpaquePointer?, _ index: Int,
                            _ key: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
                            _ value: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
                            _ len: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let box = try borrow(md, MetadataBox.self, "metadata")
        guard let e = box.entry(index) else {
            throw ExportError(GH_ERR_INVALID_ARGUMENT, "index \(index) out of range (count \(box.md.count))")
        }
        key?.pointee = UnsafePointer(e.key.pointer)
        value?.pointee = UnsafePointer(e.value.pointer)
        len?.pointee = e.value.count
        return GH_OK
    }
}

@c @implementation
public func gh_metadata_find(_ md: OpaquePointer?, _ key: UnsafePointer<CChar>?,
                             _ value: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
                             _ len: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let box = try borrow(md, MetadataBox.self, "metadata")
        let k = try string(key, "key")
        for (i, e) in box.md.enumerated() where e.key == k {
            let entry = box.entry(i)!
            value?.pointee = UnsafePointer(entry.value.pointer)
            len?.pointee = entry.value.count
            return GH_OK
        }
        throw ExportError(GH_ERR_INVALID_ARGUMENT, "no metadata entry '\(k)'")
    }
}

func metadataArg(_ md: OpaquePointer?) throws -> Metadata {
    guard md != nil else { return Metadata() }
    return try borrow(md, MetadataBox.self, "metadata").md
}
