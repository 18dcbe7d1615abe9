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
///     let set = try ConfigSet(staticItems: RpcStaticConfig.items(), userItems: MyConfig().allConfigItems)
public protocol ConfigHolder {}

extension ConfigHolder {
    /// The holder's items, in declaration order.
    public var allConfigItems: [Config] {
        Mirror(reflecting: self).children.compactMap { $0.value as? Config }
    }
}
