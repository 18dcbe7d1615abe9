// A configuration item (grpc-helper's Config): name, description, default and current
// values, whether it may be empty, and a validator.
import NIOConcurrencyHelpers
import Foundation

/// A custom validation: throws (an RpcException, best) when `value` is not valid for the
/// item named `name`.
public typealias ConfigCustomValidator = @Sendable (_ name: String, _ value: String) throws -> Void

/// One configuration item. Values are strings; `intValue`/`floatValue` convert them.
/// Thread-safe.
// @unchecked Sendable: value and default guarded by `lock`; the custom validator must be thread-safe (documented).
public final class Config: @unchecked Sendable {
    public let name: String
    public let description: String
    public let canBeEmpty: Bool
    public let validator: RpcConfigValidator
    public let customValidator: ConfigCustomValidator?
    /// The default given to the initializer: each config set's layers start from it, so
    /// an item shared by several sets (e.g. one after the other in tests) never starts
    /// from an earlier set's layered default.
    public let hardCodedDefault: String

    private let lock = NIOLock()
    private var _default: String
    private var _value: String

    /// Checks the name (`[a-z][a-z0-9-]*`, else ERROR_PARAM_INVALID) and that a custom
    /// validator comes with CONFIG_VALID_CUSTOM (else ERROR_PARAM_MISSING). The hard-coded
    /// default is validated later, when the item joins a config set (it may be replaced
    /// by a layer first).
    public init(name: String, description: String = "", defaultValue: String = "",
                canBeEmpty: Bool = false, validator: RpcConfigValidator = .configValidString,
                customValidator: ConfigCustomValidator? = nil) throws {
        guard Config.isValidName(name) else {
            throw RpcException("Invalid config item name: \"\(name)\" (expected [a-z][a-z0-9-]*)",
                               code: .errorParamInvalid)
        }
        if validator == .configValidCustom && customValidator == nil {
            throw RpcException("Config item \(name): a custom validator is required with CONFIG_VALID_CUSTOM",
                               code: .errorParamMissing)
        }
        self.name = name
        self.description = description
        self.canBeEmpty = canBeEmpty
        self.validator = validator
        self.customValidator = customValidator
        hardCodedDefault = defaultValue
        _default = defaultValue
        _value = defaultValue
    }

    static func isValidName(_ n: String) -> Bool {
        let u = Array(n.utf8)
        guard let first = u.first, first >= 0x61, first <= 0x7A else { return false }
        return u.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
    }

    /// The current value.
    public var stringValue: String { lock.withLock { _value } }
    /// The current value as an integer (nil if it is not one).
    public var intValue: Int? { Config.parseInt(stringValue) }
    /// The current value as a float (nil if it is not one).
    public var floatValue: Double? { Config.parseFloat(stringValue) }
    /// The default value (hard-coded, or the last layer that set one).
    public var defaultValue: String { lock.withLock { _default } }

    /// Throws an RpcException when `value` is not valid for this item, with grpc-helper's
    /// texts: empty while not allowed → ERROR_PARAM_MISSING "Empty value provided for item
    /// NAME (not supported)"; not of the validator's kind → ERROR_PARAM_INVALID "Invalid
    /// int|float value for config item NAME: VALUE", "Expected strictly positive value for
    /// config item NAME but got VALUE"; a custom validator's own error.
    public func validate(_ value: String) throws {
        if value.isEmpty {
            if canBeEmpty { return }
            throw RpcException("Empty value provided for item \(name) (not supported)", code: .errorParamMissing)
        }
        func invalid(_ kind: String) -> RpcException {
            RpcException("Invalid \(kind) value for config item \(name): \(value)", code: .errorParamInvalid)
        }
        func notPositive() -> RpcException {
            RpcException("Expected strictly positive value for config item \(name) but got \(value)",
                         code: .errorParamInvalid)
        }
        switch validator {
        case .configValidString, .UNRECOGNIZED:
            return
        case .configValidInt:
            guard Config.parseInt(value) != nil else { throw invalid("int") }
        case .configValidPosInt:
            guard let v = Config.parseInt(value) else { throw invalid("int") }
            guard v > 0 else { throw notPositive() }
        case .configValidFloat:
            guard Config.parseFloat(value) != nil else { throw invalid("float") }
        case .configValidPosFloat:
            guard let v = Config.parseFloat(value) else { throw invalid("float") }
            // As Python's `float(v) <= 0` check: NaN is not refused.
            guard !(v <= 0) else { throw notPositive() }
        case .configValidCustom:
            try customValidator?(name, value)
        }
    }

    /// Validates, then sets the current value (unchanged on error).
    public func update(_ value: String) throws {
        try validate(value)
        lock.withLock { _value = value }
    }

    /// Sets a value already validated by the caller (a config set, validating a whole
    /// request before applying it).
    func setValidated(_ value: String) {
        lock.withLock { _value = value }
    }

    /// Back to the default value.
    public func reset() {
        lock.withLock { _value = _default }
    }

    /// Validates and sets a new default (a layer of the config set); the current value
    /// follows it. `origin` names the layer in the error.
    func setDefault(_ value: String, origin: String) throws {
        do { try validate(value) } catch let e as RpcException {
            throw RpcException("\(e.message) (default value from \(origin))", code: e.code)
        }
        lock.withLock {
            _default = value
            _value = value
        }
    }

    /// The item as the config service reports it.
    public var message: RpcConfigItem {
        var m = RpcConfigItem()
        m.name = name
        m.description_p = description
        m.value = stringValue
        m.defaultValue = defaultValue
        m.canBeEmpty = canBeEmpty
        m.validator = validator
        return m
    }

    // MARK: number parsing, as Python's int() / float() read config strings

    /// Decimal integer: optional surrounding whitespace, an optional sign, digits with
    /// single underscores between them ("1_000").
    static func parseInt(_ s: String) -> Int? {
        let t = s.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let digits = withoutDigitUnderscores(t) else { return nil }
        return Int(digits)
    }

    /// Float: optional surrounding whitespace, decimal or exponent forms, "inf"/"nan"
    /// (any case), digit underscores.
    static func parseFloat(_ s: String) -> Double? {
        let t = s.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let clean = withoutDigitUnderscores(t), !clean.isEmpty else { return nil }
        let lower = clean.lowercased()
        let body = lower.hasPrefix("+") || lower.hasPrefix("-") ? String(lower.dropFirst()) : lower
        if ["inf", "infinity", "nan"].contains(body) { return Double(lower) }
        guard body.unicodeScalars.allSatisfy({ "0123456789.e+-".unicodeScalars.contains($0) }) else { return nil }
        return Double(clean)
    }

    /// Removes underscores that sit between two digits; nil if any other underscore.
    private static func withoutDigitUnderscores(_ s: String) -> String? {
        let c = Array(s)
        var out = ""
        for (i, ch) in c.enumerated() {
            if ch == "_" {
                guard i > 0, i < c.count - 1, c[i - 1].isASCII, c[i - 1].isNumber,
                      c[i + 1].isASCII, c[i + 1].isNumber else { return nil }
                continue
            }
            out.append(ch)
        }
        return out
    }
}
