/// Something that happened on an app's channels that its backend may want to hear about
/// (the webhook events of PROTOCOL.md §1.16). The hub emits them; the executable hands them to
/// the Webhooks module, which the core knows nothing about.
public enum ChannelEvent: Sendable, Equatable {
    case channelOccupied(channel: String)
    case channelVacated(channel: String)
    case memberAdded(channel: String, userID: String)
    case memberRemoved(channel: String, userID: String)
    /// `data` is the event's data as the client sent it (JSON text).
    case clientEvent(channel: String, event: String, data: String, socketID: String, userID: String?)
    case cacheMiss(channel: String)
    case subscriptionCount(channel: String, count: Int)
}

/// Receives channel events. Called on event loops and, for occupancy and membership, on the
/// thread that delivers the state authority's answers, never under a lock; one channel's
/// transitions come in the order the authority decided them. It must only hand the event off
/// and never call back into the broker.
public protocol ChannelEventObserver: Sendable {
    /// Returns false when the event could not be accepted (a full backlog); the hub then refuses
    /// a client event with an error to its sender rather than deliver it without its webhook.
    func app(_ appID: String, emitted event: ChannelEvent) -> Bool
}
