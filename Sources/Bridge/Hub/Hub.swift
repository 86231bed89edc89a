import Support
import Synchronization

/// One app's channels, presence members and signed-in users, and the fan-out to them.
///
/// Subscriber lists are kept per loop (`HubShard`, touched by its own loop only): a publish is one
/// task per loop that has subscribers, each queuing the same encoded frame on its own sockets, with
/// no lock and no copy per subscriber. What the loops must agree on (subscriber counts, presence
/// members, cached events, who is online) is in `directory`, behind one lock taken once per
/// subscribe, unsubscribe, signin or publish — never per subscriber.
final class Hub: Sendable {
    let appID: String
    let group: LoopGroup
    let shards: [HubShard]
    let directory: Mutex<Directory>
    private let observer: (any ChannelEventObserver)?
    /// Nil on a single node; else the cluster's messages and shared state (Hub+Cluster.swift).
    let cluster: (any ClusterAdapter)?
    private let debugLog: DebugLog

    struct Directory {
        var channels: [String: ChannelState] = [:]
        /// Signed-in connections per user id: a user is online while above zero.
        var onlineConnections: [String: Int] = [:]
        /// Their sum: this node's share of the cluster's `Hub.onlineChannel`.
        var signedInConnections = 0
        /// Watched user id → the users watching it, with how many of their connections do.
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
        self.cluster = outlets.cluster
        self.debugLog = debugLog
        shards = (0..<loopCount).map { _ in HubShard() }
        directory = Mutex(Directory())
    }

    func shard(_ loop: Int) -> HubShard { shards[loop] }

    static var now: Double { Double(EventLoop.monotonicNanos()) / 1e9 }

    /// Tells the observer (webhooks) and the debug console; false when the observer could not take the event.
    @discardableResult
    func emit(_ event: ChannelEvent) -> Bool {
        let accepted = observer?.app(appID, emitted: event) ?? true
        if accepted { debugLog.record(event) }
        return accepted
    }

    // MARK: Publishing

    /// Queues `frame` to every subscriber of `channel`, on every loop that has one, except the
    /// connection whose socket id is `excluded`.
    func publish(_ frame: OutboundBuffer, to channel: String, except excluded: String? = nil) {
        let perLoop = directory.withLock { $0.channels[channel]?.subscribersPerLoop }
        guard let perLoop else { return }
        let loops = group.loops
        for (index, count) in perLoop.enumerated() where count > 0 && index < loops.count {
            let shard = shards[index]
            loops[index].execute { _ in shard.deliver(frame, to: channel, except: excluded) }
        }
    }

    /// An event published through the HTTP API: delivered, and remembered on cache channels.
    func publishAPIEvent(name: String, channel: ChannelName, data: ArraySlice<UInt8>, dataString: String,
                         except excluded: String?, cacheTTL: Int) {
        debugLog.record(.apiMessage, channel: channel.name, event: name, data: dataString,
                        detail: excluded.map { "excluding socket \($0)" })
        let envelope = PusherEvent.encode(event: name, channel: channel.name, data: .json(data))
        let ttl = channel.isCache ? cacheTTL : nil
        deliver(envelope, to: channel.name, except: excluded, cacheTTL: ttl, dataString: dataString)
        if let ttl { cluster?.keepLastEvent(LastEvent(appID: appID, channel: channel.name, envelope: envelope, data: dataString, ttlMs: ttl * 1000)) }
        cluster?.broadcast(.channelEvent(appID: appID, channel: channel.name, envelope: envelope, excluded: excluded,
                                         cacheTTL: ttl, dataString: ttl == nil ? nil : dataString))
    }

    /// An event for every subscriber of the cluster (client events, seed-mode triggers, subscription counts).
    func publishEvent(_ envelope: [UInt8], to channel: String, except excluded: String?) {
        deliver(envelope, to: channel, except: excluded, cacheTTL: nil, dataString: nil)
        cluster?.broadcast(.channelEvent(appID: appID, channel: channel, envelope: envelope, excluded: excluded,
                                         cacheTTL: nil, dataString: nil))
    }

    /// A `#server-to-user-{id}` event from the HTTP API: to this node's connections of that user and the other nodes'.
    func publishUserEvent(_ envelope: [UInt8], toUser userID: String) {
        publish(.webSocketFrame(.text, envelope), toUser: userID)
        cluster?.broadcast(.userEvent(appID: appID, userID: userID, envelope: envelope))
    }

    /// Another node's message, for this node's connections only.
    func receive(_ message: ClusterMessage) {
        switch message {
        case let .channelEvent(_, channel, envelope, excluded, cacheTTL, dataString):
            deliver(envelope, to: channel, except: excluded, cacheTTL: cacheTTL, dataString: dataString)
        case let .userEvent(_, userID, envelope):
            publish(.webSocketFrame(.text, envelope), toUser: userID)
        case let .terminateUser(_, userID):
            closeConnections(of: userID)
        case let .memberChange(_, channel, userID, added, _, _, _) where channel == Hub.onlineChannel:
            let watchers = directory.withLock { $0.onlineWatchers(of: userID) }
            announce(userID, online: added, to: watchers)
        case let .memberChange(_, channel, userID, added, info, excluded, version):
            let frame = added ? Hub.memberAddedFrame(channel, userID, info ?? "null") : Hub.memberRemovedFrame(channel, userID)
            deliverMemberEvent(frame, to: channel, except: excluded, version: version)
        case let .heldArrival(_, holder, channel, userID):
            if holder == cluster?.nodeID { emit(Hub.arrival(channel, userID: userID)) }
        }
    }

    /// Queues one frame of `envelope` on this node's subscribers; on cache channels (`cacheTTL`
    /// set) also keeps it as the channel's last event.
    private func deliver(_ envelope: [UInt8], to channel: String, except excluded: String?, cacheTTL: Int?, dataString: String?) {
        let frame = OutboundBuffer.webSocketFrame(.text, envelope)
        if let cacheTTL {
            let cached = CachedEvent(frame: frame, data: dataString ?? "", expiresAt: Hub.now + Double(cacheTTL))
            let limit = cacheLimit.load(ordering: .relaxed)
            let kept = directory.withLock { $0.keepLastEvent(cached, in: channel, loopCount: shards.count, limit: limit) }
            // Publishers are refused before this (admitsCache); only a race among them gets here.
            if !kept { Log.debug("app \(appID): \(channel) not cached, the app is at max_cache_channels (\(limit))") }
        }
        publish(frame, to: channel, except: excluded)
    }

    /// `#server-to-user-{id}` events go to every connection signed in as `id`, whatever it subscribed to.
    func publish(_ frame: OutboundBuffer, toUser userID: String) {
        let online = directory.withLock { $0.onlineConnections[userID] ?? 0 } > 0
        guard online else { return }
        forEachShard { shard in shard.deliver(frame, toUser: userID) }
    }

    /// Runs `body` on every loop with that loop's shard.
    func forEachShard(_ body: @escaping @Sendable (HubShard) -> Void) {
        let loops = group.loops
        for (index, loop) in loops.enumerated() where index < shards.count {
            let shard = shards[index]
            loop.execute { _ in body(shard) }
        }
    }

    /// Closes every connection signed in as `userID`, on every node (HTTP API `terminate_connections`).
    func terminate(userID: String) {
        closeConnections(of: userID)
        cluster?.broadcast(.terminateUser(appID: appID, userID: userID))
    }

    private func closeConnections(of userID: String) {
        forEachShard { shard in
            for session in shard.sessions(signedInAs: userID) {
                session.fail(PusherError(PusherError.unauthorized, "Connection terminated by the app"))
            }
        }
    }

    /// Closes every connection of the app (it was disabled or removed).
    func closeAll(with error: PusherError) {
        forEachShard { shard in
            for session in shard.allSessions { session.fail(error) }
        }
    }

    // MARK: Subscriptions

    struct Joined {
        /// The `subscription_succeeded` data: `{}` or the presence member list; nil when the
        /// cluster's answer comes later (`PusherSession.clusterAnswered`).
        let succeededData: String?
        /// On cache channels, the event to replay (nil: a cache miss).
        let cached: CachedEvent?
        let firstOfUser: Bool
        let subscriptionCount: Int?
    }

    /// Adds `session` to `channel` (on the session's loop). `member` is the presence identity.
    /// `serial` tells the session's subscriptions to one channel apart, for answers that come later.
    func join(_ session: PusherSession, _ channel: ChannelName, serial: Int, member: (id: String, info: String)?,
              maxMembers: Int, countsEnabled: Bool) throws(ChannelState.JoinRefusal) -> Joined {
        let loop = session.loopIndex
        let now = Hub.now
        let joined = try directory.withLock { d throws(ChannelState.JoinRefusal) -> Joined in
            if d.channels[channel.name] == nil { d.channels[channel.name] = ChannelState(loopCount: shards.count) }
            let (occupied, firstOfUser) = try d.channels[channel.name]!.join(loop: loop, member: member, maxMembers: maxMembers)
            let state = d.channels[channel.name]!
            let cached = state.cache.flatMap { $0.expiresAt > now ? $0 : nil }
            if cluster != nil {
                // The cluster decides what this join means; presence waits for its member list,
                // cache channels for the cluster's last event.
                recordJoin(d.channels[channel.name]!, session: session, serial: serial, channel: channel, member: member,
                           firstHere: firstOfUser, maxMembers: maxMembers, countsEnabled: countsEnabled)
                let waits = member != nil || channel.isCache
                return Joined(succeededData: waits ? nil : "{}", cached: nil, firstOfUser: false, subscriptionCount: nil)
            }
            // One cache_miss webhook per empty cache, however many clients find it empty.
            let reportMiss = channel.isCache && cached == nil && !state.cacheMissReported
            if reportMiss { d.channels[channel.name]!.cacheMissReported = true }
            let count = countsEnabled && channel.kind != .presence ? d.throttledCount(channel.name, now: now) : nil
            // Emitted under the lock, so that webhooks see occupied/vacated (and added/removed)
            // in the order the directory decided them, whichever loops raced.
            if occupied { emit(.channelOccupied(channel: channel.name)) }
            if firstOfUser, let member { emit(.memberAdded(channel: channel.name, userID: member.id)) }
            if reportMiss { emit(.cacheMiss(channel: channel.name)) }
            return Joined(succeededData: member == nil ? "{}" : state.presenceJSON, cached: cached,
                          firstOfUser: firstOfUser, subscriptionCount: count)
        }
        shards[loop].subscribe(session, to: channel.name)
        return joined
    }

    struct Left {
        let lastOfUser: Bool
        let subscriptionCount: Int?
    }

    func leave(_ session: PusherSession, _ channel: ChannelName, memberID: String?, countsEnabled: Bool) -> Left {
        let loop = session.loopIndex
        shards[loop].unsubscribe(session, from: channel.name)
        let now = Hub.now
        return directory.withLock { d in
            guard d.channels[channel.name] != nil else { return Left(lastOfUser: false, subscriptionCount: nil) }
            let (vacated, lastOfUser) = d.channels[channel.name]!.leave(loop: loop, memberID: memberID)
            if cluster != nil {
                recordLeave(d.channels[channel.name]!, channel: channel, memberID: memberID, lastHere: lastOfUser,
                            countsEnabled: countsEnabled)
                if d.channels[channel.name]!.isEmpty(now: now) {
                    d.channels[channel.name] = nil
                    d.pendingCounts.remove(channel.name)
                }
                return Left(lastOfUser: false, subscriptionCount: nil)
            }
            if lastOfUser, let memberID { emit(.memberRemoved(channel: channel.name, userID: memberID)) }
            if vacated { emit(.channelVacated(channel: channel.name)) }
            if d.channels[channel.name]!.isEmpty(now: now) {
                d.channels[channel.name] = nil
                d.pendingCounts.remove(channel.name)
                return Left(lastOfUser: lastOfUser, subscriptionCount: nil)
            }
            let count = countsEnabled && channel.kind != .presence ? d.throttledCount(channel.name, now: now) : nil
            return Left(lastOfUser: lastOfUser, subscriptionCount: count)
        }
    }

    /// Sends held-back `subscription_count` events whose 5-second window has passed, and drops
    /// channels that only held an expired cached event. Called about once a second.
    func maintain() {
        let now = Hub.now
        let due: [(String, Int)] = directory.withLock { d in
            var due: [(String, Int)] = []
            for name in d.pendingCounts {
                guard let state = d.channels[name] else { continue }
                if now - state.countSentAt >= Directory.countThrottleSeconds {
                    d.channels[name]!.countSentAt = now
                    due.append((name, cluster == nil ? state.subscribers : state.clusterSubscribers))
                }
            }
            for (name, _) in due { d.pendingCounts.remove(name) }
            d.dropExpired(now: now)
            return due
        }
        for (name, count) in due { publishSubscriptionCount(count, to: name) }
    }

    func publishSubscriptionCount(_ count: Int, to channel: String) {
        emit(.subscriptionCount(channel: channel, count: count))
        let envelope = PusherEvent.encode(event: "pusher_internal:subscription_count", channel: channel,
                                          data: #"{"subscription_count":\#(count)}"#)
        if cluster == nil {
            publish(.webSocketFrame(.text, envelope), to: channel)
        } else {
            publishEvent(envelope, to: channel, except: nil)
        }
    }

    // MARK: Users

    /// Records a signin and the session's watchlist. Returns which watched users are online now,
    /// and, when this is the user's first connection, who should hear that it came online.
    func signIn(_ session: PusherSession, userID: String, watchlist: [String]) -> (online: [String], offline: [String], notify: [String]) {
        shards[session.loopIndex].signIn(session, as: userID)
        return directory.withLock { d in
            d.onlineConnections[userID, default: 0] += 1
            d.signedInConnections += 1
            for watched in watchlist { d.watchers[watched, default: [:]][userID, default: 0] += 1 }
            let online = watchlist.filter { d.onlineConnections[$0] != nil }
            let offline = watchlist.filter { d.onlineConnections[$0] == nil }
            if cluster != nil {
                // Who hears of it, and who is online, is the cluster's business (Hub+Cluster.swift).
                recordOnline(d, userID)
                return (online, offline, [])
            }
            let notify = d.onlineConnections[userID] == 1 ? d.onlineWatchers(of: userID) : []
            return (online, offline, notify)
        }
    }

    /// The reverse of `signIn`; returns who should hear that the user went offline.
    func signOut(_ session: PusherSession, userID: String, watchlist: [String]) -> [String] {
        shards[session.loopIndex].signOut(session, as: userID)
        return directory.withLock { d in
            for watched in watchlist {
                d.watchers[watched]?[userID, default: 1] -= 1
                if d.watchers[watched]?[userID] == 0 { d.watchers[watched]![userID] = nil }
                if d.watchers[watched]?.isEmpty == true { d.watchers[watched] = nil }
            }
            let remaining = (d.onlineConnections[userID] ?? 1) - 1
            d.onlineConnections[userID] = remaining > 0 ? remaining : nil
            d.signedInConnections -= 1
            if cluster != nil {
                recordOnline(d, userID)
                return []
            }
            return remaining > 0 ? [] : d.onlineWatchers(of: userID)
        }
    }

    /// `pusher_internal:watchlist_events` telling each of `watchers` that `userID` went online or offline.
    func announce(_ userID: String, online: Bool, to watchers: [String]) {
        guard !watchers.isEmpty else { return }
        let frame = PusherEvent.frame(event: "pusher_internal:watchlist_events",
                                      data: Hub.watchlistEvents(online: online ? [userID] : [], offline: online ? [] : [userID]))
        for watcher in watchers { publish(frame, toUser: watcher) }
    }

    static func watchlistEvents(online: [String], offline: [String]) -> String {
        func event(_ name: String, _ ids: [String]) -> String {
            #"{"name":"\#(name)","user_ids":["# + ids.map { "\"" + JSONString.escaped($0) + "\"" }.joined(separator: ",") + "]}"
        }
        var events: [String] = []
        if !online.isEmpty { events.append(event("online", online)) }
        if !offline.isEmpty { events.append(event("offline", offline)) }
        return #"{"events":["# + events.joined(separator: ",") + "]}"
    }

    // MARK: Queries (HTTP API)

    struct ChannelInfo: Sendable {
        let occupied: Bool
        let subscriptionCount: Int
        let userCount: Int
        let cache: CachedEvent?
    }

    func channelInfo(_ name: String) -> ChannelInfo {
        let now = Hub.now
        return directory.withLock { d in
            guard let state = d.channels[name] else {
                return ChannelInfo(occupied: false, subscriptionCount: 0, userCount: 0, cache: nil)
            }
            return ChannelInfo(occupied: state.subscribers > 0, subscriptionCount: state.subscribers,
                               userCount: state.userCount, cache: state.cache.flatMap { $0.expiresAt > now ? $0 : nil })
        }
    }

    /// Occupied channels whose name starts with `prefix`, with their subscriber and user counts.
    func occupiedChannels(prefix: String) -> [ChannelSummary] {
        directory.withLock { d in
            d.channels.compactMap { name, state in
                guard state.subscribers > 0, name.hasPrefix(prefix) else { return nil }
                return ChannelSummary(name: name, subscriptionCount: state.subscribers, userCount: state.userCount)
            }
        }.sorted { $0.name < $1.name }
    }

    // The same questions for the whole cluster when there is one; nil when its state cannot be reached.

    func channelInfo(_ name: String, completion: @escaping @Sendable (ChannelInfo?) -> Void) {
        let local = channelInfo(name)
        guard let cluster else { return completion(local) }
        cluster.channel(appID: appID, name: name) { summary in
            completion(summary.map { ChannelInfo(occupied: $0.subscriptionCount > 0, subscriptionCount: $0.subscriptionCount,
                                                 userCount: $0.userCount, cache: $0.lastEvent.map(CachedEvent.init)) })
        }
    }

    func occupiedChannels(prefix: String, completion: @escaping @Sendable ([ChannelSummary]?) -> Void) {
        guard let cluster else { return completion(occupiedChannels(prefix: prefix)) }
        cluster.occupiedChannels(appID: appID) { channels in
            completion(channels?.filter { $0.name.hasPrefix(prefix) && $0.name != Hub.onlineChannel })
        }
    }

    func presenceUserIDs(_ channel: String, completion: @escaping @Sendable ([String]?) -> Void) {
        guard let cluster else { return completion(presenceUserIDs(channel)) }
        cluster.presenceUserIDs(appID: appID, channel: channel, completion: completion)
    }

    func presenceJSON(_ channel: String) -> String {
        directory.withLock { $0.channels[channel]?.presenceJSON ?? #"{"presence":{"ids":[],"hash":{},"count":0}}"# }
    }

    func presenceUserIDs(_ channel: String) -> [String] {
        directory.withLock { $0.channels[channel]?.memberIDs ?? [] }
    }
}

extension Hub.Directory {
    /// Above this many subscribers, `subscription_count` is sent at most every 5 seconds (PROTOCOL.md §1.13).
    static let countThrottleThreshold = 100
    static let countThrottleSeconds = 5.0

    /// The count to send now, or nil when the throttle holds it back for `Hub.maintain`. `count`
    /// is the cluster's when there is one, else this node's.
    mutating func throttledCount(_ name: String, now: Double, count: Int? = nil) -> Int? {
        guard let state = channels[name] else { return nil }
        let count = count ?? state.subscribers
        if count > Self.countThrottleThreshold && now - state.countSentAt < Self.countThrottleSeconds {
            pendingCounts.insert(name)
            return nil
        }
        channels[name]!.countSentAt = now
        return count
    }

    /// This node's share of `Hub.onlineChannel`, for `users`.
    func onlineShare(appID: String, users: [String]) -> ChannelShare {
        ChannelShare(appID: appID, channel: Hub.onlineChannel, subscriptions: signedInConnections,
                     members: users.map { MemberShare(userID: $0, connections: onlineConnections[$0] ?? 0, info: "null") })
    }

    func onlineWatchers(of userID: String) -> [String] {
        (watchers[userID]?.keys).map { $0.filter { onlineConnections[$0] != nil } } ?? []
    }
}
