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
        JSONWriter.object {
            $0.field("name", kind.rawValue)
            $0.field("channel", channel)
            if let event { $0.field("event", event) }
            if let data { $0.field("data", data) }
            if let socketID { $0.field("socket_id", socketID) }
            if let userID { $0.field("user_id", userID) }
            if let subscriptionCount { $0.field("subscription_count", subscriptionCount) }
        }.text
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
}
