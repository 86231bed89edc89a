/// One complete thing a client sent: a reassembled data message or a control frame.
public enum WebSocketMessage: Sendable, Equatable {
    /// A text message; the bytes are valid UTF-8.
    case text([UInt8])
    case binary([UInt8])
    /// Answer with a pong carrying the same payload (RFC 6455 §5.5.2).
    case ping([UInt8])
    case pong([UInt8])
    /// `code` is nil when the close frame had no payload; `reason` is valid UTF-8.
    case close(code: CloseCode?, reason: [UInt8])
}
