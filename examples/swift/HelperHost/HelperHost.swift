// A helper-layer host program in Swift: its own config holder, the RPC command-line
// options embedded with @OptionGroup, a config set with layered defaults and persisted
// user values, and a named swift-log logger writing to the rolling logs.
//
//   helper-host -w /tmp/wks -c host-greeting=hi --times 2
//   cat /tmp/wks/logs/helper-host/helper-host.log
import ArgumentParser
import GRPCHelper
import Logging

/// This program's own configuration items.
struct HostConfig: ConfigHolder {
    let greeting = try! Config(name: "host-greeting", description: "Word to greet with", defaultValue: "hello")
    let target = try! Config(name: "host-target", description: "Who is greeted", defaultValue: "world")
}

@main
struct HelperHost: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "helper-host",
                                                    abstract: "Sample helper-layer host", version: "1.0.0")

    @OptionGroup var rpc: RpcCliOptions
    @Option(help: "How many greetings to log") var times = 1
    @Option(help: "Persist a new target (a user item) before greeting") var setTarget: String?

    static func main() {
        // The RPC options' defaults, as grpc-helper's with_rpc_args(...) arguments.
        RpcCliOptions.defaults = .init(port: 12345, system: "/etc/helper-host", user: "~/.config/helper-host",
                                       workspace: "./helper-host-wks", version: "1.0.0")
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }

    func run() throws {
        let config = HostConfig()
        do {
            let set = try ConfigSet(staticItems: RpcStaticConfig.items(), userItems: config.allConfigItems,
                                    folders: rpc.folders, cli: rpc.config)
            if let t = setTarget { _ = try set.set([(name: "host-target", value: t)]) }
            let logs = try RpcLogs(config: set)
            defer { logs.close() }
            let log = logs.logger("helper-host")
            for w in set.warnings { log.warning("\(w)") }
            for i in 1...max(times, 1) {
                log.info("\(config.greeting.stringValue) \(config.target.stringValue) (\(i))", metadata: ["port": "\(rpc.port)"])
            }
            print(logs.path(of: "helper-host"))
        } catch let e as RpcException {
            print("error \(e.code.rawValue): \(e.message)")
            throw ExitCode(1)
        }
    }
}
