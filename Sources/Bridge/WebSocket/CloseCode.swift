/// A close status code (RFC 6455 §7.4). Open, so that application codes
/// (3000–4999, e.g. Pusher's 4000–4299) are representable.
public struct CloseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16

    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    /// The purpose of the connection has been fulfilled.
    public static let normalClosure = CloseCode(rawValue: 1000)
    /// The endpoint is going away: server shutdown or page navigation.
    public static let goingAway = CloseCode(rawValue: 1001)
    /// The peer broke the framing rules.
    public static let protocolError = CloseCode(rawValue: 1002)
    /// The endpoint cannot accept this kind of data.
    public static let unsupportedData = CloseCode(rawValue: 1003)
    /// A text message (or close reason) is not valid UTF-8.
    public static let invalidPayload = CloseCode(rawValue: 1007)
    /// A generic policy violation.
    public static let policyViolation = CloseCode(rawValue: 1008)
    /// A frame or message exceeds the configured limit.
    public static let messageTooBig = CloseCode(rawValue: 1009)
    /// Client only: the server did not negotiate a required extension.
    public static let mandatoryExtension = CloseCode(rawValue: 1010)
    /// The server hit an unexpected condition.
    public static let internalError = CloseCode(rawValue: 1011)
    /// The server is overloaded; the client may retry later (IANA registry, after the RFC).
    public static let tryAgainLater = CloseCode(rawValue: 1013)

    /// Whether a peer may send this code in a close frame (RFC 6455 §7.4.1, §7.4.2).
    /// 1004 is reserved, 1005, 1006 and 1015 are for local reporting only, 1012–1014
    /// are registered with IANA since the RFC (service restart, try again later,
    /// bad gateway), 1016–2999 are unassigned, 3000–4999 belong to libraries and apps.
    public var isValidOnWire: Bool {
        switch rawValue {
        case 1000...1003, 1007...1014, 3000...4999: return true
        default: return false
        }
    }

    public var description: String { String(rawValue) }
}
