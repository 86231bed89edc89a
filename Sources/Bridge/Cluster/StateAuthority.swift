/// Who decides what a subscription change means for a channel (DESIGN.md §2): whether it became
/// occupied or vacated, whether a presence user arrived or departed, what the member list and its
/// version are, how many subscribe, and the cache channels' last events. Each node writes its own
/// share of a channel (`record`) and gets back the transitions; exactly one writer sees each one
/// and acts on it, so every hub rule has one path. Two siblings: `LocalAuthority` (in process, a
/// single node) and the Redis adapter (a cluster), chosen once at start.
///
/// Every method returns at once; completions run in the order the calls were made, on the
/// authority's thread or the caller's, never under a lock the caller holds.
public protocol StateAuthority: Sendable {
    /// Called once by the broker before anything is recorded. The authority sends member events
    /// (`ClusterMessage.memberChange`, in version order) and changes nobody asked for to the node.
    func start(_ node: any ClusterNode)
    /// Writes this node's share of a channel; `completion` gets what that changed for the whole
    /// channel, or nil when the shared state cannot be reached (the node then decides alone, for
    /// its own clients).
    func record(_ share: ChannelShare, completion: @escaping @Sendable (ChannelChange?) -> Void)
    /// Writes every share of one app again and drops the app's channels this node no longer has;
    /// what that changes reaches `ClusterNode.apply`. For after the shared state lost this node's share.
    func restore(appID: String, _ shares: [ChannelShare])
    /// Keeps a cache channel's last event for later subscribers, for its TTL.
    func keepLastEvent(_ event: LastEvent)
    /// Answers for the HTTP API; nil when the shared state cannot be reached.
    func occupiedChannels(appID: String, completion: @escaping @Sendable ([ChannelSummary]?) -> Void)
    func channel(appID: String, name: String, completion: @escaping @Sendable (ChannelSummary?) -> Void)
    func presenceUserIDs(appID: String, channel: String, completion: @escaping @Sendable ([String]?) -> Void)
    /// Which of `userIDs` are members of `channel` (in their order).
    func presentMembers(appID: String, channel: String, among userIDs: [String], completion: @escaping @Sendable ([String]?) -> Void)
}

/// The seam between one broker node and the other nodes of its cluster. Without an adapter a
/// broker is a single node, its authority is a `LocalAuthority`, and nothing leaves the process:
/// that stays the fast path (one nil check per published event).
///
/// An adapter (Redis, in the executable) is the cluster's state authority, and it carries
/// `ClusterMessage`s: events for other nodes' subscribers, and theirs for this node.
public protocol ClusterAdapter: StateAuthority {
    /// This node's id, unique in the cluster.
    var nodeID: String { get }
    /// Sends to every other node.
    func broadcast(_ message: ClusterMessage)
}

/// The broker as its cluster adapter sees it.
public protocol ClusterNode: Sendable {
    /// Another node's message, for this node's connections.
    func receive(_ message: ClusterMessage)
    /// A change this node did not ask for: a dead node's share taken away, or a restore.
    func apply(_ change: ChannelChange)
    /// The shared state no longer holds this node's share (Redis lost its data, or the others took
    /// this node for dead): write it all again with `ClusterAdapter.restore`.
    func restoreShares()
    /// Open connections per app on this node, and (in return) on all the others, for `max_connections`.
    func connectionCounts() -> [String: Int]
    func otherNodesHave(connections: [String: Int])
}

/// What one node holds of one channel, written to the shared state after every change there.
public struct ChannelShare: Sendable, Equatable {
    public let appID: String
    public let channel: String
    /// This node's subscriptions to the channel.
    public let subscriptions: Int
    /// Presence: the members whose connections here changed (`record`: at most one; `restore`:
    /// all of this node's members).
    public let members: [MemberShare]
    /// A presence subscribe waits for the channel's members in the answer.
    public let wantsMembers: Bool
    /// A cache channel subscribe waits for the cluster's last event.
    public let wantsLastEvent: Bool
    /// A presence subscribe: the most users the channel may have, cluster-wide. A new user past it
    /// is refused (`ChannelChange.refusedAsFull`) and nothing is written.
    public let memberCap: Int?
    /// The socket whose subscribe this is: left out of its own `member_added`.
    public let joiner: String?

    public init(appID: String, channel: String, subscriptions: Int, members: [MemberShare] = [], wantsMembers: Bool = false,
                wantsLastEvent: Bool = false, memberCap: Int? = nil, joiner: String? = nil) {
        self.appID = appID
        self.channel = channel
        self.subscriptions = subscriptions
        self.members = members
        self.wantsMembers = wantsMembers
        self.wantsLastEvent = wantsLastEvent
        self.memberCap = memberCap
        self.joiner = joiner
    }
}

public struct MemberShare: Sendable, Equatable {
    public let userID: String
    /// The user's connections to the channel on this node.
    public let connections: Int
    /// `user_info` as JSON text (`null` when none).
    public let info: String

    public init(userID: String, connections: Int, info: String) {
        self.userID = userID
        self.connections = connections
        self.info = info
    }
}

/// What a change did to the whole cluster, for one channel or one presence member.
public enum ClusterTransition: Sendable, Equatable {
    case unchanged
    /// The first subscription (or the user's first connection) anywhere.
    case arrived
    /// Arrived again within the grace window of a departure whose webhook node `holder` holds back.
    case returned(holder: String)
    /// The last one anywhere left.
    case departed
}

/// The shared state's answer: one channel after a change.
public struct ChannelChange: Sendable, Equatable {
    public struct Member: Sendable, Equatable {
        public let userID: String
        public let transition: ClusterTransition
        /// `user_info` JSON text, for arrivals.
        public let info: String

        public init(userID: String, transition: ClusterTransition, info: String) {
            self.userID = userID
            self.transition = transition
            self.info = info
        }
    }

    public let appID: String
    public let channel: String
    /// Subscriptions and presence users over all nodes, after the change.
    public let subscriptionCount: Int
    public let userCount: Int
    public let transition: ClusterTransition
    public let memberTransitions: [Member]
    /// The presence members (`id`, `user_info`) when the share asked for them.
    public let members: [(id: String, info: String)]
    /// Grows with every member transition of the channel: `members` holds every transition up to
    /// this one, and `memberTransitions` are this one.
    public let membersVersion: Int
    /// A cache channel's last event, when the share asked for it; and whether this subscribe is the
    /// first to find the cache empty since it emptied (this node sends the `cache_miss` webhook).
    public let lastEvent: LastEvent?
    public let lastEventMissed: Bool
    /// The share was not written: its new presence user would pass the channel's member cap.
    public let refusedAsFull: Bool

    public init(appID: String, channel: String, subscriptionCount: Int, userCount: Int, transition: ClusterTransition,
                memberTransitions: [Member], members: [(id: String, info: String)], membersVersion: Int,
                lastEvent: LastEvent? = nil, lastEventMissed: Bool = false, refusedAsFull: Bool = false) {
        self.appID = appID
        self.channel = channel
        self.subscriptionCount = subscriptionCount
        self.userCount = userCount
        self.transition = transition
        self.memberTransitions = memberTransitions
        self.members = members
        self.membersVersion = membersVersion
        self.lastEvent = lastEvent
        self.lastEventMissed = lastEventMissed
        self.refusedAsFull = refusedAsFull
    }

    /// The answer to a presence subscribe whose new user would pass the member cap.
    public static func presenceFull(appID: String, channel: String) -> ChannelChange {
        ChannelChange(appID: appID, channel: channel, subscriptionCount: 0, userCount: 0, transition: .unchanged,
                      memberTransitions: [], members: [], membersVersion: 0, refusedAsFull: true)
    }

    public static func == (a: ChannelChange, b: ChannelChange) -> Bool {
        a.appID == b.appID && a.channel == b.channel && a.subscriptionCount == b.subscriptionCount && a.userCount == b.userCount
            && a.transition == b.transition && a.memberTransitions == b.memberTransitions && a.membersVersion == b.membersVersion
            && a.lastEvent == b.lastEvent && a.lastEventMissed == b.lastEventMissed && a.refusedAsFull == b.refusedAsFull
            && a.members.map(\.id) == b.members.map(\.id) && a.members.map(\.info) == b.members.map(\.info)
    }
}

/// One channel, cluster-wide.
public struct ChannelSummary: Sendable, Equatable {
    public let name: String
    public let subscriptionCount: Int
    public let userCount: Int
    /// Cache channels, when asked for one channel: its last event.
    public let lastEvent: LastEvent?

    public init(name: String, subscriptionCount: Int, userCount: Int, lastEvent: LastEvent? = nil) {
        self.name = name
        self.subscriptionCount = subscriptionCount
        self.userCount = userCount
        self.lastEvent = lastEvent
    }
}

/// A cache channel's last event as the cluster keeps it.
public struct LastEvent: Sendable, Equatable {
    public let appID: String
    public let channel: String
    /// The Pusher envelope, as every node sends it.
    public let envelope: [UInt8]
    /// The event's data as published, for `GET …/channels/{name}?info=cache`.
    public let data: String
    /// Time left to live.
    public let ttlMs: Int

    public init(appID: String, channel: String, envelope: [UInt8], data: String, ttlMs: Int) {
        self.appID = appID
        self.channel = channel
        self.envelope = envelope
        self.data = data
        self.ttlMs = ttlMs
    }
}
