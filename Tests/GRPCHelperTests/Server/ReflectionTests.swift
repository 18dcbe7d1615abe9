// Server reflection over real sockets, v1 and v1alpha: list_services (described and
// served), file_by_filename and file_containing_symbol with dependencies once per stream,
// symbols of every kind, extensions, errors as error_response, malformed requests, and the
// RpcServer's own services described by default.
import Foundation
import GRPCHelperCore
import SwiftProtobuf
import Testing
@testable import GRPCHelper

private typealias Request = Grpc_Reflection_V1_ServerReflectionRequest
private typealias Response = Grpc_Reflection_V1_ServerReflectionResponse

/// demo.proto: package demo, message Req (field text, nested enum Kind {A, B}), service
/// Echo (Say), importing grpc/health/v1/health.proto (Req.r is a HealthCheckRequest).
private func demoFile() -> Google_Protobuf_FileDescriptorProto {
    var f = Google_Protobuf_FileDescriptorProto()
    f.name = "demo/demo.proto"
    f.package = "demo"
    f.syntax = "proto3"
    f.dependency = ["grpc/health/v1/health.proto"]
    var req = Google_Protobuf_DescriptorProto()
    req.name = "Req"
    var text = Google_Protobuf_FieldDescriptorProto()
    text.name = "text"
    text.number = 1
    text.type = .string
    var r = Google_Protobuf_FieldDescriptorProto()
    r.name = "r"
    r.number = 2
    r.type = .message
    r.typeName = ".grpc.health.v1.HealthCheckRequest"
    req.field = [text, r]
    var kind = Google_Protobuf_EnumDescriptorProto()
    kind.name = "Kind"
    kind.value = ["A", "B"].enumerated().map { i, n in
        var v = Google_Protobuf_EnumValueDescriptorProto()
        v.name = n
        v.number = Int32(i)
        return v
    }
    req.enumType = [kind]
    f.messageType = [req]
    var say = Google_Protobuf_MethodDescriptorProto()
    say.name = "Say"
    say.inputType = ".demo.Req"
    say.outputType = ".demo.Req"
    var echo = Google_Protobuf_ServiceDescriptorProto()
    echo.name = "Echo"
    echo.method = [say]
    f.service = [echo]
    return f
}

/// ext.proto (proto2): message demo2.Base with extensions 100 and 7 (one declared in a
/// message scope).
private func extensionFile() -> Google_Protobuf_FileDescriptorProto {
    var f = Google_Protobuf_FileDescriptorProto()
    f.name = "demo/ext.proto"
    f.package = "demo2"
    var base = Google_Protobuf_DescriptorProto()
    base.name = "Base"
    var range = Google_Protobuf_DescriptorProto.ExtensionRange()
    range.start = 1
    range.end = 1000
    base.extensionRange = [range]
    var holder = Google_Protobuf_DescriptorProto()
    holder.name = "Holder"
    func ext(_ name: String, _ number: Int32) -> Google_Protobuf_FieldDescriptorProto {
        var x = Google_Protobuf_FieldDescriptorProto()
        x.name = name
        x.number = number
        x.label = .optional
        x.type = .int32
        x.extendee = ".demo2.Base"
        return x
    }
    holder.extension = [ext("inner", 7)]
    f.messageType = [base, holder]
    f.extension = [ext("outer", 100)]
    return f
}

/// A reflection stream: `ask` sends a request and waits for its answer.
private final class ReflectionStream {
    let call: ClientCall
    init(_ ch: GRPCChannel, version: String = "v1") {
        call = ch.makeCall("/grpc.reflection.\(version).ServerReflection/ServerReflectionInfo",
                           options: CallOptions(timeout: 30))
        call.start()
    }
    func ask(_ build: (inout Request) -> Void) throws -> Response {
        var r = Request()
        r.host = "localhost"
        build(&r)
        return try raw(r.serializedBytes())
    }
    func raw(_ bytes: [UInt8]) throws -> Response {
        try call.send(bytes)
        guard let answer = try call.receive() else { throw RPCError(.unknown, "the stream ended") }
        return try Response(serializedBytes: answer)
    }
    func end() -> Status {
        call.closeSend()
        while (try? call.receive()) ?? nil != nil {}
        return call.waitStatus()
    }
}

private func fileNames(_ r: Response) throws -> [String] {
    try r.fileDescriptorResponse.fileDescriptorProto.map {
        try Google_Protobuf_FileDescriptorProto(serializedBytes: $0).name
    }
}

private final class ReflectionServer {
    let server = Server()
    let reflection = ReflectionService()
    let port: Int
    init(health: Bool = false) throws {
        try server.register("/demo.Echo/Say", cardinality: .unary, handler: .blocking { call in
            try call.finish(.ok)
        })
        try reflection.addFileDescriptors([demoFile(), extensionFile()])
        try reflection.add(to: server)
        if health { try HealthService().add(to: server) }
        try server.addListener("127.0.0.1:0")
        try server.start()
        port = server.port()!
    }
    deinit { server.shutdown(grace: 0) }
}

@Suite struct ReflectionTests {
    @Test(arguments: ["v1", "v1alpha"])
    func listsAndResolvesWithDependenciesOncePerStream(_ version: String) throws {
        let t = try ReflectionServer()
        let ch = try GRPCChannel(target: "127.0.0.1:\(t.port)")
        defer { ch.close() }
        let s = ReflectionStream(ch, version: version)
        let list = try s.ask { $0.listServices = "" }
        #expect(list.validHost == "localhost" && list.originalRequest.listServices == "")
        // Described and served: demo.Echo and the reflection services (health is described
        // but not served here; the helper services are not described on a core server).
        #expect(list.listServicesResponse.service.map(\.name)
                == ["demo.Echo", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"])
        // The file, then its dependency; on the same stream the dependency goes once.
        #expect(try fileNames(s.ask { $0.fileContainingSymbol = "demo.Echo" })
                == ["demo/demo.proto", "grpc/health/v1/health.proto"])
        #expect(try fileNames(s.ask { $0.fileContainingSymbol = "demo.Echo.Say" }) == ["demo/demo.proto"])
        for symbol in ["demo.Req", "demo.Req.text", "demo.Req.Kind", "demo.Req.A", ".demo.Req"] {
            #expect(try fileNames(s.ask { $0.fileContainingSymbol = symbol }) == ["demo/demo.proto"], "\(symbol)")
        }
        #expect(try fileNames(s.ask { $0.fileByFilename = "grpc/health/v1/health.proto" }) == ["grpc/health/v1/health.proto"])
        // The helper services are not described on a core server.
        #expect(try s.ask { $0.fileContainingSymbol = "RpcServerService" }.errorResponse.errorCode == 5)
        // A new stream sends the dependencies again.
        let s2 = ReflectionStream(ch, version: version)
        #expect(try fileNames(s2.ask { $0.fileByFilename = "demo/demo.proto" })
                == ["demo/demo.proto", "grpc/health/v1/health.proto"])
        // The files come back as they were given.
        let demo = try Google_Protobuf_FileDescriptorProto(
            serializedBytes: try s2.ask { $0.fileContainingSymbol = "demo.Echo" }.fileDescriptorResponse.fileDescriptorProto[0])
        #expect(demo == demoFile())
        #expect(s.end().code == .ok && s2.end().code == .ok)
    }

    @Test func aClientThatDoesNotReadGetsEveryAnswerInOrderOnceItReads() throws {
        let t = try ReflectionServer()
        let ch = try GRPCChannel(target: "127.0.0.1:\(t.port)")
        defer { ch.close() }
        let s = ReflectionStream(ch)
        // Requests sent without reading: the answers (~3 MB) fill the stream's window and
        // the server's send buffer, which then leaves the later requests waiting.
        let files = ["demo/demo.proto", "grpc/health/v1/health.proto", "demo/ext.proto"]
        let n = 6000
        for i in 0..<n {
            var r = Request()
            r.fileByFilename = files[i % files.count]
            try s.call.send(r.serializedBytes())
        }
        s.call.closeSend()
        for i in 0..<n {
            guard let raw = try s.call.receive() else { Issue.record("the stream ended after \(i) answers"); return }
            let names = try fileNames(try Response(serializedBytes: raw))
            #expect(names.first == files[i % files.count], "answer \(i)")
        }
        #expect(try s.call.receive() == nil)
        #expect(s.call.waitStatus().code == .ok)
    }

    @Test func extensionsAndErrors() throws {
        let t = try ReflectionServer()
        let ch = try GRPCChannel(target: "127.0.0.1:\(t.port)")
        defer { ch.close() }
        let s = ReflectionStream(ch)
        let numbers = try s.ask { $0.allExtensionNumbersOfType = "demo2.Base" }
        #expect(numbers.allExtensionNumbersResponse.baseTypeName == "demo2.Base")
        #expect(numbers.allExtensionNumbersResponse.extensionNumber == [7, 100])
        #expect(try s.ask { $0.allExtensionNumbersOfType = "demo.Req" }.allExtensionNumbersResponse.extensionNumber == [])
        for n: Int32 in [7, 100] {
            let r = try s.ask {
                var x = Grpc_Reflection_V1_ExtensionRequest()
                x.containingType = "demo2.Base"
                x.extensionNumber = n
                $0.fileContainingExtension = x
            }
            #expect(try fileNames(r) == ["demo/ext.proto"])
        }
        #expect(try fileNames(s.ask { $0.fileContainingSymbol = "demo2.Holder.inner" }) == ["demo/ext.proto"])
        // Not found: an error_response, the stream goes on.
        let missing: [(String, (inout Request) -> Void)] = [
            ("symbol not found: demo.Nope", { $0.fileContainingSymbol = "demo.Nope" }),
            ("file not found: nope.proto", { $0.fileByFilename = "nope.proto" }),
            ("type not found: demo.Nope", { $0.allExtensionNumbersOfType = "demo.Nope" }),
            ("extension 5 of demo2.Base not found", {
                var x = Grpc_Reflection_V1_ExtensionRequest()
                x.containingType = "demo2.Base"
                x.extensionNumber = 5
                $0.fileContainingExtension = x
            }),
        ]
        for (message, build) in missing {
            let r = try s.ask(build)
            #expect(r.errorResponse.errorCode == 5 && r.errorResponse.errorMessage == message)
        }
        // A request asking for nothing, and bytes that are no request: INVALID_ARGUMENT.
        #expect(try s.ask { _ in }.errorResponse.errorCode == 3)
        let bad = try s.raw([0x1a, 0x09, 0x61])
        #expect(bad.errorResponse.errorCode == 3 && bad.errorResponse.errorMessage.contains("ServerReflectionRequest"))
        #expect(try fileNames(s.ask { $0.fileContainingSymbol = "demo.Echo" }).first == "demo/demo.proto")
        #expect(s.end().code == .ok)
    }

    @Test func healthIsListedWhenServed() throws {
        let t = try ReflectionServer(health: true)
        let ch = try GRPCChannel(target: "127.0.0.1:\(t.port)")
        defer { ch.close() }
        let s = ReflectionStream(ch)
        #expect(try s.ask { $0.listServices = "*" }.listServicesResponse.service.map(\.name).contains("grpc.health.v1.Health"))
        #expect(try fileNames(s.ask { $0.fileContainingSymbol = "grpc.health.v1.HealthCheckResponse.SERVING" })
                == ["grpc/health/v1/health.proto"])
        #expect(s.end().code == .ok)
    }

    @Test func badDescriptorsAreRefused() throws {
        let r = ReflectionService()
        #expect(throws: RuntimeError.self) { try r.addFileDescriptorSet([0x0a, 0x05, 0x01]) }
        #expect(throws: RuntimeError.self) { try r.addSerializedFileDescriptor([0xff]) }
        #expect(throws: RuntimeError.self) { try r.addFileDescriptors([Google_Protobuf_FileDescriptorProto()]) }
        // A name given twice: the first file stays.
        var other = demoFile()
        other.package = "changed"
        try r.addFileDescriptors([demoFile(), other])
        #expect(r.services.contains("demo.Echo") && !r.services.contains("changed.Echo"))
    }

    @Test func rpcServerDescribesItsServices() throws {
        let folders = TempFolders()
        var d = RpcServiceDescriptor(name: "demo", serviceName: "demo.Echo", version: "demo:1",
                                     supportedApiVersion: 1, currentApiVersion: 1, manager: RpcManager(),
                                     methods: [.unary("Say") { (r: RpcFilter) -> RpcResultStatus in RpcResultStatus() }])
        d.fileDescriptors = [demoFile()]
        let server = try RpcServer(port: 0, descriptors: [d], folders: folders.folders, withEvents: true,
                                   withDebugSignal: false)
        defer { server.shutdown() }
        let ch = try GRPCChannel(target: "127.0.0.1:\(server.port)")
        defer { ch.close() }
        let s = ReflectionStream(ch)
        let names = try s.ask { $0.listServices = "" }.listServicesResponse.service.map(\.name)
        #expect(names == ["ConfigService", "EventService", "LoggerService", "RpcServerService", "demo.Echo",
                          "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                          "grpc.reflection.v1alpha.ServerReflection"])
        for n in names {
            let r = try s.ask { $0.fileContainingSymbol = n }
            #expect(!r.fileDescriptorResponse.fileDescriptorProto.isEmpty, "\(n)")
        }
        #expect(try fileNames(s.ask { $0.fileContainingSymbol = "ConfigService.get" }).first == "grpchelper/api/config.proto")
        #expect(s.end().code == .ok)
    }
}
