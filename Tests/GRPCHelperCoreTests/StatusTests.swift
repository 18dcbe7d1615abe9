import Testing
@testable import GRPCHelperCore

@Suite struct StatusTests {
    @Test(arguments: [
        (StatusCode.ok, 0, "OK"),
        (.cancelled, 1, "CANCELLED"),
        (.unknown, 2, "UNKNOWN"),
        (.invalidArgument, 3, "INVALID_ARGUMENT"),
        (.deadlineExceeded, 4, "DEADLINE_EXCEEDED"),
        (.notFound, 5, "NOT_FOUND"),
        (.alreadyExists, 6, "ALREADY_EXISTS"),
        (.permissionDenied, 7, "PERMISSION_DENIED"),
        (.resourceExhausted, 8, "RESOURCE_EXHAUSTED"),
        (.failedPrecondition, 9, "FAILED_PRECONDITION"),
        (.aborted, 10, "ABORTED"),
        (.outOfRange, 11, "OUT_OF_RANGE"),
        (.unimplemented, 12, "UNIMPLEMENTED"),
        (.internalError, 13, "INTERNAL"),
        (.unavailable, 14, "UNAVAILABLE"),
        (.dataLoss, 15, "DATA_LOSS"),
        (.unauthenticated, 16, "UNAUTHENTICATED"),
    ] as [(StatusCode, Int32, String)])
    func codeValuesAndNames(code: StatusCode, raw: Int32, name: String) {
        #expect(code.rawValue == raw)
        #expect(code.description == name)
        #expect(StatusCode(rawValue: raw) == code)
    }

    @Test(arguments: [17, -1, 1000] as [Int32])
    func unknownCodesHaveNumericNames(raw: Int32) {
        #expect(StatusCode(rawValue: raw).description == "CODE_\(raw)")
    }

    /// http-grpc-status-mapping.md
    @Test(arguments: [
        (400, StatusCode.internalError),
        (401, .unauthenticated),
        (403, .permissionDenied),
        (404, .unimplemented),
        (429, .unavailable),
        (502, .unavailable),
        (503, .unavailable),
        (504, .unavailable),
        (200, .unknown),
        (204, .unknown),
        (301, .unknown),
        (402, .unknown),
        (405, .unknown),
        (408, .unknown),
        (500, .unknown),
        (501, .unknown),
        (505, .unknown),
        (0, .unknown),
    ] as [(Int, StatusCode)])
    func httpStatusMapping(http: Int, expected: StatusCode) {
        #expect(StatusCode(httpStatus: http) == expected)
    }

    @Test func statusBasics() {
        let ok = Status.ok
        #expect(ok.isOK)
        #expect(ok.code == .ok)
        #expect(ok.message.isEmpty)
        #expect(ok.details == nil)
        #expect(ok.description == "OK")

        let failed = Status(.notFound, "no such thing", details: [1, 2, 3])
        #expect(!failed.isOK)
        #expect(failed.code == .notFound)
        #expect(failed.message == "no such thing")
        #expect(failed.details == [1, 2, 3])
        #expect(failed.description == "NOT_FOUND: no such thing")
        #expect(failed != Status(.notFound, "no such thing"))
        #expect(failed == Status(.notFound, "no such thing", details: [1, 2, 3]))
    }

    @Test func statusIsThrowable() {
        #expect(throws: Status(.unavailable, "down")) {
            throw Status(.unavailable, "down")
        }
    }
}
