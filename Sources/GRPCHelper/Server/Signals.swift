// Signals for RpcServer: SIGUSR2 → a debug dump file; opt-in SIGINT/SIGTERM → graceful
// shutdown, a second one → immediate exit. Handlers only write the signal number to a
// pipe; a watcher thread does the work.
import NIOConcurrencyHelpers
import CThreadDump
import GRPCHelperCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The write end of the signal pipe (read by the watcher thread), and the process that
/// installed the handlers (a forked child must not feed its parent's pipe).
nonisolated(unsafe) private var signalPipeWrite: Int32 = -1
nonisolated(unsafe) private var signalOwnerPid: pid_t = 0

/// The handler: async-signal-safe (getpid, write, signal, raise only; errno kept).
private func signalHandler(_ sig: Int32) {
    let saved = errno
    if getpid() != signalOwnerPid {
        // A child forked by a serving process: the signal's default action, as if we
        // had never been there.
        Glibc.signal(sig, SIG_DFL)
        raise(sig)
    } else {
        var b = UInt8(truncatingIfNeeded: sig)
        _ = write(signalPipeWrite, &b, 1)
    }
    errno = saved
}

enum SignalWatcher {
    private static let lock = NIOLock()
    nonisolated(unsafe) private static var started = false
    nonisolated(unsafe) private static var actions: [Int32: [(ObjectIdentifier, @Sendable () -> Void)]] = [:]
    /// The dispositions found when the first owner of a signal came: restored when the
    /// last one goes.
    nonisolated(unsafe) private static var previous: [Int32: sigaction] = [:]

    /// Runs `action` on the watcher thread for each `signal` received, until `remove`.
    static func add(_ signal: Int32, owner: AnyObject, _ action: @escaping @Sendable () -> Void) {
        lock.withLock {
            guard startLocked() else { return }
            if actions[signal] == nil {
                var sa = sigaction()
                sa.__sigaction_handler.sa_handler = signalHandler
                sigemptyset(&sa.sa_mask)
                sa.sa_flags = SA_RESTART
                var old = sigaction()
                sigaction(signal, &sa, &old)
                previous[signal] = old
            }
            actions[signal, default: []].append((ObjectIdentifier(owner), action))
        }
    }

    static func remove(owner: AnyObject) {
        lock.withLock {
            for (sig, list) in actions {
                let kept = list.filter { $0.0 != ObjectIdentifier(owner) }
                actions[sig] = kept
                // The disposition found before, once nobody listens.
                if kept.isEmpty {
                    actions[sig] = nil
                    if var old = previous.removeValue(forKey: sig) { sigaction(sig, &old, nil) }
                }
            }
        }
    }

    /// Starts the pipe and the watcher thread once; false if the pipe cannot be made
    /// (then no handler is installed: signals keep their dispositions).
    private static func startLocked() -> Bool {
        if started { return signalPipeWrite >= 0 }
        started = true
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return false }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        // A full pipe drops a signal rather than blocking the handler.
        _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
        signalOwnerPid = getpid()
        signalPipeWrite = fds[1]
        let readEnd = fds[0]
        let watcher = NativeThread.start(name: "gh-signals") {
            var b: UInt8 = 0
            while true {
                let n = read(readEnd, &b, 1)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                let todo = lock.withLock { actions[Int32(b)]?.map(\.1) ?? [] }
                for a in todo { a() }
            }
        }
        if watcher == nil {
            close(fds[0])
            close(fds[1])
            signalPipeWrite = -1
            return false
        }
        return true
    }
}

extension RpcServer {
    /// Opt-in graceful exit: the first SIGINT or SIGTERM shuts the server down
    /// (`waitShutdown` returns), the second exits the process at once (status 1).
    public func handleExitSignals() {
        let count = SignalCounter()
        for sig in [SIGINT, SIGTERM] {
            SignalWatcher.add(sig, owner: self) { [weak self] in
                if count.next() > 1 {
                    FileHandle.standardError.write(Data("second signal: exiting now\n".utf8))
                    _exit(1)
                }
                guard let self = self, self.beginShutdown() else { return }
                self.logger.warning("signal \(sig): shutting down")
            }
        }
    }

    /// Writes `RpcServerDump-YYYYMMDDhhmmss.txt` in the logs folder: every thread of the
    /// process (id, name, state, backtrace — asked by signal; a thread that blocks signals
    /// has none), `dumpExtras`' text (a binding's own stacks), and the pending calls.
    /// Returns the file's path.
    @discardableResult
    public func writeDebugDump() throws -> String {
        var tmv = tm()
        var now = time(nil)
        localtime_r(&now, &tmv)
        var buf = [CChar](repeating: 0, count: 32)
        let n = strftime(&buf, buf.count, "%Y%m%d%H%M%S", &tmv)
        let stamp = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        try FileManager.default.createDirectory(atPath: logs.folder, withIntermediateDirectories: true)
        let path = (logs.folder as NSString).appendingPathComponent("RpcServerDump-\(stamp).txt")
        var text = "RPC server dump (process \(getpid()), port \(port))\n\nThreads:\n"
        let tasks = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? [])
            .compactMap(Int.init).sorted()
        let me = Int(ghd_gettid())
        // Threads that block signals cost their timeout: the whole collection is bounded.
        let budget = Date(timeIntervalSinceNow: 3)
        for tid in tasks {
            let comm = (try? String(contentsOfFile: "/proc/self/task/\(tid)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            let stat = (try? String(contentsOfFile: "/proc/self/task/\(tid)/stat", encoding: .utf8)) ?? ""
            // The state is the field after the ")" that closes the name.
            let state = stat.split(separator: ")").last?.split(separator: " ").first.map(String.init) ?? "?"
            text += "  thread \(tid) \"\(comm)\" state \(state)\(tid == me ? " (dumping)" : "")\n"
            let lines = Date() < budget ? RpcServer.backtrace(of: tid, me: me)
                : ["(no backtrace: the dump's time for backtraces ran out)"]
            for line in lines { text += "    " + line + "\n" }
        }
        if let extras = dumpExtras?() { text += "\n" + extras + (extras.hasSuffix("\n") ? "" : "\n") }
        text += "\nPending RPC calls:\n"
        let calls = pendingCalls
        text += calls.isEmpty ? "  (none)\n" : calls.map { "  \($0)\n" }.joined()
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
            throw RpcException("cannot write \(path)", code: .error)
        }
        logger.info("debug dump written: \(path)")
        return path
    }

    /// A thread's backtrace (the calling thread's directly; others by signal, see
    /// CThreadDump), or a line saying why there is none.
    static func backtrace(of tid: Int, me: Int) -> [String] {
        if tid == me { return Thread.callStackSymbols }
        var frames = [UnsafeMutableRawPointer?](repeating: nil, count: 64)
        let n = Int(ghd_thread_backtrace(Int32(tid), &frames, Int32(frames.count), 50))
        guard n > 0 else { return ["(no backtrace: the thread did not answer; it blocks signals)"] }
        guard let symbols = frames.withUnsafeBufferPointer({ ghd_symbols($0.baseAddress, Int32(n)) }) else {
            return frames[0..<n].map { String(describing: $0) }
        }
        defer { free(symbols) }
        return (0..<n).map { symbols[$0].map { String(cString: $0) } ?? "?" }
    }

    func installDebugSignal() {
        SignalWatcher.add(SIGUSR2, owner: self) { [weak self] in
            guard let self = self, self.isRunning else { return }
            do { try self.writeDebugDump() } catch { self.logger.error("debug dump failed: \(error)") }
        }
    }

    func removeSignals() { SignalWatcher.remove(owner: self) }
}

// @unchecked Sendable: `n` guarded by `lock`.
private final class SignalCounter: @unchecked Sendable {
    private let lock = NIOLock()
    private var n = 0
    func next() -> Int { lock.withLock { n += 1; return n } }
}

/// Threads the library starts answer the debug dump's backtrace requests (those made
/// from runtime threads inherit a mask that blocks every signal). Installed once, by the
/// first RpcServer.
let installThreadDumpHook: Void = NativeThread.setStartHook { ghd_allow_requests() }
