import Support

/// One Pusher connection: its socket id, subscriptions and signed-in user, and the handling of
/// every event its client sends (PROTOCOL.md §1.6–§1.11). Lives in `connection.userInfo` and is
/// touched only on the connection's loop.
final class PusherSession {
    let connection: Connection
    let app: App
    let socketID: String
    let loopIndex: Int
    private var subscriptions: [String: Subscription] = [:]
    private(set) var userID: String?
    private var watchlist: [String] = []
    private var clientEvents = (second: -1, count: 0)
    private var subscribeTokens: TokenBucket?
    private var subscriptionSerials = 0
    /// In a cluster, per presence channel: the version of the member list this client got, or the
    /// member events that arrived while it is still awaited.
    private var memberLists: [String: MemberList] = [:]

    enum MemberList {
        case awaited(events: [(version: Int, frame: OutboundBuffer)])
        case received(version: Int)
    }
    private var ended = false
    /// Set when the connection carried a valid JWT of the app's organization (seed mode).
    let seed: SeedMode?
    private var isSeed: Bool { seed != nil }

    struct Subscription {
        let channel: ChannelName
        /// The presence user id the subscription was authorized for; nil on other channels.
        let memberID: String?
        /// Tells this subscription from an earlier one to the same channel (for answers that come later).
        let serial: Int
    }

    /// Subscriptions one connection may hold: a bound on the memory a client can make us keep.
    static let maxSubscriptions = 1000
    /// Pusher's caps: watchlist entries per user and the length of a presence user id.
    static let maxWatchlist = 100
    static let maxUserIDLength = 128

    init(connection: Connection, app: App, seed: SeedMode? = nil) {
        self.connection = connection
        self.app = app
        self.seed = seed
        socketID = SocketID.next()
        loopIndex = connection.loop.index
    }

    private var hub: Hub { app.hub }

    // MARK: Sending

    func send(_ frame: OutboundBuffer) {
        connection.sendWebSocketFrame(frame)
    }

    func send(event: String, channel: String? = nil, data: String?) {
        send(PusherEvent.frame(event: event, channel: channel, data: data))
    }

    /// A `pusher:error` that leaves the connection open.
    func report(_ error: PusherError) {
        send(error.frame)
    }

    /// A `pusher:error`, then a close with the same code (PROTOCOL.md §1.4: both, for every client).
    func fail(_ error: PusherError) {
        Log.info("closing with \(error.code ?? 0): \(error.message)", conn: connection.id)
        send(error.frame)
        connection.close(code: error.closeCode, reason: error.message)
    }

    // MARK: Receiving

    func handle(_ bytes: [UInt8]) {
        let message: JSONObject
        do {
            guard let object = try JSONParser.parse(bytes).objectValue else {
                return report(PusherError(nil, "A message must be a JSON object"))
            }
            message = object
        } catch {
            return report(PusherError(nil, "Invalid JSON: \(error)"))
        }
        guard let event = message["event"]?.stringValue else {
            return report(PusherError(nil, #"A message needs a string "event""#))
        }
        // A seed session lives on its JWT: every act but a ping checks that it still holds.
        if event != "pusher:ping", event != "pusher:pong", let revoked = seed?.revocation() { return fail(revoked) }
        switch event {
        case "pusher:ping":
            send(PusherSession.pongFrame)
        case "pusher:pong":
            break  // any input already counts as activity
        case "pusher:subscribe":
            subscribe(Self.data(of: message))
        case "pusher:unsubscribe":
            if let name = Self.data(of: message)?["channel"]?.stringValue { unsubscribe(name) }
        case "pusher:signin":
            signIn(Self.data(of: message))
        default:
            if event.hasPrefix("client-") || (isSeed && !event.hasPrefix("pusher:") && !event.hasPrefix("pusher_internal:")) {
                clientEvent(event, message, bytes)
            } else {
                report(PusherError(nil, "Unknown event \"\(event)\""))
            }
        }
    }

    /// pusher-js sends `data` as an object; some clients send it as a JSON-encoded string.
    private static func data(of message: JSONObject) -> JSONObject? {
        switch message["data"] {
        case .object(let object): return object
        case .string(let text): return (try? JSONParser.parse(text))?.objectValue
        default: return nil
        }
    }

    // MARK: Subscriptions

    private func subscribe(_ data: JSONObject?) {
        guard let name = data?["channel"]?.stringValue, let data else {
            return report(PusherError(nil, #"pusher:subscribe needs data.channel"#))
        }
        let config = app.config
        // Every request counts, a repeated or refused one too: each costs an answer (and in a cluster a Redis call).
        guard takeSubscribeToken(rate: config.maxSubscriptionsPerSecond) else {
            report(PusherError(PusherError.clientEventRejected,
                               "Subscription rejected due to rate limit (\(config.maxSubscriptionsPerSecond) per second)"))
            return sendSubscriptionError(name, type: "LimitReached", status: 429, "Too many subscribe requests: retry later")
        }
        guard let channel = ChannelName(name, maxLength: config.maxChannelNameLength) else {
            if name.utf8.count > config.maxChannelNameLength {
                return refuse(name, type: "LimitReached", status: 4009,
                              "Channel name is longer than \(config.maxChannelNameLength) characters")
            }
            return refuse(name, type: "InvalidChannel", status: 400,
                          "Invalid channel name \"\(name)\": use only A-Z a-z 0-9 _ - = @ , . ;")
        }
        if let subscription = subscriptions[name] {
            // Idempotent: acknowledge again, add nothing (PROTOCOL.md §1.6). In a cluster, a
            // presence channel's members come from the shared state, like on the first subscribe.
            if let memberID = subscription.memberID, hub.cluster != nil {
                memberLists[name] = .awaited(events: [])
                return hub.resubscribed(self, serial: subscription.serial, channel: channel, memberID: memberID)
            }
            let data = channel.kind == .presence ? hub.presenceJSON(name) : "{}"
            return send(event: "pusher_internal:subscription_succeeded", channel: name, data: data)
        }
        guard !connection.loop.group.memory.isOver else {
            report(PusherError(PusherError.overCapacity, "Over capacity: the server is over its memory threshold, retry later"))
            return sendSubscriptionError(name, type: "OverCapacity", status: 503, "The server is over its memory threshold: retry later")
        }
        guard subscriptions.count < Self.maxSubscriptions else {
            return refuse(name, type: "LimitReached", status: 4009,
                          "A connection may hold at most \(Self.maxSubscriptions) subscriptions")
        }

        var member: (id: String, info: String)?
        let auth = ChannelAuth(appKey: config.key, secret: config.secret)
        let given = data["auth"]?.stringValue ?? ""
        switch channel.kind {
        case .public:
            break
        case .serverToUser(let owner):
            guard owner == userID else {
                return refuse(name, type: "AuthError", status: 401, "Only a connection signed in as user \(owner) may subscribe to \(name)")
            }
        case .private where isSeed:
            break  // the organization's JWT vouches for the page
        case .private, .encrypted:
            // Seed mode never covers encrypted channels: their keys come only through a signed auth.
            if case .invalid(let expected) = auth.verify(auth: given, socketID: socketID, channel: name) {
                return refuseSignature(name, expected: expected, given: given)
            }
        case .presence where isSeed:
            // The organization's JWT vouches for the page; its user id is the client's own.
            let channelData = data["channel_data"]?.stringValue
                ?? #"{"user_id":"# + Self.quoted(seed?.userID ?? socketID) + "}"
            switch Self.presenceMember(channelData, maxInfoBytes: config.maxPresenceMemberSizeBytes) {
            case .success(let identity): member = identity
            case .failure(let refusal): return refuse(name, type: refusal.type, status: refusal.status, refusal.message)
            }
        case .presence:
            guard let channelData = data["channel_data"]?.stringValue else {
                return refuse(name, type: "AuthError", status: 401, "Presence channels need channel_data with a user_id")
            }
            if case .invalid(let expected) = auth.verify(auth: given, socketID: socketID, channel: name, channelData: channelData) {
                return refuseSignature(name, expected: expected, given: given)
            }
            switch Self.presenceMember(channelData, maxInfoBytes: config.maxPresenceMemberSizeBytes) {
            case .success(let identity): member = identity
            case .failure(let refusal): return refuse(name, type: refusal.type, status: refusal.status, refusal.message)
            }
        }

        let joined: Hub.Joined
        subscriptionSerials += 1
        let serial = subscriptionSerials
        do {
            joined = try hub.join(self, channel, serial: serial, member: member, maxMembers: config.maxPresenceMembersPerChannel,
                                  countsEnabled: config.enableSubscriptionCount)
        } catch {
            return refuse(name, type: "LimitReached", status: 4009, Self.presenceFullMessage(name, limit: config.maxPresenceMembersPerChannel))
        }
        subscriptions[name] = Subscription(channel: channel, memberID: member?.id, serial: serial)
        if joined.succeededData == nil && channel.kind == .presence { memberLists[name] = .awaited(events: []) }
        app.debugLog.record(.subscribed, channel: name, detail: DebugLog.connection(socketID, userID: member?.id))
        if channel.requiresAuth { hub.shard(loopIndex).authorized(self) }

        if let succeededData = joined.succeededData {
            acknowledge(channel, succeededData: succeededData, cached: joined.cached)
        }
        if let member, joined.firstOfUser {
            hub.publish(Hub.memberAddedFrame(name, member.id, member.info), to: name, except: socketID)
        }
        if let count = joined.subscriptionCount { hub.publishSubscriptionCount(count, to: name) }
    }

    /// What a cluster's shared state answered to a presence or cache subscribe.
    struct ClusterAnswer: Sendable {
        /// The subscription it answers (an answer for an earlier one is dropped).
        let serial: Int
        let succeededData: String
        let membersVersion: Int
        let lastEvent: CachedEvent?
    }

    /// In a cluster, presence and cache subscriptions are acknowledged once the cluster's member
    /// list and last event are known; member events that came meanwhile follow, unless the list has them.
    func clusterAnswered(_ channel: String, _ answer: ClusterAnswer) {
        guard !ended, let subscription = subscriptions[channel], subscription.serial == answer.serial else { return }
        acknowledge(subscription.channel, succeededData: answer.succeededData, cached: answer.lastEvent)
        guard subscription.channel.kind == .presence else { return }
        if case .awaited(let events)? = memberLists[channel] {
            for event in events where event.version > answer.membersVersion { send(event.frame) }
        }
        memberLists[channel] = .received(version: answer.membersVersion)
    }

    /// A cluster's member event: sent unless the member list this client got already has it.
    func memberEvent(_ frame: OutboundBuffer, on channel: String, version: Int) {
        switch memberLists[channel] {
        case .awaited(var events)?:
            events.append((version, frame))
            memberLists[channel] = .awaited(events: events)
        case .received(let listVersion)? where version <= listVersion:
            break
        default:
            send(frame)
        }
    }

    /// The cluster's presence channel already has as many users as it may: the subscription is
    /// refused as on one node, and undone here (the shared state never counted it).
    func clusterRefusedAsFull(_ channel: String, serial: Int, limit: Int) {
        guard !ended, subscriptions[channel]?.serial == serial else { return }
        unsubscribe(channel)
        refuse(channel, type: "LimitReached", status: 4009, Self.presenceFullMessage(channel, limit: limit))
    }

    static func presenceFullMessage(_ channel: String, limit: Int) -> String {
        "Presence channel \(channel) is full (\(limit) members)"
    }

    /// `subscription_succeeded`, then on cache channels the last event (or `pusher:cache_miss`).
    private func acknowledge(_ channel: ChannelName, succeededData: String, cached: CachedEvent?) {
        send(event: "pusher_internal:subscription_succeeded", channel: channel.name, data: succeededData)
        if channel.isCache {
            send(cached?.frame ?? PusherEvent.frame(event: "pusher:cache_miss", channel: channel.name, data: nil as String?))
        }
    }

    private func unsubscribe(_ name: String) {
        guard let subscription = subscriptions.removeValue(forKey: name) else { return }
        leave(subscription)
    }

    private func leave(_ subscription: Subscription) {
        let name = subscription.channel.name
        memberLists[name] = nil
        let left = hub.leave(self, subscription.channel, memberID: subscription.memberID,
                             countsEnabled: app.config.enableSubscriptionCount)
        app.debugLog.record(.unsubscribed, channel: name, detail: DebugLog.connection(socketID, userID: subscription.memberID))
        if let memberID = subscription.memberID, left.lastOfUser {
            hub.publish(Hub.memberRemovedFrame(name, memberID), to: name)
        }
        if let count = left.subscriptionCount { hub.publishSubscriptionCount(count, to: name) }
    }

    /// Both a `pusher:error` (4009) and a channel-scoped `pusher:subscription_error`; the
    /// connection stays open (PROTOCOL.md §1.6).
    private func refuse(_ channel: String, type: String, status: Int, _ message: String) {
        report(PusherError(PusherError.unauthorized, message))
        sendSubscriptionError(channel, type: type, status: status, message)
    }

    private func sendSubscriptionError(_ channel: String, type: String, status: Int, _ message: String) {
        let data = #"{"type":"\#(type)","error":"# + Self.quoted(message) + #","status":\#(status)}"#
        send(event: "pusher:subscription_error", channel: channel, data: data)
    }

    /// Pusher's wording, which users search for; the string to sign reveals nothing secret.
    private func refuseSignature(_ channel: String, expected: String, given: String) {
        refuse(channel, type: "AuthError", status: 401,
               "Invalid signature: Expected HMAC SHA256 hex digest of \(expected), but got \(Self.signaturePart(given))")
    }

    struct Refusal: Error {
        let type: String
        let status: Int
        let message: String
    }

    /// The presence identity in `channel_data`: `user_id` (a string or a number, kept as text)
    /// and `user_info` as the exact JSON text the backend signed.
    static func presenceMember(_ channelData: String, maxInfoBytes: Int) -> Result<(id: String, info: String), Refusal> {
        let bytes = Array(channelData.utf8)
        guard let object = (try? JSONParser.parse(bytes))?.objectValue else {
            return .failure(Refusal(type: "InvalidChannelData", status: 400, message: "channel_data must be a JSON object"))
        }
        let id: String
        switch object["user_id"] {
        case .string(let text) where !text.isEmpty: id = text
        case .number(let text): id = text
        default:
            return .failure(Refusal(type: "InvalidChannelData", status: 400, message: "channel_data needs a non-empty user_id"))
        }
        guard id.utf8.count <= maxUserIDLength else {
            return .failure(Refusal(type: "LimitReached", status: 4009, message: "user_id is longer than \(maxUserIDLength) characters"))
        }
        guard let info = object.member("user_info") else { return .success((id, "null")) }
        guard info.raw.count <= maxInfoBytes else {
            return .failure(Refusal(type: "LimitReached", status: 4009, message: "user_info is larger than \(maxInfoBytes) bytes"))
        }
        return .success((id, String(decoding: bytes[info.raw], as: UTF8.self)))
    }

    // MARK: Client events

    /// A `client-` event (Pusher's rules), or in seed mode any other event the page triggers on
    /// a channel it joined: those may go to any channel kind and reach the sender too, as the
    /// seed service's broadcasts did.
    private func clientEvent(_ event: String, _ message: JSONObject, _ bytes: [UInt8]) {
        let isSeedEvent = !event.hasPrefix("client-")
        let config = app.config
        guard config.enableClientMessages else {
            return report(PusherError(PusherError.clientEventRejected, "Client events are disabled for this app"))
        }
        guard let name = message["channel"]?.stringValue else {
            return report(PusherError(PusherError.clientEventRejected, "A client event needs a channel"))
        }
        guard let subscription = subscriptions[name] else {
            return report(PusherError(PusherError.unauthorized, "Client event rejected: not subscribed to \(name)"))
        }
        // Nothing but the backend's own ciphertext may reach an encrypted channel, in seed mode too.
        guard subscription.channel.kind != .encrypted else {
            return report(PusherError(PusherError.clientEventRejected, "Client events are not allowed on encrypted channels"))
        }
        guard isSeedEvent || subscription.channel.allowsClientEvents else {
            return report(PusherError(PusherError.clientEventRejected, "Client events are allowed only on private and presence channels"))
        }
        guard event.utf8.count <= config.maxEventNameLength else {
            return report(PusherError(PusherError.clientEventRejected, "Event name is longer than \(config.maxEventNameLength) characters"))
        }
        guard let data = message.member("data") else {
            return report(PusherError(PusherError.clientEventRejected, "A client event needs data"))
        }
        guard data.raw.count <= config.maxEventPayloadBytes else {
            return report(PusherError(PusherError.clientEventRejected, "Client event data is larger than \(config.maxEventPayloadBytes) bytes"))
        }
        guard takeClientEventToken(limit: config.maxClientEventsPerSecond) else {
            return report(PusherError(PusherError.clientEventRejected,
                                      "Client event rejected due to rate limit (\(config.maxClientEventsPerSecond) per second)"))
        }
        let rawData = bytes[data.raw]
        let webhook = ChannelEvent.clientEvent(channel: name, event: event, data: String(decoding: rawData, as: UTF8.self),
                                               socketID: socketID, userID: subscription.memberID)
        guard hub.emit(webhook) else {
            return report(PusherError(PusherError.clientEventRejected, "Client event refused: the app's webhook backlog is full"))
        }
        // user_id comes from the authorized presence data, never from the client's frame.
        let envelope = PusherEvent.encode(event: event, channel: name, data: .json(rawData), userID: subscription.memberID)
        hub.publishEvent(envelope, to: name, except: isSeedEvent ? nil : socketID)
    }

    private func takeSubscribeToken(rate: Int) -> Bool {
        let now = connection.loop.seconds
        // A reload that changed the rate starts a new bucket.
        var bucket = subscribeTokens.flatMap { $0.rate == Double(rate) ? $0 : nil }
            ?? TokenBucket(rate: Double(rate), burst: Double(rate) * 10, now: now)
        let taken = bucket.take(now: now)
        subscribeTokens = bucket
        return taken
    }

    private func takeClientEventToken(limit: Int) -> Bool {
        let second = Int(connection.loop.seconds)
        if clientEvents.second != second { clientEvents = (second, 0) }
        guard clientEvents.count < limit else { return false }
        clientEvents.count += 1
        return true
    }

    // MARK: Signin

    private func signIn(_ data: JSONObject?) {
        guard let auth = data?["auth"]?.stringValue, let userData = data?["user_data"]?.stringValue else {
            return report(PusherError(PusherError.unauthorized, "pusher:signin needs auth and user_data"))
        }
        let config = app.config
        let expected = ChannelAuth.signinStringToSign(socketID: socketID, userData: userData)
        if case .invalid = ChannelAuth(appKey: config.key, secret: config.secret).verify(auth: auth, stringToSign: expected) {
            return report(PusherError(PusherError.unauthorized,
                                      "Invalid signature: Expected HMAC SHA256 hex digest of \(expected), but got \(Self.signaturePart(auth))"))
        }
        guard let user = (try? JSONParser.parse(userData))?.objectValue,
              let id = user["id"]?.stringValue, !id.isEmpty, id.utf8.count <= Self.maxUserIDLength else {
            return report(PusherError(PusherError.unauthorized, "user_data must be a JSON object with a non-empty string id"))
        }
        if let current = userID {
            guard current == id else {
                return report(PusherError(PusherError.unauthorized, "This connection is already signed in as user \(current)"))
            }
            return send(event: "pusher:signin_success", data: #"{"user_data":"# + Self.quoted(userData) + "}")
        }

        var watched = (user["watchlist"]?.arrayValue ?? []).compactMap { $0.stringValue ?? $0.numberText }
        let overflow = watched.count > Self.maxWatchlist
        if overflow { watched = Array(watched.prefix(Self.maxWatchlist)) }
        userID = id
        watchlist = watched
        let state = hub.signIn(self, userID: id, watchlist: watched)

        send(event: "pusher:signin_success", data: #"{"user_data":"# + Self.quoted(userData) + "}")
        if !watched.isEmpty {
            if hub.cluster == nil {
                send(event: "pusher_internal:watchlist_events", data: Hub.watchlistEvents(online: state.online, offline: state.offline))
            } else {
                hub.tellWatchlist(to: self, watched)
            }
        }
        if overflow {
            report(PusherError(PusherError.watchlistLimit,
                               "Watchlist limit exceeded: only the first \(Self.maxWatchlist) user ids are watched"))
        }
        hub.announce(id, online: true, to: state.notify)
    }

    // MARK: The end

    /// The connection is gone: leave every channel, sign out, free the app's connection slot.
    func end() {
        guard !ended else { return }
        ended = true
        for subscription in subscriptions.values { leave(subscription) }
        subscriptions = [:]
        if let userID {
            hub.announce(userID, online: false, to: hub.signOut(self, userID: userID, watchlist: watchlist))
        }
        hub.shard(loopIndex).remove(self)
        app.releaseConnection()
        connection.userInfo = nil
    }

    static let pongFrame = PusherEvent.frame(event: "pusher:pong", data: "{}")
    static let pingFrame = PusherEvent.frame(event: "pusher:ping", data: "{}")

    /// What follows `key:` in an auth token, as Pusher's error message quotes it.
    static func signaturePart(_ auth: String) -> Substring {
        auth.firstIndex(of: ":").map { auth[auth.index(after: $0)...] } ?? auth[...]
    }

    static func quoted(_ text: String) -> String {
        "\"" + JSONString.escaped(text) + "\""
    }
}

extension JSON {
    /// A number's text, so that numeric ids become the same strings the client would send.
    var numberText: String? {
        if case .number(let text) = self { return text }
        return nil
    }
}
