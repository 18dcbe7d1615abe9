import Testing
@testable import GRPCHelperCore

/// The call state machine alone: events in, actions out, no sockets.
@Suite struct CallStateMachineTests {
    private static let ok = Status(.ok, "")

    private func server(streaming: Bool = false) -> CallStateMachine {
        CallStateMachine(side: .server, streamsOutbound: streaming)
    }

    private func message(_ r: CallStateMachine.Receive) -> [UInt8]? {
        if case .message(let m, _, _) = r { return m }
        return nil
    }

    private func isHeaders(_ h: CallStateMachine.Head?, _ compression: CompressionAlgorithm) -> Bool {
        if case .headers(_, let c)? = h { return c == compression }
        return false
    }

    private func isTrailersOnly(_ h: CallStateMachine.Head?) -> Bool {
        if case .trailersOnly? = h { return true }
        return false
    }

    private func endStatus(_ e: CallStateMachine.End?) -> Status? {
        if case .status(let s, _)? = e { return s }
        return nil
    }

    // MARK: server, outbound

    @Test func unaryResponseIsHeadersDataTrailersInOneFlush() throws {
        var m = server()
        let r1 = try m.queueMessage([1, 2, 3], compression: .gzip) == true
        #expect(r1)
        let r2 = try m.finish(Self.ok, trailers: nil) == false
        #expect(r2, "one flush is already scheduled")
        let f = m.flush(streamOpen: true)
        #expect(isHeaders(f.head, .gzip))
        #expect(f.data == [[1, 2, 3]])
        #expect(endStatus(f.end) == Self.ok)
        #expect(f.finished)
        #expect(m.responseStarted && m.transportEnded)
        // Nothing is left, and nothing goes out twice.
        let again = m.flush(streamOpen: true)
        #expect(again.head == nil && again.data.isEmpty && again.end == nil && !again.finished)
    }

    @Test func statusAloneIsTrailersOnly() throws {
        var m = server()
        let r3 = try m.finish(Status(.notFound, "no"), trailers: nil)
        #expect(r3)
        let f = m.flush(streamOpen: true)
        #expect(isTrailersOnly(f.head))
        #expect(endStatus(f.end) == Status(.notFound, "no"))
        #expect(f.finished && !m.responseStarted)
    }

    @Test func explicitInitialMetadataIsNeverTrailersOnly() throws {
        var m = server()
        var md = Metadata()
        try md.add("k", "v")
        let r4 = try m.queueHeaders(md, compression: .identity)
        #expect(r4)
        _ = try m.finish(Self.ok, trailers: nil)
        let f = m.flush(streamOpen: true)
        #expect(isHeaders(f.head, .identity))
        #expect(endStatus(f.end) == Self.ok)
    }

    @Test func headersAfterStartedOrFinishedAreRefused() throws {
        var m = server()
        _ = try m.queueHeaders(Metadata(), compression: .identity)
        #expect(throws: CallStateError.self) { _ = try m.queueHeaders(Metadata(), compression: .identity) }
        var n = server()
        _ = try n.finish(Self.ok, trailers: nil)
        #expect(throws: CallStateError.self) { _ = try n.queueHeaders(Metadata(), compression: .identity) }
    }

    @Test func singleResponseMethodSendsOneMessage() throws {
        var m = server(streaming: false)
        _ = try m.queueMessage([1])
        #expect(throws: CallStateError.self) { _ = try m.queueMessage([2]) }
        var s = server(streaming: true)
        _ = try s.queueMessage([1])
        _ = try s.queueMessage([2])
        #expect(s.messagesSent == 2)
        let r5 = s.flush(streamOpen: true).data == [[1], [2]]
        #expect(r5)
    }

    @Test func finishTwiceAndSendAfterFinishAreRefused() throws {
        var m = server(streaming: true)
        _ = try m.finish(Self.ok, trailers: nil)
        #expect(throws: CallStateError.self) { _ = try m.finish(Self.ok, trailers: nil) }
        #expect(throws: CallStateError.self) { _ = try m.queueMessage([1]) }
        #expect(m.hasEnded && m.closeQueued)
    }

    @Test func compressionIsFixedOnceHeadersAreQueued() throws {
        var m = server(streaming: true)
        #expect(m.canSetCompression)
        _ = try m.queueMessage([1], compression: .deflate)
        #expect(!m.canSetCompression)
        var n = server()
        _ = try n.queueHeaders(Metadata(), compression: .identity)
        #expect(!n.canSetCompression)
    }

    @Test func trailingMetadataGoesWithTheStatus() throws {
        var m = server()
        var t = Metadata()
        try t.add("trailer", "1")
        m.setTrailingMetadata(t)
        _ = try m.finish(Self.ok, trailers: nil)
        guard case .status(_, let sent)? = m.flush(streamOpen: true).end else {
            Issue.record("no status")
            return
        }
        #expect(sent.first("trailer") == "1")
        var n = server()
        n.setTrailingMetadata(t)
        var replaced = Metadata()
        try replaced.add("other", "2")
        _ = try n.finish(Self.ok, trailers: replaced)
        guard case .status(_, let sent2)? = n.flush(streamOpen: true).end else {
            Issue.record("no status")
            return
        }
        #expect(sent2.first("trailer") == nil && sent2.first("other") == "2")
    }

    @Test func closedStreamTakesNothingButTheWindow() throws {
        var m = server()
        _ = try m.queueMessage([1])
        _ = try m.finish(Self.ok, trailers: nil)
        let f = m.flush(streamOpen: false)
        #expect(f.head == nil && f.data.isEmpty && f.end == nil && !f.finished)
    }

    // MARK: server, cancellation and the transport

    @Test func cancellationFailsSendsAndReadsButKeepsQueuedMessages() throws {
        var m = server(streaming: true)
        let r6 = m.received([7], compressed: false) == false
        #expect(r6)
        let r7 = m.end(Status(.cancelled, "gone"), clearInbound: false)
        #expect(r7)
        let r8 = !m.end(Status(.deadlineExceeded, "late"), clearInbound: false)
        #expect(r8, "the first reason stays")
        #expect(m.isReadable)
        let r9 = message(m.receive()) == [7]
        #expect(r9)
        guard case .cancelled(let s) = m.receive() else {
            Issue.record("expected the cancellation")
            return
        }
        #expect(s.code == .cancelled)
        #expect(throws: RPCError.self) { _ = try m.queueMessage([1]) }
        #expect(throws: RPCError.self) { _ = try m.queueHeaders(Metadata(), compression: .identity) }
        #expect(m.sendMayContinue && m.hasEnded)
    }

    @Test func noCancellationOnceTheHandlersStatusWentOut() throws {
        var m = server()
        _ = try m.finish(Self.ok, trailers: nil)
        _ = m.flush(streamOpen: true)
        let r10 = !m.end(Status(.cancelled, "stream closed"), clearInbound: false)
        #expect(r10)
        #expect(m.endStatus == nil)
    }

    @Test func transportEndsOnce() {
        var m = server()
        let r11 = m.endTransport()
        #expect(r11)
        let r12 = !m.endTransport()
        #expect(r12)
        // The handler's later status is not written.
        _ = try? m.finish(Self.ok, trailers: nil)
        let f = m.flush(streamOpen: true)
        #expect(f.head == nil && f.end == nil)
    }

    @Test func endOfRequestReadsAsEnd() {
        var m = server()
        #expect(!m.isReadable)
        m.receivedEnd()
        #expect(m.isReadable)
        guard case .end = m.receive() else {
            Issue.record("expected the end")
            return
        }
    }

    // MARK: inbound window

    @Test func windowIsHeldWhileTheReaderIsBehindAndReleasedWhenItCatchesUp() {
        var m = server(streaming: true)
        let r13 = m.received([1], compressed: false) == false
        #expect(r13)
        let r14 = m.received([2], compressed: true) == true
        #expect(r14, "two waiting: hold")
        let r15 = m.received([3], compressed: false) == false
        #expect(r15, "held already")
        guard case .message([1], false, let flush1) = m.receive() else { Issue.record("1"); return }
        #expect(!flush1)
        guard case .message([2], true, _) = m.receive() else { Issue.record("2"); return }
        #expect(m.lastMessageWasCompressed)
        guard case .message([3], false, let flush3) = m.receive() else { Issue.record("3"); return }
        #expect(flush3, "the queue ran empty: release, with a flush")
        let f = m.flush(streamOpen: true)
        #expect(f.releaseWindow)
        let r16 = !m.flush(streamOpen: true).releaseWindow
        #expect(r16)
    }

    @Test func aReleaseIsVoidWhenTheReaderFellBehindAgainBeforeTheFlush() {
        // The reader empties the queue (a release is scheduled), then two messages arrive
        // before the event loop flushes: the queue holds again, so the flush must not
        // release (it would leave the window open while the reader stays behind).
        var m = server(streaming: true)
        _ = m.received([1], compressed: false)
        let held = m.received([2], compressed: false)
        #expect(held)
        guard case .message([1], _, _) = m.receive(), case .message([2], _, let flush) = m.receive() else {
            Issue.record("messages"); return
        }
        #expect(flush)
        _ = m.received([3], compressed: false)
        let heldAgain = m.received([4], compressed: false)
        #expect(heldAgain, "behind again: hold")
        let voided = !m.flush(streamOpen: true).releaseWindow
        #expect(voided)
        // It releases once the reader catches up again.
        guard case .message([3], _, _) = m.receive(), case .message([4], _, let flush2) = m.receive() else {
            Issue.record("messages 3, 4"); return
        }
        #expect(flush2)
        let released = m.flush(streamOpen: true).releaseWindow
        #expect(released)
    }

    // MARK: send buffer

    @Test func sendBlocksBeyondTheBufferUntilDrained() throws {
        var m = CallStateMachine(side: .client)
        let big = [UInt8](repeating: 0, count: sendBufferLimit + 10)
        _ = try m.queueMessage(big)
        #expect(!m.sendMayContinue)
        let r17 = m.drained(5) == false
        #expect(r17)
        let r18 = m.drained(5) == true
        #expect(r18, "back within the limit: wake the sender")
        #expect(m.sendMayContinue)
        let r19 = m.drained(100) == false
        #expect(r19)
        var n = CallStateMachine(side: .client)
        _ = try n.queueMessage(big)
        let r20 = n.end(Status(.cancelled, ""), clearInbound: true)
        #expect(r20)
        #expect(n.sendMayContinue, "an ended call never blocks its sender")
    }

    // MARK: client

    @Test func clientStartsOnce() {
        var m = CallStateMachine(side: .client)
        let r21 = m.start()
        #expect(r21)
        let r22 = !m.start()
        #expect(r22)
        let r23 = !m.start(callbacks: true)
        #expect(r23)
        #expect(m.deliversToCallbacks)
    }

    @Test func clientSendsThenHalfCloses() throws {
        var m = CallStateMachine(side: .client)
        let r24 = try m.queueMessage([1])
        #expect(r24)
        let r25 = !m.closeSend()
        #expect(r25)
        let r26 = !m.closeSend()
        #expect(r26)
        #expect(throws: CallStateError.self) { _ = try m.queueMessage([2]) }
        let f = m.flush(streamOpen: true)
        #expect(f.data == [[1]])
        guard case .halfClose? = f.end else { Issue.record("no half-close"); return }
        #expect(!f.finished && !m.transportEnded, "half-closed, still receiving")
    }

    @Test func clientOperationsWaitForTheStream() throws {
        var m = CallStateMachine(side: .client)
        _ = try m.queueMessage([1])
        _ = m.closeSend()
        let early = m.flush(streamOpen: false)
        #expect(early.data.isEmpty && early.end == nil && !early.finished)
        let f = m.flush(streamOpen: true)
        #expect(f.data == [[1]])
        guard case .halfClose? = f.end else { Issue.record("the half-close waited too"); return }
    }

    @Test func clientCancelResetsOnceAndDropsTheRest() throws {
        var m = CallStateMachine(side: .client)
        _ = try m.queueMessage([1])
        let r27 = m.received([9], compressed: false) == false
        #expect(r27)
        let r28 = m.cancel(Status(.cancelled, "Cancelled")) == false
        #expect(r28, "a flush is already scheduled")
        let r29 = m.cancel(Status(.cancelled, "again")) == nil
        #expect(r29, "ended already")
        #expect(m.endStatus?.message == "Cancelled")
        guard case .end = m.receive() else { Issue.record("unread messages are dropped"); return }
        #expect(throws: RPCError.self) { _ = try m.queueMessage([2]) }
        let f = m.flush(streamOpen: true)
        guard case .reset? = f.end else { Issue.record("no reset"); return }
        #expect(f.data.isEmpty && f.finished)
    }

    @Test func clientCancelBeforeTheStreamEndsTheCallOnTheWire() {
        var m = CallStateMachine(side: .client)
        _ = m.start()
        let r30 = m.cancel(Status(.cancelled, "Cancelled")) == true
        #expect(r30)
        let f = m.flush(streamOpen: false)
        #expect(f.finished && f.end == nil)
        #expect(m.transportEnded)
    }

    @Test func clientStatusKeepsTrailersAndEndsReads() throws {
        var m = CallStateMachine(side: .client)
        var t = Metadata()
        try t.add("x", "y")
        let r31 = m.received([1], compressed: false) == false
        #expect(r31)
        let r32 = m.end(Status(.ok, ""), trailers: t, clearInbound: false)
        #expect(r32)
        #expect(m.trailers.first("x") == "y")
        let r33 = message(m.receive()) == [1]
        #expect(r33, "messages before the status are still read")
        guard case .end = m.receive() else { Issue.record("then the end"); return }
        #expect(throws: RPCError.self) { _ = try m.queueMessage([1]) }
    }

    @Test func callbackModeHoldsTheWindowUntilTheCallbacksCatchUp() {
        var m = CallStateMachine(side: .client)
        _ = m.start(callbacks: true)
        let r34 = m.received([1], compressed: false) == false
        #expect(r34)
        let r35 = m.received([2], compressed: false) == true
        #expect(r35)
        #expect(!m.isReadable, "callback messages are not for receive()")
        let r36 = m.callbackTookMessage() == false
        #expect(r36)
        let r37 = m.callbackTookMessage() == true
        #expect(r37, "all taken: release")
        let r38 = m.flush(streamOpen: true).releaseWindow
        #expect(r38)
    }
}

/// The client's reading of response headers, trailers and resets.
@Suite struct ClientResponseTests {
    @Test func headersGiveTheEncodingOrAFailure() throws {
        #expect(try ClientResponse.checkHeaders([(":status", "200"), ("content-type", "application/grpc")]).get() == nil)
        #expect(try ClientResponse.checkHeaders([(":status", "200"), ("content-type", "application/grpc+proto"),
                                                 ("grpc-encoding", "gzip")]).get() == .gzip)
        #expect(try ClientResponse.checkHeaders([(":status", "200"), ("content-type", "application/grpc"),
                                                 ("grpc-encoding", "identity")]).get() == nil)
        func failure(_ fields: [HeaderField]) -> Status? {
            if case .failure(let s) = ClientResponse.checkHeaders(fields) { return s }
            return nil
        }
        #expect(failure([(":status", "503"), ("content-type", "application/grpc")])?.code == .unavailable)
        #expect(failure([(":status", "404")])?.code == .unimplemented)
        #expect(failure([(":status", "200"), ("content-type", "text/html")])?.code == .unknown)
        #expect(failure([(":status", "200")])?.message == "invalid content-type '' in response")
        #expect(failure([(":status", "200"), ("content-type", "application/grpc"),
                         ("grpc-encoding", "br")])?.code == .internalError)
    }

    @Test func trailersGiveTheStatus() {
        let s = ClientResponse.status(fromTrailers: [("grpc-status", "5"), ("grpc-message", "not%20here")])
        #expect(s == Status(.notFound, "not here"))
        #expect(ClientResponse.status(fromTrailers: [("grpc-status", "99")]).code == .unknown)
        #expect(ClientResponse.status(fromTrailers: [("grpc-status", "x1")]).message == "invalid grpc-status 'x1'")
        #expect(ClientResponse.status(fromTrailers: [("grpc-status", "")]).code == .unknown)
        #expect(ClientResponse.status(fromTrailers: []) == Status(.unknown, "missing grpc-status in trailers"))
        let d = ClientResponse.status(fromTrailers: [("grpc-status", "3"), ("grpc-status-details-bin", "AQI")])
        #expect(d.details == [1, 2])
    }

    @Test func resetsMapToStatuses() {
        #expect(ClientResponse.status(forReset: 7, deadlinePassed: false, connectionLost: false).code == .unavailable)
        #expect(ClientResponse.status(forReset: 8, deadlinePassed: false, connectionLost: false).code == .cancelled)
        #expect(ClientResponse.status(forReset: 8, deadlinePassed: true, connectionLost: false).code == .deadlineExceeded)
        #expect(ClientResponse.status(forReset: 11, deadlinePassed: false, connectionLost: false).code == .resourceExhausted)
        #expect(ClientResponse.status(forReset: 12, deadlinePassed: false, connectionLost: false).code == .permissionDenied)
        #expect(ClientResponse.status(forReset: 0, deadlinePassed: false, connectionLost: false).code == .internalError)
        #expect(ClientResponse.status(forReset: 2, deadlinePassed: false, connectionLost: true).code == .unavailable)
        #expect(ClientResponse.status(forReset: 2, deadlinePassed: false, connectionLost: false).code == .internalError)
    }
}
