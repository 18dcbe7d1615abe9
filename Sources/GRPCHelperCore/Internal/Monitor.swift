import NIOPosix
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex with a condition variable that also wakes Swift-concurrency waiters.
/// Blocking waits are for worker threads (C and Python handlers, blocking client
/// calls); async waits are for Swift `async` code. Never block an event loop on it.
// @unchecked Sendable: it is the lock: the waiters list is touched only with the mutex held.
package final class Monitor: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var asyncWaiters: [CheckedContinuation<Void, Never>] = []

    package init() {
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    @inline(__always)
    package func lock() { pthread_mutex_lock(mutex) }
    @inline(__always)
    package func unlock() { pthread_mutex_unlock(mutex) }

    @inline(__always)
    package func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Wakes every waiter. Call with the lock held.
    package func broadcastLocked() -> [CheckedContinuation<Void, Never>] {
        pthread_cond_broadcast(cond)
        let w = asyncWaiters
        asyncWaiters.removeAll()
        return w
    }

    /// Takes the lock, runs `body`, wakes every waiter.
    package func mutateAndNotify<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        let r: T
        do { r = try body() } catch { pthread_mutex_unlock(mutex); throw error }
        let w = broadcastLocked()
        pthread_mutex_unlock(mutex)
        for c in w { c.resume() }
        return r
    }

    /// Blocks until `ready()` (evaluated under the lock) is true, or until the
    /// monotonic `deadlineNanos` (nil: no limit). Returns whether `ready()` became true.
    /// Runs `body` under the lock once ready.
    package func wait<T>(until ready: () -> Bool, deadlineNanos: UInt64? = nil, then body: () -> T) -> T? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !ready() {
            if let d = deadlineNanos {
                var ts = timespec(tv_sec: Int(d / 1_000_000_000), tv_nsec: Int(d % 1_000_000_000))
                let rc = pthread_cond_timedwait(cond, mutex, &ts)
                if rc == ETIMEDOUT && !ready() { return nil }
            } else {
                pthread_cond_wait(cond, mutex)
            }
        }
        return body()
    }

    /// Suspends until `ready()` (evaluated under the lock) is true, then runs `body` under the lock.
    package func waitAsync<T>(until ready: @escaping () -> Bool, then body: @escaping () -> T) async -> T {
        while true {
            var result: T?
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                pthread_mutex_lock(mutex)
                if ready() {
                    result = body()
                    pthread_mutex_unlock(mutex)
                    c.resume()
                } else {
                    asyncWaiters.append(c)
                    pthread_mutex_unlock(mutex)
                }
            }
            if let r = result { return r }
        }
    }
}

/// Monotonic clock in nanoseconds (CLOCK_MONOTONIC, the clock NIODeadline uses too).
@inline(__always)
package func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Marks the threads that run client completion callbacks, so that closing a channel from
/// inside a callback does not wait for the callback thread itself.
enum CallbackThread {
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()
    static func markCurrent() { pthread_setspecific(key, UnsafeRawPointer(bitPattern: 1)) }
    static var isCurrent: Bool { pthread_getspecific(key) != nil }
}

/// The library's own threads: those started by `NativeThread`, the callback threads, the
/// event loops (C `gh_thread_is_library`).
package enum LibraryThread {
    package static var isCurrent: Bool {
        NativeThread.isCurrent || CallbackThread.isCurrent || MultiThreadedEventLoopGroup.currentEventLoop != nil
    }
}
