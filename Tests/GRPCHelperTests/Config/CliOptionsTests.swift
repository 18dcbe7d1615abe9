// The RPC command-line options group, embedded in a host command.
import ArgumentParser
import Testing
@testable import GRPCHelper

/// A host command as a program would write it.
private struct Host: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "my-srv", abstract: "My custom RPC server",
                                                    version: "1.0.0")
    @OptionGroup var rpc: RpcCliOptions
    @Flag(name: .long, help: "A host option") var verbose = false
}

@Suite(.serialized) struct CliOptionsTests {
    init() {
        RpcCliOptions.defaults = .init(port: 12345, system: "/etc/my_srv", user: "~/.local/my_srv",
                                       workspace: "my_srv_wks", version: "1.0.0")
    }

    @Test func defaults() throws {
        let h = try Host.parse([])
        #expect(h.rpc.port == 12345)
        #expect(h.rpc.folders == Folders(system: "/etc/my_srv", user: "~/.local/my_srv", workspace: "my_srv_wks"))
        #expect(h.rpc.config.isEmpty && !h.verbose)
    }

    @Test func everyOption() throws {
        let h = try Host.parse(["--system", "/s", "--user", "/u", "-w", "/w", "-p", "4000",
                                "-c", "a-b=1", "--config", "x=y=z", "-c", "empty=", "--verbose"])
        #expect(h.rpc.port == 4000)
        #expect(h.rpc.folders == Folders(system: "/s", user: "/u", workspace: "/w"))
        #expect(h.rpc.config == ["a-b": "1", "x": "y=z", "empty": ""])
        #expect(h.verbose)
        #expect(try Host.parse(["--workspace", "/w2"]).rpc.folders.workspace == "/w2")
    }

    @Test(arguments: [["-c", "novalue"], ["-c", "=v"], ["-c", "Foo=1"], ["-c", "my item=1"], ["-c", "9a=1"],
                      ["-p", "65536"], ["-p", "x"], ["--unknown"]])
    func malformedOptionsAreUsageErrors(_ args: [String]) {
        do {
            _ = try Host.parseAsRoot(args)
            Issue.record("accepted \(args)")
        } catch {
            #expect(Host.exitCode(for: error).rawValue == 64, "\(args)")  // EX_USAGE
            let text = Host.message(for: error)
            if args[0] == "-c" { #expect(text.contains(args[1]), "\(text)") }
        }
    }

    @Test func helpAndVersion() {
        let help = Host.helpMessage()
        for opt in ["--system", "--user", "-w, --workspace", "-p, --port", "-c, --config", "NAME=VALUE", "--verbose"] {
            #expect(help.contains(opt), "\(opt)")
        }
        for flag in ["-V", "--version"] {
            do {
                _ = try Host.parseAsRoot([flag])
                Issue.record("\(flag) did not exit")
            } catch {
                #expect(Host.exitCode(for: error).rawValue == 0, "\(flag)")
                #expect(Host.message(for: error) == "1.0.0", "\(flag)")
            }
        }
    }
}

/// A whole command line parsed without a host command of its own (the C ABI's way).
@Suite struct RpcCommandLineTests {
    private let defaults = RpcCliOptions.Defaults(port: 4321, system: "/etc/cl", user: nil, workspace: "wks",
                                                  version: "2.0.1")

    @Test func optionsDefaultsAndRest() {
        let r = RpcCommandLine.parse(["-p", "99", "host-arg", "-c", "a=1", "--flag", "-c", "a=2", "--user", "/u"],
                                     commandName: "cl", defaults: defaults)
        #expect(r.exitCode == nil && r.message.isEmpty)
        #expect(r.port == 99)
        #expect(r.folders == Folders(system: "/etc/cl", user: "/u", workspace: "wks"))
        #expect(r.config == ["a": "2"])
        #expect(r.rest == ["host-arg", "--flag"])
        let d = RpcCommandLine.parse([], commandName: "cl", defaults: defaults)
        #expect(d.port == 4321 && d.rest.isEmpty && d.config.isEmpty)
    }

    @Test func helpVersionAndUsageErrors() {
        let help = RpcCommandLine.parse(["--help"], commandName: "cl", description: "A described tool",
                                        defaults: defaults)
        #expect(help.exitCode == 0)
        #expect(help.message.contains("A described tool") && help.message.contains("-p, --port"))
        #expect(help.message.contains("cl"))
        for flag in ["-V", "--version"] {
            let v = RpcCommandLine.parse([flag], commandName: "cl", defaults: defaults)
            #expect(v.exitCode == 0 && v.message == "2.0.1", "\(flag)")
        }
        let bad = RpcCommandLine.parse(["-c", "Bad=1"], commandName: "cl", defaults: defaults)
        #expect(bad.exitCode == 64 && bad.message.contains("Bad=1"))
    }

    /// Each parse has its own defaults, also on several threads at once, and none leaks
    /// into the process's `RpcCliOptions.defaults`.
    @Test func concurrentParsesKeepTheirOwnDefaults() async {
        await withTaskGroup(of: Bool.self) { group in
            for i in 0..<64 {
                group.addTask {
                    let d = RpcCliOptions.Defaults(port: 1000 + i, workspace: "w\(i)", version: "v\(i)")
                    let r = RpcCommandLine.parse(i % 2 == 0 ? [] : ["-V"], commandName: "t\(i)", defaults: d)
                    return i % 2 == 0 ? (r.port == 1000 + i && r.folders.workspace == "w\(i)")
                                      : (r.exitCode == 0 && r.message == "v\(i)")
                }
            }
            for await ok in group { #expect(ok) }
        }
        // (Other suites may set the process's defaults meanwhile, never to these.)
        #expect(!(1000..<1064).contains(RpcCliOptions.defaults.port))
    }
}
