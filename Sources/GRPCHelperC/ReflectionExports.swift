// Server reflection's C ABI (grpchelper/server.h, grpchelper/rpc.h): grpc.reflection.v1
// and v1alpha on a core server (opt-in) and on every RPC server, through GRPCHelper's
// ReflectionService.
import GRPCHelperCore
import GRPCHelper
import SwiftProtobuf
import CGRPCHelper

private func enabledReflection(_ s: OpaquePointer?) throws -> ReflectionService {
    guard let r = try borrow(s, ServerBox.self, "server").reflection else {
        throw ExportError(GH_ERR_INVALID_STATE, "reflection is not enabled on this server (gh_server_enable_reflection)")
    }
    return r
}

/// The files of a serialized FileDescriptorSet, each with a name.
private func descriptorSet(_ data: UnsafePointer<UInt8>?, _ len: Int) throws -> [Google_Protobuf_FileDescriptorProto] {
    let files: [Google_Protobuf_FileDescriptorProto]
    do {
        files = try Google_Protobuf_FileDescriptorSet(serializedBytes: try bytes(data, len)).file
    } catch let e as ExportError {
        throw e
    } catch {
        throw ExportError(GH_ERR_INVALID_ARGUMENT, "not a serialized google.protobuf.FileDescriptorSet: \(error)")
    }
    guard files.allSatisfy({ !$0.name.isEmpty }) else {
        throw ExportError(GH_ERR_INVALID_ARGUMENT, "a file descriptor without a name")
    }
    return files
}

/// One serialized FileDescriptorProto, which must have a name.
private func fileDescriptor(_ data: UnsafePointer<UInt8>?, _ len: Int) throws -> Google_Protobuf_FileDescriptorProto {
    let f: Google_Protobuf_FileDescriptorProto
    do {
        f = try Google_Protobuf_FileDescriptorProto(serializedBytes: try bytes(data, len))
    } catch let e as ExportError {
        throw e
    } catch {
        throw ExportError(GH_ERR_INVALID_ARGUMENT, "not a serialized google.protobuf.FileDescriptorProto: \(error)")
    }
    guard !f.name.isEmpty else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "a file descriptor without a name") }
    return f
}

@c @implementation
public func gh_server_enable_reflection(_ s: OpaquePointer?) -> Int32 {
    boundary {
        let box = try borrow(s, ServerBox.self, "server")
        guard box.reflection == nil else { throw ExportError(GH_ERR_INVALID_STATE, "reflection is already enabled") }
        let r = ReflectionService()
        try r.add(to: box.server)
        box.reflection = r
        return GH_OK
    }
}

@c @implementation
public func gh_server_add_descriptor_set(_ s: OpaquePointer?, _ data: UnsafePointer<UInt8>?, _ len: Int) -> Int32 {
    boundary {
        try enabledReflection(s).addFileDescriptors(try descriptorSet(data, len))
        return GH_OK
    }
}

@c @implementation
public func gh_server_add_file_descriptor(_ s: OpaquePointer?, _ data: UnsafePointer<UInt8>?, _ len: Int) -> Int32 {
    boundary {
        try enabledReflection(s).addFileDescriptors([try fileDescriptor(data, len)])
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_service_add_descriptor_set(_ s: OpaquePointer?, _ data: UnsafePointer<UInt8>?, _ len: Int) -> Int32 {
    boundary {
        let box = try borrow(s, RpcServiceBox.self, "service")
        box.fileDescriptors += try descriptorSet(data, len)
        return GH_OK
    }
}

@c @implementation
public func gh_rpc_service_add_file_descriptor(_ s: OpaquePointer?, _ data: UnsafePointer<UInt8>?, _ len: Int) -> Int32 {
    boundary {
        let box = try borrow(s, RpcServiceBox.self, "service")
        box.fileDescriptors.append(try fileDescriptor(data, len))
        return GH_OK
    }
}
