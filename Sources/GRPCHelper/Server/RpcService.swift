// Managed services (grpc-helper's RpcServiceDescriptor and servicer methods): a service's
// methods with their handlers, the versions of its API, the manager behind it.
import Foundation
import GRPCHelperCore
import SwiftProtobuf

/// A method handler of a managed service, on the core's call. The server around it checks
/// the API version, tracks the call and turns what it throws into the method's error
/// response (`Result` in field 1, status OK); an `RPCError` thrown stays a gRPC status.
public enum RpcMethodBody: Sendable {
    /// Runs on the server's worker pool (`rpc-max-workers` threads); may block.
    case blocking(@Sendable (ServerCall) throws -> Void)
    /// Runs as a Swift task.
    case async(@Sendable (ServerCall) async throws -> Void)
}

/// One method of a managed service.
public struct RpcMethod: Sendable {
    /// The method name as in the .proto ("get"); its path is "/<service>/<name>".
    public let name: String
    public let cardinality: RPCCardinality
    /// nil: declared by the service, not implemented by its manager (UNIMPLEMENTED).
    public let body: RpcMethodBody?

    public init(name: String, cardinality: RPCCardinality, body: RpcMethodBody?) {
        self.name = name
        self.cardinality = cardinality
        self.body = body
    }

    /// A method the service declares and its manager does not implement.
    public static func unimplemented(_ name: String, _ cardinality: RPCCardinality) -> RpcMethod {
        RpcMethod(name: name, cardinality: cardinality, body: nil)
    }
}

/// The response messages of a typed streaming method.
public struct RpcResponseStream<Response: SwiftProtobuf.Message>: Sendable {
    let call: ServerCall
    public func send(_ response: Response) async throws {
        try await call.send(try response.serializedBytes())
    }
}

/// The request messages of a typed client- or bidi-streaming method.
public struct RpcRequestStream<Request: SwiftProtobuf.Message>: Sendable {
    let call: ServerCall
    /// The next request; nil at the end of the stream.
    public func next() async throws -> Request? {
        guard let bytes = try await call.receive() else { return nil }
        return try decodeRequest(Request.self, bytes)
    }
}

/// As grpcio: a request that does not decode ends the call INTERNAL.
func decodeRequest<M: SwiftProtobuf.Message>(_ type: M.Type, _ bytes: [UInt8]) throws -> M {
    do { return try M(serializedBytes: bytes) } catch {
        throw RPCError(.internalError, "Exception deserializing request!")
    }
}

private func singleRequest<M: SwiftProtobuf.Message>(_ type: M.Type, _ call: ServerCall) async throws -> M {
    guard let bytes = try await call.receive() else { throw RPCError(.internalError, "no request message") }
    return try decodeRequest(M.self, bytes)
}

// Typed methods over SwiftProtobuf messages (what a Swift manager implements).
extension RpcMethod {
    public static func unary<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ name: String, _ body: @escaping @Sendable (Request) async throws -> Response) -> RpcMethod {
        RpcMethod(name: name, cardinality: .unary, body: .async { call in
            let response = try await body(try await singleRequest(Request.self, call))
            try await call.send(try response.serializedBytes())
        })
    }

    /// `unary` whose body also gets the call (its peer, metadata, ...).
    public static func unaryCall<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ name: String, _ body: @escaping @Sendable (Request, ServerCall) async throws -> Response) -> RpcMethod {
        RpcMethod(name: name, cardinality: .unary, body: .async { call in
            let response = try await body(try await singleRequest(Request.self, call), call)
            try await call.send(try response.serializedBytes())
        })
    }

    public static func serverStreaming<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ name: String,
        _ body: @escaping @Sendable (Request, RpcResponseStream<Response>) async throws -> Void) -> RpcMethod {
        RpcMethod(name: name, cardinality: .serverStreaming, body: .async { call in
            try await body(try await singleRequest(Request.self, call), RpcResponseStream(call: call))
        })
    }

    public static func clientStreaming<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ name: String, _ body: @escaping @Sendable (RpcRequestStream<Request>) async throws -> Response) -> RpcMethod {
        RpcMethod(name: name, cardinality: .clientStreaming, body: .async { call in
            let response = try await body(RpcRequestStream(call: call))
            try await call.send(try response.serializedBytes())
        })
    }

    public static func bidiStreaming<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ name: String,
        _ body: @escaping @Sendable (RpcRequestStream<Request>, RpcResponseStream<Response>) async throws -> Void)
        -> RpcMethod {
        RpcMethod(name: name, cardinality: .bidiStreaming, body: .async { call in
            try await body(RpcRequestStream(call: call), RpcResponseStream(call: call))
        })
    }
}

/// A service served by an RpcServer (grpc-helper's RpcServiceDescriptor).
public struct RpcServiceDescriptor: Sendable {
    /// The name clients and `srv.info` know it by ("srv", "config", "my").
    public let name: String
    /// The gRPC service name of its .proto ("ConfigService"; with a package,
    /// "pkg.MyService"): the methods' paths are "/<serviceName>/<method>".
    public let serviceName: String
    /// "title:version" of the module that provides it (ServiceInfo.version).
    public let version: String
    /// The lowest and highest non-zero values of its API version enum.
    public let supportedApiVersion: UInt32
    public let currentApiVersion: UInt32
    /// The manager (lifecycle hooks, logger, client, folders); nil for a proxied service.
    public let manager: RpcManager?
    public let methods: [RpcMethod]
    public let isProxy: Bool
    /// The .proto files that declare the service and its messages, with what they import,
    /// for the server's reflection (SwiftProtobuf generates no descriptors: take them from
    /// `protoc --descriptor_set_out=F --include_imports`, e.g. with
    /// `Google_Protobuf_FileDescriptorSet(serializedBytes:)`). Empty: not described.
    public var fileDescriptors: [Google_Protobuf_FileDescriptorProto] = []

    public init(name: String, serviceName: String, version: String, supportedApiVersion: UInt32,
                currentApiVersion: UInt32, manager: RpcManager?, methods: [RpcMethod], isProxy: Bool = false) {
        self.name = name
        self.serviceName = serviceName
        self.version = version
        self.supportedApiVersion = supportedApiVersion
        self.currentApiVersion = currentApiVersion
        self.manager = manager
        self.methods = methods
        self.isProxy = isProxy
    }

    /// Versions from the API version enum, as grpc-helper reads them: 0 ignored, the
    /// lowest value is the supported version, the highest the current one.
    public init<V: SwiftProtobuf.Enum & CaseIterable>(
        name: String, serviceName: String, title: String, moduleVersion: String, apiVersion: V.Type,
        manager: RpcManager?, methods: [RpcMethod], isProxy: Bool = false) {
        let versions = V.allCases.map(\.rawValue).filter { $0 != 0 }
        self.init(name: name, serviceName: serviceName, version: "\(title):\(moduleVersion)",
                  supportedApiVersion: UInt32(versions.min() ?? 0), currentApiVersion: UInt32(versions.max() ?? 0),
                  manager: manager, methods: methods, isProxy: isProxy)
    }

    /// The service as `srv.info` reports it.
    public var info: RpcServiceInfo {
        var i = RpcServiceInfo()
        i.name = name
        i.version = version
        i.currentApiVersion = currentApiVersion
        i.supportedApiVersion = supportedApiVersion
        i.isProxy = isProxy
        return i
    }
}
