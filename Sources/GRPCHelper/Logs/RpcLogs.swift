// Rolling logs of a helper-layer program (grpc-helper's "Rolling logs"): every named
// logger writes to <logs>/<name>/<name>.log and every record also goes to the root
// logger's <logs>/root/root.log; levels per logger in layers (LoggerLevels).
// Swift code logs through swift-log (`logger(_:)`, or `makeHandler` for
// LoggingSystem.bootstrap); C hosts and the Python binding write records directly.
import NIOConcurrencyHelpers
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

// @unchecked Sendable: files and `closed` guarded by `lock`; levels and files are thread-safe.
public final class RpcLogs: @unchecked Sendable {
    /// The logs folder (absolute).
    public let folder: String
    /// Warnings raised while loading (e.g. an unknown level name in a loggers.json).
    public let warnings: [String]

    let levels: LoggerLevels
    private let rule: RolloverRule
    private let backup: Int
    private let clock: @Sendable () -> TimeInterval
    private let lock = NIOLock()
    private var files: [String: RollingFile] = [:]
    /// The same files by canonical logger name (names that map to one path share it).
    private var byName: [String: RollingFile] = [:]
    private var closed = false

    /// - folder: absolute, or relative to the workspace (the current directory without one).
    /// - unit, interval: rollover period (S, M, H, D, MIDNIGHT, W0..W6, any case × interval).
    /// - backup: rolled files kept per log (0 or less: all).
    /// - folders: where the loggers.json layers are read and set() persists.
    /// - levelSource: the host's logging, when it keeps the levels (see LoggerLevelSource);
    ///   nil: the logs keep them (layered from the loggers.json files).
    /// - clock: the time source (tests pass their own).
    /// Errors: a bad unit or interval → ERROR_PARAM_INVALID; a malformed loggers.json →
    /// ERROR_MODEL_INVALID; a folder that cannot be created → ERROR.
    public init(folder: String, unit: String = "H", interval: Int = 1, backup: Int = 10,
                folders: Folders = Folders(), levelSource: LoggerLevelSource? = nil,
                clock: @escaping @Sendable () -> TimeInterval = { Date().timeIntervalSince1970 }) throws {
        rule = try RolloverRule(unit: unit, interval: interval)
        let expanded = Folders.expand(folder)
        if expanded.hasPrefix("/") {
            self.folder = expanded
        } else {
            let base = try folders.workspaceFolder() ?? FileManager.default.currentDirectoryPath
            self.folder = ((base as NSString).appendingPathComponent(expanded) as NSString).standardizingPath
        }
        self.backup = backup
        self.clock = clock
        levels = try LoggerLevels(folders: folders, source: levelSource)
        warnings = levels.warnings
        _ = try file(for: "")
        for w in warnings { write(name: "", level: RpcLogLevel.warning, message: w) }
    }

    /// The host's logging when it keeps the levels (see LoggerLevelSource).
    public var levelSource: LoggerLevelSource? { levels.source }

    /// From a config set: rpc-logs-folder, rpc-logs-interval-unit, rpc-logs-interval,
    /// rpc-logs-backup (the built-in static items; their defaults when the set lacks
    /// them) and the set's folders.
    public convenience init(config: ConfigSet, levelSource: LoggerLevelSource? = nil,
                            clock: @escaping @Sendable () -> TimeInterval = { Date().timeIntervalSince1970 }) throws {
        func value(_ name: String, _ fallback: String) -> String { config[name]?.stringValue ?? fallback }
        guard let interval = Config.parseInt(value("rpc-logs-interval", "1")),
              let backup = Config.parseInt(value("rpc-logs-backup", "10")) else {
            throw RpcException("rpc-logs-interval and rpc-logs-backup must be integers", code: .errorParamInvalid)
        }
        try self.init(folder: value("rpc-logs-folder", "logs"), unit: value("rpc-logs-interval-unit", "H"),
                      interval: interval, backup: backup, folders: config.folders, levelSource: levelSource,
                      clock: clock)
    }

    deinit { close() }

    /// Closes the files; later records are dropped.
    public func close() {
        let open: [RollingFile] = lock.withLock {
            closed = true
            defer { files = [:]; byName = [:] }
            return Array(files.values)
        }
        for f in open { f.close() }
    }

    /// The file path of a logger ("" and "root": the root file). Slashes in names become
    /// "_" so that a name never leaves the logs folder.
    public func path(of name: String) -> String {
        var n = LoggerLevels.canonical(name)
        if n.isEmpty { n = "root" }
        n = n.replacingOccurrences(of: "/", with: "_")
        if n.hasPrefix(".") { n = "_" + n }
        return ((folder as NSString).appendingPathComponent(n) as NSString).appendingPathComponent(n + ".log")
    }

    /// The file of a logger, opened on first use (with its header line, which the root
    /// file gets too; an INFO record: with a level source, only when INFO is enabled for
    /// the logger, as grpc-helper's). Files are keyed by path: names that map to one path
    /// share it.
    private func file(for name: String) throws -> RollingFile? {
        let key = LoggerLevels.canonical(name)
        // Per record: a name seen before is one dictionary lookup (no path built).
        if let f = lock.withLock({ closed ? nil : byName[key] }) { return f }
        let p = path(of: key)
        // Asked before the lock: a host's source may call into its own runtime.
        let header = levels.source == nil || levels.isEnabled(key, level: RpcLogLevel.info)
        return try lock.withLock {
            if closed { return nil }
            if let f = files[p] {
                byName[key] = f
                return f
            }
            let now = clock()
            let f = try RollingFile(path: p, rule: rule, backup: backup, now: now)
            files[p] = f
            byName[key] = f
            if header {
                let text = RpcLogs.line(time: now, thread: RpcLogs.currentThreadName(), name: key,
                                        level: RpcLogLevel.info,
                                        message: "---------- New \(key.isEmpty ? "root" : key) logger instance for process \(getpid()) ----------",
                                        file: nil, function: nil, line: 0)
                f.write(text, now: now)
                if !key.isEmpty, let root = files[path(of: "")] { root.write(text, now: now) }
            }
            return f
        }
    }

    /// Whether a record of `level` from logger `name` would be written.
    public func isEnabled(_ name: String, level: Int) -> Bool { levels.isEnabled(name, level: level) }

    /// Writes a record if enabled: to the logger's file and the root file. `recordName`
    /// is the logger that made the record when it differs from the one whose file it goes
    /// to (a child or another library's logger reaching a handler by propagation, as in
    /// Python's logging): its level decides and its name is on the line. `thread`
    /// defaults to the calling thread's name.
    /// The message and the source are only read for a record that is written.
    /// With a level source that takes records (`emit`), the record goes to it instead.
    public func write(name: String, recordName: String? = nil, level: Int, message: @autoclosure () -> String,
                      thread: @autoclosure () -> String? = nil, file sourceFile: @autoclosure () -> String? = nil,
                      function: @autoclosure () -> String? = nil, line sourceLine: Int = 0) {
        let origin = LoggerLevels.canonical(recordName ?? name)
        guard levels.isEnabled(origin, level: level) else { return }
        if let source = levels.source, recordName == nil {
            let record = RpcLogRecord(name: origin, level: level, message: message(),
                                      thread: thread() ?? RpcLogs.currentThreadName(), file: sourceFile(),
                                      function: function(), line: sourceLine)
            if source.emit(record) { return }
            return writeLine(to: origin, alsoRoot: true, name: origin, level: level, message: record.message,
                             thread: record.thread, file: record.file, function: record.function,
                             line: record.line)
        }
        writeLine(to: LoggerLevels.canonical(name), alsoRoot: true, name: origin, level: level, message: message(),
                  thread: thread() ?? RpcLogs.currentThreadName(), file: sourceFile(), function: function(),
                  line: sourceLine)
    }

    /// For a host whose logging decides levels and routing (a LoggerLevelSource that takes
    /// records): writes a record that logger `name`'s handler received to `name`'s file only
    /// ("" and "root": the root file), without a level check. `recordName` is the logger that
    /// made it (nil: `name`), named on the line.
    public func writeHandled(name: String, recordName: String? = nil, level: Int, message: String,
                             thread: String? = nil, file sourceFile: String? = nil, function: String? = nil,
                             line sourceLine: Int = 0) {
        writeLine(to: LoggerLevels.canonical(name), alsoRoot: false,
                  name: LoggerLevels.canonical(recordName ?? name), level: level, message: message,
                  thread: thread ?? RpcLogs.currentThreadName(), file: sourceFile, function: function,
                  line: sourceLine)
    }

    private func writeLine(to key: String, alsoRoot: Bool, name origin: String, level: Int, message: String,
                           thread: String, file sourceFile: String?, function: String?, line sourceLine: Int) {
        let now = clock()
        let text = RpcLogs.line(time: now, thread: thread, name: origin, level: level, message: message,
                                file: sourceFile, function: function, line: sourceLine)
        if !key.isEmpty || !alsoRoot, let f = try? file(for: key) { f.write(text, now: now) }
        if alsoRoot, let root = try? file(for: "") { root.write(text, now: now) }
    }

    // MARK: swift-log

    /// A swift-log Logger writing to these logs under `name`; its file is opened now
    /// (with its header line).
    public func logger(_ name: String) -> Logger {
        _ = try? file(for: name)
        return Logger(label: name) { label in RpcLogHandler(logs: self, name: label) }
    }

    /// A handler factory for `LoggingSystem.bootstrap(logs.makeHandler)`.
    public func makeHandler(label: String) -> LogHandler { RpcLogHandler(logs: self, name: label) }

    // MARK: LoggerService operations

    /// The named loggers' configuration ("" is the root, reported as "root"). An empty
    /// list → ERROR_PARAM_MISSING.
    public func get(_ names: [String]) throws -> [RpcLoggerConfig] { try levels.get(names) }

    /// Sets level and enablement; persisted in the workspace loggers.json.
    public func set(_ items: [RpcLoggerConfig]) throws -> [RpcLoggerConfig] { try levels.set(items) }

    /// Forgets the workspace setting of the named loggers.
    public func reset(_ names: [String]) throws -> [RpcLoggerConfig] { try levels.reset(names) }

    // MARK: formatting

    /// "YYYY-MM-DD hh:mm:ss.mmm [thread/name] LEVEL message - file:function:line\n".
    static func line(time: TimeInterval, thread: String, name: String, level: Int, message: String,
                     file: String?, function: String?, line: Int) -> String {
        var secs = time_t(time.rounded(.down))
        var ms = Int(((time - time.rounded(.down)) * 1000).rounded(.down))
        if ms > 999 { ms = 999 }
        var tmv = tm()
        localtime_r(&secs, &tmv)
        var buf = [CChar](repeating: 0, count: 32)
        let n = strftime(&buf, buf.count, "%Y-%m-%d %H:%M:%S", &tmv)
        var out = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        out += "." + (ms < 10 ? "00" : ms < 100 ? "0" : "") + String(ms)
        out += " [\(thread)/\(name.isEmpty ? "root" : name)] \(RpcLogLevel.name(level)) \(message)"
        if let f = file, !f.isEmpty {
            out += " - \((f as NSString).lastPathComponent):\(function ?? ""):\(line)"
        }
        out += "\n"
        return out
    }

    /// The calling thread's kernel id (from /proc/thread-self, read once per thread).
    private static let tidKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    private static func currentTid() -> Int {
        if let p = pthread_getspecific(tidKey) { return Int(bitPattern: p) }
        var buf = [CChar](repeating: 0, count: 64)
        let n = readlink("/proc/thread-self", &buf, buf.count - 1)  // "<pid>/task/<tid>"
        let tid = n > 0 ? Int(stringFromCBuffer(buf).split(separator: "/").last ?? "") ?? 0 : 0
        pthread_setspecific(tidKey, UnsafeRawPointer(bitPattern: tid))
        return tid
    }

    /// "MainThread" for the main thread (as Python); for others the thread's name (which
    /// Linux threads inherit from their creator) and its kernel id, so that lines of
    /// different threads can be told apart: "worker-12345".
    /// Taken once per thread (three system calls: is it the main thread, its name) and kept:
    /// a server records it for every call.
    static func currentThreadName() -> String {
        if let p = pthread_getspecific(threadNameKey) {
            return Unmanaged<ThreadName>.fromOpaque(p).takeUnretainedValue().text
        }
        let text: String
        if Thread.isMainThread {
            text = "MainThread"
        } else {
            let name = Thread.current.name ?? ""
            text = (name.isEmpty ? "Thread" : name) + "-" + String(currentTid())
        }
        pthread_setspecific(threadNameKey, Unmanaged.passRetained(ThreadName(text)).toOpaque())
        return text
    }

    private final class ThreadName {
        let text: String
        init(_ text: String) { self.text = text }
    }

    /// The calling thread's name as `currentThreadName` gives it (released with the thread).
    private static let threadNameKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { p in
            if let p { Unmanaged<ThreadName>.fromOpaque(p).release() }
        }
        return key
    }()
}

/// A swift-log handler over RpcLogs: the level comes from the logs' layered
/// configuration (setting `logLevel` changes it for this process, not persisted).
public struct RpcLogHandler: LogHandler {
    let logs: RpcLogs
    let name: String
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    static func number(_ level: Logger.Level) -> Int {
        switch level {
        case .trace: return RpcLogLevel.trace
        case .debug: return RpcLogLevel.debug
        case .info: return RpcLogLevel.info
        case .notice: return RpcLogLevel.notice
        case .warning: return RpcLogLevel.warning
        case .error: return RpcLogLevel.error
        case .critical: return RpcLogLevel.critical
        }
    }

    public var logLevel: Logger.Level {
        get {
            guard let l = logs.levels.effectiveLevelIfEnabled(name) else { return .critical }
            switch l {
            case ..<6: return .trace
            case ..<11: return .debug
            case ..<21: return .info
            case ..<26: return .notice
            case ..<31: return .warning
            case ..<41: return .error
            default: return .critical
            }
        }
        set { logs.levels.setRuntimeLevel(name, RpcLogHandler.number(newValue)) }
    }

    public func log(event: LogEvent) {
        var text = event.message.description
        var all = metadata
        if let p = metadataProvider { all.merge(p.get(), uniquingKeysWith: { _, new in new }) }
        if let m = event.metadata { all.merge(m, uniquingKeysWith: { _, new in new }) }
        if !all.isEmpty {
            text += " " + all.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        logs.write(name: name, level: RpcLogHandler.number(event.level), message: text,
                   file: event.file, function: event.function, line: Int(event.line))
    }
}

// The LoggerService operations on the wire messages (what the logger service serves).
extension RpcLogs {
    public func get(_ request: RpcFilter) throws -> RpcLoggerStatus {
        var s = RpcLoggerStatus()
        s.items = try get(request.names)
        return s
    }

    public func set(_ request: RpcLoggerUpdate) throws -> RpcLoggerStatus {
        var s = RpcLoggerStatus()
        s.items = try set(request.items)
        return s
    }

    public func reset(_ request: RpcFilter) throws -> RpcLoggerStatus {
        var s = RpcLoggerStatus()
        s.items = try reset(request.names)
        return s
    }
}
