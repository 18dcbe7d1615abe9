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
                .unaryCall("shutdown") { (r: RpcShutdownRequest, call) -> RpcResultStatus in
                    try holder.admin(call, "srv.shutdown").shutdown(byRPC: r)
                    return RpcResultStatus()
                },
                .unaryCall("proxy_register") { (r: RpcProxyRegisterRequest, call) -> RpcResultStatus in
                    try holder.admin(call, "srv.proxy_register").proxyRegister(r)
                },
                .unaryCall("proxy_forget") { (r: RpcFilter, call) -> RpcResultStatus in
                    try holder.admin(call, "srv.proxy_forget").proxyForget(r)
                },
            ]))
        list.append(RpcServiceDescriptor(
            name: "config", serviceName: "ConfigService", title: "grpchelper", moduleVersion: GRPCHelperVersion.string,
            apiVersion: RpcConfigApiVersion.self, manager: ConfigManager(),
            methods: [
                // With registered proxied servers, merged with theirs (see ProxyForwarding).
                .unary("get") { (r: RpcFilter) in try holder.get().configGet(r) },
                .unaryCall("reset") { (r: RpcFilter, call) in try holder.admin(call, "config.reset").configReset(r) },
                .unaryCall("set") { (r: RpcConfigUpdate, call) in try holder.admin(call, "config.set").configSet(r) },
            ]))
        list.append(RpcServiceDescriptor(
            name: "log", serviceName: "LoggerService", title: "grpchelper", moduleVersion: GRPCHelperVersion.string,
            apiVersion: RpcLoggerApiVersion.self, manager: LogsManager(),
            methods: [
                .unary("get") { (r: RpcFilter) in try logs.get(r) },
                .unaryCall("reset") { (r: RpcFilter, call) in
                    _ = try holder.admin(call, "log.reset")
                    return try logs.reset(r)
                },
                .unaryCall("set") { (r: RpcLoggerUpdate, call) in
                    _ = try holder.admin(call, "log.set")
                    return try logs.set(r)
                },
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
        /// The server, once `call` may administer it (see `RpcServer.checkAdmin`).
        func admin(_ call: ServerCall, _ operation: String) throws -> RpcServer {
            let s = try get()
            try s.checkAdmin(call, operation)
            return s
        }
    }
}

/// Whether a peer ("ipv4:A:P", "ipv6:[A]:P", "unix:PATH", as `ServerCall.peer` names it)
/// is on this machine by construction: a unix socket, or a loopback address (127.0.0.0/8,
/// ::1, or 127.x mapped into IPv6).
func isLocalPeer(_ peer: String) -> Bool {
    if peer.hasPrefix("unix:") { return true }
    if peer.hasPrefix("ipv4:") { return peer.dropFirst(5).hasPrefix("127.") }
    if peer.hasPrefix("ipv6:[") {
        let rest = peer.dropFirst(6)
        guard let close = rest.firstIndex(of: "]") else { return false }
        let address = rest[..<close].lowercased()
        return address == "::1" || address.hasPrefix("::ffff:127.")
    }
    return false
}
