/// Why a client's frames were rejected, with the close code to send back.
/// After the decoder throws one, the server sends a close frame with `closeCode`
/// and `reason` and stops reading: the stream cannot be resynchronised.
public struct WebSocketError: Error, Equatable, Sendable, CustomStringConvertible {
    public var closeCode: CloseCode
    /// A short human-readable reason, small enough for a close frame (RFC 6455 §5.5.1).
    public var reason: String

    public init(closeCode: CloseCode, reason: String) {
        self.closeCode = closeCode
        self.reason = reason
    }

    public var description: String { "\(closeCode) \(reason)" }

    /// A client frame without the mask bit (RFC 6455 §5.1).
    public static let unmaskedFrame = WebSocketError(closeCode: .protocolError, reason: "client frame not masked")

    /// RSV1–3 set while no extension was negotiated (RFC 6455 §5.2).
    public static let reservedBitsSet = WebSocketError(closeCode: .protocolError, reason: "reserved bits set")

    /// An opcode RFC 6455 §5.2 reserves for future use.
    public static func reservedOpcode(_ opcode: Opcode) -> WebSocketError {
        WebSocketError(closeCode: .protocolError, reason: "reserved opcode 0x\(String(opcode.rawValue, radix: 16))")
    }

    /// A control frame with FIN clear (RFC 6455 §5.5).
    public static let fragmentedControlFrame = WebSocketError(closeCode: .protocolError, reason: "fragmented control frame")

    /// A control frame declaring more than 125 payload bytes (RFC 6455 §5.5).
    public static let controlFrameTooLong = WebSocketError(closeCode: .protocolError, reason: "control frame payload over 125 bytes")

    /// A 64-bit payload length with its most significant bit set (RFC 6455 §5.2).
    public static let invalidPayloadLength = WebSocketError(closeCode: .protocolError, reason: "payload length has top bit set")

    /// A frame longer than `WebSocketLimits.maxFrameBytes`.
    public static func frameTooBig(limit: Int) -> WebSocketError {
        WebSocketError(closeCode: .messageTooBig, reason: "frame exceeds \(limit) bytes")
    }

    /// A message whose fragments add up to more than `WebSocketLimits.maxMessageBytes`.
    public static func messageTooBig(limit: Int) -> WebSocketError {
        WebSocketError(closeCode: .messageTooBig, reason: "message exceeds \(limit) bytes")
    }

    /// A continuation frame with no fragmented message to continue (RFC 6455 §5.4).
    public static let unexpectedContinuation = WebSocketError(closeCode: .protocolError, reason: "continuation frame without a message")

    /// A text or binary frame while a fragmented message is unfinished (RFC 6455 §5.4).
    public static let unfinishedMessage = WebSocketError(closeCode: .protocolError, reason: "new message before the previous one finished")

    /// A text message that is not valid UTF-8 (RFC 6455 §8.1).
    public static let invalidUTF8 = WebSocketError(closeCode: .invalidPayload, reason: "text message is not valid UTF-8")

    /// A close frame with a one-byte payload: too short for a code (RFC 6455 §5.5.1).
    public static let truncatedCloseCode = WebSocketError(closeCode: .protocolError, reason: "close payload of one byte")

    /// A close code that may not be sent on the wire (RFC 6455 §7.4).
    public static func invalidCloseCode(_ code: CloseCode) -> WebSocketError {
        WebSocketError(closeCode: .protocolError, reason: "invalid close code \(code.rawValue)")
    }

    /// A close reason that is not valid UTF-8 (RFC 6455 §5.5.1).
    public static let invalidCloseReason = WebSocketError(closeCode: .invalidPayload, reason: "close reason is not valid UTF-8")
}
