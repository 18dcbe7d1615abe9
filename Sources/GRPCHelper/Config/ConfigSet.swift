// The config set of a server (grpc-helper's config manager): static and user items,
// defaults in layers, persisted user values, and the ConfigService operations.
import NIOConcurrencyHelpers
import Foundation

// @unchecked Sendable: mutable state guarded by `lock`; the items are thread-safe.
public final class ConfigSet: @unchecked Sendable {
    public let staticItems: [Config]
    public let userItems: [Config]
    public let folders: Folders
    private let byName: [String: Config]
    private let userNames: Set<String>
    private let lock = NIOLock()
    /// Warnings raised while loading (e.g. a persisted value that no longer validates).
    public private(set) var warnings: [String] = []

    /// Builds the set and applies the default layers, each overriding the previous: the
    /// hard-coded default (the item's initializer's, whatever an earlier set made of it); `config.json` in the system folder; `config.json` in the user
    /// folder; the environment (`my-item` → `MY_ITEM`); `cli` (`-c NAME=VALUE`). Then the
    /// user items' persisted values (workspace `config.json`) are restored.
    /// Errors: an item in both lists or twice → ERROR_MODEL_INVALID; a malformed
    /// config.json → ERROR_MODEL_INVALID naming it; an invalid default → its validator's
    /// error naming the item and the layer.
    /// `staticItems` and `userItems`: `Config` items and `ConfigHolder`s (their items).
    public init(staticItems staticSources: [any ConfigItemSource] = [], userItems userSources: [any ConfigItemSource] = [],
                folders: Folders = Folders(),
                cli: [String: String] = [:],
                environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let staticItems = staticSources.expandedItems, userItems = userSources.expandedItems
        var all: [String: Config] = [:]
        for c in staticItems + userItems {
            guard all[c.name] == nil else {
                throw RpcException("config item \(c.name) is defined more than once (static and user items must differ)",
                                   code: .errorModelInvalid)
            }
            all[c.name] = c
        }
        self.staticItems = staticItems
        self.userItems = userItems
        self.folders = folders
        byName = all
        userNames = Set(userItems.map(\.name))

        var layers: [(String, [String: String])] = []
        if let s = folders.system {
            let p = (s as NSString).appendingPathComponent("config.json")
            if let m = try readStringMap(p) { layers.append((p, m)) }
        }
        if let u = folders.user {
            let p = (u as NSString).appendingPathComponent("config.json")
            if let m = try readStringMap(p) { layers.append((p, m)) }
        }
        for c in staticItems + userItems {
            var value = c.hardCodedDefault, origin = "the hard-coded default"
            for (file, m) in layers { if let v = m[c.name] { value = v; origin = file } }
            let env = ConfigSet.environmentName(c.name)
            if let v = environment[env] { value = v; origin = "environment variable \(env)" }
            if let v = cli[c.name] { value = v; origin = "command line (-c \(c.name)=...)" }
            try c.setDefault(value, origin: origin)
        }
        if let path = persistPath {
            if let saved = try readStringMap(path) {
                for (name, value) in saved.sorted(by: { $0.key < $1.key }) {
                    guard userNames.contains(name), let c = byName[name] else { continue }
                    do { try c.update(value) } catch let e as RpcException {
                        warnings.append("\(path): persisted value of \(name) ignored, back to its default: \(e.message)")
                    }
                }
            }
        }
    }

    /// "my-item" → "MY_ITEM".
    public static func environmentName(_ name: String) -> String {
        name.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// A static or user item by name.
    public subscript(name: String) -> Config? { byName[name] }

    private var persistPath: String? {
        folders.workspace.map { ($0 as NSString).appendingPathComponent("config.json") }
    }

    // MARK: ConfigService operations (user items)

    /// The user items named (empty: all, in definition order).
    public func get(_ names: [String], ignoreUnknown: Bool = false) throws -> [RpcConfigItem] {
        try lock.withLock { try select(names, ignoreUnknown: ignoreUnknown, emptyMeansAll: true).map(\.message) }
    }

    /// Whether `name` is one of the user items.
    func holdsUserItem(_ name: String) -> Bool { lock.withLock { userNames.contains(name) } }

    /// The user items among `names` (empty: all), in the order named (a name twice: twice),
    /// without any check: grpc-helper's ConfigManager's local dump before it merges.
    func dump(_ names: [String]) -> [RpcConfigItem] {
        lock.withLock {
            if names.isEmpty { return userItems.map(\.message) }
            return names.compactMap { n in userNames.contains(n) ? byName[n]?.message : nil }
        }
    }

    /// Validates every update first, then writes the new persisted values, then applies
    /// them: a bad value or a failed write applies nothing. Each value is validated once.
    public func set(_ updates: [(name: String, value: String)], ignoreUnknown: Bool = false) throws -> [RpcConfigItem] {
        guard !updates.isEmpty else { throw ConfigSet.emptyRequest }
        return try lock.withLock {
            try checkNamesLocked(updates.map(\.name), ignoreUnknown: ignoreUnknown)
            var known: [(Config, String)] = []
            for u in updates {
                guard userNames.contains(u.name), let c = byName[u.name] else { continue }   // ignored unknown
                try c.validate(u.value)
                known.append((c, u.value))
            }
            var values: [String: String] = [:]
            for (c, v) in known { values[c.name] = v }
            try persistLocked(values)
            for (c, v) in known { c.setValidated(v) }
            return known.map { $0.0.message }
        }
    }

    /// Back to their defaults; persists.
    public func reset(_ names: [String], ignoreUnknown: Bool = false) throws -> [RpcConfigItem] {
        guard !names.isEmpty else { throw ConfigSet.emptyRequest }
        return try lock.withLock {
            let items = try select(names, ignoreUnknown: ignoreUnknown, emptyMeansAll: false)
            var values: [String: String] = [:]
            for c in items { values[c.name] = c.defaultValue }
            try persistLocked(values)
            for c in items { c.reset() }
            return items.map(\.message)
        }
    }

    private func select(_ names: [String], ignoreUnknown: Bool, emptyMeansAll: Bool) throws -> [Config] {
        if names.isEmpty && emptyMeansAll { return userItems }
        try checkNamesLocked(names, ignoreUnknown: ignoreUnknown)
        return names.compactMap { n in userNames.contains(n) ? byName[n] : nil }
    }

    /// grpc-helper's errors (ConfigService), with its texts.
    private static var emptyRequest: RpcException { RpcException("Input request list is empty", code: .errorParamMissing) }

    /// The names of a request: an empty one → ERROR_PARAM_MISSING; unknown ones (all of
    /// them named) → ERROR_ITEM_UNKNOWN unless ignored; grpc-helper's checks and texts.
    private func checkNamesLocked(_ names: [String], ignoreUnknown: Bool) throws {
        if names.contains(where: \.isEmpty) {
            throw RpcException("At least one empty name found in input request", code: .errorParamMissing)
        }
        let unknown = names.filter { !userNames.contains($0) }
        if !ignoreUnknown && !unknown.isEmpty {
            throw RpcException("Unknown config item names in filter request: " + unknown.joined(separator: ", "),
                               code: .errorItemUnknown)
        }
    }

    /// Writes the user items that differ from their defaults (atomically), with the
    /// values of `pending` in place of the current ones (not applied yet).
    private func persistLocked(_ pending: [String: String]) throws {
        guard let ws = try folders.workspaceFolder() else { return }
        var map: [String: String] = [:]
        for c in userItems {
            let v = pending[c.name] ?? c.stringValue
            if v != c.defaultValue { map[c.name] = v }
        }
        try writeStringMap(map, to: (ws as NSString).appendingPathComponent("config.json"))
    }
}

// The ConfigService operations on the wire messages (what the config service serves).
extension ConfigSet {
    public func get(_ request: RpcFilter) throws -> RpcConfigStatus {
        var s = RpcConfigStatus()
        s.items = try get(request.names, ignoreUnknown: request.ignoreUnknown)
        return s
    }

    public func set(_ request: RpcConfigUpdate) throws -> RpcConfigStatus {
        var s = RpcConfigStatus()
        s.items = try set(request.items.map { (name: $0.name, value: $0.value) }, ignoreUnknown: request.ignoreUnknown)
        return s
    }

    public func reset(_ request: RpcFilter) throws -> RpcConfigStatus {
        var s = RpcConfigStatus()
        s.items = try reset(request.names, ignoreUnknown: request.ignoreUnknown)
        return s
    }
}
