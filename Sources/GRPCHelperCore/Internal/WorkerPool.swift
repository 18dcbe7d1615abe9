#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A bounded pool of threads for blocking handlers.
///
/// Wake-ups are chained: a submit wakes a sleeping worker only when no wake-up is already
/// in flight, and a worker that wakes passes the baton on if work remains. Under a burst
/// this keeps the number of runnable threads near what the machine can run instead of
/// waking every idle thread at once (which costs more in context switches than the
/// handlers cost). Every queued task still finds a worker while any worker sleeps, so a
/// handler that blocks never starves the queue.
///
/// After finishing its work, one worker at a time stays awake for a short while
/// (`spinNanos`, yielding the CPU while it polls) before going to sleep: a request that
/// arrives in that window is taken without a futex wake-up, which is most of the latency
/// of a lone call. An idle pool sleeps; a busy pool never spins (its queue is not empty).
// @unchecked Sendable: queue and counters guarded by its pthread mutex; `pending` is atomic.
final class WorkerPool: @unchecked Sendable {
    private let pending = Atomic<Int>(0)
    private var spinning = false
    private let spinNanos: UInt64 = 200_000
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let idle = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var queue: [() -> Void] = []
    private var head = 0
    private var sleeping = 0
    private var wakePending = false
    private var running = 0
    private var stopping = false
    private var threads: [pthread_t] = []
    let size: Int

    init(threads: Int) {
        size = max(1, threads)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
        pthread_cond_init(idle, nil)
        for _ in 0..<size { spawn() }
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_cond_destroy(idle)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        idle.deallocate()
        mutex.deallocate()
    }

    private func spawn() {
        guard let tid = NativeThread.start(name: "gh-worker", joinable: true, { self.work() }) else {
            preconditionFailure("cannot start a worker thread")
        }
        threads.append(tid)
    }

    /// Queues `task`. Returns false (and does not run it) once the pool is stopping.
    @discardableResult
    func submit(_ task: @escaping () -> Void) -> Bool {
        pthread_mutex_lock(mutex)
        if stopping {
            pthread_mutex_unlock(mutex)
            return false
        }
        queue.append(task)
        pending.add(1, ordering: .releasing)
        if sleeping > 0 && !wakePending && !spinning {
            wakePending = true
            pthread_cond_signal(cond)
        }
        pthread_mutex_unlock(mutex)
        return true
    }

    private func work() {
        pthread_mutex_lock(mutex)
        while true {
            if head < queue.count {
                let task = queue[head]
                queue[head] = {}
                head += 1
                pending.subtract(1, ordering: .relaxed)
                if head == queue.count {
                    queue.removeAll(keepingCapacity: true)
                    head = 0
                } else if head > 1024 && head * 2 > queue.count {
                    queue.removeFirst(head)
                    head = 0
                }
                // Pass the baton: more work and someone asleep → wake one more.
                if head < queue.count && sleeping > 0 && !wakePending {
                    wakePending = true
                    pthread_cond_signal(cond)
                }
                running += 1
                pthread_mutex_unlock(mutex)
                task()
                pthread_mutex_lock(mutex)
                running -= 1
                continue
            }
            if stopping {
                if running == 0 { pthread_cond_broadcast(idle) }
                break
            }
            if !spinning {
                // Stay awake a little: the next request of a lone caller often comes soon.
                spinning = true
                pthread_mutex_unlock(mutex)
                let until = monotonicNanos() + spinNanos
                while pending.load(ordering: .acquiring) == 0 && monotonicNanos() < until {
                    sched_yield()
                }
                pthread_mutex_lock(mutex)
                spinning = false
                // Whatever arrived meanwhile (submit did not signal) is taken at the loop top.
                if head < queue.count || stopping { continue }
            }
            sleeping += 1
            pthread_cond_wait(cond, mutex)
            sleeping -= 1
            wakePending = false
        }
        pthread_mutex_unlock(mutex)
    }

    /// Runs every queued task, then stops and joins the threads.
    func shutdown() {
        pthread_mutex_lock(mutex)
        if stopping {
            pthread_mutex_unlock(mutex)
            return
        }
        stopping = true
        pthread_cond_broadcast(cond)
        let ts = threads
        threads.removeAll()
        pthread_mutex_unlock(mutex)
        for t in ts where pthread_equal(t, pthread_self()) == 0 { pthread_join(t, nil) }
    }
}
