// The folders of a helper-layer program (grpc-helper's Folders): system (read-only
// defaults), user (per-user defaults), workspace (state: persisted config, logs, ...).
import Foundation

public struct Folders: Sendable, Equatable {
    public let system: String?
    public let user: String?
    public let workspace: String?

    /// Any of them may be absent; "~" is expanded.
    public init(system: String? = nil, user: String? = nil, workspace: String? = nil) {
        self.system = system.map(Folders.expand)
        self.user = user.map(Folders.expand)
        self.workspace = workspace.map(Folders.expand)
    }

    /// "~" and "~/..." from $HOME (as shells and Python's expanduser; Foundation's
    /// expandingTildeInPath reads the password database instead), "~user/..." as
    /// Foundation expands it.
    static func expand(_ p: String) -> String {
        if p == "~" || p.hasPrefix("~/"), let home = ProcessInfo.processInfo.environment["HOME"], !home.isEmpty {
            return home + p.dropFirst()
        }
        return (p as NSString).expandingTildeInPath
    }

    /// The user folder, created on first use (nil when none is configured).
    public func userFolder() throws -> String? { try Folders.ensure(user) }

    /// The workspace folder, created on first use (nil when none is configured).
    public func workspaceFolder() throws -> String? { try Folders.ensure(workspace) }

    private static func ensure(_ p: String?) throws -> String? {
        guard let p = p else { return nil }
        do {
            try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        } catch {
            throw RpcException("cannot create folder \(p): \(error.localizedDescription)", code: .error)
        }
        return p
    }
}

/// Reads a JSON object; nil when the file does not exist. A file that is not valid JSON
/// or not an object → ERROR_MODEL_INVALID naming it.
func readJSONObject(_ path: String) throws -> [String: Any]? {
    guard FileManager.default.fileExists(atPath: path) else { return nil }
    guard let data = FileManager.default.contents(atPath: path) else {
        throw RpcException("cannot read \(path)", code: .errorModelInvalid)
    }
    let object: Any
    do { object = try JSONSerialization.jsonObject(with: data) } catch {
        throw RpcException("\(path) is not valid JSON", code: .errorModelInvalid)
    }
    guard let dict = object as? [String: Any] else {
        throw RpcException("\(path) must hold a JSON object", code: .errorModelInvalid)
    }
    return dict
}

/// Reads a JSON object of strings (name → value); nil when the file does not exist.
/// A file that is not such an object → ERROR_MODEL_INVALID naming it.
func readStringMap(_ path: String) throws -> [String: String]? {
    guard let dict = try readJSONObject(path) else { return nil }
    var out: [String: String] = [:]
    for (k, v) in dict {
        guard let s = v as? String else {
            throw RpcException("\(path): value of \"\(k)\" is not a string", code: .errorModelInvalid)
        }
        out[k] = s
    }
    return out
}

/// Writes `object` as JSON (sorted keys) atomically: a temporary file beside it
/// ("<name>.tmp-<pid>-<random>", written and fsynced), then rename, so a crash never leaves
/// a torn file. Temporary files that writers which died mid-write left beside it (their
/// process is gone) are removed first.
func writeJSONObject(_ object: [String: Any], to path: String) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        + Data("\n".utf8)
    removeStaleTemporaries(of: path)
    let tmp = path + ".tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
        throw RpcException("cannot write \(tmp): \(String(cString: strerror(errno)))", code: .error)
    }
    let written: Bool = data.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }
    let err = errno
    guard written, fsync(fd) == 0 else {
        close(fd)
        unlink(tmp)
        throw RpcException("cannot write \(tmp): \(String(cString: strerror(written ? errno : err)))", code: .error)
    }
    close(fd)
    guard rename(tmp, path) == 0 else {
        let err = String(cString: strerror(errno))
        unlink(tmp)
        throw RpcException("cannot replace \(path): \(err)", code: .error)
    }
}

/// Removes "<path>.tmp-<pid>-*" files whose writing process no longer exists.
private func removeStaleTemporaries(of path: String) {
    let dir = (path as NSString).deletingLastPathComponent
    let prefix = (path as NSString).lastPathComponent + ".tmp-"
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir) else { return }
    for name in names where name.hasPrefix(prefix) {
        guard let pid = Int32(name.dropFirst(prefix.count).prefix { $0 != "-" }), pid > 0 else { continue }
        if pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH {
            unlink((dir as NSString).appendingPathComponent(name))
        }
    }
}

/// Writes a string map atomically (see writeJSONObject).
func writeStringMap(_ map: [String: String], to path: String) throws {
    try writeJSONObject(map, to: path)
}
