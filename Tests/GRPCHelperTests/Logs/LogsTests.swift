// Rolling logs: files per logger and the root file, line format, levels in layers and
// their inheritance, the LoggerService operations and persistence, rollover (with a
// test clock) and backup pruning, swift-log integration, concurrent writers.
import Foundation
import Logging
import Testing
@testable import GRPCHelper

/// A settable clock for rollover tests.
final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var t: TimeInterval
    init(_ t: TimeInterval) { self.t = t }
    var now: TimeInterval { lock.withLock { t } }
    func advance(_ d: TimeInterval) { lock.withLock { t += d } }
}

private let linePattern = try! NSRegularExpression(
    pattern: #"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} \[[^/\]]+/([^\]]+)\] (TRACE|DEBUG|INFO|NOTICE|WARNING|ERROR|CRITICAL) (.*)$"#)

private func lines(_ t: TempFolders, _ rel: String) -> [String] {
    (t.read(rel) ?? "").split(separator: "\n").map(String.init)
}

private func matches(_ line: String) -> Bool {
    linePattern.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)) != nil
}


@Suite struct LogsTests {
    @Test func lineFormat() {
        let l = RpcLogs.line(time: 1_700_000_000.0425, thread: "main", name: "mgr", level: 20, message: "hello",
                             file: "/src/My.swift", function: "run()", line: 12)
        #expect(matches(String(l.dropLast())), "\(l)")
        #expect(l.hasSuffix(".042 [main/mgr] INFO hello - My.swift:run():12\n"), "\(l)")
        let root = RpcLogs.line(time: 0, thread: "t", name: "", level: 12, message: "m", file: nil, function: nil, line: 0)
        #expect(root.hasSuffix(" [t/root] Level 12 m\n"), "\(root)")
    }

    @Test func recordsGoToTheLoggerFileAndTheRootFile() throws {
        let t = TempFolders()
        let logs = try RpcLogs(folder: "logs", folders: t.folders)
        #expect(logs.folder == t.root + "/wks/logs")
        logs.write(name: "mgr", level: RpcLogLevel.info, message: "hello from mgr")
        logs.write(name: "root", level: RpcLogLevel.warning, message: "hello from root")
        logs.close()
        let mgr = lines(t, "wks/logs/mgr/mgr.log")
        #expect(mgr.count == 2 && mgr.allSatisfy(matches), "\(mgr)")
        #expect(mgr[0].contains("---------- New mgr logger instance for process \(getpid()) ----------"))
        #expect(mgr[1].contains("/mgr] INFO hello from mgr"))
        let root = lines(t, "wks/logs/root/root.log")
        #expect(root.count == 4, "\(root)")  // the headers of root and mgr, mgr's record, root's record (once)
        #expect(root.filter { $0.contains("hello from mgr") }.count == 1)
        #expect(root.filter { $0.contains("/root] WARNING hello from root") }.count == 1)
        // Records after close are dropped, never a crash.
        logs.write(name: "mgr", level: RpcLogLevel.error, message: "late")
        #expect(!(t.read("wks/logs/mgr/mgr.log") ?? "").contains("late"))
    }

    @Test func folderAbsoluteOrRelativeToTheWorkspace() throws {
        let t = TempFolders()
        let abs = try RpcLogs(folder: t.root + "/elsewhere", folders: t.folders)
        #expect(abs.folder == t.root + "/elsewhere")
        #expect(FileManager.default.fileExists(atPath: t.root + "/elsewhere/root/root.log"))
        #expect(abs.path(of: "a/b") == t.root + "/elsewhere/a_b/a_b.log")
        #expect(abs.path(of: "..") == t.root + "/elsewhere/_../_...log")
    }

    @Test func rootDefaultsToInfoAndDottedNamesInherit() throws {
        let t = TempFolders()
        let logs = try RpcLogs(folder: "logs", folders: t.folders)
        #expect(!logs.isEnabled("x", level: RpcLogLevel.debug))
        #expect(logs.isEnabled("x", level: RpcLogLevel.info))
        _ = try logs.set([loggerConfig("a", level: .lvlDebug)])
        #expect(logs.isEnabled("a.b.c", level: RpcLogLevel.debug))
        #expect(!logs.isEnabled("ab", level: RpcLogLevel.debug))
        _ = try logs.set([loggerConfig("a.b", level: .lvlError)])
        #expect(!logs.isEnabled("a.b.c", level: RpcLogLevel.warning))
        #expect(logs.isEnabled("a.x", level: RpcLogLevel.debug))
        _ = try logs.set([loggerConfig("", level: .lvlWarning)])
        #expect(!logs.isEnabled("x", level: RpcLogLevel.info))
    }

    @Test func levelsComeInLayers() throws {
        let t = TempFolders()
        t.write("sys/loggers.json", #"{"a": "ERROR", "b": "DEBUG", "c": "INFO"}"#)
        t.write("usr/loggers.json", #"{"a": "WARNING", "c": false}"#)
        t.write("wks/loggers.json", #"{"b": false, "d": "FOO", "": "DEBUG"}"#)
        let logs = try RpcLogs(folder: "logs", folders: t.folders)
        #expect(!logs.isEnabled("a", level: RpcLogLevel.info) && logs.isEnabled("a", level: RpcLogLevel.warning))
        #expect(!logs.isEnabled("b", level: RpcLogLevel.critical))
        #expect(!logs.isEnabled("c", level: RpcLogLevel.critical))
        #expect(logs.isEnabled("d", level: RpcLogLevel.debug))  // the root's DEBUG, FOO ignored
        #expect(logs.warnings.count == 1 && logs.warnings[0].contains("Ignoring unknown level FOO for logger d"))
        let got = try logs.get(["a", "b", "", "d"])
        #expect(got.map(\.name) == ["a", "b", "root", "d"])
        #expect(got[0].level == .lvlWarning && got[0].enabled)
        #expect(!got[1].enabled && got[1].level == .lvlDebug)
        #expect(got[2].level == .lvlDebug && got[3].level == .lvlUnknown)
        logs.close()
        #expect(lines(t, "wks/logs/root/root.log").contains { $0.contains("WARNING Ignoring unknown level FOO") })
    }

    @Test(arguments: ["{not json", #"["a"]"#, #"{"a": 123}"#, #"{"a": null}"#])
    func malformedLoggersFileIsRefused(_ text: String) {
        let t = TempFolders()
        t.write("usr/loggers.json", text)
        let r = rpcCode { _ = try RpcLogs(folder: "logs", folders: t.folders) }
        #expect(r?.0 == .errorModelInvalid, "\(text)")
        #expect(r?.1.contains(t.root + "/usr/loggers.json") == true)
    }

    @Test func badRolloverSettingsAreRefused() throws {
        let t = TempFolders()
        #expect(rpcCode { _ = try RpcLogs(folder: "l", unit: "X", folders: t.folders) }?.0 == .errorParamInvalid)
        #expect(rpcCode { _ = try RpcLogs(folder: "l", unit: "H", interval: 0, folders: t.folders) }?.0 == .errorParamInvalid)
        for u in ["s", "m", "h", "d", "midnight", "W0", "w6"] { _ = try RpcLogs(folder: "l", unit: u, folders: t.folders) }
    }

    @Test func serviceOperations() throws {
        let t = TempFolders()
        t.write("usr/loggers.json", #"{"base": "ERROR"}"#)
        let logs = try RpcLogs(folder: "logs", folders: t.folders)
        for op in [{ _ = try logs.get([String]()) }, { _ = try logs.set([]) }, { _ = try logs.reset([String]()) }] {
            #expect(rpcCode(op)?.0 == .errorParamMissing)
        }
        // Reset of an unmodified logger writes nothing.
        _ = try logs.reset(["untouched"])
        #expect(t.read("wks/loggers.json") == nil)
        let root = try logs.get([""])
        #expect(root.count == 1 && root[0].name == "root" && root[0].enabled && root[0].level == .lvlInfo)

        let set = try logs.set([loggerConfig("x", level: .lvlDebug), loggerConfig("y", level: .lvlInfo, enabled: false),
                                loggerConfig("base", level: .lvlDebug)])
        #expect(set.map(\.level) == [.lvlDebug, .lvlInfo, .lvlDebug] && set.map(\.enabled) == [true, false, true])
        let saved = try JSONSerialization.jsonObject(with: Data(t.read("wks/loggers.json")!.utf8)) as! [String: Any]
        #expect(saved["x"] as? String == "DEBUG" && saved["y"] as? Bool == false && saved["base"] as? String == "DEBUG")
        #expect(logs.isEnabled("x", level: RpcLogLevel.debug) && !logs.isEnabled("y", level: RpcLogLevel.critical))
        logs.close()

        // Restored by the next start.
        let again = try RpcLogs(folder: "logs", folders: t.folders)
        #expect(again.isEnabled("x", level: RpcLogLevel.debug) && !again.isEnabled("y", level: RpcLogLevel.critical))
        // Reset forgets the workspace setting: back to the user layer's, or none.
        let reset = try again.reset(["x", "base", "y"])
        #expect(reset.map(\.level) == [.lvlUnknown, .lvlError, .lvlUnknown] && reset.allSatisfy(\.enabled))
        #expect(t.read("wks/loggers.json")?.contains("\"x\"") == false)
        #expect(!again.isEnabled("x", level: RpcLogLevel.debug) && !again.isEnabled("base", level: RpcLogLevel.warning))
    }

    @Test func concurrentSetsKeepTheFileValid() throws {
        let t = TempFolders()
        let logs = try RpcLogs(folder: "logs", folders: t.folders)
        DispatchQueueless.concurrentPerform(iterations: 8) { i in
            for j in 0..<20 { _ = try! logs.set([loggerConfig("l\(i)", level: j % 2 == 0 ? .lvlDebug : .lvlError)]) }
        }
        let saved = try JSONSerialization.jsonObject(with: Data(t.read("wks/loggers.json")!.utf8)) as! [String: Any]
        #expect(saved.count == 8 && saved.values.allSatisfy { $0 as? String == "ERROR" })
    }

    @Test func rollsOverAndPrunesBackups() throws {
        let t = TempFolders()
        let clock = TestClock(1_700_000_000.25)
        let logs = try RpcLogs(folder: "logs", unit: "S", interval: 2, backup: 2, folders: t.folders,
                               clock: { clock.now })
        logs.write(name: "m", level: RpcLogLevel.info, message: "first")
        clock.advance(1.5)
        logs.write(name: "m", level: RpcLogLevel.info, message: "same period")
        let dir = t.root + "/wks/logs/m"
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["m.log"])
        clock.advance(1)  // past the 2 s period
        logs.write(name: "m", level: RpcLogLevel.info, message: "second period")
        var names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(names.count == 2, "\(names)")
        let rolled = names.first { $0 != "m.log" }!
        #expect(rolled.range(of: #"^m\.log\.\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}$"#, options: .regularExpression) != nil)
        #expect(t.read("wks/logs/m/\(rolled)")!.contains("same period"))
        #expect(!t.read("wks/logs/m/m.log")!.contains("first") && t.read("wks/logs/m/m.log")!.contains("second period"))
        for i in 0..<5 {
            clock.advance(2)
            logs.write(name: "m", level: RpcLogLevel.info, message: "period \(i)")
        }
        names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(names.count == 3, "\(names)")  // m.log and 2 backups
        #expect(t.read("wks/logs/m/\(names[2])")!.contains("period 3"))  // the newest backup
        #expect(t.read("wks/logs/m/\(names[1])")!.contains("period 2"))
        // The root file rolls the same way.
        #expect(try FileManager.default.contentsOfDirectory(atPath: t.root + "/wks/logs/root").count == 3)
    }

    @Test func anOldFileRollsOverOnTheFirstWrite() throws {
        let t = TempFolders()
        t.write("wks/logs/m/m.log", "old line\n")
        let old = Date().timeIntervalSince1970 - 7200
        var times = [timeval(tv_sec: Int(old), tv_usec: 0), timeval(tv_sec: Int(old), tv_usec: 0)]
        #expect(utimes(t.root + "/wks/logs/m/m.log", &times) == 0)
        let logs = try RpcLogs(folder: "logs", unit: "H", interval: 1, folders: t.folders)
        logs.write(name: "m", level: RpcLogLevel.info, message: "new")
        let names = try FileManager.default.contentsOfDirectory(atPath: t.root + "/wks/logs/m")
        #expect(names.count == 2, "\(names)")
        #expect(!t.read("wks/logs/m/m.log")!.contains("old line"))
    }

    @Test func midnightAndWeekdayRollover() throws {
        let now = Date().timeIntervalSince1970
        func local(_ t: TimeInterval) -> tm {
            var s = time_t(t), v = tm()
            localtime_r(&s, &v)
            return v
        }
        let m = try RolloverRule(unit: "midnight", interval: 3).next(after: now)
        let lm = local(m)
        #expect(lm.tm_hour == 0 && lm.tm_min == 0 && lm.tm_sec == 0)
        #expect(m > now && m - now <= 86400 + 3600)  // a DST change may add an hour
        let w = try RolloverRule(unit: "W3", interval: 1).next(after: now)
        let lw = local(w)
        // W3 (Thursday): as Python, at the midnight that ends the day, Friday 00:00.
        #expect(lw.tm_wday == 5 && lw.tm_hour == 0 && w > now && w - now <= 7 * 86400 + 3600)
        #expect(try RolloverRule(unit: "H", interval: 2).next(after: now) == now + 7200)
    }

    @Test func concurrentWritersKeepLinesWhole() throws {
        let t = TempFolders()
        let logs = try RpcLogs(folder: "logs", folders: t.folders)
        DispatchQueueless.concurrentPerform(iterations: 8) { i in
            for j in 0..<200 { logs.write(name: "c", level: RpcLogLevel.info, message: "writer \(i) line \(j)") }
        }
        logs.close()
        let l = lines(t, "wks/logs/c/c.log")
        #expect(l.count == 1 + 1600)
        #expect(l.allSatisfy(matches))
    }

    @Test func fromAConfigSet() throws {
        let t = TempFolders()
        let set = try ConfigSet(staticItems: RpcStaticConfig.items(), folders: t.folders,
                                cli: ["rpc-logs-folder": "my-logs", "rpc-logs-interval-unit": "s"])
        let logs = try RpcLogs(config: set)
        #expect(logs.folder == t.root + "/wks/my-logs")
        #expect(rpcCode { _ = try ConfigSet(staticItems: RpcStaticConfig.items(), folders: t.folders,
                                            cli: ["rpc-logs-interval-unit": "x"]) }?.0 == .errorParamInvalid)
    }

    @Test func swiftLogLoggers() throws {
        let t = TempFolders()
        let logs = try RpcLogs(folder: "logs", folders: t.folders)
        var log = logs.logger("sw")
        #expect(log.logLevel == .info)
        log.debug("hidden")
        log.info("shown", metadata: ["k": "v"])
        log.logLevel = .debug  // this process only
        #expect(logs.isEnabled("sw", level: RpcLogLevel.debug))
        log.debug("now shown")
        _ = try logs.set([loggerConfig("sw", level: .lvlInfo, enabled: false)])
        #expect(log.logLevel == .critical)
        log.critical("dropped: disabled")
        logs.close()
        let l = lines(t, "wks/logs/sw/sw.log")
        #expect(l.count == 3, "\(l)")
        #expect(l[1].contains("/sw] INFO shown k=v - LogsTests.swift:swiftLogLoggers():"))
        #expect(l[2].contains("DEBUG now shown"))
    }

    private static func day(_ t: TimeInterval) -> String {
        var secs = time_t(t), v = tm()
        localtime_r(&secs, &v)
        var buf = [CChar](repeating: 0, count: 32)
        let n = strftime(&buf, buf.count, "%Y-%m-%d", &v)
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    @Test(arguments: [("midnight", 1), ("MIDNIGHT", 2), ("W6", 1)])
    func midnightAndWeekdayFilesRollAndAreNamedAsPython(_ unit: String, _ interval: Int) throws {
        let t = TempFolders()
        let rule = try RolloverRule(unit: unit, interval: interval)
        let boundary = rule.next(after: Date().timeIntervalSince1970)
        let clock = TestClock(boundary - 0.5)
        let logs = try RpcLogs(folder: "logs", unit: unit, interval: interval, backup: 3, folders: t.folders,
                               clock: { clock.now })
        logs.write(name: "m", level: RpcLogLevel.info, message: "before")
        clock.advance(1)
        logs.write(name: "m", level: RpcLogLevel.info, message: "after")
        let names = try FileManager.default.contentsOfDirectory(atPath: t.root + "/wks/logs/m").sorted()
        // Python names the file after rolloverAt - unit × interval, whatever the unit.
        let age: TimeInterval = (unit.uppercased() == "W6" ? 7 * 86400 : 86400) * TimeInterval(interval)
        #expect(names == ["m.log", "m.log." + LogsTests.day(boundary - age)], "\(names)")
        #expect(t.read("wks/logs/m/m.log." + LogsTests.day(boundary - age))?.contains("before") == true)
        #expect(t.read("wks/logs/m/m.log")?.contains("after") == true)
    }

    @Test func aRemovedLogsFolderIsCreatedAgain() throws {
        let t = TempFolders()
        let clock = TestClock(1_700_000_000)
        let logs = try RpcLogs(folder: "logs", unit: "S", interval: 1, folders: t.folders, clock: { clock.now })
        logs.write(name: "m", level: RpcLogLevel.info, message: "one")
        try FileManager.default.removeItem(atPath: t.root + "/wks/logs")
        clock.advance(1.5)
        logs.write(name: "m", level: RpcLogLevel.info, message: "two")
        #expect(t.read("wks/logs/m/m.log")?.contains("two") == true)
        #expect(t.read("wks/logs/root/root.log")?.contains("two") == true)
    }

    @Test func linesOfDifferentThreadsNameDifferentThreads() throws {
        let t = TempFolders()
        let logs = try RpcLogs(folder: "logs", folders: t.folders)
        DispatchQueueless.concurrentPerform(iterations: 3) { i in
            logs.write(name: "th", level: RpcLogLevel.info, message: "from \(i)")
        }
        logs.close()
        let threads = Set(lines(t, "wks/logs/th/th.log").dropFirst().map { l -> String in
            let open = l.firstIndex(of: "[")!, slash = l[open...].firstIndex(of: "/")!
            return String(l[l.index(after: open)..<slash])
        })
        #expect(threads.count == 3, "\(threads)")
    }

    @Test func propagatedRecordsGoToTheHandlersFileUnderTheirOwnName() throws {
        let t = TempFolders()
        let logs = try RpcLogs(folder: "logs", folders: t.folders)
        _ = try logs.set([loggerConfig("mgr.sub", level: .lvlError)])
        logs.write(name: "mgr", recordName: "mgr.sub", level: RpcLogLevel.warning, message: "hidden by mgr.sub's level")
        logs.write(name: "mgr", recordName: "mgr.sub", level: RpcLogLevel.error, message: "child record")
        logs.write(name: "", recordName: "urllib3.pool", level: RpcLogLevel.warning, message: "library record")
        logs.close()
        let mgr = lines(t, "wks/logs/mgr/mgr.log")
        #expect(mgr.count == 2 && mgr[1].contains("/mgr.sub] ERROR child record"), "\(mgr)")
        let root = lines(t, "wks/logs/root/root.log")
        #expect(root.contains { $0.contains("/urllib3.pool] WARNING library record") })
        #expect(root.contains { $0.contains("New mgr logger instance") })  // headers reach the root file too
        #expect(!FileManager.default.fileExists(atPath: t.root + "/wks/logs/mgr.sub"))
        #expect(!FileManager.default.fileExists(atPath: t.root + "/wks/logs/urllib3.pool"))
        #expect(!root.contains { $0.contains("hidden") })
    }

    @Test func namesSharingAPathShareTheFile() throws {
        let t = TempFolders()
        let clock = TestClock(1_700_000_000)
        let logs = try RpcLogs(folder: "logs", unit: "S", interval: 1, backup: 5, folders: t.folders, clock: { clock.now })
        logs.write(name: "a/b", level: RpcLogLevel.info, message: "slash")
        logs.write(name: "a_b", level: RpcLogLevel.info, message: "underscore")
        clock.advance(1.5)
        logs.write(name: "a/b", level: RpcLogLevel.info, message: "later")
        logs.write(name: "a_b", level: RpcLogLevel.info, message: "later too")
        let names = try FileManager.default.contentsOfDirectory(atPath: t.root + "/wks/logs/a_b")
        #expect(names.count == 2, "\(names)")  // one rollover, not two
        #expect(lines(t, "wks/logs/a_b/a_b.log").count == 2)
    }

    @Test func aSetThatCannotBePersistedAppliesNothing() throws {
        let t = TempFolders()
        let logs = try RpcLogs(folder: t.root + "/logs", folders: t.folders)
        try FileManager.default.createDirectory(atPath: t.root + "/wks/loggers.json", withIntermediateDirectories: true)
        let r = rpcCode { _ = try logs.set([loggerConfig("x", level: .lvlDebug)]) }
        #expect(r?.0 == .errorModelInvalid || r?.0 == .error, "\(String(describing: r))")
        #expect(!logs.isEnabled("x", level: RpcLogLevel.debug))
    }
}
