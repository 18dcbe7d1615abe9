// The helper layer's rolling-logs C ABI (grpchelper/logs.h), `@c @implementation`: thin
// translations onto GRPCHelper's RpcLogs.
import NIOConcurrencyHelpers
import Foundation
import GRPCHelper
import SwiftProtobuf
import CGRPCHelper
#if canImport(Glibc)
import Glibc
#endif

// MARK: - rolling logs

final class LogsBox {
    let logs: RpcLogs
    let folder: OwnedCString
    init(_ l: RpcLogs) { logs = l; folder = OwnedCString(l.folder) }
}

@c @implementation
public func gh_logs_new(_ folder: UnsafePointer<CChar>?, _ unit: UnsafePointer<CChar>?, _ interval: Int32,
                        _ backup: Int32, _ folders: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        let f = folders == nil ? Folders() : try borrow(folders, FoldersBox.self, "folders").folders
        let logs = try RpcLogs(folder: try string(folder, "folder"), unit: try string(unit, "unit"),
                               interval: Int(interval), backup: Int(backup), folders: f)
        out.pointee = makeHandle(LogsBox(logs))
        return GH_OK
    }
}

@c @implementation
public func gh_logs_new_from_config(_ set: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        let s = try borrow(set, ConfigSetBox.self, "set")
        out.pointee = makeHandle(LogsBox(try RpcLogs(config: s.set)))
        return GH_OK
    }
}

@c @implementation
public func gh_logs_free(_ l: OpaquePointer?) {
    guard let l = l else { return }
    (try? borrow(l, LogsBox.self, "logs"))?.logs.close()
    release(l, LogsBox.self)
}

@c @implementation
public func gh_logs_folder(_ l: OpaquePointer?) -> UnsafePointer<CChar>? {
    (try? borrow(l, LogsBox.self, "logs")).map { UnsafePointer($0.folder.pointer) }
}

@c @implementation
public func gh_logs_enabled(_ l: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ level: Int32) -> Int32 {
    guard let b = try? borrow(l, LogsBox.self, "logs") else { return 0 }
    return b.logs.isEnabled(optionalString(name) ?? "", level: Int(level)) ? 1 : 0
}

private func writeRecord(_ l: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ recordName: UnsafePointer<CChar>?,
                         _ level: Int32, _ thread: UnsafePointer<CChar>?, _ file: UnsafePointer<CChar>?,
                         _ function: UnsafePointer<CChar>?, _ line: Int32, _ message: UnsafePointer<CChar>?) -> Int32 {
    boundary {
        let b = try borrow(l, LogsBox.self, "logs")
        let n = try string(name, "name")
        guard (1...50).contains(level) else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "invalid level \(level) (1..50)") }
        let origin = optionalString(recordName)
        guard let message = message else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "message is NULL") }
        // The strings are converted only for a record that is written.
        b.logs.write(name: n, recordName: origin, level: Int(level), message: String(cString: message),
                     thread: optionalString(thread), file: optionalString(file),
                     function: optionalString(function), line: Int(line))
        return GH_OK
    }
}

@c @implementation
public func gh_logs_write(_ l: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ level: Int32,
                          _ message: UnsafePointer<CChar>?) -> Int32 {
    writeRecord(l, name, nil, level, nil, nil, nil, 0, message)
}

@c @implementation
public func gh_logs_write_record(_ l: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                 _ recordName: UnsafePointer<CChar>?, _ level: Int32,
                                 _ thread: UnsafePointer<CChar>?, _ file: UnsafePointer<CChar>?,
                                 _ function: UnsafePointer<CChar>?, _ line: Int32,
                                 _ message: UnsafePointer<CChar>?) -> Int32 {
    writeRecord(l, name, recordName, level, thread, file, function, line, message)
}

@c @implementation
public func gh_logs_get(_ l: OpaquePointer?, _ req: UnsafePointer<UInt8>?, _ reqLen: Int,
                        _ resp: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                        _ respLen: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let b = try borrow(l, LogsBox.self, "logs")
        return try handOver(try b.logs.get(try decode(RpcFilter.self, req, reqLen)).serializedBytes(), resp, respLen)
    }
}

@c @implementation
public func gh_logs_set(_ l: OpaquePointer?, _ req: UnsafePointer<UInt8>?, _ reqLen: Int,
                        _ resp: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                        _ respLen: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let b = try borrow(l, LogsBox.self, "logs")
        return try handOver(try b.logs.set(try decode(RpcLoggerUpdate.self, req, reqLen)).serializedBytes(), resp, respLen)
    }
}

@c @implementation
public func gh_logs_reset(_ l: OpaquePointer?, _ req: UnsafePointer<UInt8>?, _ reqLen: Int,
                          _ resp: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                          _ respLen: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let b = try borrow(l, LogsBox.self, "logs")
        return try handOver(try b.logs.reset(try decode(RpcFilter.self, req, reqLen)).serializedBytes(), resp, respLen)
    }
}
