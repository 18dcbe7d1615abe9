/// The most response (or request) bytes a sender may have queued before `send` blocks:
/// the sender waits until HTTP/2 flow control lets them out.
let sendBufferLimit = 1 << 20

/// Turns received DATA bytes into messages: deframing, then decompression within the
/// receive limit. Shared by the server and the client side of a call (event loop only).
struct MessageReader {
    private var deframer: MessageDeframer
    /// Set once the peer's grpc-encoding is known (nil: identity).
    var decompressor: MessageDecompressor?
    let limit: Int
    /// false: compressed messages are delivered as they came.
    let decompresses: Bool

    init(limit: Int, decompresses: Bool = true) {
        self.limit = limit
        self.decompresses = decompresses
        deframer = MessageDeframer(maxMessageSize: limit)
    }

    /// Bytes of a message not yet complete (non-zero at end of stream: truncated).
    var hasPartialMessage: Bool { deframer.bufferedByteCount > 0 }

    /// The bytes held for a message not yet complete.
    var partialBytes: Int { deframer.bufferedByteCount }

    /// Drops the bytes held (the call is over): their memory goes now.
    mutating func discardPartial() {
        deframer = MessageDeframer(maxMessageSize: limit)
    }

    /// Feeds DATA bytes and passes each complete message (and whether it arrived
    /// compressed) to `deliver`. Returns the status that ends the call on a bad message.
    mutating func read(_ bytes: UnsafeRawBufferPointer, _ deliver: ([UInt8], Bool) -> Void) -> Status? {
        deframer.append(bytes)
        do {
            while let (compressed, payload) = try deframer.next() {
                guard compressed && decompresses else {
                    deliver(payload, compressed)
                    continue
                }
                guard let d = decompressor else {
                    return Status(.internalError, "compressed message received without grpc-encoding")
                }
                deliver(try d.decompress(payload, limit: limit), true)
            }
            return nil
        } catch let e as DeframeError {
            if case .messageTooLarge = e { return Status(.resourceExhausted, e.description) }
            return Status(.internalError, e.description)
        } catch let e as CompressionError {
            return e.limitExceeded
                ? Status(.resourceExhausted, "decompressed message larger than max (\(limit))")
                : Status(.internalError, "could not decompress message: \(e.message)")
        } catch {
            return Status(.internalError, "\(error)")
        }
    }
}

/// Messages received and not yet taken by the reading thread, guarded by the call's
/// monitor. While the reader is behind (more than one message waiting), the event loop
/// holds back WINDOW_UPDATEs; the pop that empties the queue says to release them.
struct InboundQueue {
    private var items: [(message: [UInt8], compressed: Bool)] = []
    private var head = 0
    private var windowHeld = false

    var isEmpty: Bool { head == items.count }

    /// Whether the window is held for this queue (a reader behind).
    var isHolding: Bool { windowHeld }

    /// Appends a message. Returns true when the window must now be held.
    mutating func push(_ message: [UInt8], compressed: Bool) -> Bool {
        items.append((message, compressed))
        if items.count - head > 1 && !windowHeld {
            windowHeld = true
            return true
        }
        return false
    }

    /// Takes the oldest message; `releaseWindow` is true when the queue ran empty while
    /// the window was held.
    mutating func pop() -> (message: [UInt8], compressed: Bool, releaseWindow: Bool)? {
        guard head < items.count else { return nil }
        let m = items[head]
        items[head] = ([], false)
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        }
        var release = false
        if isEmpty && windowHeld {
            windowHeld = false
            release = true
        }
        return (m.message, m.compressed, release)
    }

    mutating func removeAll() {
        items.removeAll()
        head = 0
    }
}
