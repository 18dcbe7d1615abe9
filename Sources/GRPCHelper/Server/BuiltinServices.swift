// The services every RpcServer serves: srv (RpcServerService), config (ConfigService on
// the server's config set, merged with its proxied servers': see ProxyForwarding) and log
// (LoggerService on its logs).
import Foundation
import GRPCHelperCore

/// The managers of the built-in services (their logs: RpcServer, ConfigManager,
/// LogsManager, as grpc-helper names them).
// @unchecked Sendable (restated, as Swift requires): no state beyond RpcManager's.
final class ServerManager: RpcManager, @unchecked Sendable {
    override var loggerName: String { "RpcServer" }
}

// @unchecked Sendable (restated): no state beyond RpcManager's.
final class ConfigManager: RpcManager, @unchecked Sendable {}

// @unchecked Sendable (restated): no state beyond RpcManager's.
final class LogsManager: RpcManager, @unchecked Sendable {}

// @unchecked Sendable: `server` is a weak reference set once, before any call is served.
final class BuiltinServices: @unchecked Sendable {
    /// Set once the server is built (its srv methods need it).
    weak var server: RpcServer?
    let descriptors: [RpcServiceDescriptor]

    init(logs: RpcLogs) {
        var list: [RpcServiceDescriptor] = []
        let holder = Weak()
        list.append(RpcServiceDescriptor(
            name: "srv", serviceName: "RpcServerService", title: "grpchelper", moduleVersion: GRPCHelperVersion.string,
            apiVersion: RpcServerApiVersion.self, manager: ServerManager(),
            methods: [
                .unary("info") { (r: RpcFilter) -> RpcMultiServiceInfo in
                    try holder.get().info(r)
                },
                .unary("shutdown") { (r: RpcShutdownRequest) -> RpcResultStatus in
                    try holder.get().shutdown(byRPC: r)
                    return RpcResultStatus()
                },
                .unary("proxy_register") { (r: RpcProxyRegisterRequest) -> RpcResultStatus in
                    try holder.get().proxyRegister(r)
                },
                .unary("proxy_forget") { (r: RpcFilter) -> RpcResultStatus in
                    try holder.get().proxyForget(r)
                },
            ]))
        list.append(RpcServiceDescriptor(
            name: "config", serviceName: "ConfigService", title: "grpchelper", moduleVersion: GRPCHelperVersion.string,
            apiVersion: RpcConfigApiVersion.self, manager: ConfigManager(),
            methods: [
                // With registered proxied servers, merged with theirs (see ProxyForwarding).
                .unary("get") { (r: RpcFilter) in try holder.get().configGet(r) },
                .unary("reset") { (r: RpcFilter) in try holder.get().configReset(r) },
                .unary("set") { (r: RpcConfigUpdate) in try holder.get().configSet(r) },
            ]))
        list.append(RpcServiceDescriptor(
            name: "log", serviceName: "LoggerService", title: "grpchelper", moduleVersion: GRPCHelperVersion.string,
            apiVersion: RpcLoggerApiVersion.self, manager: LogsManager(),
            methods: [
                .unary("get") { (r: RpcFilter) in try logs.get(r) },
                .unary("reset") { (r: RpcFilter) in try logs.reset(r) },
                .unary("set") { (r: RpcLoggerUpdate) in try logs.set(r) },
            ]))
        descriptors = list
        holder.services = self
    }

    /// The srv methods' way back to the server.
    // @unchecked Sendable: `services` is set once, before any call is served.
    private final class Weak: @unchecked Sendable {
        weak var services: BuiltinServices?
        func get() throws -> RpcServer {
            guard let s = services?.server else {
                throw RpcException("the RPC server is not running", code: .errorStateUnexpected)
            }
            return s
        }
    }
}
