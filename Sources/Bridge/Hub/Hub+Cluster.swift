import Support

/// A hub in a cluster: every subscribe and unsubscribe writes this node's share of the channel to
/// the cluster's shared state, whose answer says what the change meant for the whole cluster. The
/// shared state itself sends each `member_added`/`member_removed` to every node, in order
/// (`ClusterMessage.memberChange`); of the rest, only the node whose change made a transition acts
/// on it, so each lifecycle webhook is sent once, by one node.
extension Hub {
    /// Under the directory lock, so that shares of one channel reach the shared state in the order they were made.
    func recordJoin(_ state: ChannelState, session: PusherSession, serial: Int, channel: ChannelName, member: (id: String, info: String)?,
                    firstHere: Bool, maxMembers: Int, countsEnabled: Bool) {
        guard let cluster else { return }
        let socketID = session.socketID
        let share = ChannelShare(appID: appID, channel: channel.name, subscriptions: state.subscribers,
                                 members: member.map { [MemberShare(userID: $0.id, connections: state.connections(of: $0.id), info: $0.info)] } ?? [],
                                 wantsMembers: member != nil, wantsLastEvent: channel.isCache, memberCap: member == nil ? nil : maxMembers,
                                 joiner: socketID)
        let loop = session.loopIndex
        cluster.record(share) { [self] change in
            if change?.refusedAsFull == true {
                let shard = shards[loop]
                group.loops[loop].execute { _ in shard.session(socketID)?.clusterRefusedAsFull(channel.name, serial: serial, limit: maxMembers) }
                return
            }
            if member != nil || channel.isCache {
                answerSubscribe(change, socketID: socketID, loop: loop, serial: serial, channel: channel)
                if change?.lastEventMissed == true { emit(.cacheMiss(channel: channel.name)) }
            }
            guard let change else {
                if firstHere, let member { publish(Hub.memberAddedFrame(channel.name, member.id, member.info), to: channel.name, except: socketID) }
                return
            }
            apply(change, countsEnabled: countsEnabled)
        }
    }

    /// A subscribe that was waiting for the cluster's answer gets its `subscription_succeeded`: the
    /// cluster's members and last event, or this node's while the cluster is unreachable.
    private func answerSubscribe(_ change: ChannelChange?, socketID: String, loop: Int, serial: Int, channel: ChannelName) {
        let data = channel.kind != .presence ? "{}" : change.map { ChannelState.presenceJSON($0.members) } ?? presenceJSON(channel.name)
        let answer = PusherSession.ClusterAnswer(serial: serial, succeededData: data, membersVersion: change?.membersVersion ?? 0,
                                                 lastEvent: change.map { $0.lastEvent.map(CachedEvent.init) } ?? channelInfo(channel.name).cache)
        let shard = shards[loop]
        group.loops[loop].execute { _ in shard.session(socketID)?.clusterAnswered(channel.name, answer) }
    }

    /// A repeated subscribe to a presence channel is acknowledged again with the cluster's members:
    /// this node's share, unchanged, written again to get them.
    func resubscribed(_ session: PusherSession, serial: Int, channel: ChannelName, memberID: String) {
        guard let cluster else { return }
        let socketID = session.socketID
        let loop = session.loopIndex
        directory.withLock { d in
            guard let state = d.channels[channel.name] else { return }
            let member = state.memberShares.filter { $0.userID == memberID }
            cluster.record(ChannelShare(appID: appID, channel: channel.name, subscriptions: state.subscribers, members: member,
                                        wantsMembers: true)) { [self] change in
                answerSubscribe(change, socketID: socketID, loop: loop, serial: serial, channel: channel)
            }
        }
    }

    func recordLeave(_ state: ChannelState, channel: ChannelName, memberID: String?, lastHere: Bool, countsEnabled: Bool) {
        guard let cluster else { return }
        let members = memberID.map { [MemberShare(userID: $0, connections: state.connections(of: $0), info: "null")] } ?? []
        cluster.record(ChannelShare(appID: appID, channel: channel.name, subscriptions: state.subscribers, members: members)) { [self] change in
            guard let change else {
                if lastHere, let memberID { publish(Hub.memberRemovedFrame(channel.name, memberID), to: channel.name) }
                return
            }
            apply(change, countsEnabled: countsEnabled)
        }
    }

    /// Acts on what a change did cluster-wide: webhooks from this node, and the new
    /// `subscription_count` (member events come from the shared state itself).
    func apply(_ change: ChannelChange, countsEnabled: Bool) {
        let channel = change.channel
        guard channel != Hub.onlineChannel else { return }
        if change.transition != .departed { announce(change.transition, channel: channel, userID: nil) }
        for member in change.memberTransitions {
            announce(member.transition, channel: channel, userID: member.userID)
        }
        if change.transition == .departed { announce(.departed, channel: channel, userID: nil) }
        if countsEnabled, change.subscriptionCount > 0, !channel.hasPrefix("presence-") {
            let now = Hub.now
            let count = directory.withLock { d -> Int? in
                guard d.channels[channel] != nil else { return change.subscriptionCount }
                d.channels[channel]!.clusterSubscribers = change.subscriptionCount
                return d.throttledCount(channel, now: now, count: change.subscriptionCount)
            }
            if let count { publishSubscriptionCount(count, to: channel) }
        }
    }

    /// A member event for this node's subscribers whose member list is older than `version`.
    func deliverMemberEvent(_ frame: OutboundBuffer, to channel: String, except excluded: String?, version: Int) {
        let perLoop = directory.withLock { $0.channels[channel]?.subscribersPerLoop }
        guard let perLoop else { return }
        for (index, count) in perLoop.enumerated() where count > 0 && index < group.loops.count {
            let shard = shards[index]
            group.loops[index].execute { _ in shard.deliverMemberEvent(frame, to: channel, except: excluded, version: version) }
        }
    }

    /// The webhook of a cluster-wide transition. An arrival within a departure's grace window goes
    /// to the node holding that departure, where the two cancel out.
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

    /// Writes this node's whole share of every channel again (the shared state lost it).
    func restoreShares() {
        guard let cluster else { return }
        directory.withLock { d in
            var shares = d.channels.compactMap { name, state in
                state.subscribers > 0 ? ChannelShare(appID: appID, channel: name, subscriptions: state.subscribers, members: state.memberShares) : nil
            }
            if d.signedInConnections > 0 { shares.append(d.onlineShare(appID: appID, users: Array(d.onlineConnections.keys))) }
            cluster.restore(appID: appID, shares)
        }
    }

    // MARK: Who is online

    /// Signed-in users are kept as the members of a channel no client can name: its member events
    /// (first connection anywhere, last one anywhere) reach every node in order, and each node
    /// tells its own watchers (`receive`).
    static let onlineChannel = "#online"

    /// Under the directory lock, after `userID`'s signed-in connections here changed.
    func recordOnline(_ d: Directory, _ userID: String) {
        cluster?.record(d.onlineShare(appID: appID, users: [userID])) { _ in }
    }

    /// A session that signed in with a watchlist hears which of those users are online anywhere.
    func tellWatchlist(to session: PusherSession, _ watched: [String]) {
        let socketID = session.socketID
        let loop = session.loopIndex
        online(among: watched) { [self] online in
            let offline = watched.filter { !online.contains($0) }
            let frame = PusherEvent.frame(event: "pusher_internal:watchlist_events", data: Hub.watchlistEvents(online: online, offline: offline))
            let shard = shards[loop]
            group.loops[loop].execute { _ in shard.session(socketID)?.send(frame) }
        }
    }

    /// Which of `userIDs` are online anywhere in the cluster (this node's view while it cannot be reached).
    func online(among userIDs: [String], completion: @escaping @Sendable ([String]) -> Void) {
        let local = directory.withLock { d in userIDs.filter { d.onlineConnections[$0] != nil } }
        guard let cluster, !userIDs.isEmpty else { return completion(local) }
        cluster.presentMembers(appID: appID, channel: Hub.onlineChannel, among: userIDs) { present in completion(present ?? local) }
    }

    // MARK: Member events

    static func memberAddedFrame(_ channel: String, _ userID: String, _ info: String) -> OutboundBuffer {
        PusherEvent.frame(event: "pusher_internal:member_added", channel: channel,
                          data: #"{"user_id":"# + quoted(userID) + #","user_info":"# + info + "}")
    }

    static func memberRemovedFrame(_ channel: String, _ userID: String) -> OutboundBuffer {
        PusherEvent.frame(event: "pusher_internal:member_removed", channel: channel, data: #"{"user_id":"# + quoted(userID) + "}")
    }

    private static func quoted(_ text: String) -> String { "\"" + JSONString.escaped(text) + "\"" }
}
