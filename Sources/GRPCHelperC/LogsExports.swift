// The helper layer's rolling-logs C ABI (grpchelper/logs.h), `@c @implementation`: thin
// translations onto GRPCHelper's RpcLogs.
import NIOConcurrencyHelpers
import Foundation
import GRPCHelper
import SwiftProtobuf
import CGRPCHelper
#if canImport(Glibc)
import Glibc
#endif

// MARK: - the host's level source

/// A host's logging as the library's LoggerLevelSource (gh_logs_use_level_source): the
/// callbacks with their user_data, counted while they run so that detaching can wait for
/// them before the user_data is freed.
// @unchecked Sendable: `running` and `detached` guarded by `condition`; the rest immutable.
final class HostLevelSource: LoggerLevelSource, @unchecked Sendable {
    private let getFn: gh_log_level_get_fn
    private let thresholdFn: gh_log_threshold_fn
    private let setFn: gh_log_level_set_fn
    private let emitFn: gh_log_emit_fn?
    private let userData: UnsafeMutableRawPointer?
    private let freeUserData: gh_free_fn?
    private let condition = NSCondition()
    private var running = 0
    private var detached = false
    /// With caching (gh_logs_cache_thresholds): threshold answers by logger name, dropped
    /// when the host says its levels changed (gh_logs_levels_changed) and after `apply`.
    private let cacheLock = NIOLock()
    private var caching = false
    private var generation: UInt64 = 0
    private var cache: [String: Int] = [:]

    init(get: gh_log_level_get_fn, threshold: gh_log_threshold_fn, set: gh_log_level_set_fn,
         emit: gh_log_emit_fn?, userData: UnsafeMutableRawPointer?, freeUserData: gh_free_fn?) {
        getFn = get; thresholdFn = threshold; setFn = set; emitFn = emit
        self.userData = userData; self.freeUserData = freeUserData
    }

    /// Runs `body` unless detached (then `fallback`).
    private func calling<T>(_ fallback: T, _ body: () -> T) -> T {
        condition.lock()
        if detached { condition.unlock(); return fallback }
        running += 1
        condition.unlock()
        defer {
            condition.lock()
            running -= 1
            if running == 0 { condition.broadcast() }
            condition.unlock()
        }
        return body()
    }

    /// No callback runs after this returns; then the user_data is freed.
    func detach() {
        condition.lock()
        detached = true
        while running > 0 { condition.wait() }
        condition.unlock()
        freeUserData?(userData)
    }

    var isAttached: Bool {
        condition.lock()
        defer { condition.unlock() }
        return !detached
    }

    func level(of name: String) -> (level: Int, enabled: Bool) {
        calling((0, true)) {
            var level: Int32 = 0, enabled: Int32 = 1
            name.withCString { getFn(userData, $0, &level, &enabled) }
            return (Int(level), enabled != 0)
        }
    }

    func threshold(of name: String) -> Int {
        let (hit, gen): (Int?, UInt64?) = cacheLock.withLock { caching ? (cache[name], generation) : (nil, nil) }
        if let h = hit { return h }
        let t = calling(Int.max) { Int(name.withCString { thresholdFn(userData, $0) }) }
        if let g = gen {
            // Kept only if no change was announced while the host was asked.
            cacheLock.withLock { if caching && generation == g { cache[name] = t } }
        }
        return t
    }

    func apply(_ name: String, level: Int?, enabled: Bool?) {
        calling(()) {
            name.withCString { setFn(userData, $0, Int32(clamping: level ?? -1), enabled.map { $0 ? 1 : 0 } ?? -1) }
        }
        levelsChanged()
    }

    /// Turns the threshold cache on or off (emptied either way).
    func setCaching(_ on: Bool) {
        cacheLock.withLock {
            caching = on
            generation &+= 1
            cache.removeAll()
        }
    }

    /// The host's levels changed: the cached answers go.
    func levelsChanged() {
        cacheLock.withLock {
            generation &+= 1
            if !cache.isEmpty { cache.removeAll(keepingCapacity: true) }
        }
    }

    func emit(_ record: RpcLogRecord) -> Bool {
        guard let emitFn = emitFn else { return false }
        return calling(true) {  // detached: dropped, as every record of these logs
            withOptionalCString(record.file) { file in
                withOptionalCString(record.function) { function in
                    emitFn(userData, record.name, Int32(clamping: record.level), record.thread, file, function,
                           Int32(clamping: record.line), record.message) != 0
                }
            }
        }
    }
}

private func withOptionalCString<T>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> T) -> T {
    guard let s = s else { return body(nil) }
    return s.withCString { body($0) }
}

/// The level source installed for logs made from now on (nil: the logs keep their levels).
// @unchecked Sendable: `current` guarded by `lock`.
final class HostLevels: @unchecked Sendable {
    static let shared = HostLevels()
    private let lock = NIOLock()
    private var source: HostLevelSource?
    /// gh_logs_cache_thresholds: for the installed source and those installed later.
    private var caching = false

    var current: HostLevelSource? { lock.withLock { source } }

    /// Installs `new`; returns the source it replaces.
    func swap(_ new: HostLevelSource?) -> HostLevelSource? {
        lock.withLock {
            new?.setCaching(caching)
            defer { source = new }
            return source
        }
    }

    func setCaching(_ on: Bool) {
        lock.withLock {
            caching = on
            source?.setCaching(on)
        }
    }
}

@c @implementation
public func gh_logs_cache_thresholds(_ enable: Int32) -> Int32 {
    HostLevels.shared.setCaching(enable != 0)
    return GH_OK.rawValue
}

@c @implementation
public func gh_logs_levels_changed() {
    HostLevels.shared.current?.levelsChanged()
}

@c @implementation
public func gh_logs_use_level_source(_ get: gh_log_level_get_fn?, _ threshold: gh_log_threshold_fn?,
                                     _ set: gh_log_level_set_fn?, _ emit: gh_log_emit_fn?,
                                     _ userData: UnsafeMutableRawPointer?, _ freeUserData: gh_free_fn?) -> Int32 {
    boundary {
        var new: HostLevelSource?
        if let get = get {
            guard let threshold = threshold, let set = set else {
                freeUserData?(userData)
                throw ExportError(GH_ERR_INVALID_ARGUMENT, "a level source needs get, threshold and set")
            }
            new = HostLevelSource(get: get, threshold: threshold, set: set, emit: emit, userData: userData,
                                  freeUserData: freeUserData)
        } else {
            freeUserData?(userData)
        }
        HostLevels.shared.swap(new)?.detach()
        return GH_OK
    }
}

// MARK: - rolling logs

final class LogsBox {
    let logs: RpcLogs
    let folder: OwnedCString
    init(_ l: RpcLogs) { logs = l; folder = OwnedCString(l.folder) }
}

@c @implementation
public func gh_logs_new(_ folder: UnsafePointer<CChar>?, _ unit: UnsafePointer<CChar>?, _ interval: Int32,
                        _ backup: Int32, _ folders: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        let f = folders == nil ? Folders() : try borrow(folders, FoldersBox.self, "folders").folders
        let logs = try RpcLogs(folder: try string(folder, "folder"), unit: try string(unit, "unit"),
                               interval: Int(interval), backup: Int(backup), folders: f,
                               levelSource: HostLevels.shared.current)
        out.pointee = makeHandle(LogsBox(logs))
        return GH_OK
    }
}

@c @implementation
public func gh_logs_new_from_config(_ set: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        let s = try borrow(set, ConfigSetBox.self, "set")
        out.pointee = makeHandle(LogsBox(try RpcLogs(config: s.set, levelSource: HostLevels.shared.current)))
        return GH_OK
    }
}

@c @implementation
public func gh_logs_free(_ l: OpaquePointer?) {
    guard let l = l else { return }
    (try? borrow(l, LogsBox.self, "logs"))?.logs.close()
    release(l, LogsBox.self)
}

@c @implementation
public func gh_logs_folder(_ l: OpaquePointer?) -> UnsafePointer<CChar>? {
    (try? borrow(l, LogsBox.self, "logs")).map { UnsafePointer($0.folder.pointer) }
}

@c @implementation
public func gh_logs_enabled(_ l: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ level: Int32) -> Int32 {
    guard let b = try? borrow(l, LogsBox.self, "logs") else { return 0 }
    return b.logs.isEnabled(optionalString(name) ?? "", level: Int(level)) ? 1 : 0
}

/// gh_logs_write / _record (`handled` false: level-checked, to the logger's and the root
/// file) and gh_logs_write_handled (true: one file, no check), with the same argument checks.
private func writeRecord(_ l: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ recordName: UnsafePointer<CChar>?,
                         _ level: Int32, _ thread: UnsafePointer<CChar>?, _ file: UnsafePointer<CChar>?,
                         _ function: UnsafePointer<CChar>?, _ line: Int32, _ message: UnsafePointer<CChar>?,
                         handled: Bool = false) -> Int32 {
    boundary {
        let b = try borrow(l, LogsBox.self, "logs")
        let n = try string(name, "name")
        guard (1...50).contains(level) else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "invalid level \(level) (1..50)") }
        let origin = optionalString(recordName)
        guard let message = message else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "message is NULL") }
        if handled {
            b.logs.writeHandled(name: n, recordName: origin, level: Int(level), message: String(cString: message),
                                thread: optionalString(thread), file: optionalString(file),
                                function: optionalString(function), line: Int(line))
        } else {
            // The strings are converted only for a record that is written.
            b.logs.write(name: n, recordName: origin, level: Int(level), message: String(cString: message),
                         thread: optionalString(thread), file: optionalString(file),
                         function: optionalString(function), line: Int(line))
        }
        return GH_OK
    }
}

@c @implementation
public func gh_logs_write(_ l: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ level: Int32,
                          _ message: UnsafePointer<CChar>?) -> Int32 {
    writeRecord(l, name, nil, level, nil, nil, nil, 0, message)
}

@c @implementation
public func gh_logs_write_record(_ l: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                 _ recordName: UnsafePointer<CChar>?, _ level: Int32,
                                 _ thread: UnsafePointer<CChar>?, _ file: UnsafePointer<CChar>?,
                                 _ function: UnsafePointer<CChar>?, _ line: Int32,
                                 _ message: UnsafePointer<CChar>?) -> Int32 {
    writeRecord(l, name, recordName, level, thread, file, function, line, message)
}

@c @implementation
public func gh_logs_write_handled(_ l: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                  _ recordName: UnsafePointer<CChar>?, _ level: Int32,
                                  _ thread: UnsafePointer<CChar>?, _ file: UnsafePointer<CChar>?,
                                  _ function: UnsafePointer<CChar>?, _ line: Int32,
                                  _ message: UnsafePointer<CChar>?) -> Int32 {
    writeRecord(l, name, recordName, level, thread, file, function, line, message, handled: true)
}

@c @implementation
public func gh_logs_get(_ l: OpaquePointer?, _ req: UnsafePointer<UInt8>?, _ reqLen: Int,
                        _ resp: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                        _ respLen: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let b = try borrow(l, LogsBox.self, "logs")
        return try handOver(try b.logs.get(try decode(RpcFilter.self, req, reqLen)).serializedBytes(), resp, respLen)
    }
}

@c @implementation
public func gh_logs_set(_ l: OpaquePointer?, _ req: UnsafePointer<UInt8>?, _ reqLen: Int,
                        _ resp: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                        _ respLen: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let b = try borrow(l, LogsBox.self, "logs")
        return try handOver(try b.logs.set(try decode(RpcLoggerUpdate.self, req, reqLen)).serializedBytes(), resp, respLen)
    }
}

@c @implementation
public func gh_logs_reset(_ l: OpaquePointer?, _ req: UnsafePointer<UInt8>?, _ reqLen: Int,
                          _ resp: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                          _ respLen: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let b = try borrow(l, LogsBox.self, "logs")
        return try handOver(try b.logs.reset(try decode(RpcFilter.self, req, reqLen)).serializedBytes(), resp, respLen)
    }
}
