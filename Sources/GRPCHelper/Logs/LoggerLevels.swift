// Levels and enablement of named loggers (grpc-helper's logs manager): layers from
// loggers.json files, Python logging's level numbers and inheritance, and the
// LoggerService operations.
import NIOConcurrencyHelpers
import Foundation

/// Python logging's level numbers and names, plus swift-log's trace (5) and notice (25).
public enum RpcLogLevel {
    public static let trace = 5, debug = 10, info = 20, notice = 25, warning = 30, error = 40, critical = 50
    /// The root logger's level when none is configured.
    public static let rootDefault = info

    static let names: [Int: String] = [5: "TRACE", 10: "DEBUG", 20: "INFO", 25: "NOTICE", 30: "WARNING",
                                       40: "ERROR", 50: "CRITICAL"]

    /// "DEBUG" for 10, "Level 12" for a number without a name (as Python).
    public static func name(_ level: Int) -> String { names[level] ?? "Level \(level)" }

    /// The number of a level name ("UNKNOWN" is 0: no level of its own); nil if unknown.
    static func value(_ name: String) -> Int? {
        if name == "UNKNOWN" { return 0 }
        return names.first(where: { $0.value == name })?.key
    }
}

/// One JSON value of loggers.json: a level name, or false (disabled) / true.
private enum LoggerSetting: Decodable {
    case level(String)
    case enabled(Bool)
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { self = .enabled(b); return }
        self = .level(try c.decode(String.self))
    }
}

/// A record the library makes (its own loggers' lines), as handed to a host's logging.
public struct RpcLogRecord: Sendable {
    /// The logger that made it ("" is the root).
    public var name: String
    public var level: Int
    public var message: String
    /// The thread that made it, as the logs name it ("MainThread", "worker-4242").
    public var thread: String
    public var file: String?
    public var function: String?
    public var line: Int
}

/// Levels kept by a host's own logging system instead of by RpcLogs: the Python binding's
/// is Python's `logging`, so that a Python program has one source of truth for its loggers'
/// levels. Logs made with one (`RpcLogs(..., levelSource:)`, `RpcServer(..., levelSource:)`):
/// - every level decision asks `threshold(of:)` (records, swift-log's `logLevel`, the
///   header line of a file, which is an INFO record);
/// - at start, the loggers.json layers (system, user, workspace; a later layer's value for a
///   name replaces an earlier one) are applied with `apply`, after the root's own level was
///   read (what `reset` gives the root back);
/// - the LoggerService reads `level(of:)` and applies set / reset with `apply` (set: the
///   given level and enablement, persisted first; reset: no level of its own — the root its
///   level from before the layers — and enabled, removed from the workspace file);
/// - the library's own records go to `emit` (the host routes them through its handlers,
///   which write them with `RpcLogs.writeHandled`); when it returns false the library writes
///   them itself.
/// Names: "" is the root. The methods are called on any thread that logs or serves the
/// LoggerService (never on an event-loop thread), possibly concurrently.
public protocol LoggerLevelSource: AnyObject, Sendable {
    /// The logger's own level (0: none, it inherits) and whether it is enabled.
    func level(of name: String) -> (level: Int, enabled: Bool)
    /// The lowest level a record of logger `name` needs to be written (Int.max: none is).
    func threshold(of name: String) -> Int
    /// Sets the logger's own level and / or enablement (nil: unchanged).
    func apply(_ name: String, level: Int?, enabled: Bool?)
    /// Takes a record the library made (it passed `threshold(of:)`); false: not taken.
    func emit(_ record: RpcLogRecord) -> Bool
    /// False once the host's logging is gone (the LoggerService operations then fail).
    var isAttached: Bool { get }
}

extension LoggerLevelSource {
    public var isAttached: Bool { true }
}

// @unchecked Sendable: mutable state guarded by `lock`.
final class LoggerLevels: @unchecked Sendable {
    struct Entry: Equatable {
        /// 0: none of its own (inherits).
        var level = 0
        var enabled = true
    }

    private let lock = NIOLock()
    /// The host's levels, when it keeps them (then `entries` and `base` stay empty).
    let source: LoggerLevelSource?
    /// With a source: the root's own level before the layers were applied (reset's).
    private var rootResetLevel = 0
    /// The configuration from the system and user layers (what reset goes back to).
    private var base: [String: Entry] = [:]
    private var entries: [String: Entry] = [:]
    private let workspaceFile: String?
    private(set) var warnings: [String] = []

    /// "" and "root" are the root logger.
    static func canonical(_ name: String) -> String { name == "root" ? "" : name }

    /// Loads the layers: loggers.json of the system, user and workspace folders, each
    /// overriding the previous. A file that is not a JSON object of strings and booleans
    /// → ERROR_MODEL_INVALID naming it; an unknown level name is ignored with a warning.
    init(folders: Folders, source: LoggerLevelSource? = nil) throws {
        func file(_ dir: String?) -> String? { dir.map { ($0 as NSString).appendingPathComponent("loggers.json") } }
        workspaceFile = file(folders.workspace)
        self.source = source
        if let source = source {
            // As grpc-helper's logs manager: one map, layer over layer, then applied.
            var merged: [String: (LoggerSetting, String)] = [:]
            for path in [file(folders.system), file(folders.user), workspaceFile] {
                guard let path = path, let settings = try LoggerLevels.read(path) else { continue }
                for (name, setting) in settings { merged[LoggerLevels.canonical(name)] = (setting, path) }
            }
            rootResetLevel = source.level(of: "").level
            for (name, (setting, path)) in merged.sorted(by: { $0.key < $1.key }) {
                switch setting {
                case .enabled(let b): source.apply(name, level: nil, enabled: b)
                case .level(let l):
                    guard let v = RpcLogLevel.value(l) else {
                        warnings.append("Ignoring unknown level \(l) for logger \(name.isEmpty ? "root" : name) (\(path))")
                        continue
                    }
                    source.apply(name, level: v, enabled: nil)
                }
            }
            return
        }
        for (path, isBase) in [(file(folders.system), true), (file(folders.user), true), (workspaceFile, false)] {
            guard let path = path, let settings = try LoggerLevels.read(path) else { continue }
            for (rawName, setting) in settings.sorted(by: { $0.key < $1.key }) {
                let name = LoggerLevels.canonical(rawName)
                var e = entries[name] ?? Entry()
                switch setting {
                case .enabled(let b): e.enabled = b
                case .level(let l):
                    guard let v = RpcLogLevel.value(l) else {
                        warnings.append("Ignoring unknown level \(l) for logger \(rawName) (\(path))")
                        continue
                    }
                    e.level = v
                }
                entries[name] = e
                if isBase { base[name] = e }
            }
        }
    }

    private static func read(_ path: String) throws -> [String: LoggerSetting]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RpcException("cannot read \(path)", code: .errorModelInvalid)
        }
        do {
            return try JSONDecoder().decode([String: LoggerSetting].self, from: data)
        } catch {
            throw RpcException("Invalid logger json file (expecting a JSON object of level names or booleans): \(path)",
                               code: .errorModelInvalid)
        }
    }

    /// The level that applies to `name`: its own, else its nearest dotted parent's, else
    /// the root's (INFO unless configured).
    private func effectiveLocked(_ name: String) -> Int {
        var n = Substring(name)
        while !n.isEmpty {
            if let l = entries[String(n)]?.level, l > 0 { return l }
            guard let dot = n.lastIndex(of: ".") else { break }
            n = n[..<dot]
        }
        if let l = entries[""]?.level, l > 0 { return l }
        return RpcLogLevel.rootDefault
    }

    /// The effective level, or nil when the logger is disabled (one lock, for swift-log's
    /// `logLevel`, read on every log call).
    func effectiveLevelIfEnabled(_ rawName: String) -> Int? {
        let name = LoggerLevels.canonical(rawName)
        if let source = source {
            let t = source.threshold(of: name)
            return t > RpcLogLevel.critical ? nil : t
        }
        return lock.withLock { entries[name]?.enabled == false ? nil : effectiveLocked(name) }
    }

    func isEnabled(_ rawName: String, level: Int) -> Bool {
        let name = LoggerLevels.canonical(rawName)
        if let source = source { return level >= source.threshold(of: name) }
        return lock.withLock {
            if entries[name]?.enabled == false { return false }
            return level >= effectiveLocked(name)
        }
    }

    /// Sets a level for this process only (swift-log's `logLevel` setter).
    func setRuntimeLevel(_ rawName: String, _ level: Int) {
        let name = LoggerLevels.canonical(rawName)
        if let source = source { return source.apply(name, level: level, enabled: nil) }
        lock.withLock { entries[name, default: Entry()].level = level }
    }

    // MARK: LoggerService operations

    private func config(_ name: String) -> RpcLoggerConfig {
        let own: Int, enabled: Bool
        if let source = source {
            (own, enabled) = source.level(of: name)
        } else {
            let e = entries[name] ?? Entry()
            own = name.isEmpty && e.level == 0 ? RpcLogLevel.rootDefault : e.level
            enabled = e.enabled
        }
        var c = RpcLoggerConfig()
        c.name = name.isEmpty ? "root" : name
        c.enabled = enabled
        switch own {
        case 10, 20, 30, 40, 50: c.level = RpcLoggerLevel(rawValue: own) ?? .lvlUnknown
        default: c.level = .lvlUnknown  // no level of its own, or one the API has no name for
        }
        return c
    }

    /// With a source that is gone: ERROR.
    private func checkSource() throws {
        if let source = source, !source.isAttached {
            throw RpcException("logger levels are unavailable: the host's logging (level source) was removed",
                               code: .error)
        }
    }

    func get(_ names: [String]) throws -> [RpcLoggerConfig] {
        guard !names.isEmpty else { throw RpcException("Empty request", code: .errorParamMissing) }
        try checkSource()
        return lock.withLock { names.map { config(LoggerLevels.canonical($0)) } }
    }

    /// Sets level and enablement, persisted in the workspace loggers.json.
    func set(_ items: [RpcLoggerConfig]) throws -> [RpcLoggerConfig] {
        guard !items.isEmpty else { throw RpcException("Empty request", code: .errorParamMissing) }
        try checkSource()
        for i in items {
            guard (0...50).contains(i.level.rawValue) else {
                throw RpcException("invalid level \(i.level.rawValue) for logger \(i.name)", code: .errorParamInvalid)
            }
        }
        return try lock.withLock {
            // Written first: a failed write applies nothing.
            var persisted = try persistedLocked()
            for i in items {
                persisted[LoggerLevels.canonical(i.name)] = i.enabled ? (RpcLogLevel.names[i.level.rawValue] ?? "UNKNOWN") : false
            }
            try savePersistedLocked(persisted)
            for i in items {
                let name = LoggerLevels.canonical(i.name)
                if let source = source {
                    source.apply(name, level: i.level.rawValue, enabled: i.enabled)
                } else {
                    entries[name] = Entry(level: i.level.rawValue, enabled: i.enabled)
                }
            }
            return items.map { config(LoggerLevels.canonical($0.name)) }
        }
    }

    /// Forgets the workspace setting, removed from the workspace loggers.json: back to the
    /// system/user layers' one (else no level of its own, enabled); with a level source, as
    /// grpc-helper: no level of its own (the root: its level from before the layers), enabled.
    func reset(_ names: [String]) throws -> [RpcLoggerConfig] {
        guard !names.isEmpty else { throw RpcException("Empty request", code: .errorParamMissing) }
        try checkSource()
        return try lock.withLock {
            var persisted = try persistedLocked()
            var changed = false
            for raw in names {
                if persisted.removeValue(forKey: LoggerLevels.canonical(raw)) != nil { changed = true }
            }
            if changed { try savePersistedLocked(persisted) }  // first: a failed write applies nothing
            for raw in names {
                let name = LoggerLevels.canonical(raw)
                if let source = source {
                    // grpc-helper's reset: no level of its own (the root: its level from
                    // before the layers), enabled.
                    source.apply(name, level: name.isEmpty ? rootResetLevel : 0, enabled: true)
                } else {
                    entries[name] = base[name]
                }
            }
            return names.map { config(LoggerLevels.canonical($0)) }
        }
    }

    private func persistedLocked() throws -> [String: Any] {
        guard let path = workspaceFile else { return [:] }
        var out: [String: Any] = [:]
        for (k, v) in try LoggerLevels.read(path) ?? [:] {
            switch v {
            case .enabled(let b): out[LoggerLevels.canonical(k)] = b
            case .level(let l): out[LoggerLevels.canonical(k)] = l
            }
        }
        return out
    }

    private func savePersistedLocked(_ map: [String: Any]) throws {
        guard let path = workspaceFile else { return }
        let dir = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw RpcException("cannot create folder \(dir): \(error.localizedDescription)", code: .error)
        }
        try writeJSONObject(map, to: path)
    }
}
