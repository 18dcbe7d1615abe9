// Events in Swift (twins in C and Python; checked by examples/run_events_example.sh):
//
//   events-example serve -p 12345 -w /tmp/wks   # an RpcServer with events, pushing "tick"s
//   events-example listen -p 12345 --names greeting --count 2
//   events-example send -p 12345 --name greeting --prop who=alice [--shutdown]
import ArgumentParser
import Foundation
import GRPCHelper

@main
struct EventsExample: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "events-example", abstract: "Events sample",
                                                    version: "1.0.0", subcommands: [Serve.self, Listen.self, Send.self])

    static func client(_ port: Int) throws -> RpcClient {
        try RpcClient(host: "127.0.0.1", port: port, timeout: 10, name: "events-sample",
                      stubs: ["events": ("EventService", 2), "srv": ("RpcServerService", 1)])
    }

    static func failing<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as RpcException {
            print("error \(e.code.rawValue): \(e.message)")
            throw ExitCode(1)
        }
    }

    struct Serve: ParsableCommand {
        @OptionGroup var rpc: RpcCliOptions

        func run() throws {
            let server = try failing {
                try RpcServer(port: rpc.port, descriptors: [], folders: rpc.folders, cliConfig: rpc.config,
                              withEvents: true)
            }
            server.handleExitSignals()
            print("serving on port \(server.port)")
            fflush(nil)
            // Unsolicited events from the host itself: in-process, no network round trip.
            let ticker = Thread {
                var n = 0
                while server.isRunning {
                    Thread.sleep(forTimeInterval: 0.1)
                    n += 1
                    try? server.sendEvent(name: "tick", properties: ["n": String(n)])
                }
            }
            ticker.start()
            server.waitShutdown()
        }
    }

    struct Listen: ParsableCommand {
        @Option(name: .shortAndLong) var port = 12345
        @Option var names = ""
        @Option var count = 1

        func run() throws {
            let c = try client(port)
            let done = DispatchSemaphore(value: 0)
            let left = Counter(count)
            let out = Output()
            let listener = EventsListener(client: c, names: names.split(separator: ",").map(String.init)) { event in
                let props = event.properties.map { " \($0.name)=\($0.value)" }.joined()
                out.line("\(event.name)\(props)")
                if left.decrement() == 0 { done.signal() }
            }
            guard listener.waitReady(timeout: 30) else { throw ExitCode(1) }
            // Events may come before this line is printed: they are held until it is.
            out.first("ready \(listener.clientID ?? 0)")
            let ok = done.wait(timeout: .now() + 30) == .success
            _ = try? listener.interrupt()
            if !ok { throw ExitCode(1) }
        }
    }

    struct Send: ParsableCommand {
        @Option(name: .shortAndLong) var port = 12345
        @Option var name: String?
        @Option(help: "A property, name=value (repeatable)") var prop: [String] = []
        @Flag(help: "Ask the server to shut down afterwards") var shutdown = false

        func run() throws {
            let c = try client(port)
            try failing {
                if let name = name {
                    var event = RpcEvent()
                    event.name = name
                    event.properties = prop.map { p in
                        var e = RpcEventProperty()
                        let kv = p.split(separator: "=", maxSplits: 1).map(String.init)
                        e.name = kv[0]
                        e.value = kv.count > 1 ? kv[1] : ""
                        return e
                    }
                    _ = try c["events"]!.call("send", event, as: RpcResultStatus.self)
                    print("sent")
                }
                if shutdown {
                    var req = RpcShutdownRequest()
                    req.timeout = -1
                    _ = try c["srv"]!.call("shutdown", req, as: RpcResultStatus.self)
                }
            }
        }
    }
}

/// A count shared with the listener's thread.
/// Prints lines in order, the `first` one before any other (lines given earlier wait).
final class Output: @unchecked Sendable {
    private let lock = NSLock()
    private var started = false
    private var held: [String] = []
    func line(_ text: String) {
        lock.lock(); defer { lock.unlock() }
        if started { emit(text) } else { held.append(text) }
    }
    func first(_ text: String) {
        lock.lock(); defer { lock.unlock() }
        emit(text)
        for h in held { emit(h) }
        held.removeAll()
        started = true
    }
    private func emit(_ text: String) {
        print(text)
        fflush(nil)
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int
    init(_ v: Int) { value = v }
    func decrement() -> Int { lock.lock(); defer { lock.unlock() }; value -= 1; return value }
}
