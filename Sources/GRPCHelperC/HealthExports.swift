// Health checking's C ABI (grpchelper/server.h, grpchelper/rpc.h): grpc.health.v1.Health
// on a core server (opt-in) and on every RPC server, through GRPCHelper's HealthService.
import GRPCHelperCore
import GRPCHelper
import CGRPCHelper

/// A status the host may set.
private func settable(_ status: gh_health_status) throws -> HealthStatus {
    switch status {
    case GH_HEALTH_UNKNOWN: return .unknown
    case GH_HEALTH_SERVING: return .serving
    case GH_HEALTH_NOT_SERVING: return .notServing
    default:
        throw ExportError(GH_ERR_INVALID_ARGUMENT,
                          "health status \(status.rawValue) cannot be set (UNKNOWN, SERVING or NOT_SERVING)")
    }
}

private func enabledHealth(_ s: OpaquePointer?) throws -> HealthService {
    guard let h = try borrow(s, ServerBox.self, "server").health else {
        throw ExportError(GH_ERR_INVALID_STATE, "health checking is not enabled on this server (gh_server_enable_health)")
    }
    return h
}

private func write(_ h: HealthService, _ service: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<gh_health_status>?) throws {
    guard let out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "status is NULL") }
    let s = h.status(for: try string(service, "service"))
    out.pointee = gh_health_status(rawValue: UInt32((s ?? .serviceUnknown).rawValue))
}

@c @implementation
public func gh_server_enable_health(_ s: OpaquePointer?) -> Int32 {
    boundary {
        let box = try borrow(s, ServerBox.self, "server")
        guard box.health == nil else { throw ExportError(GH_ERR_INVALID_STATE, "health checking is already enabled") }
        let h = HealthService()
        try h.add(to: box.server)
        box.health = h
        return GH_OK
    }
}

@c @implementation
public func gh_server_set_health(_ s: OpaquePointer?, _ service: UnsafePointer<CChar>?, _ status: gh_health_status) -> Int32 {
    boundary {
        let h = try enabledHealth(s)
        h.setStatus(try settable(status), for: try string(service, "service"))
        return GH_OK
    }
}

@c @implementation
public func gh_server_clear_health(_ s: OpaquePointer?, _ service: UnsafePointer<CChar>?) -> Int32 {
    boundary {
        let h = try enabledHealth(s)
        h.clearStatus(for: try string(service, "service"))
        return GH_OK
    }
}

@c @implementation
public func gh_server_get_health(_ s: OpaquePointer?, _ service: UnsafePointer<CChar>?,
                                 _ status: UnsafeMutablePointer<gh_health_status>?) -> Int32 {
    boundary {
        try write(try enabledHealth(s), service, status)
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_server_set_health(_ s: OpaquePointer?, _ service: UnsafePointer<CChar>?,
                                     _ status: gh_health_status) -> Int32 {
    boundary {
        let srv = try borrow(s, RpcServerBox.self, "server").require()
        srv.health.setStatus(try settable(status), for: try string(service, "service"))
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_server_clear_health(_ s: OpaquePointer?, _ service: UnsafePointer<CChar>?) -> Int32 {
    boundary {
        let srv = try borrow(s, RpcServerBox.self, "server").require()
        srv.health.clearStatus(for: try string(service, "service"))
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_server_get_health(_ s: OpaquePointer?, _ service: UnsafePointer<CChar>?,
                                     _ status: UnsafeMutablePointer<gh_health_status>?) -> Int32 {
    boundary {
        try write(try borrow(s, RpcServerBox.self, "server").require().health, service, status)
        return GH_OK
    }
}
