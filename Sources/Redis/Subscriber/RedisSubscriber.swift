/// A Redis connection in pub/sub mode, separate from any `RedisClient` (a connection that
/// subscribes can send nothing else).
///
/// Subscriptions are a set the subscriber keeps: `subscribe` and `unsubscribe` change it at
/// any time, from any thread, connected or not, and every (re)connect subscribes to all of
/// it again. Messages published while disconnected are lost (Redis pub/sub keeps nothing);
/// `onEvent(.connected)` is the cue to catch up from state kept elsewhere.
///
/// `onMessage`, `onSubscription` and `onEvent` run on the subscriber's own thread and must
/// not block. Connecting, AUTH/SELECT and backoff behave as in `RedisClient`.
public final class RedisSubscriber: Sendable {
    public let url: RedisURL
    private let state: SubscriptionState
    private let thread: ConnectionThread

    public init(url: RedisURL, options: RedisOptions = RedisOptions(),
                onMessage: @escaping @Sendable (RedisMessage) -> Void,
                onSubscription: @escaping @Sendable (RedisSubscriptionEvent) -> Void = { _ in },
                onEvent: @escaping @Sendable (RedisConnectionEvent) -> Void = { _ in }) throws(RedisError) {
        self.url = url
        (state, thread) = try ConnectionThread.start(url: url, options: options, onEvent: onEvent) { wake in
            let state = SubscriptionState(wake: wake)
            return (state, SubscriberSession(state: state, onMessage: onMessage, onSubscription: onSubscription))
        }
    }

    deinit {
        close()
    }

    public func subscribe(_ channels: [String]) {
        state.change(channels, pattern: false, subscribe: true)
    }

    public func unsubscribe(_ channels: [String]) {
        state.change(channels, pattern: false, subscribe: false)
    }

    /// Glob-style patterns: `*`, `?`, `[abc]`.
    public func psubscribe(_ patterns: [String]) {
        state.change(patterns, pattern: true, subscribe: true)
    }

    public func punsubscribe(_ patterns: [String]) {
        state.change(patterns, pattern: true, subscribe: false)
    }

    /// What the subscriber holds (and will hold again after a reconnect).
    public var subscriptions: Set<RedisSubscription> { state.subscriptions }

    /// Stops the connection thread and waits for it (unless called on it).
    public func close() {
        state.close()
        thread.waitForExit()
    }
}
