// The helper services' Swift messages: names, numbers and the shared `r = 1` (WIRE.md).
import SwiftProtobuf
import Testing
@testable import GRPCHelper

@Suite struct APIMessagesTests {
    @Test func resultCodesAndVersions() {
        #expect(RpcResultCode.errorParamMissing.rawValue == 20)
        #expect(RpcResultCode.errorCustom.rawValue == 100)
        #expect(RpcResultCode.allCases.count == 24)
        #expect(RpcConfigApiVersion.configApiSupported.rawValue == 1)
        #expect(RpcConfigApiVersion.configApiCurrent.rawValue == 2)
        #expect(RpcEventApiVersion.eventApiCurrent.rawValue == 2)
        #expect(RpcLoggerLevel.lvlCritical.rawValue == 50)
        #expect(RpcConfigValidator.configValidPosFloat.rawValue == 5)
    }

    @Test func anErrorResponseDecodesAsEveryResponseType() throws {
        let result = RpcResult(.errorItemUnknown, "unknown item: x", stack: "trace")
        let bytes = try encodedFailure(result)
        #expect(try RpcResultStatus(serializedBytes: bytes).r == result)
        #expect(try RpcMultiServiceInfo(serializedBytes: bytes).r == result)
        #expect(try RpcConfigStatus(serializedBytes: bytes).r == result)
        #expect(try RpcLoggerStatus(serializedBytes: bytes).r == result)
        #expect(try RpcEventStatus(serializedBytes: bytes).r == result)
        #expect(try RpcEventQueueStatus(serializedBytes: bytes).r == result)
        // And the typed failure encodes to exactly those bytes.
        let typed: [UInt8] = try RpcConfigStatus.failure(result).serializedBytes()
        #expect(typed == bytes)
    }

    @Test func fieldNumbersOnTheWire() throws {
        // ConfigItem: 1 name, 3 value, 6 validator (varint); hand-decoded tags.
        var item = RpcConfigItem()
        item.name = "a"
        item.value = "b"
        item.validator = .configValidInt
        let b: [UInt8] = try item.serializedBytes()
        #expect(b == [0x0A, 1, 0x61, 0x1A, 1, 0x62, 0x30, 2])
        // The names used in JSON / text formats are the .proto's.
        var info = RpcServiceInfo()
        info.currentApiVersion = 2
        #expect(try info.jsonString() == #"{"currentApiVersion":2}"#)
        #expect(RpcServiceInfo.protoMessageName == "ServiceInfo")
        #expect(RpcConfigStatus.protoMessageName == "ConfigStatus")
    }
}

@Suite struct ResultCodeNameTests {
    @Test func protoNames() {
        #expect(RpcResultCode.errorParamMissing.protoName == "ERROR_PARAM_MISSING")
        #expect(RpcResultCode.ok.protoName == "OK" && RpcResultCode.args.protoName == "ARGS")
        #expect(RpcResultCode.errorApiServerTooOld.protoName == "ERROR_API_SERVER_TOO_OLD")
        #expect(RpcResultCode(rawValue: 105)!.protoName == "105")
        #expect("\(RpcException("x", code: .errorRpc))" == "ERROR_RPC: x")
    }
}
