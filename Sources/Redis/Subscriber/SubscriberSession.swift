/// The subscriber's side of its connection: subscribes to everything on each (re)connect
/// and turns pub/sub replies into messages and confirmations.
final class SubscriberSession: ConnectionSession {
    private let state: SubscriptionState
    private let onMessage: @Sendable (RedisMessage) -> Void
    private let onSubscription: @Sendable (RedisSubscriptionEvent) -> Void

    init(state: SubscriptionState, onMessage: @escaping @Sendable (RedisMessage) -> Void,
         onSubscription: @escaping @Sendable (RedisSubscriptionEvent) -> Void) {
        self.state = state
        self.onMessage = onMessage
        self.onSubscription = onSubscription
    }

    var isClosing: Bool { state.isClosed }

    func attemptStarted() {}

    func becameReady(_ output: inout OutputBuffer) {
        output.append(state.connected())
    }

    func takeQueued(into output: inout OutputBuffer) {
        let pending = state.takePending()
        if !pending.isEmpty { output.append(pending) }
    }

    func unsentBytesChanged(_ count: Int) {}

    func ended(_ reason: RedisDisconnectReason) {
        state.disconnected()
    }

    /// Pub/sub replies are arrays led by their kind: `message channel payload`,
    /// `pmessage pattern channel payload`, `subscribe channel count` and so on.
    func received(_ value: RESPValue) throws(RedisDisconnectReason) {
        if case .error(let message) = value {
            onSubscription(.refused(message))
            return
        }
        guard let parts = value.array, let kind = parts.first?.string?.lowercased() else {
            throw Self.unexpected(value)
        }
        switch (kind, parts.count) {
        case ("message", 3):
            guard let channel = parts[1].string, let payload = parts[2].bytes else { throw Self.unexpected(value) }
            onMessage(RedisMessage(channel: channel, payload: payload))
        case ("pmessage", 4):
            guard let pattern = parts[1].string, let channel = parts[2].string, let payload = parts[3].bytes else {
                throw Self.unexpected(value)
            }
            onMessage(RedisMessage(channel: channel, pattern: pattern, payload: payload))
        case ("subscribe", 3), ("psubscribe", 3), ("unsubscribe", 3), ("punsubscribe", 3):
            guard let count = parts[2].integer else { throw Self.unexpected(value) }
            // A bare UNSUBSCRIBE with nothing subscribed answers with a null name; nothing to report.
            guard let name = parts[1].string else { return }
            let subscription: RedisSubscription = kind.hasPrefix("p") ? .pattern(name) : .channel(name)
            let event: RedisSubscriptionEvent = kind.hasSuffix("unsubscribe")
                ? .unsubscribed(subscription, count: Int(count))
                : .subscribed(subscription, count: Int(count))
            onSubscription(event)
        case ("pong", _):
            break
        default:
            throw Self.unexpected(value)
        }
    }

    private static func unexpected(_ value: RESPValue) -> RedisDisconnectReason {
        .unexpectedReply("pub/sub reply " + "\(value)".prefix(80))
    }
}
