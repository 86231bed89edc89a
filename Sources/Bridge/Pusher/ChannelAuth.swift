import Support

/// Checks the `auth` token of a subscription: `"<app key>:<hex HMAC-SHA256(secret, string to sign)>"`
/// where the string is `<socket_id>:<channel>` and, for presence, `:<channel_data>` with the exact
/// bytes the client sent (PROTOCOL.md §1.7).
public struct ChannelAuth: Sendable {
    public let appKey: String
    let secret: [UInt8]

    public init(appKey: String, secret: String) {
        self.appKey = appKey
        self.secret = Array(secret.utf8)
    }

    public enum Verdict: Sendable, Equatable {
        case valid
        /// Carries the string the client should have signed: Pusher puts it in its error message,
        /// it reveals nothing secret, and it is the best debugging aid there is.
        case invalid(expectedStringToSign: String)
    }

    public static func stringToSign(socketID: String, channel: String, channelData: String? = nil) -> String {
        guard let channelData else { return "\(socketID):\(channel)" }
        return "\(socketID):\(channel):\(channelData)"
    }

    public func signature(of stringToSign: String) -> String {
        Digest.hex(Digest.hmacSHA256(key: secret, message: Array(stringToSign.utf8)))
    }

    public func verify(auth: String, socketID: String, channel: String, channelData: String? = nil) -> Verdict {
        verify(auth: auth, stringToSign: Self.stringToSign(socketID: socketID, channel: channel, channelData: channelData))
    }

    /// The user-signin string: `<socket_id>::user::<user_data>`.
    public static func signinStringToSign(socketID: String, userData: String) -> String {
        "\(socketID)::user::\(userData)"
    }

    public func verify(auth: String, stringToSign expected: String) -> Verdict {
        guard let colon = auth.firstIndex(of: ":"), auth[..<colon] == appKey else {
            return .invalid(expectedStringToSign: expected)
        }
        let given = Array(auth[auth.index(after: colon)...].utf8)
        let wanted = Array(signature(of: expected).utf8)
        return Digest.constantTimeEquals(given, wanted) ? .valid : .invalid(expectedStringToSign: expected)
    }

    /// Pusher's wording for a wrong signature, which users search for: the string to sign reveals
    /// nothing secret, and it is the best debugging aid there is.
    public static func mismatchMessage(expected: String, given auth: String) -> String {
        let givenSignature = auth.firstIndex(of: ":").map { auth[auth.index(after: $0)...] } ?? auth[...]
        return "Invalid signature: Expected HMAC SHA256 hex digest of \(expected), but got \(givenSignature)"
    }
}
