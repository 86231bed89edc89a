/// Where a hub's news goes beyond its own connections: channel events to the observer (the
/// webhooks), published events to the other nodes of a cluster. Both nil: a single node alone.
public struct HubOutlets: Sendable {
    public var observer: (any ChannelEventObserver)?
    public var cluster: (any ClusterAdapter)?

    public init(observer: (any ChannelEventObserver)? = nil, cluster: (any ClusterAdapter)? = nil) {
        self.observer = observer
        self.cluster = cluster
    }
}
