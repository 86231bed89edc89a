import Support

/// Who may subscribe to which channel (PROTOCOL.md §1.5–§1.7), as a pure function of the request,
/// the app's settings and what the connection has proved. The session keeps the checks that
/// depend on its own state (rate, repeats, memory, count) and acts on the verdict.
enum SubscribeAuthorization {
    /// `pusher:subscribe`'s data as the client sent it.
    struct Request: Equatable {
        let channel: String
        let auth: String?
        /// Presence: the exact JSON text the backend signed.
        let channelData: String?
    }

    /// What the connection has proved so far.
    struct Credentials: Equatable {
        let socketID: String
        /// The user it signed in as (`pusher:signin`), which alone opens `#server-to-user-{id}`.
        let signedInUser: String?
        /// Seed mode: the organization's JWT vouches for private and presence channels (never
        /// encrypted ones), and the presence identity is the client's `user_id` or else its socket id.
        let seed: Bool
        let seedUserID: String?
    }

    struct Grant: Equatable {
        let channel: ChannelName
        /// Presence channels: who the subscription is for.
        let member: PresenceIdentity?
    }

    static func authorize(_ request: Request, config: AppConfig, credentials: Credentials) -> Result<Grant, SubscribeRefusal> {
        guard let channel = ChannelName(request.channel, maxLength: config.maxChannelNameLength) else {
            return .failure(request.channel.utf8.count > config.maxChannelNameLength
                ? .nameTooLong(limit: config.maxChannelNameLength) : .invalidName(request.channel))
        }
        let granted = Grant(channel: channel, member: nil)
        let signature = ChannelAuth(appKey: config.key, secret: config.secret)
        let given = request.auth ?? ""
        switch channel.kind {
        case .public:
            return .success(granted)
        case .serverToUser(let owner):
            return owner == credentials.signedInUser ? .success(granted) : .failure(.notSignedInAs(owner, channel: channel.name))
        case .private where credentials.seed:
            return .success(granted)
        case .private, .encrypted:
            if case .invalid(let expected) = signature.verify(auth: given, socketID: credentials.socketID, channel: channel.name) {
                return .failure(.badSignature(expected: expected, given: given))
            }
            return .success(granted)
        case .presence where credentials.seed:
            let channelData = request.channelData
                ?? JSONWriter.object { $0.field("user_id", credentials.seedUserID ?? credentials.socketID) }.text
            return presenceMember(channelData, maxInfoBytes: config.maxPresenceMemberSizeBytes)
                .map { Grant(channel: channel, member: $0) }
        case .presence:
            guard let channelData = request.channelData else { return .failure(.missingChannelData) }
            if case .invalid(let expected) = signature.verify(auth: given, socketID: credentials.socketID, channel: channel.name,
                                                              channelData: channelData) {
                return .failure(.badSignature(expected: expected, given: given))
            }
            return presenceMember(channelData, maxInfoBytes: config.maxPresenceMemberSizeBytes)
                .map { Grant(channel: channel, member: $0) }
        }
    }

    /// Pusher's cap on the length of a presence user id (and of a signed-in user's id).
    static let maxUserIDLength = 128

    /// The presence identity in `channel_data`: `user_id` (a string or a number, kept as text)
    /// and `user_info` as the exact JSON text the backend signed.
    static func presenceMember(_ channelData: String, maxInfoBytes: Int) -> Result<PresenceIdentity, SubscribeRefusal> {
        let bytes = Array(channelData.utf8)
        guard let object = (try? JSONParser.parse(bytes))?.objectValue else { return .failure(.channelDataNotAnObject) }
        let id: String
        switch object["user_id"] {
        case .string(let text) where !text.isEmpty: id = text
        case .number(let text): id = text
        default: return .failure(.missingUserID)
        }
        guard id.utf8.count <= maxUserIDLength else { return .failure(.userIDTooLong(limit: maxUserIDLength)) }
        guard let info = object.member("user_info") else { return .success(PresenceIdentity(userID: id, info: "null")) }
        guard info.raw.count <= maxInfoBytes else { return .failure(.userInfoTooLarge(limit: maxInfoBytes)) }
        return .success(PresenceIdentity(userID: id, info: String(decoding: bytes[info.raw], as: UTF8.self)))
    }
}

/// A presence member as a subscription names it.
struct PresenceIdentity: Equatable, Sendable {
    let userID: String
    /// `user_info` as JSON text, `null` when none.
    let info: String
}

/// Why a subscription was refused. Each gets a `pusher:error` and a channel-scoped
/// `pusher:subscription_error` whose `type` and `status` tell the client what to do.
enum SubscribeRefusal: Error, Equatable {
    case invalidName(String)
    case nameTooLong(limit: Int)
    case notSignedInAs(String, channel: String)
    case badSignature(expected: String, given: String)
    case missingChannelData
    case channelDataNotAnObject
    case missingUserID
    case userIDTooLong(limit: Int)
    case userInfoTooLarge(limit: Int)
    // Refusals that depend on the connection's or the server's state (PusherSession+Subscribe.swift).
    case rateLimited(perSecond: Int)
    case overMemory
    case tooManySubscriptions(limit: Int)
    case presenceFull(channel: String, limit: Int)

    /// The `pusher:error` sent beside the `subscription_error`: 4009, unless the cause is load.
    var error: PusherError {
        switch self {
        case .rateLimited(let rate): .clientEventRejected("Subscription rejected due to rate limit (\(rate) per second)")
        case .overMemory: .overCapacity("Over capacity: the server is over its memory threshold, retry later")
        default: .unauthorized(message)
        }
    }

    var type: String {
        switch self {
        case .invalidName: "InvalidChannel"
        case .notSignedInAs, .badSignature, .missingChannelData: "AuthError"
        case .channelDataNotAnObject, .missingUserID: "InvalidChannelData"
        case .nameTooLong, .userIDTooLong, .userInfoTooLarge, .rateLimited, .tooManySubscriptions, .presenceFull: "LimitReached"
        case .overMemory: "OverCapacity"
        }
    }

    var status: Int {
        switch self {
        case .invalidName, .channelDataNotAnObject, .missingUserID: 400
        case .notSignedInAs, .badSignature, .missingChannelData: 401
        case .rateLimited: 429
        case .overMemory: 503
        case .nameTooLong, .userIDTooLong, .userInfoTooLarge, .tooManySubscriptions, .presenceFull: 4009
        }
    }

    var message: String {
        switch self {
        case .invalidName(let name): "Invalid channel name \"\(name)\": use only A-Z a-z 0-9 _ - = @ , . ;"
        case .nameTooLong(let limit): "Channel name is longer than \(limit) characters"
        case .notSignedInAs(let owner, let channel): "Only a connection signed in as user \(owner) may subscribe to \(channel)"
        case .badSignature(let expected, let given): ChannelAuth.mismatchMessage(expected: expected, given: given)
        case .missingChannelData: "Presence channels need channel_data with a user_id"
        case .channelDataNotAnObject: "channel_data must be a JSON object"
        case .missingUserID: "channel_data needs a non-empty user_id"
        case .userIDTooLong(let limit): "user_id is longer than \(limit) characters"
        case .userInfoTooLarge(let limit): "user_info is larger than \(limit) bytes"
        case .rateLimited: "Too many subscribe requests: retry later"
        case .overMemory: "The server is over its memory threshold: retry later"
        case .tooManySubscriptions(let limit): "A connection may hold at most \(limit) subscriptions"
        case .presenceFull(let channel, let limit): "Presence channel \(channel) is full (\(limit) members)"
        }
    }
}
