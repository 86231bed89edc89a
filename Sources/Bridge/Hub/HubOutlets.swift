/// Where a hub's news goes beyond its own connections: channel events to the observer (the
/// webhooks), shares to the state authority, published events to the other nodes of a cluster.
public struct HubOutlets: Sendable {
    public var observer: (any ChannelEventObserver)?
    /// The cluster's adapter when there is one (it is then also the authority).
    public var cluster: (any ClusterAdapter)?
    public var authority: any StateAuthority

    public init(observer: (any ChannelEventObserver)? = nil, cluster: (any ClusterAdapter)? = nil,
                authority: (any StateAuthority)? = nil) {
        self.observer = observer
        self.cluster = cluster
        self.authority = authority ?? cluster ?? LocalAuthority()
    }
}
