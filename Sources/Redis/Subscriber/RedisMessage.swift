/// A message published to a channel this subscriber listens to.
public struct RedisMessage: Hashable, Sendable {
    public let channel: String
    /// The pattern that matched, for messages received through `psubscribe`.
    public let pattern: String?
    public let payload: [UInt8]

    public init(channel: String, pattern: String? = nil, payload: [UInt8]) {
        self.channel = channel
        self.pattern = pattern
        self.payload = payload
    }
}

/// A channel name or a glob pattern (`news.*`).
public enum RedisSubscription: Hashable, Sendable {
    case channel(String)
    case pattern(String)
}

/// What Redis confirmed or refused about subscriptions. After a reconnect every
/// subscription is confirmed again.
public enum RedisSubscriptionEvent: Hashable, Sendable {
    /// Active now; `count` is how many this connection has.
    case subscribed(RedisSubscription, count: Int)
    case unsubscribed(RedisSubscription, count: Int)
    /// An error reply, such as `NOPERM` for a channel an ACL user may not read.
    case refused(String)
}
