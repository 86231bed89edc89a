import Support

/// One event of a webhook body (PROTOCOL.md §1.16), e.g. `{"name":"member_added","channel":"presence-x","user_id":"1"}`.
public struct WebhookEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case channelOccupied = "channel_occupied"
        case channelVacated = "channel_vacated"
        case memberAdded = "member_added"
        case memberRemoved = "member_removed"
        case clientEvent = "client_event"
        case cacheMiss = "cache_miss"
        case subscriptionCount = "subscription_count"
    }

    public let kind: Kind
    public let channel: String
    public var userID: String?
    /// Client events: the event name, its data as a string, the sender's socket id.
    public var event: String?
    public var data: String?
    public var socketID: String?
    public var subscriptionCount: Int?

    public init(kind: Kind, channel: String, userID: String? = nil, event: String? = nil, data: String? = nil,
                socketID: String? = nil, subscriptionCount: Int? = nil) {
        self.kind = kind
        self.channel = channel
        self.userID = userID
        self.event = event
        self.data = data
        self.socketID = socketID
        self.subscriptionCount = subscriptionCount
    }

    /// The event as it appears in the body's `events` array.
    public var json: String {
        var text = #"{"name":"\#(kind.rawValue)","channel":"# + Self.quoted(channel)
        if let event { text += #","event":"# + Self.quoted(event) }
        if let data { text += #","data":"# + Self.quoted(data) }
        if let socketID { text += #","socket_id":"# + Self.quoted(socketID) }
        if let userID { text += #","user_id":"# + Self.quoted(userID) }
        if let subscriptionCount { text += #","subscription_count":\#(subscriptionCount)"# }
        return text + "}"
    }

    /// At least what the event takes in the outbox, for the backlog bound: the fixed keys, the
    /// record's framing, and its strings counted twice (JSON escaping can double them).
    var estimatedBytes: Int {
        256 + 2 * (channel.utf8.count + (event?.utf8.count ?? 0) + (data?.utf8.count ?? 0)
                   + (socketID?.utf8.count ?? 0) + (userID?.utf8.count ?? 0))
    }

    /// `channel_vacated` and `member_removed` wait out the grace period; their opposites cancel them.
    var isDeparture: Bool { kind == .channelVacated || kind == .memberRemoved }

    /// What a departure and its matching arrival have in common (the channel, and the user).
    var pairKey: String {
        userID.map { channel + "\u{0}" + $0 } ?? channel
    }

    var isArrival: Bool { kind == .channelOccupied || kind == .memberAdded }

    private static func quoted(_ text: String) -> String {
        "\"" + JSONString.escaped(text) + "\""
    }
}
