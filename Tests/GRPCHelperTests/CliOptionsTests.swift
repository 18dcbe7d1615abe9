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
