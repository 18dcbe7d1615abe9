// gRPC server reflection (grpc/grpc doc/server-reflection.md) for any core Server:
// grpc.reflection.v1 and v1alpha ServerReflectionInfo, answering from the file
// descriptors the host gives (SwiftProtobuf's FileDescriptorProto values, serialized
// FileDescriptorSets as `protoc --descriptor_set_out --include_imports` writes them, or
// serialized FileDescriptorProtos as Python's `_pb2` modules carry them) plus the library's
// own services. The stream runs on the connection's event loop (`ServerHandler.eventLoop`):
// it holds no worker thread.
import Foundation
import GRPCHelperCore
import NIOConcurrencyHelpers
import SwiftProtobuf

/// The reflection service of one server. Thread-safe: descriptors may be added while it
/// serves.
// @unchecked Sendable: mutable state guarded by `lock`.
public final class ReflectionService: @unchecked Sendable {
    public static let serviceNames = ["grpc.reflection.v1.ServerReflection",
                                      "grpc.reflection.v1alpha.ServerReflection"]

    private let lock = NIOLock()
    /// Serialized FileDescriptorProto by file name (the first one given for a name wins).
    private var files: [String: [UInt8]] = [:]
    /// Each file's dependencies, in declaration order.
    private var dependencies: [String: [String]] = [:]
    /// Fully qualified symbol → file name: services, methods, messages, enums, enum
    /// values, fields, extensions.
    private var symbols: [String: String] = [:]
    /// The services declared in the files.
    private var described: Set<String> = []
    /// Fully qualified message type → extension number → file name.
    private var extensions: [String: [Int32: String]] = [:]
    private weak var server: Server?

    /// With the standard services described (health; reflection v1 and v1alpha). An
    /// RpcServer's also describes the helper services (`srv`, `config`, `log`, `events`:
    /// `describeHelperServices()`).
    public init() {
        try! addFileDescriptors(Self.libraryFiles.filter { $0.name.hasPrefix("grpc/") })
    }

    /// Describes the helper services (their files declare root-level messages such as
    /// `Empty` and `Result`: only servers that serve them describe them).
    func describeHelperServices() {
        try! addFileDescriptors(Self.libraryFiles.filter { $0.name.hasPrefix("grpchelper/") })
    }

    /// The library's own files: the FileDescriptorSet Protos/generate.sh generated.
    private static let libraryFiles: [Google_Protobuf_FileDescriptorProto] = {
        guard let data = Data(base64Encoded: LibraryDescriptors.fileDescriptorSetBase64, options: .ignoreUnknownCharacters),
              let set = try? Google_Protobuf_FileDescriptorSet(serializedBytes: [UInt8](data)) else {
            preconditionFailure("LibraryDescriptors.swift does not hold a FileDescriptorSet: run Protos/generate.sh")
        }
        return set.file
    }()

    /// Registers ServerReflectionInfo of v1 and v1alpha on `server` (before it starts);
    /// the server keeps the service. Once per service object.
    public func add(to server: Server) throws {
        try lock.withLock {
            guard self.server == nil else {
                throw RuntimeError(.invalidState, "the reflection service is already added to a server")
            }
            self.server = server
        }
        for name in Self.serviceNames {
            try server.register("/\(name)/ServerReflectionInfo", cardinality: .bidiStreaming,
                                handler: .eventLoop { call in self.serve(call) })
        }
    }

    /// Adds the files of a serialized google.protobuf.FileDescriptorSet (what
    /// `protoc --descriptor_set_out=F --include_imports` writes). Throws when it does not
    /// parse (nothing is added then).
    public func addFileDescriptorSet(_ bytes: [UInt8]) throws {
        let set: Google_Protobuf_FileDescriptorSet
        do {
            set = try Google_Protobuf_FileDescriptorSet(serializedBytes: bytes)
        } catch {
            throw RuntimeError(.invalidArgument, "not a serialized google.protobuf.FileDescriptorSet: \(error)")
        }
        try addFileDescriptors(set.file)
    }

    /// Adds one serialized google.protobuf.FileDescriptorProto (what a Python `_pb2`
    /// module's `DESCRIPTOR.serialized_pb` holds).
    public func addSerializedFileDescriptor(_ bytes: [UInt8]) throws {
        let file: Google_Protobuf_FileDescriptorProto
        do {
            file = try Google_Protobuf_FileDescriptorProto(serializedBytes: bytes)
        } catch {
            throw RuntimeError(.invalidArgument, "not a serialized google.protobuf.FileDescriptorProto: \(error)")
        }
        try addFileDescriptors([file])
    }

    /// Adds files. A file without a name is refused; a file whose name is known already
    /// is skipped (the first one given stays), and so is a symbol declared already by
    /// another file (lookups find the first).
    public func addFileDescriptors(_ list: [Google_Protobuf_FileDescriptorProto]) throws {
        for f in list where f.name.isEmpty {
            throw RuntimeError(.invalidArgument, "a file descriptor without a name")
        }
        var prepared: [(Google_Protobuf_FileDescriptorProto, [UInt8])] = []
        for f in list { prepared.append((f, try f.serializedBytes())) }
        lock.withLock {
            for (f, bytes) in prepared where files[f.name] == nil {
                index(f, bytes)
            }
        }
    }

    /// The services it describes that the server serves (all it describes before the
    /// server is known), sorted.
    public var services: [String] {
        let served = server.map { Set($0.registeredServices) }
        return lock.withLock {
            described.filter { served?.contains($0) ?? true }.sorted()
        }
    }

    // MARK: index

    private func index(_ f: Google_Protobuf_FileDescriptorProto, _ bytes: [UInt8]) {
        let file = f.name
        files[file] = bytes
        dependencies[file] = f.dependency
        let prefix = f.package.isEmpty ? "" : f.package + "."
        func add(_ name: String) { if symbols[name] == nil { symbols[name] = file } }
        func addEnum(_ e: Google_Protobuf_EnumDescriptorProto, scope: String) {
            add(scope + e.name)
            for v in e.value { add(scope + v.name) }  // enum values are siblings of their enum
        }
        func addExtension(_ x: Google_Protobuf_FieldDescriptorProto, scope: String) {
            add(scope + x.name)
            let extendee = x.extendee.hasPrefix(".") ? String(x.extendee.dropFirst()) : x.extendee
            extensions[extendee, default: [:]][x.number] = file
        }
        func addMessage(_ m: Google_Protobuf_DescriptorProto, scope: String) {
            let name = scope + m.name
            add(name)
            for field in m.field { add(name + "." + field.name) }
            for o in m.oneofDecl { add(name + "." + o.name) }
            for n in m.nestedType { addMessage(n, scope: name + ".") }
            for e in m.enumType { addEnum(e, scope: name + ".") }
            for x in m.extension { addExtension(x, scope: name + ".") }
        }
        for m in f.messageType { addMessage(m, scope: prefix) }
        for e in f.enumType { addEnum(e, scope: prefix) }
        for x in f.extension { addExtension(x, scope: prefix) }
        for s in f.service {
            let name = prefix + s.name
            add(name)
            described.insert(name)
            for m in s.method { add(name + "." + m.name) }
        }
    }

    // MARK: serving

    /// One stream, on its event loop: each request answered in order; the files sent on
    /// it are remembered (a file's dependencies go once per stream). When the send buffer
    /// is full (the client is not reading) the requests that still arrive (within the
    /// stream's window) wait, unanswered, until it has room: what a stream holds is
    /// bounded by its window and one send buffer.
    private func serve(_ call: ServerCall) {
        let stream = StreamState()
        call.receiveInline(onMessage: { bytes in
            if stream.paused {
                stream.waiting.append(bytes)
            } else {
                self.process(bytes, call, stream)
            }
        }, onEnd: {
            stream.ended = true
            if !stream.paused && !call.isCancelled { try? call.finish(.ok) }
        })
    }

    /// Event loop: answers one request; pauses the stream when its send buffer is full.
    private func process(_ bytes: [UInt8], _ call: ServerCall, _ stream: StreamState) {
        let response = answer(bytes, stream)
        do {
            if try !call.sendNonBlocking(response) {
                stream.paused = true
                call.pauseReceiving()
                call.onSendReady {
                    call.eventLoop.execute { self.resume(call, stream) }
                }
            }
        } catch {
            // the call is over
        }
    }

    /// Event loop: the send buffer has room again: the waiting requests, then more.
    private func resume(_ call: ServerCall, _ stream: StreamState) {
        guard stream.paused else { return }
        stream.paused = false
        while !stream.paused && !stream.waiting.isEmpty {
            process(stream.waiting.removeFirst(), call, stream)
        }
        guard !stream.paused else { return }
        if stream.ended {
            if !call.isCancelled { try? call.finish(.ok) }
        } else {
            call.resumeReceiving()
        }
    }

    /// A stream's state.
    // @unchecked Sendable: used on the stream's event loop only (its callbacks and the
    // onSendReady body's hop back to it).
    private final class StreamState: @unchecked Sendable {
        var sent: Set<String> = []
        var paused = false
        var waiting: [[UInt8]] = []
        var ended = false
    }

    private func answer(_ bytes: [UInt8], _ stream: StreamState) -> [UInt8] {
        var response = Grpc_Reflection_V1_ServerReflectionResponse()
        let request: Grpc_Reflection_V1_ServerReflectionRequest
        do {
            request = try Grpc_Reflection_V1_ServerReflectionRequest(serializedBytes: bytes)
        } catch {
            response.errorResponse = Self.error(.invalidArgument, "the request is not a ServerReflectionRequest: \(error)")
            return (try? response.serializedBytes()) ?? []
        }
        response.validHost = request.host
        response.originalRequest = request
        switch request.messageRequest {
        case .fileByFilename(let name):
            response.messageResponse = files(startingWith: lock.withLock { files[name] != nil ? name : nil },
                                             stream, notFound: "file not found: \(name)")
        case .fileContainingSymbol(let symbol):
            let name = symbol.hasPrefix(".") ? String(symbol.dropFirst()) : symbol
            response.messageResponse = files(startingWith: lock.withLock { symbols[name] }, stream,
                                             notFound: "symbol not found: \(symbol)")
        case .fileContainingExtension(let x):
            let type = x.containingType.hasPrefix(".") ? String(x.containingType.dropFirst()) : x.containingType
            response.messageResponse = files(startingWith: lock.withLock { extensions[type]?[x.extensionNumber] }, stream,
                                             notFound: "extension \(x.extensionNumber) of \(x.containingType) not found")
        case .allExtensionNumbersOfType(let t):
            let type = t.hasPrefix(".") ? String(t.dropFirst()) : t
            let (known, numbers): (Bool, [Int32]) = lock.withLock {
                (symbols[type] != nil, (extensions[type].map { Array($0.keys) } ?? []).sorted())
            }
            if known {
                var r = Grpc_Reflection_V1_ExtensionNumberResponse()
                r.baseTypeName = type
                r.extensionNumber = numbers
                response.allExtensionNumbersResponse = r
            } else {
                response.errorResponse = Self.error(.notFound, "type not found: \(t)")
            }
        case .listServices:
            var r = Grpc_Reflection_V1_ListServiceResponse()
            r.service = services.map { name in
                var s = Grpc_Reflection_V1_ServiceResponse()
                s.name = name
                return s
            }
            response.listServicesResponse = r
        case nil:
            response.errorResponse = Self.error(.invalidArgument, "the request asks for nothing (no message_request set)")
        }
        return (try? response.serializedBytes()) ?? []
    }

    /// The file `first` then its transitive dependencies not yet sent on the stream.
    private func files(startingWith first: String?, _ stream: StreamState, notFound: String)
        -> Grpc_Reflection_V1_ServerReflectionResponse.OneOf_MessageResponse {
        guard let first else { return .errorResponse(Self.error(.notFound, notFound)) }
        var out: [Data] = []
        lock.withLock {
            var queue = [first]
            var seen: Set<String> = []
            while !queue.isEmpty {
                let name = queue.removeFirst()
                guard seen.insert(name).inserted, let bytes = files[name] else { continue }
                if out.isEmpty || !stream.sent.contains(name) {
                    stream.sent.insert(name)
                    out.append(Data(bytes))
                }
                queue.append(contentsOf: dependencies[name] ?? [])
            }
        }
        var r = Grpc_Reflection_V1_FileDescriptorResponse()
        r.fileDescriptorProto = out
        return .fileDescriptorResponse(r)
    }

    private static func error(_ code: StatusCode, _ message: String) -> Grpc_Reflection_V1_ErrorResponse {
        var e = Grpc_Reflection_V1_ErrorResponse()
        e.errorCode = Int32(code.rawValue)
        e.errorMessage = message
        return e
    }
}
