// The built-in static items: the seed's table (names, defaults, validators).
import Testing
@testable import GRPCHelper

@Suite struct StaticConfigTests {
    @Test func theSeedTable() throws {
        let items = RpcStaticConfig.items()
        let table: [(String, String, RpcConfigValidator)] = [
            ("rpc-max-workers", "30", .configValidPosInt),
            ("rpc-shutdown-grace", "30", .configValidPosFloat),
            ("rpc-shutdown-timeout", "60", .configValidPosFloat),
            ("rpc-logs-folder", "logs", .configValidString),
            ("rpc-logs-backup", "10", .configValidInt),
            ("rpc-logs-interval-unit", "H", .configValidCustom),
            ("rpc-logs-interval", "1", .configValidPosInt),
            ("rpc-main-host", "localhost", .configValidString),
            ("rpc-main-port", "54321", .configValidPosInt),
            ("rpc-client-timeout", "60", .configValidPosFloat),
            ("rpc-event-retain-timeout", "300", .configValidPosInt),
            ("rpc-event-keepalive-timeout", "60", .configValidPosInt),
            ("rpc-event-queue-max", "10000", .configValidPosInt),
            ("rpc-admin-peers", "any", .configValidCustom),
        ]
        #expect(items.map(\.name) == table.map(\.0))
        for (c, row) in zip(items, table) {
            #expect(c.defaultValue == row.1 && c.validator == row.2, "\(c.name)")
            try c.validate(c.defaultValue)
            #expect(!c.description.isEmpty)
        }
        // Static items join a config set (layers apply to them too).
        let set = try ConfigSet(staticItems: items, environment: ["RPC_MAIN_PORT": "1234"])
        #expect(set["rpc-main-port"]?.intValue == 1234)
        #expect(try set.get([]).isEmpty)  // not user items: not served by the config service
    }

    @Test(arguments: ["S", "m", "H", "d", "MIDNIGHT", "midnight", "W0", "w6"])
    func logIntervalUnitsAccepted(_ unit: String) throws {
        let c = RpcStaticConfig.items().first { $0.name == "rpc-logs-interval-unit" }!
        try c.validate(unit)
    }

    @Test(arguments: ["W7", "X", "HOUR", "W", " H"])
    func logIntervalUnitsRefused(_ unit: String) throws {
        let c = RpcStaticConfig.items().first { $0.name == "rpc-logs-interval-unit" }!
        do {
            try c.validate(unit)
            Issue.record("accepted \(unit)")
        } catch let e as RpcException {
            #expect(e.code == .errorParamInvalid)
            #expect(e.message.contains("rpc-logs-interval-unit"))
        }
    }
}
