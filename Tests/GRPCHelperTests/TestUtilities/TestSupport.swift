// Shared by the helper-layer tests: temporary folder trees and error capture.
import Foundation
@testable import GRPCHelper

/// A fresh folder tree (system, user, workspace) removed at the end.
final class TempFolders {
    let root: String
    let folders: Folders
    init() {
        root = NSTemporaryDirectory() + "gh-helper-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: root + "/sys", withIntermediateDirectories: true)
        folders = Folders(system: root + "/sys", user: root + "/usr", workspace: root + "/wks")
    }
    deinit { try? FileManager.default.removeItem(atPath: root) }
    func write(_ rel: String, _ text: String) {
        let p = root + "/" + rel
        try! FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
    }
    func read(_ rel: String) -> String? {
        FileManager.default.contents(atPath: root + "/" + rel).map { String(decoding: $0, as: UTF8.self) }
    }
}

/// A LoggerService item: a logger's name, level and enablement.
func loggerConfig(_ name: String, level: RpcLoggerLevel, enabled: Bool = true) -> RpcLoggerConfig {
    var c = RpcLoggerConfig()
    c.name = name
    c.level = level
    c.enabled = enabled
    return c
}

func rpcCode(_ body: () throws -> Void) -> (RpcResultCode, String)? {
    do { try body(); return nil } catch let e as RpcException { return (e.code, e.message) } catch { return (.error, "\(error)") }
}


/// Runs blocking test code on a thread of its own, not on Swift concurrency's cooperative
/// pool: the servers' async handlers need that pool, and two blocking tests at once (suites
/// run in parallel) could take all of its threads on a small machine.
func onOwnThread(_ body: @escaping @Sendable () throws -> Void) async throws {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
        Thread.detachNewThread { c.resume(with: Result { try body() }) }
    }
}
