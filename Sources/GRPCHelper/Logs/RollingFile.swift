// A log file that rolls over on time (Python's TimedRotatingFileHandler rules, which
// grpc-helper's rolling logs use): units S, M, H, D, MIDNIGHT, W0..W6 (local time).
import NIOConcurrencyHelpers
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The rollover rules of one unit × interval.
struct RolloverRule: Sendable {
    /// "S", "M", "H", "D", "MIDNIGHT" or "W0".."W6" (W0 is Monday).
    let unit: String
    /// Seconds between rollovers (MIDNIGHT and Wn: one day, one week).
    let period: TimeInterval
    /// How far back from a rollover time its file's suffix is dated: the unit × the
    /// interval, for every unit (as Python names the files, also for MIDNIGHT and Wn,
    /// which roll once per day / week whatever the interval).
    let suffixAge: TimeInterval
    /// strftime format of the rolled files' suffix.
    let suffixFormat: String
    /// The pattern of such a suffix (to find old files).
    let suffixPattern: NSRegularExpression
    let weekday: Int?

    /// Throws ERROR_PARAM_INVALID for an unknown unit or an interval below 1.
    init(unit rawUnit: String, interval: Int) throws {
        let unit = rawUnit.uppercased()
        guard RpcStaticConfig.logIntervalUnits.contains(unit) else {
            throw RpcException("invalid logs interval unit \"\(rawUnit)\" (expected one of S, M, H, D, MIDNIGHT, W0..W6)",
                               code: .errorParamInvalid)
        }
        guard interval >= 1 else {
            throw RpcException("invalid logs interval \(interval) (expected a positive integer)", code: .errorParamInvalid)
        }
        self.unit = unit
        let day = #"\d{4}-\d{2}-\d{2}"#
        var pattern: String
        var p: TimeInterval
        switch unit {
        case "S":
            p = 1; suffixFormat = "%Y-%m-%d_%H-%M-%S"; pattern = day + #"_\d{2}-\d{2}-\d{2}"#
        case "M":
            p = 60; suffixFormat = "%Y-%m-%d_%H-%M"; pattern = day + #"_\d{2}-\d{2}"#
        case "H":
            p = 3600; suffixFormat = "%Y-%m-%d_%H"; pattern = day + #"_\d{2}"#
        case "D", "MIDNIGHT":
            p = 86400; suffixFormat = "%Y-%m-%d"; pattern = day
        default:
            p = 86400 * 7; suffixFormat = "%Y-%m-%d"; pattern = day
        }
        weekday = unit.hasPrefix("W") ? Int(unit.dropFirst()) : nil
        suffixAge = p * TimeInterval(interval)
        // As Python: the interval multiplies S, M, H and D; MIDNIGHT and Wn roll once
        // per day / week.
        if unit == "S" || unit == "M" || unit == "H" || unit == "D" { p *= TimeInterval(interval) }
        period = p
        pattern = "^" + pattern + "$"
        suffixPattern = try! NSRegularExpression(pattern: pattern)
    }

    /// The next rollover time after `t`. MIDNIGHT: the next local midnight; Wn: the
    /// midnight that ends the next day n (Python's computeRollover).
    func next(after t: TimeInterval) -> TimeInterval {
        guard unit == "MIDNIGHT" || weekday != nil else { return t + period }
        var secs = time_t(t)
        var tmv = tm()
        localtime_r(&secs, &tmv)
        let sinceMidnight = TimeInterval(Int(tmv.tm_hour) * 3600 + Int(tmv.tm_min) * 60 + Int(tmv.tm_sec))
        var result = t - t.truncatingRemainder(dividingBy: 1) - sinceMidnight + 86400
        if let wanted = weekday {
            let today = (Int(tmv.tm_wday) + 6) % 7  // Monday = 0, as Python
            if today != wanted {
                let wait = today < wanted ? wanted - today : 6 - today + wanted + 1
                result += TimeInterval(wait) * 86400
            }
        }
        return result
    }

    func suffix(for t: TimeInterval) -> String {
        var secs = time_t(t)
        var tmv = tm()
        localtime_r(&secs, &tmv)
        var buf = [CChar](repeating: 0, count: 64)
        let n = strftime(&buf, buf.count, suffixFormat, &tmv)
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// One rolling file. Writes are serialized by its own lock.
// @unchecked Sendable: mutable state guarded by `lock`.
final class RollingFile: @unchecked Sendable {
    let path: String
    private let rule: RolloverRule
    private let backup: Int
    private let lock = NIOLock()
    private var fd: Int32 = -1
    private var rolloverAt: TimeInterval
    private var closed = false
    /// A failure to write or reopen is reported once on stderr (until writing works again).
    private var failing = false

    /// Opens (creating the folder and the file) in append mode. The first rollover is
    /// computed from the file's modification time when it exists (a file left by an
    /// earlier process rolls over on the first write after its period).
    init(path: String, rule: RolloverRule, backup: Int, now: TimeInterval) throws {
        self.path = path
        self.rule = rule
        self.backup = backup
        let dir = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw RpcException("cannot create logs folder \(dir): \(error.localizedDescription)", code: .error)
        }
        var st = stat()
        let start = stat(path, &st) == 0 ? TimeInterval(st.st_mtim.tv_sec) : now
        rolloverAt = rule.next(after: start)
        try open()
    }

    /// Opens the file, creating its folder again if it was removed meanwhile.
    private func reopen() -> Bool {
        let dir = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        do { try open() } catch {
            report("\(error)")
            return false
        }
        return true
    }

    private func report(_ what: String) {
        if failing { return }
        failing = true
        FileHandle.standardError.write(Data("libgrpchelper: log file \(path): \(what) (records are lost until it works again)\n".utf8))
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    private func open() throws {
        fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw RpcException("cannot open log file \(path): \(String(cString: strerror(errno)))", code: .error)
        }
    }

    /// Appends `line` (with its newline), rolling over first when `now` reached the
    /// rollover time. Errors are swallowed: logging never fails its caller.
    func write(_ line: String, now: TimeInterval) {
        lock.withLock {
            if closed { return }
            if now >= rolloverAt { rollOver(now) }
            if fd < 0 && !reopen() { return }
            let bytes = Array(line.utf8)
            let fd = self.fd
            bytes.withUnsafeBytes { raw in
                var off = 0
                while off < raw.count {
                    let n = Glibc.write(fd, raw.baseAddress! + off, raw.count - off)
                    if n < 0 {
                        if errno == EINTR { continue }
                        report(String(cString: strerror(errno)))
                        return
                    }
                    off += n
                }
                failing = false
            }
        }
    }

    func close() {
        lock.withLock {
            closed = true
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
        }
    }

    /// Renames the file to `<path>.<suffix of the period start>` (replacing one of that
    /// name), prunes the old files beyond `backup`, reopens a fresh file.
    private func rollOver(_ now: TimeInterval) {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
        let rolled = path + "." + rule.suffix(for: rolloverAt - rule.suffixAge)
        unlink(rolled)
        Glibc.rename(path, rolled)
        if backup > 0 { prune() }
        _ = reopen()
        var next = rule.next(after: now)
        while next <= now { next += rule.period }
        rolloverAt = next
    }

    /// The rolled files of this log, oldest first.
    func rolledFiles() -> [String] {
        let dir = (path as NSString).deletingLastPathComponent
        let prefix = (path as NSString).lastPathComponent + "."
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { name in
            guard name.hasPrefix(prefix) else { return false }
            let suffix = String(name.dropFirst(prefix.count))
            return rule.suffixPattern.firstMatch(in: suffix, range: NSRange(suffix.startIndex..., in: suffix)) != nil
        }.sorted().map { (dir as NSString).appendingPathComponent($0) }
    }

    private func prune() {
        let files = rolledFiles()
        guard files.count > backup else { return }
        for f in files.prefix(files.count - backup) { unlink(f) }
    }
}
