// The RPC command-line options (grpc-helper's RpcCliParser.with_rpc_args) as a
// swift-argument-parser group that a host command embeds with @OptionGroup.
import ArgumentParser
import NIOConcurrencyHelpers

/// `--system PATH`, `--user PATH`, `-w/--workspace PATH`, `-p/--port PORT`,
/// `-c/--config NAME=VALUE` (repeatable), `-V` (version; `-h/--help` and `--version` come
/// from ArgumentParser). Defaults come from the host through `RpcCliOptions.defaults` (set
/// before parsing), as with_rpc_args's arguments, or are given to `RpcCommandLine.parse`
/// for that parse alone. A malformed option is a usage error: ArgumentParser exits with
/// EX_USAGE (64) and a message naming it.
public struct RpcCliOptions: ParsableArguments {
    /// The host's defaults (port, system, user, workspace folders).
    public struct Defaults: Sendable {
        public var port: Int
        public var system: String?
        public var user: String?
        public var workspace: String?
        /// Printed by `-V` (ArgumentParser prints the command's own version for `--version`).
        public var version: String?
        public init(port: Int = 54321, system: String? = nil, user: String? = nil, workspace: String? = nil,
                    version: String? = nil) {
            self.port = port
            self.system = system
            self.user = user
            self.workspace = workspace
            self.version = version
        }
    }

    /// The host's defaults: those given to the `RpcCommandLine.parse` running on this
    /// thread, else the process's (set once by a host before it parses).
    public static var defaults: Defaults {
        get { RpcCommandLine.current?.defaults ?? processDefaults.withLockedValue { $0 } }
        set { processDefaults.withLockedValue { $0 = newValue } }
    }
    private static let processDefaults = NIOLockedValueBox(Defaults())

    @Option(name: .customLong("system"), help: ArgumentHelp("System folder (read-only defaults)", valueName: "PATH"))
    var systemOption: String?

    @Option(name: .customLong("user"), help: ArgumentHelp("User folder (per-user defaults)", valueName: "PATH"))
    var userOption: String?

    @Option(name: [.customShort("w"), .customLong("workspace")],
            help: ArgumentHelp("Workspace folder (persisted state, logs)", valueName: "PATH"))
    var workspaceOption: String?

    @Option(name: [.customShort("p"), .customLong("port")], help: ArgumentHelp("RPC server listening port", valueName: "PORT"))
    var portOption: Int?

    @Option(name: [.customShort("c"), .customLong("config")], parsing: .singleValue,
            help: ArgumentHelp("Default value of a configuration item (repeatable)", valueName: "NAME=VALUE"))
    var configOptions: [String] = []

    @Flag(name: .customShort("V"), help: "Show the version and exit")
    var showVersion = false

    public init() {}

    public mutating func validate() throws {
        if showVersion {
            guard let v = RpcCliOptions.defaults.version else { throw ValidationError("no version to show (-V)") }
            throw CleanExit.message(v)
        }
        _ = try parsedConfig()
        if let p = portOption, !(0...65535).contains(p) {
            throw ValidationError("invalid port \(p): expected 0...65535 (0: any free port)")
        }
    }

    /// The listening port: `-p`, else the host's default.
    public var port: Int { portOption ?? RpcCliOptions.defaults.port }

    /// The folders: the options, else the host's defaults.
    public var folders: Folders {
        let d = RpcCliOptions.defaults
        return Folders(system: systemOption ?? d.system, user: userOption ?? d.user,
                       workspace: workspaceOption ?? d.workspace)
    }

    /// The `-c NAME=VALUE` pairs as a dictionary (the last of a repeated name wins).
    public var config: [String: String] { (try? parsedConfig()) ?? [:] }

    private func parsedConfig() throws -> [String: String] {
        var out: [String: String] = [:]
        for c in configOptions {
            guard let eq = c.firstIndex(of: "="), Config.isValidName(String(c[..<eq])) else {
                throw ValidationError("invalid --config value \"\(c)\": expected NAME=VALUE with a NAME of [a-z][a-z0-9-]*")
            }
            out[String(c[..<eq])] = String(c[c.index(after: eq)...])
        }
        return out
    }
}
