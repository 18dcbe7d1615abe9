// The config set: each default layer overriding the previous, persistence across a
// restart (atomic, non-default values only), malformed files, the service operations.
import Foundation
import Testing
@testable import GRPCHelper

private func items() throws -> (stat: [Config], user: [Config]) {
    (stat: [try Config(name: "a-port", defaultValue: "1", validator: .configValidPosInt)],
     user: [try Config(name: "b-name", defaultValue: "hard"),
            try Config(name: "c-ratio", defaultValue: "0.5", validator: .configValidPosFloat)])
}

@Suite struct ConfigSetTests {
    @Test func foldersExpandTildeAndCreateOnFirstUse() throws {
        let f = Folders(system: "~/s", user: nil, workspace: nil)
        #expect(f.system == NSHomeDirectory() + "/s")
        #expect(try f.userFolder() == nil)
        let t = TempFolders()
        #expect(!FileManager.default.fileExists(atPath: t.root + "/wks"))
        #expect(try t.folders.workspaceFolder() == t.root + "/wks")
        #expect(FileManager.default.fileExists(atPath: t.root + "/wks"))
    }

    @Test func eachLayerOverridesThePrevious() throws {
        let t = TempFolders()
        var (s, u) = try items()
        // Hard-coded only.
        var set = try ConfigSet(staticItems: s, userItems: u, folders: t.folders, cli: [:], environment: [:])
        #expect(set["a-port"]?.stringValue == "1" && set["b-name"]?.stringValue == "hard")
        // System file.
        t.write("sys/config.json", #"{"a-port": "2", "b-name": "sys", "unknown": "x"}"#)
        (s, u) = try items()
        set = try ConfigSet(staticItems: s, userItems: u, folders: t.folders, environment: [:])
        #expect(set["a-port"]?.stringValue == "2" && set["b-name"]?.stringValue == "sys")
        // User file over system.
        t.write("usr/config.json", #"{"a-port": "3"}"#)
        (s, u) = try items()
        set = try ConfigSet(staticItems: s, userItems: u, folders: t.folders, environment: [:])
        #expect(set["a-port"]?.stringValue == "3" && set["b-name"]?.stringValue == "sys")
        // Environment over files.
        (s, u) = try items()
        set = try ConfigSet(staticItems: s, userItems: u, folders: t.folders, environment: ["A_PORT": "4"])
        #expect(set["a-port"]?.stringValue == "4")
        // CLI over everything.
        (s, u) = try items()
        set = try ConfigSet(staticItems: s, userItems: u, folders: t.folders, cli: ["a-port": "5"],
                            environment: ["A_PORT": "4"])
        #expect(set["a-port"]?.stringValue == "5" && set["a-port"]?.defaultValue == "5")
        #expect(ConfigSet.environmentName("my-own-setting") == "MY_OWN_SETTING")
    }

    @Test func invalidDefaultNamesItemAndLayer() throws {
        let t = TempFolders()
        t.write("usr/config.json", #"{"a-port": "-1"}"#)
        let (s, u) = try items()
        let e = rpcCode { _ = try ConfigSet(staticItems: s, userItems: u, folders: t.folders, environment: [:]) }
        #expect(e?.0 == .errorParamInvalid)
        #expect(e?.1.contains("a-port") == true && e?.1.contains(t.root + "/usr/config.json") == true)
        let (s2, u2) = try items()
        let e2 = rpcCode { _ = try ConfigSet(staticItems: s2, userItems: u2, environment: ["C_RATIO": "0"]) }
        #expect(e2?.1.contains("environment variable C_RATIO") == true)
    }

    @Test func itemInBothListsIsAModelError() throws {
        let a = try Config(name: "x"), b = try Config(name: "x")
        #expect(rpcCode { _ = try ConfigSet(staticItems: [a], userItems: [b], environment: [:]) }?.0 == .errorModelInvalid)
    }

    @Test(arguments: ["not json", #"["a"]"#, #"{"a-port": 5}"#])
    func malformedFilesNameTheFile(_ text: String) throws {
        let t = TempFolders()
        t.write("sys/config.json", text)
        let (s, u) = try items()
        let e = rpcCode { _ = try ConfigSet(staticItems: s, userItems: u, folders: t.folders, environment: [:]) }
        #expect(e?.0 == .errorModelInvalid)
        #expect(e?.1.contains(t.root + "/sys/config.json") == true)
    }

    @Test func userValuesPersistAcrossARestart() throws {
        let t = TempFolders()
        var (s, u) = try items()
        var set = try ConfigSet(staticItems: s, userItems: u, folders: t.folders, environment: [:])
        let updated = try set.set([(name: "b-name", value: "mine"), (name: "c-ratio", value: "0.5")])
        #expect(updated.map(\.name) == ["b-name", "c-ratio"])
        // Only non-default values are written.
        let saved = try #require(t.read("wks/config.json"))
        #expect(saved.contains("\"b-name\" : \"mine\"") && !saved.contains("c-ratio"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: t.root + "/wks") == ["config.json"])
        (s, u) = try items()
        set = try ConfigSet(staticItems: s, userItems: u, folders: t.folders, environment: [:])
        #expect(set["b-name"]?.stringValue == "mine" && set["b-name"]?.defaultValue == "hard")
        _ = try set.reset(["b-name"])
        #expect(set["b-name"]?.stringValue == "hard")
        #expect(t.read("wks/config.json")?.contains("b-name") == false)
    }

    @Test func persistedValueThatNoLongerValidatesFallsBack() throws {
        let t = TempFolders()
        t.write("wks/config.json", #"{"c-ratio": "-2", "b-name": "kept"}"#)
        let (s, u) = try items()
        let set = try ConfigSet(staticItems: s, userItems: u, folders: t.folders, environment: [:])
        #expect(set["c-ratio"]?.stringValue == "0.5")
        #expect(set["b-name"]?.stringValue == "kept")
        #expect(set.warnings.count == 1 && set.warnings[0].contains("c-ratio"))
    }

    @Test func serviceOperationsAndTheirErrors() throws {
        let (s, u) = try items()
        let set = try ConfigSet(staticItems: s, userItems: u, environment: [:])
        #expect(try set.get([]).map(\.name) == ["b-name", "c-ratio"])  // user items only
        #expect(try set.get(["c-ratio"]).first?.value == "0.5")
        #expect(rpcCode { _ = try set.get(["a-port"]) }?.0 == .errorItemUnknown)  // static: not served
        #expect(rpcCode { _ = try set.get(["nope"]) }?.0 == .errorItemUnknown)
        #expect(try set.get(["nope", "b-name"], ignoreUnknown: true).map(\.name) == ["b-name"])
        #expect(rpcCode { _ = try set.get([""]) }?.0 == .errorParamMissing)
        #expect(rpcCode { _ = try set.set([]) }?.0 == .errorParamMissing)
        #expect(rpcCode { _ = try set.set([(name: "", value: "x")]) }?.0 == .errorParamMissing)
        #expect(rpcCode { _ = try set.set([(name: "nope", value: "x")]) }?.0 == .errorItemUnknown)
        #expect(try set.set([(name: "nope", value: "x")], ignoreUnknown: true).isEmpty)
        // One bad value: nothing of the request applied.
        let e = rpcCode { _ = try set.set([(name: "b-name", value: "new"), (name: "c-ratio", value: "x")]) }
        #expect(e?.0 == .errorParamInvalid)
        #expect(set["b-name"]?.stringValue == "hard")
        #expect(rpcCode { _ = try set.reset([]) }?.0 == .errorParamMissing)
        #expect(rpcCode { _ = try set.reset(["nope"]) }?.0 == .errorItemUnknown)
    }

    @Test func concurrentSetsFromThreadsLeaveAWellFormedFile() throws {
        let t = TempFolders()
        let (s, u) = try items()
        let set = try ConfigSet(staticItems: s, userItems: u, folders: t.folders, environment: [:])
        DispatchQueueless.concurrentPerform(iterations: 8) { i in
            for j in 0..<25 { _ = try? set.set([(name: "b-name", value: "v\(i)-\(j)")]) }
        }
        let saved = try #require(try readStringMap(t.root + "/wks/config.json"))
        #expect(saved["b-name"] == set["b-name"]?.stringValue)
        #expect(try FileManager.default.contentsOfDirectory(atPath: t.root + "/wks") == ["config.json"])
    }
}

@Suite struct ConfigSetSharedItemTests {
    @Test func aSecondSetStartsFromTheHardCodedDefault() throws {
        let c = try Config(name: "shared-item", defaultValue: "1", validator: .configValidInt)
        _ = try ConfigSet(userItems: [c], cli: ["shared-item": "5"])
        #expect(c.defaultValue == "5" && c.hardCodedDefault == "1")
        _ = try ConfigSet(userItems: [c])
        #expect(c.defaultValue == "1" && c.stringValue == "1")
    }
}

@Suite struct ConfigSetPersistenceFailureTests {
    @Test func aSetOrResetThatCannotBePersistedAppliesNothing() throws {
        let t = TempFolders()
        let (stat, user) = try items()
        let set = try ConfigSet(staticItems: stat, userItems: user, folders: t.folders)
        _ = try set.set([(name: "c-ratio", value: "2")])
        // A folder where config.json should be: the atomic rename fails.
        try FileManager.default.removeItem(atPath: t.root + "/wks/config.json")
        try FileManager.default.createDirectory(atPath: t.root + "/wks/config.json/x", withIntermediateDirectories: true)
        #expect(rpcCode { _ = try set.set([(name: "b-name", value: "new")]) }?.0 == .error)
        #expect(set["b-name"]?.stringValue == "hard")
        #expect(rpcCode { _ = try set.reset(["c-ratio"]) }?.0 == .error)
        #expect(set["c-ratio"]?.stringValue == "2")
    }
}
