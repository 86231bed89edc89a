import Bridge
import Redis
import Synchronization

/// Links this node to the others through Redis pub/sub: every event published here goes to the
/// Redis channel `{prefix}:events`, and every node delivers what it hears there to its own
/// subscribers. Each payload starts with the sending node's id, so a node skips its own.
///
/// Redis down: local delivery goes on (the hub delivers before it broadcasts), events for other
/// nodes are dropped and counted, and both connections come back on their own with backoff.
public final class RedisClusterAdapter: ClusterAdapter {
    public let nodeID: String
    public let url: RedisURL
    private let channel: String
    private let publisher: RedisClient
    private let subscriber = Mutex<RedisSubscriber?>(nil)
    private let health = Health()
    private let log: @Sendable (String) -> Void

    /// What the connection threads report, read by `/ready`.
    private final class Health: Sendable {
        struct State {
            var publisherUp = false
            var subscriberUp = false
            var dropped = 0
        }
        let state = Mutex(State())
    }

    /// Node ids are 16 hex characters, fixed length so a payload's id needs no delimiter.
    static let nodeIDLength = 16

    public init(url: RedisURL, prefix: String, nodeID: String = SecureRandom.hex(8), log: @escaping @Sendable (String) -> Void) throws(RedisError) {
        precondition(nodeID.utf8.count == Self.nodeIDLength, "node ids are \(Self.nodeIDLength) characters")
        self.nodeID = nodeID
        self.url = url
        self.channel = prefix + ":events"
        self.log = log
        let health = self.health
        publisher = try RedisClient(url: url, options: RedisOptions(threadName: "redis-pub")) { event in
            health.state.withLock { $0.publisherUp = event == .connected }
            log("redis publisher: \(event)")
        }
    }

    public func start(receive: @escaping @Sendable (ClusterMessage) -> Void) {
        let nodeID = Array(self.nodeID.utf8)
        let health = self.health
        let log = self.log
        do {
            let subscriber = try RedisSubscriber(url: url, options: RedisOptions(threadName: "redis-sub"), onMessage: { message in
                let payload = message.payload
                guard payload.count > nodeID.count, !payload.starts(with: nodeID) else { return }
                guard let decoded = ClusterMessage(decoding: Array(payload[nodeID.count...])) else {
                    log("redis: ignoring a cluster message this version cannot read (\(payload.count) bytes)")
                    return
                }
                receive(decoded)
            }, onEvent: { event in
                health.state.withLock { $0.subscriberUp = event == .connected }
                log("redis subscriber: \(event)")
            })
            subscriber.subscribe([channel])
            self.subscriber.withLock { $0 = subscriber }
        } catch {
            log("redis: cannot start the subscriber: \(error)")
        }
    }

    public func broadcast(_ message: ClusterMessage) {
        let payload = Array(nodeID.utf8) + message.encoded()
        do {
            try publisher.send(["PUBLISH", channel, payload]) { _ in }
        } catch {
            let dropped = health.state.withLock { state -> Int in
                state.dropped += 1
                return state.dropped
            }
            // One line per power of two, so an outage does not flood the log.
            if dropped & (dropped - 1) == 0 { log("redis: \(dropped) events not sent to other nodes (\(error))") }
        }
    }

    /// Nil while both connections are up; else what is wrong (for `/ready` and the logs).
    public var problem: String? {
        let current = health.state.withLock { $0 }
        if current.publisherUp && current.subscriberUp { return nil }
        return "redis \(url.host):\(url.port) unreachable: events reach this node's clients only"
    }

    public func stop() {
        publisher.close()
        subscriber.withLock { $0 }?.close()
    }
}
