import Support
import System

/// Subscribing and leaving. Every change of this node's share of a channel is recorded with the
/// authority, whose answer says what it meant for the whole channel; only the writer that made a
/// transition acts on it, so each lifecycle webhook is sent once. Member events are sent by the
/// authority itself (`ClusterMessage.memberChange`, in version order, to every node).
extension Hub {
    /// Adds `session` to `channel` on the session's loop and records the new share. `joined` runs
    /// once the session is in, before the authority hears of it, so that the subscriber's own
    /// acknowledgement precedes whatever the change causes (its `subscription_count`). Presence
    /// and cache channels are acknowledged later, with the authority's answer (`PusherSession.answered`).
    func join(_ session: PusherSession, _ channel: ChannelName, serial: Int, member: PresenceIdentity?,
              maxMembers: Int, countsEnabled: Bool, joined: () -> Void) throws(ChannelState.JoinRefusal) {
        let loop = session.loopIndex
        let socketID = session.socketID
        try directory.withLock { d throws(ChannelState.JoinRefusal) in
            var state = d.channels[channel.name] ?? ChannelState(loopCount: shards.count)
            let firstHere = try state.join(loop: loop, member: member, maxMembers: maxMembers)
            d.channels[channel.name] = state
            let base = state.share(appID: appID, channel: channel.name, member: member?.userID)
            let share = ChannelShare(appID: appID, channel: channel.name, subscriptions: base.subscriptions, members: base.members,
                                     wantsMembers: member != nil, wantsLastEvent: channel.isCache,
                                     memberCap: member == nil ? nil : maxMembers, joiner: socketID)
            handoff.queue(share) { [self] change in
                joinRecorded(change, socketID: socketID, loop: loop, serial: serial, channel: channel, member: member,
                             firstHere: firstHere, maxMembers: maxMembers, countsEnabled: countsEnabled)
            }
        }
        shards[loop].subscribe(session, to: channel.name)
        joined()
        handoff.deliver()
    }

    private func joinRecorded(_ change: ChannelChange?, socketID: String, loop: Int, serial: Int, channel: ChannelName,
                              member: PresenceIdentity?, firstHere: Bool, maxMembers: Int, countsEnabled: Bool) {
        if change?.refusedAsFull == true {
            return withSession(socketID, onLoop: loop) { $0.refusedAsFull(channel.name, serial: serial, limit: maxMembers) }
        }
        if member != nil || channel.isCache {
            answer(change, socketID: socketID, loop: loop, serial: serial, channel: channel)
            if change?.lastEventMissed == true { emit(.cacheMiss(channel: channel.name)) }
        }
        guard let change else {
            // The authority cannot be reached: this node tells its own clients.
            if firstHere, let member {
                publishHere(Hub.memberAddedFrame(channel.name, member.userID, member.info), to: channel.name, except: socketID)
            }
            return
        }
        apply(change, countsEnabled: countsEnabled)
    }

    /// A subscribe waiting for the authority gets its `subscription_succeeded`: the channel's
    /// members and last event, or this node's members while the authority cannot be reached.
    private func answer(_ change: ChannelChange?, socketID: String, loop: Int, serial: Int, channel: ChannelName) {
        let members = channel.kind != .presence ? "{}"
            : change.map { ChannelState.presenceJSON($0.members) } ?? directory.withLock { $0.channels[channel.name]?.presenceJSON }
            ?? ChannelState.presenceJSON([])
        let answer = PusherSession.JoinAnswer(serial: serial, succeededData: members, membersVersion: change?.membersVersion ?? 0,
                                              lastEventFrame: change?.lastEvent.map { .webSocketFrame(.text, $0.envelope) })
        withSession(socketID, onLoop: loop) { $0.answered(channel.name, answer) }
    }

    /// A repeated subscribe to a presence channel is acknowledged again with the channel's
    /// members: this node's share, unchanged, recorded again to get them.
    func resubscribed(_ session: PusherSession, serial: Int, channel: ChannelName, memberID: String) {
        let socketID = session.socketID
        let loop = session.loopIndex
        directory.withLock { d in
            guard let state = d.channels[channel.name] else { return }
            let base = state.share(appID: appID, channel: channel.name, member: memberID)
            let share = ChannelShare(appID: appID, channel: channel.name, subscriptions: base.subscriptions, members: base.members,
                                     wantsMembers: true)
            handoff.queue(share) { [self] change in answer(change, socketID: socketID, loop: loop, serial: serial, channel: channel) }
        }
        handoff.deliver()
    }

    func leave(_ session: PusherSession, _ channel: ChannelName, memberID: String?, countsEnabled: Bool) {
        let loop = session.loopIndex
        shards[loop].unsubscribe(session, from: channel.name)
        let now = MonotonicClock.seconds
        directory.withLock { d in
            guard var state = d.channels[channel.name] else { return }
            let lastHere = state.leave(loop: loop, memberID: memberID)
            let share = state.share(appID: appID, channel: channel.name, member: memberID)
            d.channels[channel.name] = state
            d.removeIfEmpty(channel.name, now: now)
            handoff.queue(share) { [self] change in
                guard let change else {
                    if lastHere, let memberID { publishHere(Hub.memberRemovedFrame(channel.name, memberID), to: channel.name) }
                    return
                }
                apply(change, countsEnabled: countsEnabled)
            }
        }
        handoff.deliver()
    }

    /// Acts on what a change did to the whole channel: the webhooks of its transitions, and the
    /// new `subscription_count` (member events come from the authority itself).
    func apply(_ change: ChannelChange, countsEnabled: Bool) {
        let channel = change.channel
        guard channel != Hub.onlineChannel else { return }
        if change.transition != .departed { announce(change.transition, channel: channel, userID: nil) }
        for member in change.memberTransitions {
            announce(member.transition, channel: channel, userID: member.userID)
        }
        if change.transition == .departed { announce(.departed, channel: channel, userID: nil) }
        if countsEnabled, change.subscriptionCount > 0, !channel.hasPrefix("presence-") {
            let now = MonotonicClock.seconds
            let count = directory.withLock { d -> Int? in
                guard d.channels[channel] != nil else { return change.subscriptionCount }
                d.channels[channel]!.totalSubscribers = change.subscriptionCount
                return d.throttledCount(channel, now: now, count: change.subscriptionCount)
            }
            if let count { publishSubscriptionCount(count, to: channel) }
        }
    }

    /// The webhook of a transition. An arrival within a departure's grace window on another node
    /// goes to the node holding that departure, where the two cancel out.
    private func announce(_ transition: ClusterTransition, channel: String, userID: String?) {
        switch transition {
        case .unchanged:
            break
        case .arrived:
            emit(Hub.arrival(channel, userID: userID))
        case .returned(let holder):
            if holder == cluster?.nodeID {
                emit(Hub.arrival(channel, userID: userID))
            } else {
                cluster?.broadcast(.heldArrival(appID: appID, holder: holder, channel: channel, userID: userID))
            }
        case .departed:
            emit(userID.map { .memberRemoved(channel: channel, userID: $0) } ?? .channelVacated(channel: channel))
        }
    }

    static func arrival(_ channel: String, userID: String?) -> ChannelEvent {
        userID.map { .memberAdded(channel: channel, userID: $0) } ?? .channelOccupied(channel: channel)
    }

    /// Sends held-back `subscription_count` events whose 5-second window has passed, and drops
    /// channels that only held an expired cached event. Called about once a second.
    func maintain() {
        let now = MonotonicClock.seconds
        let due: [(String, Int)] = directory.withLock { d in
            var due: [(String, Int)] = []
            for name in d.pendingCounts {
                guard let state = d.channels[name] else { continue }
                if now - state.countSentAt >= Directory.countThrottleSeconds {
                    d.channels[name]!.countSentAt = now
                    due.append((name, state.totalSubscribers))
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
                                          data: JSONWriter.object { $0.field("subscription_count", count) }.text)
        publishEverywhere(envelope, to: channel, except: nil)
    }

    /// Writes this node's whole share of every channel again (the shared state lost it).
    func restoreShares() {
        let appID = self.appID
        directory.withLock { d in
            var shares = d.channels.compactMap { name, state in
                state.subscribers > 0 ? ChannelShare(appID: appID, channel: name, subscriptions: state.subscribers, members: state.memberShares) : nil
            }
            if d.signedInConnections > 0 { shares.append(d.onlineShare(appID: appID, users: Array(d.onlineConnections.keys))) }
            let all = shares
            handoff.queue { $0.restore(appID: appID, all) }
        }
        handoff.deliver()
    }
}

extension Hub.Directory {
    /// Above this many subscribers, `subscription_count` is sent at most every 5 seconds (PROTOCOL.md §1.13).
    static let countThrottleThreshold = 100
    static let countThrottleSeconds = 5.0

    /// `count` if it may be sent now, else nil: the throttle holds it back for `Hub.maintain`.
    mutating func throttledCount(_ name: String, now: Double, count: Int) -> Int? {
        guard channels[name] != nil else { return nil }
        if count > Self.countThrottleThreshold && now - channels[name]!.countSentAt < Self.countThrottleSeconds {
            pendingCounts.insert(name)
            return nil
        }
        channels[name]!.countSentAt = now
        return count
    }
}
