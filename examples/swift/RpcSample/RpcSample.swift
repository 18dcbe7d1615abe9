// grpc-helper's RpcServer and RpcClient usage examples in Swift, on the sample service
// of Protos/sample/my.proto (generated code in Generated/, by Protos/generate.sh).
//
//   rpc-sample serve -p 12345 -w /tmp/wks      # serves until srv.shutdown or Ctrl-C
//   rpc-sample call -p 12345 --name a --value 1 # update, then list
import ArgumentParser
import Foundation
import GRPCHelper
import SwiftProtobuf

/// The service's methods as a Swift protocol (one async method per rpc).
protocol MyServiceProvider: RpcManager {
    func update(_ request: MyConfig) async throws -> MyStatus
    func list(_ request: RpcEmpty) async throws -> MyStatus
}

extension MyServiceProvider {
    /// The descriptor serving this provider as MyService, "my" for clients; described
    /// for reflection by my.proto's files (Generated/MyDescriptors.swift).
    var descriptor: RpcServiceDescriptor {
        var d = RpcServiceDescriptor(name: "my", serviceName: "MyService", title: "rpc-sample", moduleVersion: "1.0.0",
                                     apiVersion: MyApiVersion.self, manager: self,
                                     methods: [.unary("update") { try await self.update($0) },
                                               .unary("list") { try await self.list($0) }])
        if let data = Data(base64Encoded: MyDescriptors.fileDescriptorSetBase64, options: .ignoreUnknownCharacters),
           let set = try? Google_Protobuf_FileDescriptorSet(serializedBytes: data) {
            d.fileDescriptors = set.file
        }
        return d
    }
}

extension MyStatus: RpcResultCarrying {}

/// The sample manager: items kept in memory; an empty name is refused.
final class MySampleManager: RpcManager, MyServiceProvider, @unchecked Sendable {
    private var items: [String: String] = [:]

    override func load() throws {
        // The auto-client reaches every service of this server.
        let info = try client!["srv"]!.call("info", RpcFilter(), as: RpcMultiServiceInfo.self)
        logger.info("serving \(info.items.map(\.name))")
    }

    func update(_ request: MyConfig) async throws -> MyStatus {
        guard !request.name.isEmpty else { throw RpcException("empty name", code: .errorParamMissing) }
        lock.withLock { items[request.name] = request.value }
        logger.info("\(request.name) = \(request.value)")
        return try await list(RpcEmpty())
    }

    func list(_ request: RpcEmpty) async throws -> MyStatus {
        var s = MyStatus()
        s.items = lock.withLock {
            items.sorted { $0.key < $1.key }.map { k, v in
                var c = MyConfig()
                c.name = k
                c.value = v
                return c
            }
        }
        return s
    }
}

@main
struct RpcSample: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rpc-sample", abstract: "RpcServer / RpcClient sample",
                                                    version: "1.0.0", subcommands: [Serve.self, Call.self])

    struct Serve: ParsableCommand {
        @OptionGroup var rpc: RpcCliOptions

        func run() throws {
            do {
                let server = try RpcServer(port: rpc.port, descriptors: [MySampleManager().descriptor],
                                           folders: rpc.folders, cliConfig: rpc.config)
                server.handleExitSignals()
                print("serving on port \(server.port)")
                fflush(nil)
                // Serves in its own threads until srv.shutdown or a signal.
                server.waitShutdown()
            } catch let e as RpcException {
                print("error \(e.code.rawValue): \(e.message)")
                throw ExitCode(1)
            }
        }
    }

    struct Call: ParsableCommand {
        @Option(name: .shortAndLong) var port = 54321
        @Option var host = "127.0.0.1"
        @Option var name = ""
        @Option var value = ""
        @Flag(help: "Ask the server to shut down afterwards") var shutdown = false

        func run() throws {
            let c = try RpcClient(host: host, port: port, timeout: 10, name: "rpc-sample",
                                  stubs: ["my": ("MyService", UInt32(MyApiVersion.myApiCurrent.rawValue)),
                                          "srv": ("RpcServerService", 1)])
            do {
                var config = MyConfig()
                config.name = name
                config.value = value
                let s: MyStatus = try c["my"]!.call("update", config)
                print(s.items.map { "\($0.name)=\($0.value)" }.joined(separator: " "))
                if shutdown {
                    var req = RpcShutdownRequest()
                    req.timeout = -1
                    _ = try c["srv"]!.call("shutdown", req, as: RpcResultStatus.self)
                }
            } catch let e as RpcException {
                print("error \(e.code.rawValue): \(e.message)")
                throw ExitCode(1)
            }
        }
    }
}
