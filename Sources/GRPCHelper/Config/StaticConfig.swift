// The built-in static configuration items of an RPC server (grpc-helper's static
// configuration table, in its README): names, descriptions, validators and defaults.

/// The built-in static items. Each call makes new items (a config set owns its items).
public enum RpcStaticConfig {
    /// "S", "M", "H", "D", "MIDNIGHT", "W0".."W6" (any case): the rollover units of
    /// Python's TimedRotatingFileHandler.
    public static let logIntervalUnits: Set<String> =
        ["S", "M", "H", "D", "MIDNIGHT", "W0", "W1", "W2", "W3", "W4", "W5", "W6"]

    public static func items() -> [Config] {
        func item(_ name: String, _ description: String, _ validator: RpcConfigValidator,
                  _ value: String, custom: ConfigCustomValidator? = nil) -> Config {
            // The names and validators here are fixed and valid: a failure is a programming error.
            try! Config(name: name, description: description, defaultValue: value,
                        validator: validator, customValidator: custom)
        }
        return [
            item("rpc-max-workers", "Maximum parallel RPC worker threads", .configValidPosInt, "30"),
            item("rpc-shutdown-grace", "Grace period for pending calls to be terminated on shutdown (seconds)",
                 .configValidPosFloat, "30"),
            item("rpc-shutdown-timeout", "Final timeout before real shutdown (i.e. end of process; seconds)",
                 .configValidPosFloat, "60"),
            item("rpc-logs-folder", "Folder (absolute or workspace-relative) where to store rolling logs",
                 .configValidString, "logs"),
            item("rpc-logs-backup", "Backup log files to be persisted for each manager on rollover",
                 .configValidInt, "10"),
            item("rpc-logs-interval-unit", "Logs rollover interval unit (S, M, H, D, MIDNIGHT, W0-W6)",
                 .configValidCustom, "H", custom: { name, value in
                     guard logIntervalUnits.contains(value.uppercased()) else {
                         throw RpcException("Invalid interval unit for \(name): \(value)",
                                            code: .errorParamInvalid)
                     }
                 }),
            item("rpc-logs-interval", "Logs rollover interval (in interval units)", .configValidPosInt, "1"),
            item("rpc-main-host", "Main RPC server host (to be used by proxied services)",
                 .configValidString, "localhost"),
            item("rpc-main-port", "Main RPC server port (to be used by proxied services)",
                 .configValidPosInt, "54321"),
            item("rpc-client-timeout",
                 "Timeout for RPC client when server is unreachable or proxy not registered yet (seconds)",
                 .configValidPosFloat, "60"),
            item("rpc-event-retain-timeout", "Retain timeout for event queues on interruption (seconds)",
                 .configValidPosInt, "300"),
            item("rpc-event-keepalive-timeout", "Timeout for sending keep alive empty events (seconds)",
                 .configValidPosInt, "60"),
            // Not grpc-helper's (its queues have no bound): the undelivered events an event
            // queue keeps; past it its oldest events are dropped, with a logged warning.
            item("rpc-event-queue-max", "Maximum undelivered events kept per event queue (oldest dropped beyond)",
                 .configValidPosInt, "10000"),
            // Not grpc-helper's (anyone who reaches its port may administer it): who may.
            item("rpc-admin-peers",
                 "Peers allowed to shut the server down, set or reset config items and logger levels, register or "
                 + "forget proxies: 'any' (anyone), 'local' (loopback and unix-socket peers only)",
                 .configValidCustom, "any", custom: { name, value in
                     guard value == "any" || value == "local" else {
                         throw RpcException("Invalid value for \(name): \(value) (expected 'any' or 'local')",
                                            code: .errorParamInvalid)
                     }
                 }),
        ]
    }
}
