import Synchronization
import System

/// The state authority of a single node: the rules of the cluster's shared-state scripts
/// (SharedStateScripts.swift), kept in process for one node. A hub records its shares here exactly
/// as it would in Redis, and gets the same answers at once, so a hub has one path for every rule.
///
/// Completions and member events run on the caller's thread, after the lock is released; the
/// hub's `ShareHandoff` makes one caller at a time per app, so they leave in the order decided.
public final class LocalAuthority: StateAuthority {
    private struct Channel {
        var subscriptions = 0
        var members: [String: Member] = [:]
        /// The member list's version when it last changed.
        var version = 0
        var lastEvent: LastEvent?
        var lastEventExpiresAt = 0.0
        /// A subscriber found the cache empty since it emptied: the one `cache_miss` was reported.
        var missReported = false

        func liveLastEvent(now: Double) -> LastEvent? {
            guard let lastEvent, lastEventExpiresAt > now else { return nil }
            let msLeft = ((lastEventExpiresAt - now) * 1000).rounded(.up)
            return LastEvent(appID: lastEvent.appID, channel: lastEvent.channel, envelope: lastEvent.envelope,
                             data: lastEvent.data, ttlMs: Int(msLeft))
        }

        func isEmpty(now: Double) -> Bool { subscriptions == 0 && members.isEmpty && liveLastEvent(now: now) == nil }
    }

    private struct Member {
        var connections: Int
        var info: String
    }

    private struct ChannelKey: Hashable {
        let appID: String
        let channel: String
    }

    private struct State {
        var channels: [ChannelKey: Channel] = [:]
        /// Versions grow across every channel and never restart, so no list is ever mistaken for a newer one.
        var lastVersion = 0
        var sweptAt = 0.0
    }

    private let state = Mutex(State())
    private let node = Mutex<(any ClusterNode)?>(nil)
    private let clock: @Sendable () -> Double

    public convenience init() {
        self.init(clock: { MonotonicClock.seconds })
    }

    /// `clock`: monotonic seconds.
    init(clock: @escaping @Sendable () -> Double) {
        self.clock = clock
    }

    public func start(_ node: any ClusterNode) {
        self.node.withLock { $0 = node }
    }

    public func record(_ share: ChannelShare, completion: @escaping @Sendable (ChannelChange?) -> Void) {
        let now = clock()
        let (change, memberEvents) = state.withLock { state in Self.apply(share, to: &state, now: now) }
        if !memberEvents.isEmpty, let node = node.withLock({ $0 }) {
            for event in memberEvents { node.receive(event) }
        }
        completion(change)
    }

    /// What the shared-state script `record` does, for one node: refuse a new user past the cap,
    /// set the node's counts, and report the transitions and the member events they make.
    private static func apply(_ share: ChannelShare, to state: inout State, now: Double) -> (ChannelChange, [ClusterMessage]) {
        let key = ChannelKey(appID: share.appID, channel: share.channel)
        // Taken out of the table while it changes, so its member dictionary is edited, not copied.
        var channel = state.channels.removeValue(forKey: key) ?? Channel()
        let member = share.members.first
        if let member, let cap = share.memberCap, member.connections > 0, channel.members[member.userID] == nil,
           channel.members.count >= cap {
            if !channel.isEmpty(now: now) { state.channels[key] = channel }
            return (.presenceFull(appID: share.appID, channel: share.channel), [])
        }

        var memberTransitions: [ChannelChange.Member] = []
        var memberEvents: [ClusterMessage] = []
        if let member {
            let before = channel.members[member.userID]?.connections ?? 0
            let transition = Self.transition(from: before, to: member.connections)
            if member.connections > 0 {
                channel.members[member.userID] = Member(connections: member.connections,
                                                        info: before == 0 ? member.info : channel.members[member.userID]!.info)
            } else {
                channel.members[member.userID] = nil
            }
            if transition != .unchanged {
                state.lastVersion += 1
                channel.version = state.lastVersion
                let added = transition == .arrived
                memberTransitions.append(.init(userID: member.userID, transition: transition, info: member.info))
                memberEvents.append(.memberChange(appID: share.appID, channel: share.channel, userID: member.userID, added: added,
                                                  info: added ? member.info : nil, excluded: added ? share.joiner : nil,
                                                  version: channel.version))
            }
        }
        let channelTransition = Self.transition(from: channel.subscriptions, to: share.subscriptions)
        channel.subscriptions = share.subscriptions

        var lastEvent: LastEvent?
        var missed = false
        if share.wantsLastEvent {
            lastEvent = channel.liveLastEvent(now: now)
            if lastEvent == nil && !channel.missReported {
                missed = true
                channel.missReported = true
            }
        }
        let change = ChannelChange(appID: share.appID, channel: share.channel, subscriptionCount: channel.subscriptions,
                                   userCount: channel.members.count, transition: channelTransition,
                                   memberTransitions: memberTransitions,
                                   members: share.wantsMembers ? channel.members.map { (id: $0.key, info: $0.value.info) } : [],
                                   membersVersion: channel.version, lastEvent: lastEvent, lastEventMissed: missed)
        state.channels[key] = channel.isEmpty(now: now) ? nil : channel
        return (change, memberEvents)
    }

    private static func transition(from before: Int, to after: Int) -> ClusterTransition {
        if before <= 0 && after > 0 { return .arrived }
        if before > 0 && after <= 0 { return .departed }
        return .unchanged
    }

    /// A single node never loses its own state.
    public func restore(appID: String, _ shares: [ChannelShare]) {}

    public func keepLastEvent(_ event: LastEvent) {
        let now = clock()
        state.withLock { state in
            let key = ChannelKey(appID: event.appID, channel: event.channel)
            state.channels[key, default: Channel()].lastEvent = event
            state.channels[key]!.lastEventExpiresAt = now + Double(event.ttlMs) / 1000
            state.channels[key]!.missReported = false
            // Channels left with nothing but an expired event go, at most once a second.
            if now - state.sweptAt >= 1 {
                state.sweptAt = now
                state.channels = state.channels.filter { !$0.value.isEmpty(now: now) }
            }
        }
    }

    // MARK: Queries

    public func occupiedChannels(appID: String, completion: @escaping @Sendable ([ChannelSummary]?) -> Void) {
        let summaries = state.withLock { state in
            state.channels.compactMap { key, channel in
                key.appID == appID && channel.subscriptions > 0
                    ? ChannelSummary(name: key.channel, subscriptionCount: channel.subscriptions, userCount: channel.members.count)
                    : nil
            }
        }
        completion(summaries.sorted { $0.name < $1.name })
    }

    public func channel(appID: String, name: String, completion: @escaping @Sendable (ChannelSummary?) -> Void) {
        let now = clock()
        let summary = state.withLock { state in
            let channel = state.channels[ChannelKey(appID: appID, channel: name)] ?? Channel()
            return ChannelSummary(name: name, subscriptionCount: channel.subscriptions, userCount: channel.members.count,
                                  lastEvent: channel.liveLastEvent(now: now))
        }
        completion(summary)
    }

    public func presenceUserIDs(appID: String, channel: String, completion: @escaping @Sendable ([String]?) -> Void) {
        let ids = state.withLock { $0.channels[ChannelKey(appID: appID, channel: channel)]?.members.keys.sorted() ?? [] }
        completion(ids)
    }

    public func presentMembers(appID: String, channel: String, among userIDs: [String],
                               completion: @escaping @Sendable ([String]?) -> Void) {
        let members = state.withLock { $0.channels[ChannelKey(appID: appID, channel: channel)]?.members ?? [:] }
        completion(userIDs.filter { members[$0] != nil })
    }
}
