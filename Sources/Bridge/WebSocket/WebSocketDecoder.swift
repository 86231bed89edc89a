/// The per-connection decoder of a client's byte stream: frames in, messages out.
///
/// It composes the frame parser (header rules, unmasking), fragment reassembly
/// (RFC 6455 §5.4), the message size limit and incremental UTF-8 validation of
/// text. It owns every partial frame and fragment, so the caller hands it each
/// read's bytes once and keeps nothing. Between messages it holds no buffer
/// capacity: an idle connection costs only `MemoryLayout<WebSocketDecoder>.size`.
///
/// Copies: a frame whose whole payload is in the input is unmasked straight into
/// the message's array (one copy). A payload that arrives over several reads or
/// frames is appended to a buffer reserved up to the end of the frame, but at most
/// `reserveAhead` ahead of the bytes received, so a header alone cannot make the
/// server allocate `maxFrameBytes`; beyond that the buffer grows by doubling.
public struct WebSocketDecoder: Sendable {
    /// Largest buffer reserved for bytes that have not arrived yet.
    static let reserveAhead = 64 * 1024

    private var parser: FrameParser
    private let maxMessageBytes: Int
    /// The data message being reassembled; `[]` between messages.
    private var message: [UInt8] = []
    /// A control frame payload that arrived in pieces; `[]` otherwise.
    private var control: [UInt8] = []
    /// Opcode of the unfinished fragmented data message; nil between messages.
    private var messageOpcode: Opcode?
    private var utf8 = UTF8Validator()

    public init(limits: WebSocketLimits = WebSocketLimits()) {
        parser = FrameParser(maxFrameBytes: limits.maxFrameBytes)
        maxMessageBytes = limits.maxMessageBytes
    }

    /// True when no partial frame or message is held: the decoder owns no buffer.
    public var isIdle: Bool {
        parser.isBetweenFrames && messageOpcode == nil && message.capacity == 0 && control.capacity == 0
    }

    /// Bytes reserved for partial frames and messages, for tests of the memory bounds.
    var bufferedCapacity: Int { message.capacity + control.capacity }

    /// Consumes bytes and returns at most one message; call again with `input[consumed...]`
    /// until all input is consumed. It stops right after a message, so `consumed` may be
    /// less than `input.count`; without a message it always consumes all of `input`.
    /// The decoder owns partial frames and fragments, so the caller never keeps unconsumed bytes.
    ///
    /// On error, send a close frame with the error's code and stop reading: the decoder
    /// must not be used again.
    public mutating func parse(_ input: UnsafeRawBufferPointer) throws(WebSocketError) -> (consumed: Int, message: WebSocketMessage?) {
        var consumed = 0
        while consumed < input.count {
            if parser.isReadingPayload {
                consumed += try readPayload(UnsafeRawBufferPointer(rebasing: input[consumed...]))
            } else {
                let (count, header) = try parser.readHeader(UnsafeRawBufferPointer(rebasing: input[consumed...]))
                consumed += count
                guard let header else { break }
                try startFrame(header)
                if let message = try readWholeFrame(header, UnsafeRawBufferPointer(rebasing: input[consumed...])) {
                    return (consumed + header.payloadLength, message)
                }
                if !header.opcode.isControl && header.opcode != .continuation {
                    messageOpcode = header.opcode
                }
            }
            if !parser.isReadingPayload, let message = try finishFrame() {
                return (consumed, message)
            }
        }
        return (consumed, nil)
    }

    /// Applies the fragmentation rules (RFC 6455 §5.4) and the message limit as soon
    /// as a header is known, before any of its payload is buffered.
    private func startFrame(_ header: FrameParser.Header) throws(WebSocketError) {
        switch header.opcode {
        case .continuation:
            guard messageOpcode != nil else { throw .unexpectedContinuation }
        case .text, .binary:
            guard messageOpcode == nil else { throw .unfinishedMessage }
        default:
            // Control frames may come between fragments and are delivered at once (RFC 6455 §5.4).
            return
        }
        guard header.payloadLength <= maxMessageBytes - message.count else {
            throw .messageTooBig(limit: maxMessageBytes)
        }
    }

    /// The fast path: an unfragmented message or a control frame whose payload is all
    /// in `input` is unmasked straight into its own array and returned.
    private mutating func readWholeFrame(_ header: FrameParser.Header, _ input: UnsafeRawBufferPointer) throws(WebSocketError) -> WebSocketMessage? {
        let length = header.payloadLength
        guard input.count >= length else { return nil }
        switch header.opcode {
        case .text where header.fin:
            let payload = Self.readPayloadArray(input, count: length, parser: &parser)
            guard UTF8Validator.isValid(payload) else { throw .invalidUTF8 }
            return .text(payload)
        case .binary where header.fin:
            return .binary(Self.readPayloadArray(input, count: length, parser: &parser))
        case .close, .ping, .pong:
            return try Self.controlMessage(header.opcode, Self.readPayloadArray(input, count: length, parser: &parser))
        default:
            return nil
        }
    }

    /// Reads the part of the current payload that is in `input`; text is validated
    /// chunk by chunk so invalid UTF-8 fails mid-frame (RFC 6455 §8.1).
    private mutating func readPayload(_ input: UnsafeRawBufferPointer) throws(WebSocketError) -> Int {
        if parser.opcode.isControl {
            return Self.appendPayload(input, parser: &parser, to: &control)
        }
        let start = message.count
        let count = Self.appendPayload(input, parser: &parser, to: &message)
        if messageOpcode == .text {
            var validator = utf8
            let invalid = message.withUnsafeBytes { validator.validate(UnsafeRawBufferPointer(rebasing: $0[start...])) }
            guard invalid == nil else { throw .invalidUTF8 }
            utf8 = validator
        }
        return count
    }

    /// Called when a frame's payload is complete; returns the message it completes, if any.
    private mutating func finishFrame() throws(WebSocketError) -> WebSocketMessage? {
        if parser.opcode.isControl {
            var payload: [UInt8] = []
            swap(&payload, &control)
            return try Self.controlMessage(parser.opcode, payload)
        }
        guard parser.fin else { return nil }
        guard let opcode = messageOpcode else { preconditionFailure("data frame finished outside a message") }
        var payload: [UInt8] = []
        swap(&payload, &message)
        messageOpcode = nil
        if opcode == .text {
            // A sequence cut short by the end of the message is invalid too; a complete
            // validator is back in its initial state, ready for the next message.
            guard utf8.isComplete else { throw .invalidUTF8 }
            return .text(payload)
        }
        return .binary(payload)
    }

    private static func controlMessage(_ opcode: Opcode, _ payload: [UInt8]) throws(WebSocketError) -> WebSocketMessage {
        switch opcode {
        case .ping:
            return .ping(payload)
        case .pong:
            return .pong(payload)
        default:
            // RFC 6455 §5.5.1: an optional 2-byte code, then an optional UTF-8 reason.
            if payload.isEmpty { return .close(code: nil, reason: []) }
            guard payload.count >= 2 else { throw .truncatedCloseCode }
            let code = CloseCode(rawValue: UInt16(payload[0]) << 8 | UInt16(payload[1]))
            guard code.isValidOnWire else { throw .invalidCloseCode(code) }
            let reason = Array(payload[2...])
            guard UTF8Validator.isValid(reason) else { throw .invalidCloseReason }
            return .close(code: code, reason: reason)
        }
    }

    private static func readPayloadArray(_ input: UnsafeRawBufferPointer, count: Int, parser: inout FrameParser) -> [UInt8] {
        guard count > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = parser.readPayload(UnsafeRawBufferPointer(rebasing: input[..<count]), into: buffer.baseAddress!)
        }
    }

    /// Appends what `input` holds of the current payload to `buffer`, unmasked in place.
    private static func appendPayload(_ input: UnsafeRawBufferPointer, parser: inout FrameParser, to buffer: inout [UInt8]) -> Int {
        let count = min(input.count, parser.payloadRemaining)
        let start = buffer.count
        if start + count > buffer.capacity {
            let endOfFrame = start + parser.payloadRemaining
            // Doubling keeps many small fragments linear; the last frame knows where the message ends.
            let doubled = parser.fin ? min(2 * buffer.capacity, endOfFrame) : 2 * buffer.capacity
            buffer.reserveCapacity(max(start + count, doubled, min(endOfFrame, start + reserveAhead)))
        }
        buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[..<count]))
        buffer.withUnsafeMutableBytes { bytes in
            let tail = bytes.baseAddress! + start
            _ = parser.readPayload(UnsafeRawBufferPointer(start: tail, count: count), into: tail)
        }
        return count
    }
}
