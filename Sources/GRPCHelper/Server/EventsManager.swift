// The events service (grpc-helper's EventsManager, EventService `events`): event queues,
// one per listener (client_id), filled by `send` and emptied by `listen` streams; interrupt
// and resume; keep-alive events; queues persisted in <workspace>/queues.json.
import NIOConcurrencyHelpers
import Foundation
import GRPCHelperCore

extension RpcEvent {
    /// An event of `name` with properties in the order given.
    public init(name: String, orderedProperties: [(String, String)]) {
        self.init()
        self.name = name
        self.properties = orderedProperties.map { k, v in
            var p = RpcEventProperty()
            p.name = k
            p.value = v
            return p
        }
    }

    /// An event of `name` with `properties` (name → value, in name order).
    public init(name: String, properties: [String: String] = [:]) {
        self.init(name: name, orderedProperties: properties.sorted(by: { $0.key < $1.key }).map { ($0.key, $0.value) })
    }
}

/// One queue: what its listener has not read yet, and the listener waiting for it. A listen
/// stream takes the queue over (`beginListen`); a newer one ends the older one.
// @unchecked Sendable: everything guarded by `lock`.
final class EventQueue: @unchecked Sendable {
    enum Item: Sendable {
        case event(RpcEvent)
        /// `interrupt`: the listen stream ends (status OK).
        case interrupt
        /// The server shuts down: the stream's last message (ERROR_STREAM_SHUTDOWN).
        case shutdown
        /// The listener's call was cancelled, or a newer listener took the queue.
        case cancelled
    }

    private let lock = NIOLock()
    private var items: [Item] = []
    private var head = 0
    private var waiter: CheckedContinuation<Item, Never>?
    /// The current listen stream, and whether it was cancelled.
    private var generation = 0
    private var cancelled = false

    /// Events dropped since the queue last ran empty (for the log).
    private var droppedInEpisode = 0
    /// Called (outside the lock) when a listener has read everything after events were
    /// dropped, with how many were.
    private let onCaughtUp: (@Sendable (Int) -> Void)?

    init(onCaughtUp: (@Sendable (Int) -> Void)? = nil) {
        self.onCaughtUp = onCaughtUp
    }

    func put(_ item: Item) {
        let w: CheckedContinuation<Item, Never>? = lock.withLock {
            if let w = waiter {
                waiter = nil
                return w
            }
            items.append(item)
            return nil
        }
        w?.resume(returning: item)
    }

    /// Puts an event, keeping at most `limit` undelivered ones: past it the oldest pending
    /// events go. Returns how many were dropped by this call and whether they are the first
    /// ones since the queue was last emptied (the log warns once per such episode). A
    /// keep-alive (empty name) is only put in a queue with nothing pending: it exists for
    /// idle streams.
    func putEvent(_ event: RpcEvent, limit: Int) -> (dropped: Int, firstInEpisode: Bool) {
        let (w, dropped, first): (CheckedContinuation<Item, Never>?, Int, Bool) = lock.withLock {
            if let w = waiter {
                waiter = nil
                return (w, 0, false)
            }
            if event.name.isEmpty && head < items.count { return (nil, 0, false) }
            items.append(.event(event))
            var dropped = 0
            while items.count - head > limit {
                // The oldest event goes (control items, rare, stay where they are).
                if case .event = items[head] {
                    head += 1
                } else if let i = items[head...].firstIndex(where: { if case .event = $0 { return true } else { return false } }) {
                    items.remove(at: i)
                } else {
                    break
                }
                dropped += 1
            }
            compact()
            let first = dropped > 0 && droppedInEpisode == 0
            droppedInEpisode += dropped
            return (nil, dropped, first)
        }
        w?.resume(returning: .event(event))
        return (dropped, first)
    }

    /// A listen stream starts: control items left by an earlier one go, an older stream
    /// still waiting ends. Returns the stream's generation (for `cancel`).
    func beginListen() -> Int {
        let (gen, older): (Int, CheckedContinuation<Item, Never>?) = lock.withLock {
            let kept = items[head...].filter { if case .event = $0 { return true } else { return false } }
            items = Array(kept)
            head = 0
            generation += 1
            cancelled = false
            defer { waiter = nil }
            return (generation, waiter)
        }
        older?.resume(returning: .cancelled)
        return gen
    }

    /// The listen stream `gen` was cancelled: it stops waiting (now or at its next wait).
    func cancel(_ gen: Int) {
        let w: CheckedContinuation<Item, Never>? = lock.withLock {
            guard gen == generation else { return nil }
            cancelled = true
            defer { waiter = nil }
            return waiter
        }
        w?.resume(returning: .cancelled)
    }

    /// The next item (waits for one).
    func next() async -> Item {
        await withCheckedContinuation { (c: CheckedContinuation<Item, Never>) in
            let (now, caughtUp): (Item?, Int) = lock.withLock {
                if cancelled { return (.cancelled, 0) }
                if head < items.count {
                    let i = items[head]
                    head += 1
                    compact()
                    return (i, 0)
                }
                waiter = c
                defer { droppedInEpisode = 0 }
                return (nil, droppedInEpisode)
            }
            if caughtUp > 0 { onCaughtUp?(caughtUp) }
            if let i = now { c.resume(returning: i) }
        }
    }

    /// Drops the consumed items once they are most of the array (amortised O(1)); under `lock`.
    private func compact() {
        if head > 64 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
    }

    /// Whether listen stream `gen` is the queue's current one.
    func isCurrent(_ gen: Int) -> Bool { lock.withLock { gen == generation } }

    /// The events not read yet (for persistence).
    var pendingEvents: [RpcEvent] {
        lock.withLock {
            items[head...].compactMap { if case .event(let e) = $0, !e.name.isEmpty { return e } else { return nil } }
        }
    }
}

/// The `events` service's manager (its log: EventsManager.log).
// @unchecked Sendable: state guarded by `state`.
final class EventsManager: RpcManager, @unchecked Sendable {
    private let config: ConfigSet
    private let clock: @Sendable () -> TimeInterval
    private let state = NIOLock()
    private var queues: [UInt32: EventQueue] = [:]
    /// Per queue: when it was interrupted (nil: listening), as the original's interrupt_times.
    private var interruptTimes: [UInt32: TimeInterval?] = [:]
    private var keepAlive: Task<Void, Never>?
    private var stopped = false
    /// Writes of queues.json, in order, off the concurrency pool; one scheduled at a time.
    private let persistQueue = DispatchQueue(label: "gh-events-persist")
    private var persistScheduled = false

    init(config: ConfigSet, clock: @escaping @Sendable () -> TimeInterval = { Date().timeIntervalSince1970 }) {
        self.config = config
        self.clock = clock
        super.init()
    }

    private var queuesFile: String? {
        folders.workspace.map { ($0 as NSString).appendingPathComponent("queues.json") }
    }

    // MARK: lifecycle

    /// The persisted queues come back interrupted (dropped after the retain timeout unless a
    /// listener resumes them), with the events they had not delivered; then the keep-alive
    /// task starts.
    override func load() throws {
        restore()
        let period = max(1, config["rpc-event-keepalive-timeout"]?.intValue ?? 60)
        keepAlive = Task.detached { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(period) * 1_000_000_000)
                guard !Task.isCancelled, let self = self else { return }
                self.deliver(RpcEvent())   // an empty name: a keep-alive
            }
        }
    }

    /// Every listen stream ends with ERROR_STREAM_SHUTDOWN; the queues and their undelivered
    /// events are persisted.
    override func shutdown() {
        let all: [EventQueue] = state.withLock {
            stopped = true
            keepAlive?.cancel()
            return Array(queues.values)
        }
        persistQueue.sync {}   // a scheduled write first, then the last one
        persist()
        for q in all { q.put(.shutdown) }
    }

    private func restore() {
        guard let path = queuesFile, FileManager.default.fileExists(atPath: path) else { return }
        let now = clock()
        let limit = queueLimit
        do {
            guard let data = FileManager.default.contents(atPath: path),
                  let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw RpcException("not a JSON object", code: .errorModelInvalid)
            }
            var restored: [UInt32: EventQueue] = [:]
            for (key, value) in object {
                guard let id = UInt32(key), id > 0 else { throw RpcException("bad queue id \(key)", code: .errorModelInvalid) }
                let q = makeQueue(id)
                // grpc-helper writes a list per queue; ours: its undelivered events.
                for e in (value as? [Any]) ?? [] {
                    guard let d = e as? [String: Any], let name = d["name"] as? String, !name.isEmpty else { continue }
                    _ = q.putEvent(RpcEvent(name: name, properties: (d["properties"] as? [String: String]) ?? [:]),
                                   limit: limit)
                }
                restored[id] = q
            }
            state.withLock {
                for (id, q) in restored {
                    queues[id] = q
                    interruptTimes[id] = .some(now)
                }
            }
            logger.debug("Re-creating persisted event queues: \(restored.keys.sorted())")
        } catch {
            // Kept aside, not overwritten: the server starts without them.
            let aside = path + ".invalid"
            try? FileManager.default.removeItem(atPath: aside)
            try? FileManager.default.moveItem(atPath: path, toPath: aside)
            logger.warning("Invalid event queues file \(path) (\(error)): moved to \(aside); starting without persisted queues")
        }
    }

    /// Schedules a write of the queues on the manager's own serial queue (never on the
    /// concurrency pool, where a listen stream's handler runs): changes made before the write
    /// starts are coalesced into it, so a thousand listeners opening at once cost a few writes,
    /// not a thousand.
    private func schedulePersist() {
        let go: Bool = state.withLock {
            if persistScheduled || stopped { return false }
            persistScheduled = true
            return true
        }
        if go {
            persistQueue.async { [weak self] in self?.persist() }
        }
    }

    /// Writes the queues (ids and undelivered events) atomically; a failure is logged.
    private func persist() {
        guard let path = queuesFile else { return }
        let snapshot: [String: Any] = state.withLock {
            persistScheduled = false
            var out: [String: Any] = [:]
            for (id, q) in queues {
                out[String(id)] = q.pendingEvents.map { e -> [String: Any] in
                    ["name": e.name,
                     "properties": Dictionary(e.properties.map { ($0.name, $0.value) }, uniquingKeysWith: { _, b in b })]
                }
            }
            return out
        }
        do {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try writeJSONObject(snapshot, to: path)
        } catch {
            logger.error("Cannot persist event queues in \(path): \(error)")
        }
    }

    // MARK: the service

    private static func checkName(_ name: String, empty: String, invalid: String) throws {
        if name.isEmpty { throw RpcException(empty, code: .errorParamMissing) }
        if name.contains(" ") { throw RpcException(invalid + name, code: .errorParamInvalid) }
    }

    /// A new queue #id: its dropped events are logged when its listener catches up.
    private func makeQueue(_ id: UInt32) -> EventQueue {
        EventQueue(onCaughtUp: { [logger] n in
            logger.warning("Event queue #\(id): listener caught up; \(n) events were dropped (rpc-event-queue-max)")
        })
    }

    /// rpc-event-queue-max: the undelivered events a queue keeps.
    private var queueLimit: Int { max(1, config["rpc-event-queue-max"]?.intValue ?? 10_000) }

    private func queue(_ id: UInt32) throws -> EventQueue {
        guard let q = queues[id] else {
            throw RpcException("Unknown event listening ID: \(id)", code: .errorItemUnknown)
        }
        return q
    }

    func listen(_ request: RpcEventFilter, _ call: ServerCall) async throws {
        for n in request.names {
            try EventsManager.checkName(n, empty: "Empty name in filter request", invalid: "Invalid name in filter request: ")
        }
        let (index, q, created): (UInt32, EventQueue, Bool) = try state.withLock {
            if request.clientID > 0 {
                let q = try queue(request.clientID)
                interruptTimes[request.clientID] = .some(nil)   // listening again
                return (request.clientID, q, false)
            }
            // The lowest free id, as the original (ids are reused).
            var index: UInt32 = 1
            while queues[index] != nil { index += 1 }
            let q = makeQueue(index)
            queues[index] = q
            interruptTimes[index] = .some(nil)
            return (index, q, true)
        }
        if created {
            logger.info("Starting new event listening queue #\(index)")
            schedulePersist()
        } else {
            logger.info("Resuming interrupted event listening queue #\(index)")
        }
        let gen = q.beginListen()
        call.onCancel { q.cancel(gen) }

        var first = RpcEventStatus()
        first.clientID = index
        var end: EventQueue.Item = .cancelled
        do {
            try await call.send(try first.serializedBytes())
            loop: while true {
                let item = await q.next()
                switch item {
                case .event(let e):
                    guard request.names.isEmpty || e.name.isEmpty || request.names.contains(e.name) else { continue }
                    var s = RpcEventStatus()
                    s.clientID = index
                    s.event = e
                    try await call.send(try s.serializedBytes())
                case .interrupt, .shutdown, .cancelled:
                    end = item
                    break loop
                }
            }
        } catch {
            end = .cancelled
        }
        // Interrupted, unless a newer listen stream took the queue over.
        state.withLock { if queues[index] != nil && q.isCurrent(gen) { interruptTimes[index] = .some(clock()) } }
        logger.info("Event listening queue #\(index) interrupted")
        if case .shutdown = end {
            var s = RpcEventStatus()
            s.r.code = .errorStreamShutdown
            s.r.msg = "Service is shutdown"
            try? await call.send(try s.serializedBytes())
        }
    }

    func send(_ event: RpcEvent) throws -> RpcResultStatus {
        try EventsManager.checkName(event.name, empty: "Empty event name", invalid: "Invalid event name: ")
        deliver(event)
        return RpcResultStatus()
    }

    /// Puts the event in every queue; an interrupted queue past the retain timeout is
    /// dropped instead (the original's rule, applied at each send and keep-alive).
    func deliver(_ event: RpcEvent) {
        let now = clock()
        let retain = Double(config["rpc-event-retain-timeout"]?.intValue ?? 300)
        let limit = queueLimit
        let (dropped, full): ([UInt32], [(UInt32, Int)]) = state.withLock {
            var dropped: [UInt32] = []
            var full: [(UInt32, Int)] = []
            for (id, q) in queues {
                if let at = interruptTimes[id] ?? nil, now - at >= retain {
                    dropped.append(id)
                } else {
                    let r = q.putEvent(event, limit: limit)
                    if r.firstInEpisode { full.append((id, r.dropped)) }
                }
            }
            for id in dropped {
                queues[id] = nil
                interruptTimes[id] = nil
            }
            return (dropped, full)
        }
        for (id, _) in full {
            logger.warning("Event queue #\(id) is full (rpc-event-queue-max \(limit) undelivered events): dropping its oldest events")
        }
        if !dropped.isEmpty {
            for id in dropped.sorted() {
                logger.info("Deleting interrupted event queue #\(id) (retain timeout: \(retain))")
            }
            schedulePersist()
        }
    }

    func interrupt(_ request: RpcEventInterrupt) throws -> RpcResultStatus {
        let q: EventQueue = try state.withLock {
            let q = try queue(request.clientID)
            if let at = interruptTimes[request.clientID], at != nil {
                throw RpcException("Already interrupted ID: \(request.clientID)", code: .errorStateUnexpected)
            }
            return q
        }
        q.put(.interrupt)
        return RpcResultStatus()
    }

    func inspect(_ request: RpcEmpty) -> RpcEventQueueStatus {
        var s = RpcEventQueueStatus()
        s.clientIds = state.withLock { queues.keys.sorted() }
        return s
    }

    /// The service's descriptor (API supported 1, current 2).
    func descriptor() -> RpcServiceDescriptor {
        RpcServiceDescriptor(
            name: "events", serviceName: "EventService", title: "grpchelper", moduleVersion: GRPCHelperVersion.string,
            apiVersion: RpcEventApiVersion.self, manager: self,
            methods: [
                RpcMethod(name: "listen", cardinality: .serverStreaming, body: .async { [weak self] call in
                    guard let self = self else { throw RPCError(.unavailable, "server gone") }
                    guard let bytes = try await call.receive() else { throw RPCError(.internalError, "no request message") }
                    try await self.listen(try decodeRequest(RpcEventFilter.self, bytes), call)
                }),
                .unary("send") { [weak self] (r: RpcEvent) -> RpcResultStatus in
                    guard let self = self else { throw RPCError(.unavailable, "server gone") }
                    return try self.send(r)
                },
                .unary("interrupt") { [weak self] (r: RpcEventInterrupt) -> RpcResultStatus in
                    guard let self = self else { throw RPCError(.unavailable, "server gone") }
                    return try self.interrupt(r)
                },
                .unary("inspect") { [weak self] (r: RpcEmpty) -> RpcEventQueueStatus in
                    guard let self = self else { throw RPCError(.unavailable, "server gone") }
                    return self.inspect(r)
                },
            ])
    }
}
