// Config items: names, validators (each accept/reject edge), empty values, update/reset,
// custom validators, defaults from layers.
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import GRPCHelper

private func item(_ v: RpcConfigValidator, canBeEmpty: Bool = false,
                  custom: ConfigCustomValidator? = nil) throws -> Config {
    try Config(name: "my-item", description: "d", defaultValue: "", canBeEmpty: canBeEmpty,
               validator: v, customValidator: custom)
}

private func code(_ body: () throws -> Void) -> RpcResultCode? {
    do { try body(); return nil } catch let e as RpcException { return e.code } catch { return .error }
}

@Suite struct ConfigTests {
    @Test(arguments: ["a", "my-item", "x1", "a-1-b", "z"])
    func validNames(_ n: String) throws {
        #expect(try Config(name: n).name == n)
    }

    @Test(arguments: ["", "1a", "-a", "My-item", "my_item", "my item", "é", "a.b"])
    func invalidNames(_ n: String) {
        #expect(code { _ = try Config(name: n) } == .errorParamInvalid)
    }

    @Test func customValidatorIsRequiredForCustom() {
        #expect(code { _ = try Config(name: "c", validator: .configValidCustom) } == .errorParamMissing)
    }

    @Test func strings() throws {
        let c = try item(.configValidString)
        try c.validate("anything at all")
        #expect(code { try c.validate("") } == .errorParamMissing)
        try item(.configValidString, canBeEmpty: true).validate("")
    }

    @Test func integers() throws {
        let c = try item(.configValidInt)
        for ok in ["0", "-5", "+7", " 12 ", "1_000", "9223372036854775807"] { try c.validate(ok) }
        for bad in ["1.5", "abc", "1e3", "0x10", "1__0", "_1", "1_", "9223372036854775808", "- 1"] {
            #expect(code { try c.validate(bad) } == .errorParamInvalid, "\(bad)")
        }
        #expect(code { try c.validate("") } == .errorParamMissing)
    }

    @Test func positiveIntegers() throws {
        let c = try item(.configValidPosInt)
        for ok in ["1", "30", " 2"] { try c.validate(ok) }
        for bad in ["0", "-1", "1.0", "x"] {
            #expect(code { try c.validate(bad) } == .errorParamInvalid, "\(bad)")
        }
    }

    @Test func floats() throws {
        let c = try item(.configValidFloat)
        for ok in ["0", "-1.5", "1e3", ".5", "5.", "inf", "-inf", "nan", "1_000.5", " 2.5 "] { try c.validate(ok) }
        for bad in ["abc", "1.2.3", "e5", "1e", "0x1p3", ""] {
            #expect(code { try c.validate(bad) } != nil, "\(bad)")
        }
        #expect(code { try c.validate("abc") } == .errorParamInvalid)
    }

    @Test func positiveFloats() throws {
        let c = try item(.configValidPosFloat)
        // "nan" passes, as Python's `float(v) <= 0` check lets it.
        for ok in ["0.001", "3", "1e-9", "inf", "nan"] { try c.validate(ok) }
        for bad in ["0", "-0.5", "0.0", "-inf", "x"] {
            #expect(code { try c.validate(bad) } == .errorParamInvalid, "\(bad)")
        }
    }

    @Test func customValidators() throws {
        let c = try item(.configValidCustom, custom: { name, value in
            guard value.hasPrefix("ok") else { throw RpcException("\(name): \(value) is not ok", code: .errorCustom) }
        })
        try c.validate("ok-1")
        do {
            try c.validate("nope")
            Issue.record("accepted")
        } catch let e as RpcException {
            #expect(e.code == .errorCustom)
            #expect(e.message == "my-item: nope is not ok")
        }
    }

    @Test func errorMessagesAreGrpcHelpers() throws {
        func message(_ validator: RpcConfigValidator, _ value: String) throws -> String? {
            do { try item(validator).validate(value); return nil } catch let e as RpcException { return e.message }
        }
        #expect(try message(.configValidPosInt, "-3") == "Expected strictly positive value for config item my-item but got -3")
        #expect(try message(.configValidPosInt, "x") == "Invalid int value for config item my-item: x")
        #expect(try message(.configValidInt, "1.5") == "Invalid int value for config item my-item: 1.5")
        #expect(try message(.configValidFloat, "y") == "Invalid float value for config item my-item: y")
        #expect(try message(.configValidPosFloat, "0") == "Expected strictly positive value for config item my-item but got 0")
        #expect(try message(.configValidString, "") == "Empty value provided for item my-item (not supported)")
    }

    @Test func updateResetAndConversions() throws {
        let c = try Config(name: "n", defaultValue: "10", validator: .configValidInt)
        #expect(c.stringValue == "10" && c.intValue == 10 && c.floatValue == 10)
        try c.update("-4")
        #expect(c.intValue == -4)
        // An invalid update leaves the value as it was.
        #expect(code { try c.update("four") } == .errorParamInvalid)
        #expect(c.stringValue == "-4")
        c.reset()
        #expect(c.stringValue == "10")
        #expect(c.defaultValue == "10")
        let m = c.message
        #expect(m.name == "n" && m.value == "10" && m.defaultValue == "10" && m.validator == .configValidInt)
    }

    @Test func layeredDefaultNamesItsOrigin() throws {
        let c = try Config(name: "port", defaultValue: "1", validator: .configValidPosInt)
        try c.setDefault("54321", origin: "environment (PORT)")
        #expect(c.defaultValue == "54321" && c.stringValue == "54321")
        do {
            try c.setDefault("0", origin: "/etc/x/config.json")
            Issue.record("accepted")
        } catch let e as RpcException {
            #expect(e.code == .errorParamInvalid)
            #expect(e.message.contains("port") && e.message.contains("/etc/x/config.json"))
        }
        #expect(c.defaultValue == "54321")
    }

    @Test func concurrentUpdatesKeepAValidValue() throws {
        let c = try Config(name: "n", defaultValue: "1", validator: .configValidPosInt)
        DispatchQueueless.concurrentPerform(iterations: 8) { i in
            for j in 0..<200 { try? c.update(j % 7 == 0 ? "bad" : "\(i * 1000 + j + 1)") }
        }
        #expect((c.intValue ?? 0) > 0)
    }
}

/// concurrentPerform without Dispatch: plain threads, joined.
enum DispatchQueueless {
    static func concurrentPerform(iterations: Int, _ body: @escaping @Sendable (Int) -> Void) {
        var threads: [pthread_t] = []
        final class Box { let f: () -> Void; init(_ f: @escaping () -> Void) { self.f = f } }
        for i in 0..<iterations {
            var t = pthread_t()
            let box = Unmanaged.passRetained(Box { body(i) }).toOpaque()
            pthread_create(&t, nil, { arg in
                Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue().f()
                return nil
            }, box)
            threads.append(t)
        }
        for t in threads { pthread_join(t, nil) }
    }
}

private struct SampleHolder: ConfigHolder {
    let first = try! Config(name: "first-item", defaultValue: "1", validator: .configValidInt)
    let notAnItem = "just a string"
    let second = try! Config(name: "second-item", defaultValue: "x")
}

@Suite struct ConfigHolderTests {
    @Test func storedConfigPropertiesAreTheItemsInOrder() throws {
        let h = SampleHolder()
        #expect(h.allConfigItems.map(\.name) == ["first-item", "second-item"])
        #expect(h.allConfigItems[0] === h.first)
        let set = try ConfigSet(userItems: h.allConfigItems, cli: ["second-item": "from-cli"])
        #expect(h.second.stringValue == "from-cli" && set["first-item"] === h.first)
    }
}
