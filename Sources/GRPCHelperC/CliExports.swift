// The helper layer's command-line C ABI (grpchelper/cli.h), `@c @implementation`: thin
// translations onto GRPCHelper's RpcCommandLine.
import NIOConcurrencyHelpers
import Foundation
import GRPCHelper
import SwiftProtobuf
import CGRPCHelper
#if canImport(Glibc)
import Glibc
#endif

// MARK: - command line

/// A malloc'd array of malloc'd C strings, freed with the box.
final class CStringArray {
    let pointer: UnsafeMutablePointer<UnsafePointer<CChar>?>
    let count: Int
    init(_ strings: [String]) {
        count = strings.count
        pointer = .allocate(capacity: max(strings.count, 1))
        for (i, s) in strings.enumerated() { (pointer + i).initialize(to: UnsafePointer(strdup(s)!)) }
    }
    deinit {
        for i in 0..<count { free(UnsafeMutableRawPointer(mutating: pointer[i])) }
        pointer.deallocate()
    }
}

final class CliBox {
    var exitCode: Int32 = -1
    var message = OwnedCString("")
    var port: Int32 = 0
    var folders = Folders()
    var config = CStringArray([])
    var rest = CStringArray([])
}

@c @implementation
public func gh_cli_parse(_ argc: Int32, _ argv: UnsafePointer<UnsafePointer<CChar>?>?,
                         _ description: UnsafePointer<CChar>?, _ version: UnsafePointer<CChar>?,
                         _ defaultPort: Int32, _ defaultSystem: UnsafePointer<CChar>?,
                         _ defaultUser: UnsafePointer<CChar>?, _ defaultWorkspace: UnsafePointer<CChar>?,
                         _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        guard argc >= 0, argc == 0 || argv != nil else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "argv is NULL") }
        let args = try (0..<Int(argc)).map { try string(argv![$0], "argv[\($0)]") }
        let program = args.first.map { ($0 as NSString).lastPathComponent } ?? "program"
        let parsed = RpcCommandLine.parse(
            Array(args.dropFirst()), commandName: program, description: optionalString(description) ?? "",
            defaults: .init(port: Int(defaultPort), system: optionalString(defaultSystem),
                            user: optionalString(defaultUser), workspace: optionalString(defaultWorkspace),
                            version: optionalString(version)))
        let box = CliBox()
        if let code = parsed.exitCode {
            box.exitCode = code
            box.message = OwnedCString(parsed.message)
        } else {
            box.port = Int32(parsed.port)
            box.folders = parsed.folders
            box.config = CStringArray(parsed.config.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" })
            box.rest = CStringArray(parsed.rest)
        }
        out.pointee = makeHandle(box)
        return GH_OK
    }
}

@c @implementation
public func gh_cli_free(_ c: OpaquePointer?) {
    if let c = c { release(c, CliBox.self) }
}

@c @implementation
public func gh_cli_exit_code(_ c: OpaquePointer?) -> Int32 {
    (try? borrow(c, CliBox.self, "cli"))?.exitCode ?? -1
}

@c @implementation
public func gh_cli_message(_ c: OpaquePointer?) -> UnsafePointer<CChar>? {
    (try? borrow(c, CliBox.self, "cli")).map { UnsafePointer($0.message.pointer) }
}

@c @implementation
public func gh_cli_port(_ c: OpaquePointer?) -> Int32 {
    (try? borrow(c, CliBox.self, "cli"))?.port ?? 0
}

@c @implementation
public func gh_cli_folders(_ c: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        let b = try borrow(c, CliBox.self, "cli")
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        out.pointee = makeHandle(FoldersBox(b.folders))
        return GH_OK
    }
}

@c @implementation
public func gh_cli_config(_ c: OpaquePointer?, _ config: UnsafeMutablePointer<UnsafePointer<UnsafePointer<CChar>?>?>?,
                          _ count: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let b = try borrow(c, CliBox.self, "cli")
        guard let config = config, let count = count else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "output pointer is NULL") }
        config.pointee = UnsafePointer(b.config.pointer)
        count.pointee = b.config.count
        return GH_OK
    }
}

@c @implementation
public func gh_cli_rest(_ c: OpaquePointer?, _ argc: UnsafeMutablePointer<Int32>?,
                        _ argv: UnsafeMutablePointer<UnsafePointer<UnsafePointer<CChar>?>?>?) -> Int32 {
    boundary {
        let b = try borrow(c, CliBox.self, "cli")
        guard let argc = argc, let argv = argv else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "output pointer is NULL") }
        argc.pointee = Int32(b.rest.count)
        argv.pointee = UnsafePointer(b.rest.pointer)
        return GH_OK
    }
}
