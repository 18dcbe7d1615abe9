// What the helper services' messages share on the wire (docs/WIRE.md): every response
// type of a managed service carries `Result r = 1`, so an error response of any method is
// the encoded Result as field 1 alone, whatever the method's response type.
import SwiftProtobuf

/// A response message with the helper layer's `Result r = 1`.
public protocol RpcResultCarrying: SwiftProtobuf.Message {
    var r: RpcResult { get set }
}

extension RpcResultStatus: RpcResultCarrying {}
extension RpcMultiServiceInfo: RpcResultCarrying {}
extension RpcConfigStatus: RpcResultCarrying {}
extension RpcLoggerStatus: RpcResultCarrying {}
extension RpcEventStatus: RpcResultCarrying {}
extension RpcEventQueueStatus: RpcResultCarrying {}

extension RpcResult {
    public init(_ code: RpcResultCode, _ msg: String = "", stack: String = "") {
        self.init()
        self.code = code
        self.msg = msg
        self.stack = stack
    }
}

extension RpcResultCarrying {
    /// The response with only `r` set.
    public static func failure(_ result: RpcResult) -> Self {
        var m = Self()
        m.r = result
        return m
    }
}

/// The wire bytes of an error response for a method whose response type is not known
/// here: field 1 holding `result` (what every managed service's response type decodes).
public func encodedFailure(_ result: RpcResult) throws -> [UInt8] {
    try RpcResultStatus.failure(result).serializedBytes()
}
