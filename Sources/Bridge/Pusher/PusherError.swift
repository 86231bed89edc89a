import Support

/// Pusher's error codes (PROTOCOL.md §1.4): sent in a `pusher:error` frame and, when the
/// connection ends, as the WebSocket close code. The range tells pusher-js what to do next:
/// 4000–4099 do not reconnect, 4100–4199 back off, 4200–4299 reconnect at once.
public struct PusherError: Sendable, Equatable, Error {
    /// Nil for errors Pusher sends with `"code":null` (a malformed message).
    public let code: Int?
    public let message: String

    public init(_ code: Int?, _ message: String) {
        self.code = code
        self.message = message
    }

    public static let appNotFound = 4001
    public static let appDisabled = 4003
    public static let overConnectionQuota = 4004
    public static let invalidVersionFormat = 4006
    public static let unsupportedProtocol = 4007
    public static let noProtocolVersion = 4008
    public static let unauthorized = 4009
    public static let overCapacity = 4100
    public static let reconnectNow = 4200
    public static let pongNotReceived = 4201
    public static let clientEventRejected = 4301
    public static let watchlistLimit = 4302

    /// `{"event":"pusher:error","data":{"code":…,"message":"…"}}`: unlike every other `pusher:`
    /// event, `data` is an object, which is what the native clients require (PROTOCOL.md §1.2).
    public var frameBytes: [UInt8] {
        let code = self.code.map(String.init) ?? "null"
        return Array(#"{"event":"pusher:error","data":{"code":\#(code),"message":""#.utf8)
            + Array(JSONString.escaped(message).utf8) + Array(#""}}"#.utf8)
    }

    public var frame: OutboundBuffer { .webSocketFrame(.text, frameBytes) }

    public var closeCode: CloseCode { CloseCode(rawValue: UInt16(code ?? 4000)) }
}
