import Testing
@testable import GRPCHelperCore

@Suite struct MetadataTests {
    @Test func addAndRead() throws {
        var metadata = Metadata()
        #expect(metadata.isEmpty)
        try metadata.add("x-user", "alice")
        try metadata.add("x-trace.id_2", "")
        try metadata.addBinary("x-blob-bin", [0, 1, 0xFF])
        try metadata.add("x-user", "bob")

        #expect(metadata.count == 4)
        #expect(!metadata.isEmpty)
        #expect(metadata.first("x-user") == "alice")
        #expect(metadata.values(forKey: "x-user") == [.string("alice"), .string("bob")])
        #expect(metadata.first("x-trace.id_2") == "")
        #expect(metadata.firstBinary("x-blob-bin") == [0, 1, 0xFF])
        #expect(metadata.first("x-blob-bin") == nil, "binary values are not text")
        #expect(metadata.firstBinary("x-user") == nil, "text values are not binary")
        #expect(metadata.first("missing") == nil)
        #expect(metadata.values(forKey: "missing").isEmpty)
        #expect(metadata.first("X-User") == nil, "lookups are exact")

        let keys = metadata.map(\.key)
        #expect(keys == ["x-user", "x-trace.id_2", "x-blob-bin", "x-user"], "insertion order")
        #expect(metadata.map(\.value) == [.string("alice"), .string(""), .binary([0, 1, 0xFF]), .string("bob")])
        #expect(metadata.description == "[x-user: alice, x-trace.id_2: , x-blob-bin: <3 bytes>, x-user: bob]")
    }

    @Test(arguments: [
        ("", "empty"),
        ("X-Upper", "uppercase"),
        ("a b", "invalid character"),
        ("a/b", "invalid character"),
        ("a:b", "invalid character"),
        ("clé", "invalid character"),
        ("x-data-bin", "addBinary"),
        (":path", "reserved"),
        (":authority", "reserved"),
        ("grpc-status", "reserved"),
        ("grpc-timeout", "reserved"),
        ("grpc-custom", "reserved"),
        ("content-type", "reserved"),
        ("te", "reserved"),
        ("user-agent", "reserved"),
        ("connection", "reserved"),
        ("keep-alive", "reserved"),
        ("proxy-connection", "reserved"),
        ("transfer-encoding", "reserved"),
        ("upgrade", "reserved"),
    ])
    func addRejectsBadKeys(key: String, reason: String) {
        var metadata = Metadata()
        let error = #expect(throws: MetadataError.self) { try metadata.add(key, "value") }
        #expect(error?.description.contains(reason) == true, "\(String(describing: error))")
        #expect(metadata.isEmpty)
    }

    @Test(arguments: ["a\nb", "tab\there", "\r", "caf\u{E9}", "del\u{7F}", "nul\u{0}", "☺"])
    func addRejectsNonPrintableValues(value: String) {
        var metadata = Metadata()
        let error = #expect(throws: MetadataError.self) { try metadata.add("x-key", value) }
        #expect(error?.message.contains("x-key") == true)
        #expect(metadata.isEmpty)
    }

    @Test func addAcceptsAllPrintableASCII() throws {
        var metadata = Metadata()
        // Every printable byte, the space inside the value (not at its ends).
        let printable = String(decoding: Array(0x21 ... 0x7E) + [0x20, 0x21] as [UInt8], as: UTF8.self)
        try metadata.add("x-printable", printable)
        #expect(metadata.first("x-printable") == printable)
    }

    @Test(arguments: [" lead", "trail ", " ", "  both  "])
    func addRejectsEdgeWhitespace(value: String) {
        var metadata = Metadata()
        let error = #expect(throws: MetadataError.self) { try metadata.add("x-key", value) }
        #expect(error?.message.contains("whitespace") == true)
        #expect(metadata.isEmpty)
    }

    @Test(arguments: [
        ("x-data", "-bin"),
        ("X-Data-bin", "uppercase"),
        ("x data-bin", "invalid character"),
        ("grpc-status-details-bin", "reserved"),
        ("grpc-trace-bin", "reserved"),
        ("", "empty"),
    ])
    func addBinaryRejectsBadKeys(key: String, reason: String) {
        var metadata = Metadata()
        let error = #expect(throws: MetadataError.self) { try metadata.addBinary(key, [1, 2]) }
        #expect(error?.description.contains(reason) == true, "\(String(describing: error))")
        #expect(metadata.isEmpty)
    }

    @Test(arguments: [
        (":path", true), (":status", true), ("grpc-status", true), ("grpc-message", true),
        ("grpc-encoding", true), ("grpc-accept-encoding", true), ("grpc-status-details-bin", true),
        ("content-type", true), ("Content-Type", true), ("te", true), ("user-agent", true),
        ("host", false), ("connection", true), ("keep-alive", true), ("proxy-connection", true),
        ("transfer-encoding", true), ("upgrade", true),
        ("x-user", false), ("grpc", false), ("grpcx-a", false), ("content-typex", false),
        ("tee", false), ("authorization", false), ("x-grpc-thing", false), ("custom-bin", false),
    ])
    func reservedNames(name: String, reserved: Bool) {
        #expect(Metadata.isReserved(name) == reserved)
    }

    @Test func headerFieldsEncodeBinaryUnpadded() throws {
        var metadata = Metadata()
        try metadata.add("x-a", "1")
        try metadata.addBinary("x-b-bin", Array("f".utf8))
        try metadata.addBinary("x-c-bin", [])
        try metadata.add("x-a", "2")
        let fields = metadata.headerFields()
        #expect(fields.map(\.name) == ["x-a", "x-b-bin", "x-c-bin", "x-a"])
        #expect(fields.map(\.value) == ["1", "Zg", "", "2"])
    }

    @Test func fromHeaderFieldsFiltersAndDecodes() {
        let fields: [(name: String, value: String)] = [
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", "0"),
            ("grpc-message", "ok"),
            ("grpc-encoding", "gzip"),
            ("grpc-status-details-bin", "AAAA"),
            ("te", "trailers"),
            ("user-agent", "test"),
            ("x-text", "hello"),
            ("x-padded-bin", "Zg=="),
            ("x-unpadded-bin", "Zm8"),
            ("x-broken-bin", "Z!"),
            ("x-badlength-bin", "Zm9vY"),
            ("X-Mixed", "folded"),
            ("x-text", "again"),
            ("x-empty-bin", ""),
        ]
        let metadata = Metadata.fromHeaderFields(fields)
        #expect(metadata.map(\.key) == ["x-text", "x-padded-bin", "x-unpadded-bin", "x-mixed", "x-text", "x-empty-bin"])
        #expect(metadata.values(forKey: "x-text") == [.string("hello"), .string("again")])
        #expect(metadata.firstBinary("x-padded-bin") == Array("f".utf8))
        #expect(metadata.firstBinary("x-unpadded-bin") == Array("fo".utf8))
        #expect(metadata.firstBinary("x-empty-bin") == [])
        #expect(metadata.values(forKey: "x-broken-bin").isEmpty)
        #expect(metadata.values(forKey: "x-badlength-bin").isEmpty)
        #expect(metadata.first("x-mixed") == "folded")
        #expect(metadata.first("grpc-status") == nil)
    }

    @Test func wireRoundTrip() throws {
        var metadata = Metadata()
        try metadata.add("x-a", "value with spaces")
        try metadata.addBinary("x-b-bin", Array(0 ... 255))
        try metadata.add("x-a", "second")
        let decoded = Metadata.fromHeaderFields(metadata.headerFields())
        #expect(decoded.map(\.key) == metadata.map(\.key))
        #expect(decoded.map(\.value) == metadata.map(\.value))
    }

    @Test func uncheckedInitKeepsEntries() {
        let metadata = Metadata(unchecked: [(key: "x-a", value: .string("1")), (key: "x-a", value: .string("2"))])
        #expect(metadata.count == 2)
        #expect(metadata.values(forKey: "x-a") == [.string("1"), .string("2")])
    }
}
