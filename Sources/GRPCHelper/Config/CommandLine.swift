// A host's whole command line parsed for the RPC options (grpc-helper's RpcCliParser
// on argv): for hosts that do not declare their own ArgumentParser command (the C ABI's
// gh_cli_parse, bindings). Everything that is not an RPC option is kept for the host.
import ArgumentParser

public struct RpcCommandLine: Sendable {
    /// `-p`, else the default (0...65535; 0 asks for any free port).
    public var port: Int
    /// The folder options, else the defaults.
    public var folders: Folders
    /// The `-c NAME=VALUE` values (the last of a repeated name wins).
    public var config: [String: String]
    /// The arguments that are not RPC options, in order.
    public var rest: [String]
    /// nil when the program goes on; else it prints `message` (to stdout for 0: help,
    /// version; to stderr otherwise: a usage error, named in the message) and exits with it.
    public var exitCode: Int32?
    public var message: String

    /// Parses `arguments` (without the program name) with `defaults`, for a program named
    /// `commandName` whose help shows `description` and whose `-V`/`--version` show
    /// `defaults.version`. Thread-safe: each parse has its own defaults.
    public static func parse(_ arguments: [String], commandName: String, description: String = "",
                             defaults: RpcCliOptions.Defaults) -> RpcCommandLine {
        let context = Context(commandName: commandName, description: description, defaults: defaults)
        return $current.withValue(context) {
            do {
                let cmd = try HostCommand.parse(arguments)
                return RpcCommandLine(port: cmd.rpc.port, folders: cmd.rpc.folders, config: cmd.rpc.config,
                                      rest: cmd.rest, exitCode: nil, message: "")
            } catch {
                return RpcCommandLine(port: defaults.port, folders: Folders(), config: [:], rest: [],
                                      exitCode: HostCommand.exitCode(for: error).rawValue,
                                      message: HostCommand.fullMessage(for: error))
            }
        }
    }

    struct Context: Sendable {
        let commandName: String
        let description: String
        let defaults: RpcCliOptions.Defaults
    }

    /// The parse running on this thread (ArgumentParser reads its command's configuration
    /// and the options' defaults from statics: these read it from here).
    @TaskLocal static var current: Context?

    /// The RPC options, and everything else kept for the host.
    private struct HostCommand: ParsableCommand {
        static var configuration: CommandConfiguration {
            let c = RpcCommandLine.current
            return CommandConfiguration(commandName: c?.commandName, abstract: c?.description ?? "",
                                        version: c?.defaults.version ?? "")
        }
        @OptionGroup var rpc: RpcCliOptions
        @Argument(parsing: .allUnrecognized, help: .hidden) var rest: [String] = []
    }
}
