import Support

/// Signed-in users (PROTOCOL.md §1.9–§1.10): user events, watchlists, terminating a user's
/// connections. Who is online is decided like presence: the signed-in users are the members of a
/// channel no client can name (`onlineChannel`), so the first sign-in and the last sign-out are
/// decided by the authority and announced in order; each node tells its own watchers (`receive`).
extension Hub {
    static let onlineChannel = "#online"

    /// Records a signin and the session's watchlist.
    func signIn(_ session: PusherSession, userID: String, watchlist: [String]) {
        shards[session.loopIndex].signIn(session, as: userID)
        directory.withLock { d in
            d.onlineConnections[userID, default: 0] += 1
            d.signedInConnections += 1
            for watched in watchlist { d.watchers[watched, default: [:]][userID, default: 0] += 1 }
            handoff.queue(d.onlineShare(appID: appID, users: [userID])) { _ in }
        }
        handoff.deliver()
    }

    /// The reverse of `signIn`.
    func signOut(_ session: PusherSession, userID: String, watchlist: [String]) {
        shards[session.loopIndex].signOut(session, as: userID)
        directory.withLock { d in
            for watched in watchlist {
                d.watchers[watched]?[userID, default: 1] -= 1
                if d.watchers[watched]?[userID] == 0 { d.watchers[watched]![userID] = nil }
                if d.watchers[watched]?.isEmpty == true { d.watchers[watched] = nil }
            }
            let remaining = (d.onlineConnections[userID] ?? 1) - 1
            d.onlineConnections[userID] = remaining > 0 ? remaining : nil
            d.signedInConnections -= 1
            handoff.queue(d.onlineShare(appID: appID, users: [userID])) { _ in }
        }
        handoff.deliver()
    }

    /// A session that signed in with a watchlist hears which of those users are online.
    func tellWatchlist(to session: PusherSession, _ watched: [String]) {
        let socketID = session.socketID
        let loop = session.loopIndex
        online(among: watched) { [self] online in
            let offline = watched.filter { !online.contains($0) }
            let frame = PusherEvent.frame(event: "pusher_internal:watchlist_events", data: Hub.watchlistEvents(online: online, offline: offline))
            withSession(socketID, onLoop: loop) { $0.send(frame) }
        }
    }

    /// Which of `userIDs` are online (this node's view while the authority cannot be reached).
    func online(among userIDs: [String], completion: @escaping @Sendable ([String]) -> Void) {
        let local = directory.withLock { d in userIDs.filter { d.onlineConnections[$0] != nil } }
        guard !userIDs.isEmpty else { return completion(local) }
        authority.presentMembers(appID: appID, channel: Hub.onlineChannel, among: userIDs) { present in completion(present ?? local) }
    }

    /// `pusher_internal:watchlist_events` telling each of `watchers` here that `userID` went online or offline.
    func tellWatchers(_ userID: String, online: Bool, _ watchers: [String]) {
        guard !watchers.isEmpty else { return }
        let frame = PusherEvent.frame(event: "pusher_internal:watchlist_events",
                                      data: Hub.watchlistEvents(online: online ? [userID] : [], offline: online ? [] : [userID]))
        for watcher in watchers { sendToUserHere(frame, userID: watcher) }
    }

    static func watchlistEvents(online: [String], offline: [String]) -> String {
        JSONWriter.object {
            $0.arrayField("events") { events in
                for (name, ids) in [("online", online), ("offline", offline)] where !ids.isEmpty {
                    events.object {
                        $0.field("name", name)
                        $0.arrayField("user_ids") { for id in ids { $0.string(id) } }
                    }
                }
            }
        }.text
    }

    /// `#server-to-user-{id}` events go to every connection here signed in as `id`, whatever it subscribed to.
    func sendToUserHere(_ frame: OutboundBuffer, userID: String) {
        let online = directory.withLock { $0.onlineConnections[userID] ?? 0 } > 0
        guard online else { return }
        forEachShard { shard in shard.deliver(frame, toUser: userID) }
    }

    /// Closes every connection signed in as `userID`, on every node (HTTP API `terminate_connections`).
    func terminateEverywhere(userID: String) {
        closeConnectionsHere(of: userID)
        cluster?.broadcast(.terminateUser(appID: appID, userID: userID))
    }

    func closeConnectionsHere(of userID: String) {
        forEachShard { shard in
            for session in shard.sessions(signedInAs: userID) {
                session.fail(.unauthorized("Connection terminated by the app"))
            }
        }
    }
}

extension Hub.Directory {
    /// This node's share of `Hub.onlineChannel`, for `users`.
    func onlineShare(appID: String, users: [String]) -> ChannelShare {
        ChannelShare(appID: appID, channel: Hub.onlineChannel, subscriptions: signedInConnections,
                     members: users.map { MemberShare(userID: $0, connections: onlineConnections[$0] ?? 0, info: "null") })
    }

    func onlineWatchers(of userID: String) -> [String] {
        (watchers[userID]?.keys).map { $0.filter { onlineConnections[$0] != nil } } ?? []
    }
}
