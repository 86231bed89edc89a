import Support

/// Pusher's error codes (PROTOCOL.md §1.4): sent in a `pusher:error` frame and, when the
/// connection ends, as the WebSocket close code. The range tells pusher-js what to do next:
/// 4000–4099 do not reconnect, 4100–4199 back off, 4200–4299 reconnect at once.
public struct PusherError: Sendable, Equatable, Error {
    /// Nil for errors Pusher sends with `"code":null` (a malformed message).
    public let code: Int?
    public let message: String

    /// The codes Bridge sends.
    public enum Code: Int, Sendable {
        case appNotFound = 4001
        case appDisabled = 4003
        case overConnectionQuota = 4004
        case invalidVersionFormat = 4006
        case unsupportedProtocol = 4007
        case noProtocolVersion = 4008
        case unauthorized = 4009
        case overCapacity = 4100
        case reconnectNow = 4200
        case pongNotReceived = 4201
        case clientEventRejected = 4301
        case watchlistLimit = 4302
    }

    public init(_ code: Code?, _ message: String) {
        self.code = code?.rawValue
        self.message = message
    }

    // One factory per code, so that call sites read as what happened.
    public static func appNotFound(_ message: String) -> PusherError { PusherError(.appNotFound, message) }
    public static func appDisabled(_ message: String) -> PusherError { PusherError(.appDisabled, message) }
    public static func overConnectionQuota(_ message: String) -> PusherError { PusherError(.overConnectionQuota, message) }
    public static func invalidVersionFormat(_ message: String) -> PusherError { PusherError(.invalidVersionFormat, message) }
    public static func unsupportedProtocol(_ message: String) -> PusherError { PusherError(.unsupportedProtocol, message) }
    public static func noProtocolVersion(_ message: String) -> PusherError { PusherError(.noProtocolVersion, message) }
    public static func unauthorized(_ message: String) -> PusherError { PusherError(.unauthorized, message) }
    public static func overCapacity(_ message: String) -> PusherError { PusherError(.overCapacity, message) }
    public static func reconnectNow(_ message: String) -> PusherError { PusherError(.reconnectNow, message) }
    public static func pongNotReceived(_ message: String) -> PusherError { PusherError(.pongNotReceived, message) }
    public static func clientEventRejected(_ message: String) -> PusherError { PusherError(.clientEventRejected, message) }
    public static func watchlistLimit(_ message: String) -> PusherError { PusherError(.watchlistLimit, message) }
    /// A message Bridge cannot read: Pusher sends these with `"code":null`, and the connection stays open.
    public static func malformed(_ message: String) -> PusherError { PusherError(nil, message) }

    /// `{"event":"pusher:error","data":{"code":…,"message":"…"}}`: unlike every other `pusher:`
    /// event, `data` is an object, which is what the native clients require (PROTOCOL.md §1.2).
    public var frameBytes: [UInt8] {
        JSONWriter.object(reservingCapacity: 64 + message.utf8.count) {
            $0.field("event", "pusher:error")
            $0.objectField("data") {
                $0.field("code", orNull: code)
                $0.field("message", message)
            }
        }.bytes
    }

    public var frame: OutboundBuffer { .webSocketFrame(.text, frameBytes) }

    public var closeCode: CloseCode { CloseCode(rawValue: UInt16(code ?? 4000)) }
}
