import Support

/// One Pusher connection: its socket id, subscriptions and signed-in user, and the dispatch of
/// every event its client sends (PROTOCOL.md §1.6–§1.11) to its facet: subscriptions
/// (PusherSession+Subscribe.swift), client events (+ClientEvents), signin (+Signin). The
/// connection keeps it as its `WebSocketSession` (+WebSocket) and calls it on its loop only.
final class PusherSession {
    let connection: Connection
    let app: App
    let socketID: String
    let loopIndex: Int
    var subscriptions: [String: Subscription] = [:]
    var userID: String?
    var watchlist: [String] = []
    var clientEvents = (second: -1, count: 0)
    var subscribeTokens: TokenBucket?
    var subscriptionSerials = 0
    /// Per presence channel: the version of the member list this client got, until a newer member
    /// event has followed it (member events arrive in version order, so from then on every one is
    /// sent), or the member events that arrived while the list is still awaited. Empty for most
    /// sessions most of the time, so a member event's fan-out does not look a channel up per subscriber.
    var memberLists: [String: MemberList] = [:]

    enum MemberList {
        case awaited(events: [(version: Int, frame: OutboundBuffer)])
        case received(version: Int)
    }
    var ended = false
    /// Set when the connection carried a valid JWT of the app's organization (seed mode).
    let seed: SeedMode?
    var isSeed: Bool { seed != nil }

    /// Subscriptions one connection may hold: a bound on the memory a client can make us keep.
    static let maxSubscriptions = 1000
    /// Pusher's cap on watchlist entries per user.
    static let maxWatchlist = 100

    init(connection: Connection, app: App, seed: SeedMode? = nil) {
        self.connection = connection
        self.app = app
        self.seed = seed
        socketID = SocketID.next()
        loopIndex = connection.loop.index
    }

    var hub: Hub { app.hub }

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
                return report(.malformed("A message must be a JSON object"))
            }
            message = object
        } catch {
            return report(.malformed("Invalid JSON: \(error)"))
        }
        guard let event = message["event"]?.stringValue else {
            return report(.malformed(#"A message needs a string "event""#))
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
                report(.malformed("Unknown event \"\(event)\""))
            }
        }
    }

    /// pusher-js sends `data` as an object; some clients send it as a JSON-encoded string.
    static func data(of message: JSONObject) -> JSONObject? {
        switch message["data"] {
        case .object(let object): return object
        case .string(let text): return (try? JSONParser.parse(text))?.objectValue
        default: return nil
        }
    }

    // MARK: The end

    /// The connection is gone: leave every channel, sign out, free the app's connection slot.
    func end() {
        guard !ended else { return }
        ended = true
        for subscription in subscriptions.values { leave(subscription) }
        subscriptions = [:]
        if let userID {
            hub.signOut(self, userID: userID, watchlist: watchlist)
        }
        hub.shard(loopIndex).remove(self)
        app.releaseConnection()
    }

    static let pongFrame = PusherEvent.frame(event: "pusher:pong", data: "{}")
    static let pingFrame = PusherEvent.frame(event: "pusher:ping", data: "{}")
}
