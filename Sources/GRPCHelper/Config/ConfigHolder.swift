// Config holders (grpc-helper's ConfigHolder): a type whose stored Config properties are
// its items, so that a program declares its items in one place and hands the whole group
// to a config set.

/// A group of config items: every stored property of type `Config` is an item, in
/// declaration order.
///
///     struct MyConfig: ConfigHolder {
///         let greeting = try! Config(name: "my-greeting", defaultValue: "hello")
///         let count = try! Config(name: "my-count", defaultValue: "1", validator: .configValidPosInt)
///     }
///     let set = try ConfigSet(staticItems: RpcStaticConfig.items(), userItems: [MyConfig()])
///
/// A config set and an RpcServer take holders and items alike (`ConfigItemSource`), as
/// grpc-helper's lists of Config and ConfigHolder.
public protocol ConfigHolder: ConfigItemSource {}

/// What a config set or an RpcServer takes as items: a `Config`, or a `ConfigHolder` (its
/// items, in declaration order).
public protocol ConfigItemSource {
    var configItems: [Config] { get }
}

extension Config: ConfigItemSource {
    public var configItems: [Config] { [self] }
}

extension ConfigHolder {
    public var configItems: [Config] { allConfigItems }
}

extension Array where Element == any ConfigItemSource {
    /// Every item, holders expanded, in order.
    var expandedItems: [Config] { flatMap(\.configItems) }
}

extension ConfigHolder {
    /// The holder's items, in declaration order.
    public var allConfigItems: [Config] {
        Mirror(reflecting: self).children.compactMap { $0.value as? Config }
    }
}
