// The one way the library starts a thread of its own: worker-pool threads, shutdown
// threads, channel-closing threads, the helper layer's signal and shutdown threads.
#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers

package enum NativeThread {
    private static let hook = NIOLockedValueBox<(@Sendable () -> Void)?>(nil)

    /// Runs first on every thread started from here from now on (set once by a layer
    /// above; the helper layer lets those threads answer its debug dump's requests).
    package static func setStartHook(_ body: (@Sendable () -> Void)?) {
        hook.withLockedValue { $0 = body }
    }

    /// Starts a thread named `name` (Linux keeps 15 bytes) running `body`: detached, or
    /// `joinable` (its owner joins it). Returns its id, or nil, running nothing, when no
    /// thread could be made.
    @discardableResult
    package static func start(name: String, joinable: Bool = false, _ body: @escaping () -> Void) -> pthread_t? {
        let startHook = hook.withLockedValue { $0 }
        let start = Unmanaged.passRetained(ThreadStart(name: name, body: body, hook: startHook)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, runThreadStart, start)
        guard rc == 0 else {
            Unmanaged<ThreadStart>.fromOpaque(start).release()
            return nil
        }
        if !joinable { pthread_detach(tid) }
        return tid
    }

    /// `start`, or `body` on the calling thread when no thread can be made (work that
    /// must happen either way, e.g. finishing a shutdown).
    package static func startOrRun(name: String, _ body: @escaping () -> Void) {
        if start(name: name, body) == nil { body() }
    }

    private static let startedHere: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    /// Whether the calling thread was started by `start`.
    package static var isCurrent: Bool { pthread_getspecific(startedHere) != nil }

    fileprivate static func markCurrent() { pthread_setspecific(startedHere, UnsafeRawPointer(bitPattern: 1)) }

    /// Names the calling thread (Linux: its comm, at most 15 bytes; what ps, gdb and the
    /// debug dump show).
    package static func setCurrentThreadName(_ name: String) {
        let fd = open("/proc/thread-self/comm", O_WRONLY)
        guard fd >= 0 else { return }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}

/// What a new thread runs (handed over to it, retained once).
private final class ThreadStart {
    let name: String
    let body: () -> Void
    let hook: (@Sendable () -> Void)?
    init(name: String, body: @escaping () -> Void, hook: (@Sendable () -> Void)?) {
        self.name = name
        self.body = body
        self.hook = hook
    }
}

private func runThreadStart(_ arg: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let s = Unmanaged<ThreadStart>.fromOpaque(arg!).takeRetainedValue()
    NativeThread.markCurrent()
    NativeThread.setCurrentThreadName(s.name)
    s.hook?()
    s.body()
    return nil
}
