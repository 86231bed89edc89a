import Support
import Synchronization

/// One app's channels, presence members and signed-in users, and the fan-out to them.
///
/// Subscriber lists are kept per loop (`HubShard`, touched by its own loop only): a publish is one
/// task per loop that has subscribers, each queuing the same encoded frame on its own sockets, with
/// no lock and no copy per subscriber. This node's share of each channel (subscriber counts,
/// presence members, who is signed in) is in `directory`, behind one lock taken once per
/// subscribe, unsubscribe, signin or publish — never per subscriber. What a change means for the
/// whole channel (occupied, vacated, a member's arrival or departure, the count, the member list)
/// is decided by the `authority`, one path for one node or a cluster:
///
/// - Hub+Publishing.swift: events to subscribers, here and on the other nodes
/// - Hub+Subscriptions.swift: join and leave, the authority's answers, webhooks, counts
/// - Hub+Users.swift: signin, watchlists, user events, terminate
/// - Hub+Queries.swift, Hub+Cache.swift: the HTTP API's questions, cached channels
final class Hub: Sendable {
    let appID: String
    let group: LoopGroup
    let shards: [HubShard]
    let directory: Mutex<Directory>
    private let observer: (any ChannelEventObserver)?
    /// Decides what each change of this node's share means (`LocalAuthority` or the cluster's).
    let authority: any StateAuthority
    /// The other nodes; nil on a single node.
    let cluster: (any ClusterAdapter)?
    /// Shares go to the authority in the order they were made, outside the directory's lock.
    let handoff: ShareHandoff
    let debugLog: DebugLog

    struct Directory {
        var channels: [String: ChannelState] = [:]
        /// Signed-in connections per user id on this node: a user is online here while above zero.
        var onlineConnections: [String: Int] = [:]
        /// Their sum: this node's share of `Hub.onlineChannel`.
        var signedInConnections = 0
        /// Watched user id → the users here watching it, with how many of their connections do.
        var watchers: [String: [String: Int]] = [:]
        /// Channels whose `subscription_count` was held back by the throttle.
        var pendingCounts: Set<String> = []
        /// Channels holding a cached event (Hub+Cache.swift).
        var cachedChannels = 0
    }
    /// The app's `max_cache_channels`, kept current by the app.
    let cacheLimit = Atomic<Int>(AppConfig.defaultApp.maxCacheChannels)

    init(appID: String, group: LoopGroup, loopCount: Int, outlets: HubOutlets, debugLog: DebugLog) {
        self.appID = appID
        self.group = group
        self.observer = outlets.observer
        self.authority = outlets.authority
        self.cluster = outlets.cluster
        self.debugLog = debugLog
        handoff = ShareHandoff(authority: outlets.authority)
        shards = (0..<loopCount).map { _ in HubShard() }
        directory = Mutex(Directory())
    }

    func shard(_ loop: Int) -> HubShard { shards[loop] }

    /// Tells the observer (webhooks) and the debug console; false when the observer could not take the event.
    @discardableResult
    func emit(_ event: ChannelEvent) -> Bool {
        let accepted = observer?.app(appID, emitted: event) ?? true
        if accepted { debugLog.record(event) }
        return accepted
    }

    /// Runs `body` on every loop with that loop's shard, after what each loop has queued: the
    /// authority's news reaches a loop in the order it was decided, whichever thread it came from.
    func forEachShard(_ body: @escaping @Sendable (HubShard) -> Void) {
        let loops = group.loops
        for (index, loop) in loops.enumerated() where index < shards.count {
            let shard = shards[index]
            loop.enqueue { _ in body(shard) }
        }
    }

    /// Runs `body` with the session `socketID` on its loop (queued, as `forEachShard`), if it is still there.
    func withSession(_ socketID: String, onLoop loop: Int, _ body: @escaping @Sendable (PusherSession) -> Void) {
        let shard = shards[loop]
        group.loops[loop].enqueue { _ in shard.session(socketID).map(body) }
    }

    /// Closes every connection of the app on this node (it was disabled or removed).
    func closeAll(with error: PusherError) {
        forEachShard { shard in
            for session in shard.allSessions { session.fail(error) }
        }
    }
}
