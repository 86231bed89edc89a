/// One loop's share of one app's hub: the sessions that live on that loop, by channel, by socket id
/// and by signed-in user. Touched only on its loop's thread, so a publish walks its subscribers
/// without a lock.
final class HubShard: @unchecked Sendable {
    private(set) var channels: [String: [ObjectIdentifier: PusherSession]] = [:]
    private(set) var sessions: [String: PusherSession] = [:]
    private(set) var signedIn: [String: [ObjectIdentifier: PusherSession]] = [:]
    /// Sessions that must sign in (or subscribe to a private channel) before their deadline.
    private(set) var awaitingAuthorization: [ObjectIdentifier: (session: PusherSession, deadline: Double)] = [:]

    func add(_ session: PusherSession) {
        sessions[session.socketID] = session
    }

    func remove(_ session: PusherSession) {
        sessions[session.socketID] = nil
        awaitingAuthorization[ObjectIdentifier(session)] = nil
    }

    func subscribe(_ session: PusherSession, to channel: String) {
        channels[channel, default: [:]][ObjectIdentifier(session)] = session
    }

    func unsubscribe(_ session: PusherSession, from channel: String) {
        guard var subscribers = channels.removeValue(forKey: channel) else { return }
        subscribers[ObjectIdentifier(session)] = nil
        if !subscribers.isEmpty { channels[channel] = subscribers }
    }

    func signIn(_ session: PusherSession, as userID: String) {
        signedIn[userID, default: [:]][ObjectIdentifier(session)] = session
        awaitingAuthorization[ObjectIdentifier(session)] = nil
    }

    func signOut(_ session: PusherSession, as userID: String) {
        guard var sessions = signedIn.removeValue(forKey: userID) else { return }
        sessions[ObjectIdentifier(session)] = nil
        if !sessions.isEmpty { signedIn[userID] = sessions }
    }

    func requireAuthorization(of session: PusherSession, by deadline: Double) {
        awaitingAuthorization[ObjectIdentifier(session)] = (session, deadline)
    }

    func authorized(_ session: PusherSession) {
        awaitingAuthorization[ObjectIdentifier(session)] = nil
    }

    /// Sessions whose authorization deadline has passed; they are no longer tracked.
    func takeUnauthorized(now: Double) -> [PusherSession] {
        let late = awaitingAuthorization.values.filter { $0.deadline <= now }
        for entry in late { awaitingAuthorization[ObjectIdentifier(entry.session)] = nil }
        return late.map(\.session)
    }

    /// Queues the shared frame on every local subscriber of `channel` but the excluded socket.
    func deliver(_ frame: OutboundBuffer, to channel: String, except socketID: String?) {
        guard let subscribers = channels[channel] else { return }
        let excluded = socketID.flatMap { sessions[$0] }.map(ObjectIdentifier.init)
        for (id, session) in subscribers where id != excluded {
            session.connection.sendWebSocketFrame(frame)
        }
    }

    /// A cluster's member event: each subscriber decides by the version of the member list it got.
    func deliverMemberEvent(_ frame: OutboundBuffer, to channel: String, except socketID: String?, version: Int) {
        guard let subscribers = channels[channel] else { return }
        let excluded = socketID.flatMap { sessions[$0] }.map(ObjectIdentifier.init)
        for (id, session) in subscribers where id != excluded {
            session.memberEvent(frame, on: channel, version: version)
        }
    }

    func deliver(_ frame: OutboundBuffer, toUser userID: String) {
        guard let sessions = signedIn[userID] else { return }
        for session in sessions.values {
            session.connection.sendWebSocketFrame(frame)
        }
    }

    func session(_ socketID: String) -> PusherSession? { sessions[socketID] }

    func sessions(signedInAs userID: String) -> [PusherSession] {
        signedIn[userID].map { Array($0.values) } ?? []
    }

    var allSessions: [PusherSession] { Array(sessions.values) }
}
