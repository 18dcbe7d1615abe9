// The helper layer's C ABI, config part (grpchelper/config.h), `@c @implementation`: config
// items, folders, config sets. Thin translations onto GRPCHelper; helper-layer errors
// (RpcException) become GH_ERR_RESULT + gh_last_result_code. Command line:
// CliExports.swift; rolling logs: LogsExports.swift.
import NIOConcurrencyHelpers
import Foundation
import GRPCHelper
import SwiftProtobuf
import CGRPCHelper
#if canImport(Glibc)
import Glibc
#endif

@c @implementation
public func gh_last_result_code() -> Int32 { lastResultCode() }

/// A malloc'd copy of `s` (gh_free).
private func mallocString(_ s: String) -> UnsafeMutablePointer<CChar>? { strdup(s) }

/// Copies `bytes` into malloc'd memory handed to the caller (gh_free).
func handOver(_ bytes: [UInt8], _ data: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                      _ len: UnsafeMutablePointer<Int>?) throws -> gh_error {
    guard let data = data, let len = len else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "output pointer is NULL") }
    guard let p = malloc(max(bytes.count, 1))?.assumingMemoryBound(to: UInt8.self) else {
        throw ExportError(GH_ERR_NOMEM, "out of memory")
    }
    bytes.withUnsafeBufferPointer { if let b = $0.baseAddress { p.update(from: b, count: bytes.count) } }
    data.pointee = p
    len.pointee = bytes.count
    return GH_OK
}

/// Decodes a request message; a message that does not decode → GH_ERR_INVALID_ARGUMENT.
func decode<M: SwiftProtobuf.Message>(_ type: M.Type, _ p: UnsafePointer<UInt8>?, _ n: Int) throws -> M {
    do { return try M(serializedBytes: try bytes(p, n)) } catch let e as ExportError { throw e } catch {
        throw ExportError(GH_ERR_INVALID_ARGUMENT, "request is not a valid \(M.protoMessageName) message: \(error)")
    }
}


// MARK: - config items

/// A config item handle: the item and its name as a C string.
final class ConfigBox {
    let config: Config
    let name: OwnedCString
    init(_ c: Config) { config = c; name = OwnedCString(c.name) }
}

/// The C custom validator (if any) with its user data, owned by the item: the user data
/// is freed when the item is gone.
// @unchecked Sendable: immutable; the C validator may run on several threads at once (as the header states).
private final class CValidator: @unchecked Sendable {
    let fn: gh_config_validate_fn?
    let userData: UnsafeMutableRawPointer?
    let freeFn: gh_free_fn?
    init(fn: gh_config_validate_fn?, userData: UnsafeMutableRawPointer?, freeFn: gh_free_fn?) {
        self.fn = fn; self.userData = userData; self.freeFn = freeFn
    }
    deinit { freeFn?(userData) }

    func validate(_ name: String, _ value: String) throws {
        guard let fn = fn else { return }
        var buf = [CChar](repeating: 0, count: 1024)
        let rc = name.withCString { n in value.withCString { v in fn(userData, n, v, &buf, buf.count) } }
        guard rc != 0 else { return }
        buf[buf.count - 1] = 0
        var text = String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.isEmpty { text = "Config item \(name): invalid value \"\(value)\"" }
        // A negative return is not a ResultCode: reported as ERROR.
        throw RpcException(text, code: rc < 0 ? .error : (RpcResultCode(rawValue: Int(rc)) ?? .error))
    }
}

@c @implementation
public func gh_config_new(_ name: UnsafePointer<CChar>?, _ description: UnsafePointer<CChar>?,
                          _ defaultValue: UnsafePointer<CChar>?, _ canBeEmpty: Int32, _ validator: Int32,
                          _ custom: gh_config_validate_fn?,
                          _ userData: UnsafeMutableRawPointer?,
                          _ freeUserData: gh_free_fn?,
                          _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    // Owned by the item (its validator closure) from here: the user data is released
    // exactly once, when the item is gone, or at the end of this call if it fails.
    let holder = CValidator(fn: custom, userData: userData, freeFn: freeUserData)
    return boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        let n = try string(name, "name")
        guard (0...5).contains(Int(validator)), let v = RpcConfigValidator(rawValue: Int(validator)) else {
            throw ExportError(GH_ERR_INVALID_ARGUMENT, "unknown validator \(validator)")
        }
        // Config uses the closure only with CONFIG_VALID_CUSTOM; it keeps it (and so the
        // user data) as long as the item lives.
        var customValidator: ConfigCustomValidator? = nil
        if custom != nil || v != .configValidCustom {
            customValidator = { name, value in try holder.validate(name, value) }
        }
        let c = try Config(name: n, description: optionalString(description) ?? "",
                           defaultValue: optionalString(defaultValue) ?? "", canBeEmpty: canBeEmpty != 0,
                           validator: v, customValidator: customValidator)
        out.pointee = makeHandle(ConfigBox(c))
        return GH_OK
    }
}

@c @implementation
public func gh_config_free(_ c: OpaquePointer?) {
    if let c = c { release(c, ConfigBox.self) }
}

@c @implementation
public func gh_config_name(_ c: OpaquePointer?) -> UnsafePointer<CChar>? {
    guard let b = try? borrow(c, ConfigBox.self, "config") else { return nil }
    return UnsafePointer(b.name.pointer)
}

@c @implementation
public func gh_config_value(_ c: OpaquePointer?) -> UnsafeMutablePointer<CChar>? {
    guard let b = try? borrow(c, ConfigBox.self, "config") else { return nil }
    return mallocString(b.config.stringValue)
}

@c @implementation
public func gh_config_default_value(_ c: OpaquePointer?) -> UnsafeMutablePointer<CChar>? {
    guard let b = try? borrow(c, ConfigBox.self, "config") else { return nil }
    return mallocString(b.config.defaultValue)
}

@c @implementation
public func gh_config_int_value(_ c: OpaquePointer?, _ out: UnsafeMutablePointer<Int64>?) -> Int32 {
    boundary {
        let b = try borrow(c, ConfigBox.self, "config")
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        let s = b.config.stringValue
        guard let v = b.config.intValue else {
            throw RpcException("Config item \(b.config.name): \"\(s)\" is not an integer", code: .errorParamInvalid)
        }
        out.pointee = Int64(v)
        return GH_OK
    }
}

@c @implementation
public func gh_config_float_value(_ c: OpaquePointer?, _ out: UnsafeMutablePointer<Double>?) -> Int32 {
    boundary {
        let b = try borrow(c, ConfigBox.self, "config")
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        let s = b.config.stringValue
        guard let v = b.config.floatValue else {
            throw RpcException("Config item \(b.config.name): \"\(s)\" is not a float", code: .errorParamInvalid)
        }
        out.pointee = v
        return GH_OK
    }
}

@c @implementation
public func gh_config_describe(_ c: OpaquePointer?, _ data: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                               _ len: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let b = try borrow(c, ConfigBox.self, "config")
        return try handOver(try b.config.message.serializedBytes(), data, len)
    }
}

@c @implementation
public func gh_config_validate(_ c: OpaquePointer?, _ value: UnsafePointer<CChar>?) -> Int32 {
    boundary {
        try borrow(c, ConfigBox.self, "config").config.validate(try string(value, "value"))
        return GH_OK
    }
}

@c @implementation
public func gh_config_update(_ c: OpaquePointer?, _ value: UnsafePointer<CChar>?) -> Int32 {
    boundary {
        try borrow(c, ConfigBox.self, "config").config.update(try string(value, "value"))
        return GH_OK
    }
}

@c @implementation
public func gh_config_reset(_ c: OpaquePointer?) -> Int32 {
    boundary {
        try borrow(c, ConfigBox.self, "config").config.reset()
        return GH_OK
    }
}

@c @implementation
public func gh_config_static_items(_ items: UnsafeMutablePointer<UnsafeMutablePointer<OpaquePointer?>?>?,
                                   _ count: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        guard let items = items, let count = count else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "output pointer is NULL") }
        let all = RpcStaticConfig.items()
        guard let array = malloc(MemoryLayout<OpaquePointer?>.stride * all.count)?
            .assumingMemoryBound(to: OpaquePointer?.self) else { throw ExportError(GH_ERR_NOMEM, "out of memory") }
        for (i, c) in all.enumerated() { (array + i).initialize(to: makeHandle(ConfigBox(c))) }
        items.pointee = array
        count.pointee = all.count
        return GH_OK
    }
}

// MARK: - folders

final class FoldersBox {
    let folders: Folders
    let system: OwnedCString?
    private let lock = NIOLock()
    private var user: OwnedCString?
    private var workspace: OwnedCString?
    init(_ f: Folders) { folders = f; system = f.system.map(OwnedCString.init) }

    func userPath() throws -> UnsafePointer<CChar>? {
        guard let p = try folders.userFolder() else { return nil }
        return lock.withLock {
            if user == nil { user = OwnedCString(p) }
            return UnsafePointer(user!.pointer)
        }
    }

    func workspacePath() throws -> UnsafePointer<CChar>? {
        guard let p = try folders.workspaceFolder() else { return nil }
        return lock.withLock {
            if workspace == nil { workspace = OwnedCString(p) }
            return UnsafePointer(workspace!.pointer)
        }
    }
}

@c @implementation
public func gh_folders_new(_ system: UnsafePointer<CChar>?, _ user: UnsafePointer<CChar>?,
                           _ workspace: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        out.pointee = makeHandle(FoldersBox(Folders(system: optionalString(system), user: optionalString(user),
                                                    workspace: optionalString(workspace))))
        return GH_OK
    }
}

@c @implementation
public func gh_folders_free(_ f: OpaquePointer?) {
    if let f = f { release(f, FoldersBox.self) }
}

@c @implementation
public func gh_folders_system(_ f: OpaquePointer?) -> UnsafePointer<CChar>? {
    guard let b = try? borrow(f, FoldersBox.self, "folders") else { return nil }
    return b.system.map { UnsafePointer($0.pointer) }
}

@c @implementation
public func gh_folders_user(_ f: OpaquePointer?, _ path: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    boundary {
        let b = try borrow(f, FoldersBox.self, "folders")
        guard let path = path else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "path is NULL") }
        path.pointee = try b.userPath()
        return GH_OK
    }
}

@c @implementation
public func gh_folders_workspace(_ f: OpaquePointer?, _ path: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    boundary {
        let b = try borrow(f, FoldersBox.self, "folders")
        guard let path = path else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "path is NULL") }
        path.pointee = try b.workspacePath()
        return GH_OK
    }
}

// MARK: - config sets

final class ConfigSetBox {
    let set: ConfigSet
    /// Every item's handle, by name (the caller's own boxes for the items it passed).
    let items: [String: ConfigBox]
    let warnings: [OwnedCString]
    init(set: ConfigSet, items: [String: ConfigBox]) {
        self.set = set
        self.items = items
        warnings = set.warnings.map(OwnedCString.init)
    }
}

func configBoxes(_ p: UnsafePointer<OpaquePointer?>?, _ n: Int, _ what: String) throws -> [ConfigBox] {
    if n == 0 { return [] }
    guard let p = p else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "\(what) is NULL with a non-zero count") }
    return try (0..<n).map { try borrow(p[$0], ConfigBox.self, "\(what)[\($0)]") }
}

/// "NAME=VALUE" strings (the command line's -c options) as (name, value) pairs, in order.
func cliPairs(_ cli: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int) throws -> [(name: String, value: String)] {
    var pairs: [(name: String, value: String)] = []
    if count > 0 {
        guard let cli = cli else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "cli_config is NULL with a non-zero count") }
        for i in 0..<count {
            let pair = try string(cli[i], "cli_config[\(i)]")
            guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
                throw RpcException("invalid config option \"\(pair)\": expected NAME=VALUE", code: .errorParamInvalid)
            }
            pairs.append((String(pair[..<eq]), String(pair[pair.index(after: eq)...])))
        }
    }
    return pairs
}

@c @implementation
public func gh_config_set_new(_ staticItems: UnsafePointer<OpaquePointer?>?, _ staticCount: Int,
                              _ userItems: UnsafePointer<OpaquePointer?>?, _ userCount: Int,
                              _ folders: OpaquePointer?, _ cli: UnsafePointer<UnsafePointer<CChar>?>?, _ cliCount: Int,
                              _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        let s = try configBoxes(staticItems, staticCount, "static_items")
        let u = try configBoxes(userItems, userCount, "user_items")
        let f = folders == nil ? Folders() : try borrow(folders, FoldersBox.self, "folders").folders
        let pairs = Dictionary(try cliPairs(cli, cliCount), uniquingKeysWith: { _, last in last })
        let set = try ConfigSet(staticItems: s.map(\.config), userItems: u.map(\.config), folders: f, cli: pairs)
        var byName: [String: ConfigBox] = [:]
        for b in s + u { byName[b.config.name] = b }
        out.pointee = makeHandle(ConfigSetBox(set: set, items: byName))
        return GH_OK
    }
}

@c @implementation
public func gh_config_set_free(_ s: OpaquePointer?) {
    if let s = s { release(s, ConfigSetBox.self) }
}

@c @implementation
public func gh_config_set_item(_ s: OpaquePointer?, _ name: UnsafePointer<CChar>?) -> OpaquePointer? {
    guard let b = try? borrow(s, ConfigSetBox.self, "set"), let n = optionalString(name),
          let item = b.items[n] else { return nil }
    return OpaquePointer(Unmanaged.passUnretained(item).toOpaque())
}

@c @implementation
public func gh_config_set_warning_count(_ s: OpaquePointer?) -> Int {
    (try? borrow(s, ConfigSetBox.self, "set"))?.warnings.count ?? 0
}

@c @implementation
public func gh_config_set_warning(_ s: OpaquePointer?, _ index: Int) -> UnsafePointer<CChar>? {
    guard let b = try? borrow(s, ConfigSetBox.self, "set"), index >= 0, index < b.warnings.count else { return nil }
    return UnsafePointer(b.warnings[index].pointer)
}

@c @implementation
public func gh_config_set_get(_ s: OpaquePointer?, _ req: UnsafePointer<UInt8>?, _ reqLen: Int,
                              _ resp: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                              _ respLen: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let b = try borrow(s, ConfigSetBox.self, "set")
        return try handOver(try b.set.get(try decode(RpcFilter.self, req, reqLen)).serializedBytes(), resp, respLen)
    }
}

@c @implementation
public func gh_config_set_set(_ s: OpaquePointer?, _ req: UnsafePointer<UInt8>?, _ reqLen: Int,
                              _ resp: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                              _ respLen: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let b = try borrow(s, ConfigSetBox.self, "set")
        return try handOver(try b.set.set(try decode(RpcConfigUpdate.self, req, reqLen)).serializedBytes(), resp, respLen)
    }
}

@c @implementation
public func gh_config_set_reset(_ s: OpaquePointer?, _ req: UnsafePointer<UInt8>?, _ reqLen: Int,
                                _ resp: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                                _ respLen: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let b = try borrow(s, ConfigSetBox.self, "set")
        return try handOver(try b.set.reset(try decode(RpcFilter.self, req, reqLen)).serializedBytes(), resp, respLen)
    }
}

@c @implementation
public func gh_config_set_update(_ s: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                 _ value: UnsafePointer<CChar>?) -> Int32 {
    boundary {
        let b = try borrow(s, ConfigSetBox.self, "set")
        _ = try b.set.set([(name: try string(name, "name"), value: try string(value, "value"))])
        return GH_OK
    }
}
