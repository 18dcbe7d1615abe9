// Support for the C exports: error mapping, the per-thread last error, handle boxing.
// No gRPC logic lives here: everything forwards to GRPCHelperCore / GRPCHelper. The error
// codes, enums and callback types are the header's (CGRPCHelper), never re-declared here.
import CGRPCHelper
import GRPCHelperCore
import GRPCHelper
#if canImport(Glibc)
import Glibc
#endif

/// An error raised inside an export, carrying its gh_error code.
struct ExportError: Error {
    let code: gh_error
    let message: String
    init(_ code: gh_error, _ message: String) { self.code = code; self.message = message }
}

// MARK: per-thread last error

private let lastErrorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { p in free(p) }
    return key
}()

// Written once (lazily, thread-safe), never modified: C reads it as a constant.
nonisolated(unsafe) private let emptyString: UnsafeMutablePointer<CChar> = strdup("")!

// The ResultCode of the latest GH_ERR_RESULT (stored as a pointer-sized integer).
private let lastResultKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()

func setLastError(_ message: String, resultCode: Int = 0) {
    let old = pthread_getspecific(lastErrorKey)
    pthread_setspecific(lastErrorKey, strdup(message))
    free(old)
    pthread_setspecific(lastResultKey, UnsafeRawPointer(bitPattern: resultCode))
}

func lastResultCode() -> Int32 {
    Int32(truncatingIfNeeded: Int(bitPattern: pthread_getspecific(lastResultKey)))
}

func lastErrorPointer() -> UnsafePointer<CChar> {
    if let p = pthread_getspecific(lastErrorKey) {
        return UnsafePointer(p.assumingMemoryBound(to: CChar.self))
    }
    return UnsafePointer(emptyString)
}

/// Maps any error to a gh_error code and records its text.
func errorCode(_ error: Error) -> gh_error {
    switch error {
    case let e as ExportError:
        setLastError(e.message)
        return e.code
    case let e as RpcException:
        setLastError(e.message, resultCode: e.code.rawValue)
        return GH_ERR_RESULT
    case let e as RuntimeError:
        setLastError(e.message)
        switch e.kind {
        case .bind: return GH_ERR_BIND
        case .invalidState: return GH_ERR_INVALID_STATE
        case .invalidArgument: return GH_ERR_INVALID_ARGUMENT
        }
    case let e as MetadataError:
        setLastError(e.message)
        return GH_ERR_INVALID_ARGUMENT
    case let e as RPCError:
        // A call operation throws RPCError only once the call has ended.
        setLastError("call ended: \(e.status.code): \(e.status.message)")
        return GH_ERR_CLOSED
    case let e as CallStateError:
        setLastError(e.message)
        return GH_ERR_INVALID_STATE
    default:
        setLastError("\(error)")
        return GH_ERR_INTERNAL
    }
}

/// The export boundary: runs `body`, turning thrown errors into gh_error codes.
@inline(__always)
func boundary(_ body: () throws -> gh_error) -> Int32 {
    do { return try body().rawValue } catch { return errorCode(error).rawValue }
}

/// The export boundary of functions that return a count or flag (>= 0) on success.
@inline(__always)
func boundary(_ body: () throws -> Int32) -> Int32 {
    do { return try body() } catch { return errorCode(error).rawValue }
}

// MARK: handles

/// Boxes are retained while a handle exists; the handle is the box's opaque pointer.
@inline(__always)
func makeHandle<T: AnyObject>(_ object: T) -> OpaquePointer {
    OpaquePointer(Unmanaged.passRetained(object).toOpaque())
}

@inline(__always)
func borrow<T: AnyObject>(_ handle: OpaquePointer?, _ type: T.Type, _ what: String) throws -> T {
    guard let h = handle else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "\(what) is NULL") }
    return Unmanaged<T>.fromOpaque(UnsafeRawPointer(h)).takeUnretainedValue()
}

@inline(__always)
func release<T: AnyObject>(_ handle: OpaquePointer, _ type: T.Type) {
    Unmanaged<T>.fromOpaque(UnsafeRawPointer(handle)).release()
}

func string(_ p: UnsafePointer<CChar>?, _ what: String) throws -> String {
    guard let p = p else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "\(what) is NULL") }
    return String(cString: p)
}

func bytes(_ p: UnsafePointer<UInt8>?, _ len: Int) throws -> [UInt8] {
    if len == 0 { return [] }
    guard let p = p else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "data is NULL with a non-zero length") }
    return Array(UnsafeBufferPointer(start: p, count: len))
}

/// A byte buffer owned by a handle, handed to C as a borrowed pointer.
final class OwnedBytes {
    private(set) var pointer: UnsafeMutablePointer<UInt8>?
    private(set) var count = 0
    /// Copies `b`; with `nulTerminated` a NUL byte follows (not counted).
    func set(_ b: [UInt8], nulTerminated: Bool = false) {
        pointer?.deallocate()
        count = b.count
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: b.count + 1)
        b.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { p.update(from: base, count: b.count) }
        }
        p[b.count] = 0
        pointer = p
    }
    func clear() { pointer?.deallocate(); pointer = nil; count = 0 }
    deinit { pointer?.deallocate() }
}

/// A NUL-terminated copy of a Swift string, owned by a handle.
/// Lends a received message to C through `data` and `len`, kept in `owned` until the next
/// read: 1, or 0 with (NULL, 0) at the end of the stream.
func lendMessage(_ m: [UInt8]?, _ owned: OwnedBytes, _ data: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
                 _ len: UnsafeMutablePointer<Int>?) -> Int32 {
    guard let m else {
        owned.clear()
        data?.pointee = nil
        len?.pointee = 0
        return 0
    }
    owned.set(m)
    data?.pointee = UnsafePointer(owned.pointer)
    len?.pointee = m.count
    return 1
}

final class OwnedCString {
    let pointer: UnsafeMutablePointer<CChar>
    init(_ s: String) { pointer = strdup(s)! }
    deinit { free(pointer) }
}

/// Passes non-Sendable C pointers into @Sendable closures.
// @unchecked Sendable: a C caller's pointer, passed through untouched: the C API states its threading.
struct CPointer: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer?
}

func compression(_ value: Int64) throws -> CompressionAlgorithm? {
    switch value {
    case Int64(GH_COMPRESSION_DEFAULT.rawValue): return nil
    case Int64(GH_COMPRESSION_NONE.rawValue): return .identity
    case Int64(GH_COMPRESSION_DEFLATE.rawValue): return .deflate
    case Int64(GH_COMPRESSION_GZIP.rawValue): return .gzip
    default: throw ExportError(GH_ERR_INVALID_ARGUMENT, "unknown compression \(value)")
    }
}

/// An option value in 1...max.
func positive(_ v: Int64, _ name: String, max: Int64 = Int64(Int32.max)) throws -> Int {
    guard v > 0, v <= max else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "\(name) must be in 1...\(max), got \(v)") }
    return Int(v)
}

func nonNegative(_ v: Int64, _ name: String) throws -> Int {
    guard v >= 0, v <= Int64(Int32.max) else {
        throw ExportError(GH_ERR_INVALID_ARGUMENT, "\(name) must be in 0...\(Int32.max), got \(v)")
    }
    return Int(v)
}

func flag(_ v: Int64, _ name: String) throws -> Bool {
    guard v == 0 || v == 1 else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "\(name) must be 0 or 1, got \(v)") }
    return v == 1
}

/// A C string argument that may be NULL.
func optionalString(_ p: UnsafePointer<CChar>?) -> String? { p.map { String(cString: $0) } }

/// The keepalive options servers and channels share (GH_OPT_KEEPALIVE_TIME_MS, _TIMEOUT_MS,
/// _PERMIT_WITHOUT_CALLS): sets the matching setting from `value`. False when `option`
/// is none of them.
func applyKeepaliveOption(_ option: gh_opt, _ value: Int64, time: inout Double?, timeout: inout Double,
                          permitWithoutCalls: inout Bool) throws -> Bool {
    switch option {
    case GH_OPT_KEEPALIVE_TIME_MS: time = value == 0 ? nil : Double(try positive(value, "keepalive time")) / 1000
    case GH_OPT_KEEPALIVE_TIMEOUT_MS: timeout = Double(try positive(value, "keepalive timeout")) / 1000
    case GH_OPT_KEEPALIVE_PERMIT_WITHOUT_CALLS: permitWithoutCalls = try flag(value, "keepalive permit without calls")
    default: return false
    }
    return true
}
