// Logs whose levels a host keeps (LoggerLevelSource, the Python binding's way): the
// loggers.json layers applied to the host, the LoggerService reading and driving the host's
// loggers, level decisions asked of it, the library's records handed over, header lines
// only when INFO is enabled, handled records written to one file.
import Foundation
import Logging
import Testing
@testable import GRPCHelper

/// A host's logging as Python's: own level per logger (0: none), dotted inheritance, a root
/// at WARNING, a disabled flag per logger; records it takes are kept.
final class FakeHostLogging: LoggerLevelSource, @unchecked Sendable {
    private let lock = NSLock()
    private var levels: [String: Int] = ["": 30]
    private var disabled: Set<String> = []
    private(set) var applied: [String] = []
    private(set) var emitted: [RpcLogRecord] = []
    var takesRecords = true

    func setLevel(_ name: String, _ level: Int) { lock.withLock { levels[name] = level } }

    func level(of name: String) -> (level: Int, enabled: Bool) {
        lock.withLock { (levels[name] ?? 0, !disabled.contains(name)) }
    }

    func threshold(of name: String) -> Int {
        lock.withLock {
            if disabled.contains(name) { return Int.max }
            var n = Substring(name)
            while !n.isEmpty {
                if let l = levels[String(n)], l > 0 { return l }
                guard let dot = n.lastIndex(of: ".") else { break }
                n = n[..<dot]
            }
            return levels[""] ?? 0
        }
    }

    func apply(_ name: String, level: Int?, enabled: Bool?) {
        lock.withLock {
            applied.append("\(name)=\(level.map(String.init) ?? "-")/\(enabled.map { $0 ? "on" : "off" } ?? "-")")
            if let l = level { levels[name] = l }
            if let e = enabled { if e { disabled.remove(name) } else { disabled.insert(name) } }
        }
    }

    func emit(_ record: RpcLogRecord) -> Bool {
        lock.withLock {
            guard takesRecords else { return false }
            emitted.append(record)
            return true
        }
    }
}


@Suite struct LevelSourceTests {
    @Test func layersAreAppliedToTheHostAfterReadingTheRootLevel() throws {
        let t = TempFolders()
        t.write("sys/loggers.json", #"{"a": "ERROR", "b": "DEBUG", "root": "INFO"}"#)
        t.write("usr/loggers.json", #"{"a": true, "c": false}"#)
        t.write("wks/loggers.json", #"{"b": "FOO", "d": "CRITICAL"}"#)
        let host = FakeHostLogging()
        let logs = try RpcLogs(folder: "logs", folders: t.folders, levelSource: host)
        // As grpc-helper: one map, a later layer's value replacing an earlier one's.
        #expect(host.applied == ["=20/-", "a=-/on", "c=-/off", "d=50/-"], "\(host.applied)")
        #expect(logs.warnings.count == 1 && logs.warnings[0].contains("Ignoring unknown level FOO for logger b"))
        #expect(host.level(of: "").level == 20)
        // The root's level from before the layers is what reset gives it back.
        let reset = try logs.reset(["", "d"])
        #expect(reset.map(\.level) == [.lvlWarning, .lvlUnknown] && reset.map(\.name) == ["root", "d"])
        #expect(host.level(of: "").level == 30 && host.level(of: "d").level == 0)
        logs.close()
    }

    @Test func theLoggerServiceReadsAndDrivesTheHost() throws {
        let t = TempFolders()
        let host = FakeHostLogging()
        host.setLevel("custom", 15)
        let logs = try RpcLogs(folder: "logs", folders: t.folders, levelSource: host)
        let got = try logs.get(["", "unset", "custom"])
        #expect(got.map(\.name) == ["root", "unset", "custom"])
        #expect(got.map(\.level) == [.lvlWarning, .lvlUnknown, .lvlUnknown] && got.allSatisfy(\.enabled))

        let set = try logs.set([loggerConfig("m", level: .lvlDebug), loggerConfig("off", level: .lvlError, enabled: false)])
        #expect(set.map(\.level) == [.lvlDebug, .lvlError] && set.map(\.enabled) == [true, false])
        #expect(host.level(of: "m") == (10, true) && host.level(of: "off") == (40, false))
        #expect(logs.isEnabled("m", level: RpcLogLevel.debug) && logs.isEnabled("m.child", level: RpcLogLevel.debug))
        #expect(!logs.isEnabled("off", level: RpcLogLevel.critical))
        let saved = try JSONSerialization.jsonObject(with: Data(t.read("wks/loggers.json")!.utf8)) as! [String: Any]
        #expect(saved["m"] as? String == "DEBUG" && saved["off"] as? Bool == false)

        // The host changes a level itself: the library sees it at once.
        host.setLevel("m", 40)
        let changed = try logs.get(["m"])
        #expect(!logs.isEnabled("m", level: RpcLogLevel.warning) && changed[0].level == .lvlError)

        let reset = try logs.reset(["m", "off"])
        #expect(reset.map(\.level) == [.lvlUnknown, .lvlUnknown] && reset.allSatisfy(\.enabled))
        #expect(t.read("wks/loggers.json")?.contains("\"m\"") == false)
        #expect(!logs.isEnabled("m", level: RpcLogLevel.info) && logs.isEnabled("m", level: RpcLogLevel.warning))
        logs.close()
    }

    @Test func theLibrarysRecordsGoToTheHostWhenItTakesThem() throws {
        let t = TempFolders()
        let host = FakeHostLogging()
        let logs = try RpcLogs(folder: "logs", folders: t.folders, levelSource: host)
        let log = logs.logger("mgr")
        log.info("dropped: below the root's WARNING")
        log.warning("taken")
        host.setLevel("mgr", 10)
        log.debug("taken too")
        #expect(host.emitted.map(\.message) == ["taken", "taken too"])
        #expect(host.emitted.map(\.name) == ["mgr", "mgr"] && host.emitted.map(\.level) == [30, 10])
        #expect(host.emitted[0].file?.hasSuffix("LevelSourceTests.swift") == true && host.emitted[0].line > 0)
        // Nothing written by the library itself: the host's handlers do (writeHandled).
        #expect(t.read("wks/logs/mgr/mgr.log") == "" && t.read("wks/logs/root/root.log") == "")

        // A host that does not take them: the library writes them (both files).
        host.takesRecords = false
        log.error("written here")
        logs.close()
        #expect(t.read("wks/logs/mgr/mgr.log")?.contains("/mgr] ERROR written here") == true)
        #expect(t.read("wks/logs/root/root.log")?.contains("/mgr] ERROR written here") == true)
    }

    @Test func headerLinesOnlyWhenInfoIsEnabled() throws {
        let t = TempFolders()
        let host = FakeHostLogging()
        host.setLevel("loud", 20)
        let logs = try RpcLogs(folder: "logs", folders: t.folders, levelSource: host)
        _ = logs.logger("quiet")
        _ = logs.logger("loud")
        logs.close()
        #expect(t.read("wks/logs/quiet/quiet.log") == "")
        #expect(t.read("wks/logs/loud/loud.log")?.contains("---------- New loud logger instance") == true)
        let root = t.read("wks/logs/root/root.log") ?? ""
        #expect(!root.contains("New root logger") && root.contains("New loud logger"), "\(root)")
    }

    @Test func handledRecordsGoToOneFileWithoutALevelCheck() throws {
        let t = TempFolders()
        let host = FakeHostLogging()
        let logs = try RpcLogs(folder: "logs", folders: t.folders, levelSource: host)
        logs.writeHandled(name: "mgr", level: RpcLogLevel.debug, message: "to mgr only", thread: "T",
                          file: "/x/prog.py", function: "f", line: 3)
        logs.writeHandled(name: "root", recordName: "mgr.sub", level: RpcLogLevel.info, message: "to root only")
        logs.close()
        let mgr = t.read("wks/logs/mgr/mgr.log") ?? ""
        let root = t.read("wks/logs/root/root.log") ?? ""
        #expect(mgr.contains("[T/mgr] DEBUG to mgr only - prog.py:f:3") && !mgr.contains("to root only"))
        #expect(root.contains("/mgr.sub] INFO to root only") && !root.contains("to mgr only"))
    }

    @Test func swiftLogLevelFollowsTheHost() throws {
        let t = TempFolders()
        let host = FakeHostLogging()
        let logs = try RpcLogs(folder: "logs", folders: t.folders, levelSource: host)
        var log = logs.logger("mgr")
        #expect(log.logLevel == .warning)
        host.setLevel("mgr", 10)
        #expect(log.logLevel == .debug)
        _ = try logs.set([loggerConfig("mgr", level: .lvlInfo, enabled: false)])
        #expect(log.logLevel == .critical)
        log.critical("dropped: disabled")
        #expect(host.emitted.isEmpty)
        log.logLevel = .error   // swift-log's setter sets the host's level
        #expect(host.level(of: "mgr").level == 40)
        logs.close()
    }

    @Test func aServerWithASourceServesTheHostsLevels() throws {
        let t = TempFolders()
        let host = FakeHostLogging()
        let server = try RpcServer(port: 0, descriptors: [], folders: t.folders, withDebugSignal: false,
                                   levelSource: host)
        defer { server.shutdown() }
        #expect(server.logs.levelSource === host)
        #expect((try server.logs.get(["RpcServer"]))[0].level == .lvlUnknown)
        _ = try server.logs.set([loggerConfig("RpcServer", level: .lvlDebug)])
        #expect(host.level(of: "RpcServer").level == 10)
    }
}
