// Shared helpers for the Integration* tests: a server + channel over real sockets
// that is always shut down, threads for blocking code, and small synchronisation
// tools (gates, permits, counters) that wait for real conditions with bounded timeouts.
//
// Blocking client calls and blocking waits never run on Swift's cooperative thread
// pool: the pool has one thread per core (2 here), async handlers need it, and tests
// run in parallel. Every blocking test body therefore runs on a thread of its own
// (`onThread`, `withServer`), through a task executor preference so that it stays in
// the test's task and `#expect` failures are attributed to the test.
//
// Handlers never call `#expect` (they run outside any test's task): they record what
// they saw in `Locked` values, or throw an RPCError the client then sees.
import Testing
@testable import GRPCHelperCore
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Small helpers

/// Monotonic time in seconds.
func now() -> Double { Double(monotonicNanos()) / 1e9 }

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

func text(_ b: [UInt8]?) -> String? { b.map { String(decoding: $0, as: UTF8.self) } }

/// Deadline used by test calls that are expected to finish on their own: long enough
/// never to matter, short enough that a hang ends as a failure instead of a stuck run.
let testTimeout = 10.0

/// Waits (polling every millisecond) until `condition` holds or `timeout` seconds pass.
/// Returns whether the condition held. For conditions another thread makes true.
@discardableResult
func waitUntil(timeout: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = now() + timeout
    while true {
        if condition() { return true }
        if now() >= deadline { return false }
        usleep(1000)
    }
}

/// `waitUntil` for async code (async handlers): polls every millisecond without blocking a thread.
@discardableResult
func waitUntilAsync(timeout: Double = 5, _ condition: () -> Bool) async -> Bool {
    let deadline = now() + timeout
    while true {
        if condition() { return true }
        if now() >= deadline { return false }
        try? await Task.sleep(nanoseconds: 1_000_000)
    }
}

/// A value shared between handlers and the test thread.
final class Locked<T>: @unchecked Sendable {
    private let monitor = Monitor()
    private var _value: T
    init(_ value: T) { _value = value }
    var value: T {
        get { monitor.withLock { _value } }
        set { monitor.withLock { _value = newValue } }
    }
    func withLock<R>(_ body: (inout T) throws -> R) rethrows -> R {
        try monitor.withLock { try body(&_value) }
    }
}

/// A one-shot latch.
final class Gate: @unchecked Sendable {
    private let monitor = Monitor()
    private var isOpen = false

    func open() { monitor.mutateAndNotify { isOpen = true } }
    var opened: Bool { monitor.withLock { isOpen } }

    /// Blocks until opened; false if `timeout` seconds passed first.
    @discardableResult
    func wait(timeout: Double = testTimeout) -> Bool {
        let deadline = monotonicNanos() + UInt64(timeout * 1e9)
        return monitor.wait(until: { self.isOpen }, deadlineNanos: deadline, then: { true }) ?? false
    }

    /// Blocks until opened or `call` is cancelled (bounded). Returns true if opened.
    func wait(orCancelled call: ServerCall, timeout: Double = testTimeout) -> Bool {
        let deadline = now() + timeout
        while now() < deadline {
            if wait(timeout: 0.002) { return true }
            if call.isCancelled { return false }
        }
        return opened
    }
}

/// A counting semaphore: handlers take permits the test hands out one by one.
final class Permits: @unchecked Sendable {
    private let monitor = Monitor()
    private var available = 0

    func release(_ n: Int = 1) { monitor.mutateAndNotify { available += n } }

    /// Takes a permit; false if `timeout` passed or `call` was cancelled first.
    func acquire(orCancelled call: ServerCall? = nil, timeout: Double = testTimeout) -> Bool {
        let deadline = now() + timeout
        while now() < deadline {
            let got = monitor.wait(until: { self.available > 0 },
                                   deadlineNanos: monotonicNanos() + 2_000_000,
                                   then: { () -> Bool in self.available -= 1; return true }) ?? false
            if got { return true }
            if call?.isCancelled == true { return false }
        }
        return false
    }
}

/// Counts handlers running at once (and the most ever seen), started and finished.
final class ConcurrencyTracker: @unchecked Sendable {
    private let monitor = Monitor()
    private var _running = 0, _maxRunning = 0, _started = 0, _finished = 0

    func enter() {
        monitor.mutateAndNotify {
            _running += 1
            _started += 1
            _maxRunning = max(_maxRunning, _running)
        }
    }
    func leave() {
        monitor.mutateAndNotify {
            _running -= 1
            _finished += 1
        }
    }
    var running: Int { monitor.withLock { _running } }
    var maxRunning: Int { monitor.withLock { _maxRunning } }
    var started: Int { monitor.withLock { _started } }
    var finished: Int { monitor.withLock { _finished } }

    /// Blocks until at least `n` handlers have started (bounded).
    @discardableResult
    func waitStarted(atLeast n: Int, timeout: Double = testTimeout) -> Bool {
        let deadline = monotonicNanos() + UInt64(timeout * 1e9)
        return monitor.wait(until: { self._started >= n }, deadlineNanos: deadline, then: { true }) ?? false
    }
}

// MARK: - Threads

/// Starts a detached thread running `body`.
func startThread(_ body: @escaping () -> Void) {
    final class Box { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var tid = pthread_t()
    let rc = pthread_create(&tid, nil, { arg in
        let b = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
        b.body()
        return nil
    }, box)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    pthread_detach(tid)
}

/// A task executor with one thread of its own: work that must block (blocking client
/// calls, waits) runs there instead of on the cooperative pool.
final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let monitor = Monitor()
    private var jobs: [UnownedJob] = []
    private var stopping = false
    private var thread: pthread_t?

    init() {
        let started = Gate()
        startThread { [self] in
            monitor.withLock { thread = pthread_self() }
            started.open()
            run()
        }
        started.wait()
    }

    /// True on the executor's own thread.
    var isCurrent: Bool { monitor.withLock { thread.map { pthread_equal($0, pthread_self()) != 0 } ?? false } }

    func enqueue(_ job: consuming ExecutorJob) {
        let j = UnownedJob(job)
        monitor.mutateAndNotify { jobs.append(j) }
    }

    private func run() {
        while true {
            let next: UnownedJob?? = monitor.wait(until: { !self.jobs.isEmpty || self.stopping }, then: {
                self.jobs.isEmpty ? nil : self.jobs.removeFirst()
            })
            guard let job = next ?? nil else { return }
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }

    /// Lets the thread end once its queue is empty.
    func stop() { monitor.mutateAndNotify { stopping = true } }
}

/// Runs a blocking `body` on a thread of its own and suspends until it returns. The body
/// stays in the calling task (a task executor preference), so `#expect` inside it is
/// attributed to the running test.
func onThread<T>(_ body: () throws -> T) async throws -> T {
    let executor = ThreadExecutor()
    defer { executor.stop() }
    return try await withTaskExecutorPreference(executor) {
        try await runHere(executor, body)
    }
}

private nonisolated func runHere<T>(_ executor: ThreadExecutor, _ body: () throws -> T) async throws -> T {
    precondition(executor.isCurrent, "onThread body is not on its own thread")
    return try body()
}

/// Runs `body(i)` for i in 0..<count, each on its own thread, and waits for all of them
/// (bounded). Returns false if some did not finish in time.
@discardableResult
func runConcurrently(_ count: Int, timeout: Double = 30, _ body: @escaping (Int) -> Void) -> Bool {
    let done = Locked(0)
    let finished = Gate()
    for i in 0..<count {
        startThread {
            body(i)
            let all = done.withLock { n -> Bool in n += 1; return n == count }
            if all { finished.open() }
        }
    }
    return count == 0 || finished.wait(timeout: timeout)
}

// MARK: - Server + channel

/// A method to register on a test server.
struct TestMethod {
    let path: String
    let cardinality: RPCCardinality
    let handler: ServerHandler
    init(_ path: String, _ cardinality: RPCCardinality, _ handler: ServerHandler) {
        self.path = path
        self.cardinality = cardinality
        self.handler = handler
    }
}

/// Server options for tests: the library's defaults, with fewer threads (tests run in
/// parallel, each with its own server).
func testServerOptions() -> ServerOptions {
    var o = ServerOptions()
    o.maxWorkers = 16
    o.eventLoopThreads = 1
    return o
}

/// A running server, its port and the channel target that reaches it.
struct RunningServer {
    let server: Server
    /// The bound port (0 for a unix socket).
    let port: Int
    /// "127.0.0.1:PORT", "[::1]:PORT" or "unix:PATH".
    let target: String
}

/// Starts a server listening on `listen` ("host:0" picks a free port) with `methods`.
/// The caller must shut it down.
func startServer(listen: String = "127.0.0.1:0", options: ServerOptions = testServerOptions(),
                 methods: [TestMethod]) throws -> RunningServer {
    let server = Server(options: options)
    for m in methods { try server.register(m.path, cardinality: m.cardinality, handler: m.handler) }
    try server.addListener(listen)
    try server.start()
    let port = server.port() ?? 0
    let target: String
    switch try Endpoint.parse(listen) {
    case .host(let h, _): target = Endpoint.host(h == "0.0.0.0" ? "127.0.0.1" : h, port: port).description
    case .unix(let path): target = "unix:\(path)"
    }
    return RunningServer(server: server, port: port, target: target)
}

/// What a `withServer` body gets.
struct Harness {
    let server: Server
    let port: Int
    let target: String
    let channel: GRPCChannel

    /// Connects the channel (with a call to an unregistered method), so a following
    /// short-deadline call does not spend its time connecting. Returns that call's status.
    @discardableResult
    func warmUp() -> Status {
        runCall(channel, "/test.WarmUp/Connect", []).status
    }
}

/// Starts a server with `methods` and a channel to it, runs the blocking `body` on its
/// own thread, then always closes the channel and shuts the server down.
func withServer<T>(listen: String = "127.0.0.1:0", options: ServerOptions = testServerOptions(),
                   channelOptions: ChannelOptions = ChannelOptions(), methods: [TestMethod],
                   _ body: (Harness) throws -> T) async throws -> T {
    try await onThread {
        try withServerBlocking(listen: listen, options: options, channelOptions: channelOptions,
                               methods: methods, body)
    }
}

/// `withServer` for code that already runs on its own thread.
func withServerBlocking<T>(listen: String = "127.0.0.1:0", options: ServerOptions = testServerOptions(),
                           channelOptions: ChannelOptions = ChannelOptions(), methods: [TestMethod],
                           _ body: (Harness) throws -> T) throws -> T {
    let running = try startServer(listen: listen, options: options, methods: methods)
    defer { running.server.shutdown(grace: 0) }
    let channel = try GRPCChannel(target: running.target, options: channelOptions)
    defer { channel.close() }
    return try body(Harness(server: running.server, port: running.port, target: running.target,
                            channel: channel))
}

/// `withServer` for an async body (async client API); setup and teardown run on a thread.
func withServerAsync<T>(options: ServerOptions = testServerOptions(),
                        channelOptions: ChannelOptions = ChannelOptions(), methods: [TestMethod],
                        _ body: (Harness) async throws -> T) async throws -> T {
    let h: Harness = try await onThread {
        let running = try startServer(options: options, methods: methods)
        do {
            let channel = try GRPCChannel(target: running.target, options: channelOptions)
            return Harness(server: running.server, port: running.port, target: running.target, channel: channel)
        } catch {
            running.server.shutdown(grace: 0)
            throw error
        }
    }
    func stop() async {
        _ = try? await onThread {
            h.channel.close()
            h.server.shutdown(grace: 0)
        }
    }
    do {
        let r = try await body(h)
        await stop()
        return r
    } catch {
        await stop()
        throw error
    }
}

/// The first port of the kernel's ephemeral range (ports that bind(0) and connect() hand
/// out), from /proc/sys/net/ipv4/ip_local_port_range.
private let ephemeralPortStart: Int = {
    let fd = open("/proc/sys/net/ipv4/ip_local_port_range", O_RDONLY)
    guard fd >= 0 else { return 32768 }
    defer { close(fd) }
    var buf = [UInt8](repeating: 0, count: 64)
    let n = read(fd, &buf, buf.count)
    guard n > 0 else { return 32768 }
    let first = String(decoding: buf[0..<n], as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\t" }).first
    return first.flatMap { Int($0) } ?? 32768
}()

/// Finds a port that nothing listens on, for tests that must start a server on a port
/// chosen in advance: binds a server there and shuts it down again. The port lies below
/// the ephemeral range, so no other test's bind(0) or outgoing connection takes it
/// before the test binds it again.
func reserveFreePort() throws -> Int {
    let low = 10000
    let high = max(low + 1000, ephemeralPortStart)
    var lastError: Error?
    for _ in 0..<50 {
        let port = Int.random(in: low..<high)
        do {
            let s = try startServer(listen: "127.0.0.1:\(port)", methods: [])
            s.server.shutdown(grace: 0)
            return port
        } catch {
            lastError = error
        }
    }
    throw lastError!
}

// MARK: - Client helpers

/// Everything a finished client call produced.
struct CallResult {
    var messages: [[UInt8]]
    /// Per message: whether it arrived compressed on the wire.
    var compressed: [Bool]
    var status: Status
    var initialMetadata: Metadata
    var trailingMetadata: Metadata
}

/// Runs a whole call: sends `requests`, half-closes, reads every response, waits for the status.
func runCall(_ channel: GRPCChannel, _ method: String, _ requests: [[UInt8]],
             options: CallOptions = CallOptions(timeout: testTimeout)) -> CallResult {
    let call = channel.makeCall(method, options: options)
    call.start()
    for r in requests {
        do { try call.send(r) } catch { break }
    }
    call.closeSend()
    var messages: [[UInt8]] = []
    var compressed: [Bool] = []
    while let m = try? call.receive() {
        messages.append(m)
        compressed.append(call.lastMessageWasCompressed)
    }
    let status = call.waitStatus()
    return CallResult(messages: messages, compressed: compressed, status: status,
                      initialMetadata: call.waitInitialMetadata(), trailingMetadata: call.trailingMetadata)
}

/// Metadata entries as "key=value" strings (binary values as hex), for comparisons.
func entries(_ md: Metadata) -> [String] {
    md.map { e in
        switch e.value {
        case .string(let s): return "\(e.key)=\(s)"
        case .binary(let b): return "\(e.key)=0x" + b.map { String($0, radix: 16) }.joined(separator: ".")
        }
    }
}

// MARK: - Bounded concurrency

/// Runs `count` unary calls whose handlers block until released, releasing them one at a
/// time, and checks that never more than two handlers run at once while every call still
/// completes in order. Used for both the worker-pool bound and MAX_CONCURRENT_STREAMS.
func expectAtMostTwoAtOnce(options: ServerOptions, path: String, count: Int) async throws {
    let tracker = ConcurrencyTracker()
    let permits = Permits()
    let handler = ServerHandler.blocking { call in
        tracker.enter()
        defer { tracker.leave() }
        guard permits.acquire(orCancelled: call) else { throw RPCError(.cancelled, "not released") }
        guard let m = try call.receiveMessage() else { throw RPCError(.invalidArgument, "no request") }
        try call.sendMessage(m)
    }
    try await withServer(options: options, methods: [TestMethod(path, .unary, handler)]) { h in
        // All calls start before the connection exists (a fresh channel).
        let calls = (0..<count).map { i -> ClientCall in
            let c = h.channel.makeCall(path, options: CallOptions(timeout: 20))
            c.start()
            try? c.send(bytes("call \(i)"))
            c.closeSend()
            return c
        }
        // Release the handlers one at a time; each time, the next waiting call must start.
        for step in 0..<count {
            try #require(tracker.waitStarted(atLeast: min(step + 2, count), timeout: 5),
                         "step \(step): only \(tracker.started) handlers started")
            #expect(tracker.running <= 2)
            permits.release()
        }
        for (i, c) in calls.enumerated() {
            let reply = try c.receive()
            #expect(text(reply) == "call \(i)")
            #expect(c.waitStatus() == .ok, "call \(i)")
        }
        #expect(tracker.maxRunning == 2)
        #expect(tracker.finished == count)
    }
}
