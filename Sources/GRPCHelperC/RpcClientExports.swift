// The managed client's C ABI (grpchelper/rpc.h): `@c @implementation` functions, thin
// translations onto GRPCHelper's RpcClient.
import CGRPCHelper
import GRPCHelper
import GRPCHelperCore
import SwiftProtobuf

// @unchecked Sendable: immutable (one `let` of a Sendable-by-lock client).
final class RpcClientBox: @unchecked Sendable {
    let client: RpcClient?
    init(client: RpcClient?) { self.client = client }

    func require() throws -> RpcClient {
        guard let c = client else { throw ExportError(GH_ERR_INVALID_STATE, "no client") }
        return c
    }

    func stub(_ name: UnsafePointer<CChar>?) throws -> RpcStub {
        let n = try string(name, "stub")
        guard let s = try require()[n] else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "unknown stub \"\(n)\"") }
        return s
    }
}

@c @implementation
public func gh_rpc_client_new(_ host: UnsafePointer<CChar>?, _ port: Int32, _ timeout: Double,
                              _ name: UnsafePointer<CChar>?, _ raiseErrors: Int32,
                              _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        guard (1...65535).contains(port) else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "invalid port \(port)") }
        let c = try RpcClient(host: try string(host, "host"), port: Int(port), timeout: timeout > 0 ? timeout : nil,
                              name: name.map { String(cString: $0) } ?? "", exception: raiseErrors != 0)
        out.pointee = makeHandle(RpcClientBox(client: c))
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_client_add_stub(_ c: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                   _ serviceName: UnsafePointer<CChar>?, _ apiVersion: UInt32) -> Int32 {
    boundary {
        let client = try borrow(c, RpcClientBox.self, "client").require()
        client.addStub(try string(name, "name"), serviceName: try string(serviceName, "service_name"),
                       apiVersion: apiVersion == 0 ? nil : apiVersion)
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_client_call(_ c: OpaquePointer?, _ stub: UnsafePointer<CChar>?, _ method: UnsafePointer<CChar>?,
                               _ req: UnsafePointer<UInt8>?, _ reqLen: Int, _ callTimeout: Double,
                               _ resp: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                               _ respLen: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let s = try borrow(c, RpcClientBox.self, "client").stub(stub)
        let bytes = try s.client.unary("/\(s.serviceName)/\(try string(method, "method"))", try bytes(req, reqLen),
                                       apiVersion: s.apiVersion, callTimeout: callTimeout > 0 ? callTimeout : nil)
        return try handOver(bytes, resp, respLen)
    }
}

@c @implementation
public func gh_rpc_client_call_metadata(_ c: OpaquePointer?, _ stub: UnsafePointer<CChar>?,
                                        _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        let s = try borrow(c, RpcClientBox.self, "client").stub(stub)
        out.pointee = makeHandle(MetadataBox(s.client.identity.metadata(apiVersion: s.apiVersion)))
        return GH_OK
    }
}

final class RpcResponsesBox {
    let responses: RpcResponses
    init(_ r: RpcResponses) { responses = r }
}

@c @implementation
public func gh_rpc_client_stream(_ c: OpaquePointer?, _ stub: UnsafePointer<CChar>?, _ method: UnsafePointer<CChar>?,
                                 _ req: UnsafePointer<UInt8>?, _ reqLen: Int, _ callTimeout: Double,
                                 _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        let s = try borrow(c, RpcClientBox.self, "client").stub(stub)
        let r = try s.client.serverStreaming("/\(s.serviceName)/\(try string(method, "method"))", try bytes(req, reqLen),
                                             apiVersion: s.apiVersion, callTimeout: callTimeout > 0 ? callTimeout : nil)
        out.pointee = makeHandle(RpcResponsesBox(r))
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_responses_next(_ r: OpaquePointer?, _ data: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                                  _ len: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let b = try borrow(r, RpcResponsesBox.self, "responses")
        guard let m = try b.responses.next() else { return 0 }
        _ = try handOver(m, data, len)
        return 1
    }
}

@c @implementation
public func gh_rpc_responses_free(_ r: OpaquePointer?) {
    guard let r = r else { return }
    (try? borrow(r, RpcResponsesBox.self, "responses"))?.responses.cancel()
    release(r, RpcResponsesBox.self)
}

@c @implementation
public func gh_rpc_result_code(_ data: UnsafePointer<UInt8>?, _ len: Int) -> Int32 {
    guard let b = try? bytes(data, len), let s = try? RpcResultStatus(serializedBytes: b) else { return 0 }
    return Int32(s.r.code.rawValue)
}

@c @implementation
public func gh_rpc_client_free(_ c: OpaquePointer?) {
    guard let c = c else { return }
    (try? borrow(c, RpcClientBox.self, "client"))?.client?.close()
    release(c, RpcClientBox.self)
}
