import Bridge
import Dispatch
import Redis
import Synchronization

/// Links this node to the others through one Redis (DESIGN.md §8).
///
/// - Events: every event published here goes to the pub/sub channel `{prefix}:events`; every node
///   delivers what it hears there to its own subscribers. Each payload starts with the sending
///   node's id, so a node skips its own.
/// - Shared state: each node writes its share of every channel it has subscribers in, through the
///   scripts of `SharedStateScripts`, which decide the cluster-wide transitions atomically and
///   publish the member events themselves (to every node, this one too, in their order).
/// - Liveness: a heartbeat every lease/3 renews this node's lease, publishes its connection
///   counts, and sweeps nodes whose lease expired (their clients are gone: their members leave,
///   their channels may be vacated, announced by the sweeping node).
/// - Redis down: local delivery goes on (the hub delivers before it broadcasts), `/ready` says
///   degraded, shares that could not be written mark the shared state stale, and the first
///   heartbeat that gets through writes this node's whole share again.
public final class RedisClusterAdapter: ClusterAdapter {
    public let nodeID: String
    public let url: RedisURL
    /// For `rediss://`: CA certificates trusted besides the system's (`RedisOptions.tlsCAFile`).
    private let tlsCAFile: String?
    private let keys: SharedStateKeys
    private let leaseMs: Int
    private let graceMs: Int
    /// Commands (PUBLISH and the scripts), pipelined in the order they were sent.
    private let redis: RedisClient
    private let subscriber = Mutex<RedisSubscriber?>(nil)
    private let state = SharedBox()
    /// Heartbeats, and answers to callers while Redis cannot take commands (never on their thread:
    /// they may hold a hub's lock).
    private let queue = DispatchQueue(label: "bridge.cluster")
    private let log: @Sendable (String) -> Void

    /// Reference to the state, for the connection threads' closures (a `Mutex` cannot be copied into them).
    private final class SharedBox: Sendable {
        let mutex = Mutex(State())
        func withLock<T>(_ body: (inout State) -> T) -> T { mutex.withLock { body(&$0) } }
    }

    private struct State {
        var node: (any ClusterNode)?
        var commandsUp = false
        var subscriberUp = false
        var dropped = 0
        /// The shared state's epoch as first seen; a different one means Redis lost its data.
        var epoch: String?
        /// A share could not be written: the shared state misses it until the next restore.
        var stale = false
        /// During a restore after Redis lost its data: arrivals were announced before the loss.
        var quietArrivals = false
        var stopped = false
    }

    /// Node ids are 16 hex characters: fixed length, so a payload's id needs no delimiter.
    static let nodeIDLength = 16

    public init(url: RedisURL, tlsCAFile: String? = nil, prefix: String, leaseSeconds: Int = 15, graceMs: Int = 3_000,
                nodeID: String = SecureRandom.hex(8), log: @escaping @Sendable (String) -> Void) throws(RedisError) {
        precondition(nodeID.utf8.count == Self.nodeIDLength, "node ids are \(Self.nodeIDLength) characters")
        self.nodeID = nodeID
        self.url = url
        self.tlsCAFile = tlsCAFile
        self.keys = SharedStateKeys(prefix: prefix)
        self.leaseMs = leaseSeconds * 1000
        self.graceMs = graceMs
        self.log = log
        let state = self.state
        let loaded = Mutex<RedisClient?>(nil)
        redis = try RedisClient(url: url, options: RedisOptions(threadName: "redis-cmd", tlsCAFile: tlsCAFile)) { event in
            state.withLock { $0.commandsUp = event == .connected }
            log("redis commands: \(event)")
            // Nothing else is queued on a fresh connection: the scripts are loaded before any EVALSHA.
            if event == .connected, let client = loaded.withLock({ $0 }) {
                for script in SharedStateScripts.all { try? client.send(["SCRIPT", "LOAD", script.source]) { _ in } }
            }
        }
        loaded.withLock { $0 = redis }
    }

    // MARK: Events

    public func start(_ node: any ClusterNode) {
        state.withLock { $0.node = node }
        let nodeID = Array(self.nodeID.utf8)
        let state = self.state
        let log = self.log
        do {
            let subscriber = try RedisSubscriber(url: url, options: RedisOptions(threadName: "redis-sub", tlsCAFile: tlsCAFile), onMessage: { message in
                let payload = message.payload
                guard payload.count > nodeID.count, !payload.starts(with: nodeID) else { return }
                guard let decoded = ClusterMessage(decoding: Array(payload[nodeID.count...])) else {
                    log("redis: ignoring a cluster message this version cannot read (\(payload.count) bytes)")
                    return
                }
                node.receive(decoded)
            }, onEvent: { event in
                state.withLock { $0.subscriberUp = event == .connected }
                log("redis subscriber: \(event)")
            })
            subscriber.subscribe([keys.events])
            self.subscriber.withLock { $0 = subscriber }
        } catch {
            log("redis: cannot start the subscriber: \(error)")
        }
        queue.async { self.heartbeat() }
    }

    public func broadcast(_ message: ClusterMessage) {
        let payload = Array(nodeID.utf8) + message.encoded()
        do {
            try redis.send(["PUBLISH", keys.events, payload]) { _ in }
        } catch {
            let dropped = state.withLock { state -> Int in
                state.dropped += 1
                return state.dropped
            }
            // One line per power of two, so an outage does not flood the log.
            if dropped & (dropped - 1) == 0 { log("redis: \(dropped) events not sent to other nodes (\(error))") }
        }
    }

    // MARK: Shared state

    public func record(_ share: ChannelShare, completion: @escaping @Sendable (ChannelChange?) -> Void) {
        var arguments: [any RedisArgument] = [nodeID, share.channel, graceMs, share.subscriptions,
                                              share.wantsMembers ? "1" : "0", share.wantsLastEvent ? "1" : "0", keys.leasePrefix,
                                              share.memberCap ?? 0, share.appID, keys.events, share.joiner ?? ""]
        if let member = share.members.first {
            arguments += [member.userID, member.connections, member.info] as [any RedisArgument]
        }
        let keys = self.keys
        let recordKeys = channelKeys(share) + [keys.lastEvent(app: share.appID, share.channel)]
        run(SharedStateScripts.record, keys: recordKeys, arguments, writes: true) { reply in
            if reply?.string == "full" { return completion(.presenceFull(appID: share.appID, channel: share.channel)) }
            completion(reply.flatMap { SharedStateReply.change($0, keys: keys) })
        }
    }

    public func restore(appID: String, _ shares: [ChannelShare]) {
        for share in shares {
            let quiet = state.withLock { $0.quietArrivals }
            var arguments: [any RedisArgument] = [nodeID, share.channel, graceMs, share.subscriptions, keys.leasePrefix,
                                                  appID, keys.events, quiet ? "1" : "0"]
            for member in share.members {
                arguments += [member.userID, member.connections, member.info] as [any RedisArgument]
            }
            run(SharedStateScripts.restore, keys: channelKeys(share), arguments, writes: true) { reply in self.applyChanges(reply.map { [$0] }) }
        }
        // Channels this node had before but has no longer: their shares go, as if a sweep.
        let kept = shares.map { keys.channel(app: appID, $0.channel) } as [any RedisArgument]
        run(SharedStateScripts.drop, keys: dropKeys(nodeID), [nodeID, graceMs, "0", keys.channelPrefix, keys.channelSetPrefix, appID, nodeID, keys.events] + kept,
            writes: true) { reply in self.applyChanges(reply?.array) }
    }

    public func keepLastEvent(_ event: LastEvent) {
        run(SharedStateScripts.keepLast, keys: [keys.lastEvent(app: event.appID, event.channel), keys.channel(app: event.appID, event.channel)],
            [event.envelope, event.data, event.ttlMs], writes: false) { _ in }
    }

    /// Hands changes nobody here asked for (a restore, a sweep) to the node.
    private func applyChanges(_ replies: [RESPValue]?) {
        let (node, quiet) = state.withLock { ($0.node, $0.quietArrivals) }
        for reply in replies ?? [] {
            guard let change = SharedStateReply.change(reply, keys: keys) else { continue }
            node?.apply(quiet ? change.withoutArrivals : change)
        }
    }

    private func channelKeys(_ share: ChannelShare) -> [String] {
        [keys.channel(app: share.appID, share.channel), keys.channelSet(app: share.appID), keys.index(node: nodeID)]
    }

    private func dropKeys(_ node: String) -> [String] {
        [keys.index(node: node), keys.nodes, keys.connections(node: node)]
    }

    // MARK: Heartbeat

    /// Renews the lease and publishes the connection counts; restores this node's share when the
    /// shared state lost it; sweeps dead nodes. Runs on `queue`, and schedules the next one.
    private func heartbeat() {
        guard let node = state.withLock({ $0.stopped ? nil : $0.node }) else { return }
        var arguments: [any RedisArgument] = [nodeID, leaseMs, keys.leasePrefix, keys.connectionsPrefix, SecureRandom.hex(8)]
        for (app, count) in node.connectionCounts() where count > 0 {
            arguments += [app, count] as [any RedisArgument]
        }
        let beatKeys = [keys.nodes, keys.lease(node: nodeID), keys.connections(node: nodeID), keys.epoch]
        run(SharedStateScripts.heartbeat, keys: beatKeys, arguments, writes: false) { reply in
            defer { self.queue.asyncAfter(deadline: .now() + .milliseconds(self.leaseMs / 3)) { self.heartbeat() } }
            guard let beat = reply.flatMap(SharedStateReply.heartbeat) else { return }
            node.otherNodesHave(connections: beat.otherNodesConnections)
            let (restore, lostData) = self.state.withLock { s -> (Bool, Bool) in
                let lostData = s.epoch != nil && s.epoch != beat.epoch
                let restore = (s.epoch != nil && !beat.renewed) || s.stale || lostData
                s.epoch = beat.epoch
                s.stale = false
                s.quietArrivals = lostData
                return (restore, lostData)
            }
            if restore {
                self.log(lostData ? "cluster: redis lost its data; writing this node's share again"
                                  : "cluster: the shared state missed this node's share; writing it again")
                node.restoreShares()
            }
            for dead in beat.deadNodes { self.sweep(dead) }
        }
    }

    /// Takes a dead node's share away; only one survivor gets its changes, and announces them (so
    /// it, not the dead node, holds their webhooks in the grace window).
    private func sweep(_ deadNode: String) {
        run(SharedStateScripts.drop, keys: dropKeys(deadNode), [deadNode, graceMs, "1", keys.channelPrefix, keys.channelSetPrefix, "", nodeID, keys.events],
            writes: false) { reply in
            guard let changes = reply?.array, !changes.isEmpty else { return }
            self.log("cluster: node \(deadNode) missed its lease: its share of \(changes.count) channels removed")
            self.applyChanges(changes)
        }
    }

    // MARK: Queries

    public func occupiedChannels(appID: String, completion: @escaping @Sendable ([ChannelSummary]?) -> Void) {
        run(SharedStateScripts.occupied, keys: [keys.channelSet(app: appID)], [keys.channel(app: appID, "")], writes: false) { reply in
            completion(reply.flatMap(SharedStateReply.summaries))
        }
    }

    public func channel(appID: String, name: String, completion: @escaping @Sendable (ChannelSummary?) -> Void) {
        run(SharedStateScripts.channelInfo, keys: [keys.channel(app: appID, name), keys.lastEvent(app: appID, name)], [],
            writes: false) { reply in
            completion(reply.flatMap { SharedStateReply.channel($0, app: appID, name: name) })
        }
    }

    public func presenceUserIDs(appID: String, channel: String, completion: @escaping @Sendable ([String]?) -> Void) {
        evaluate(["HKEYS", keys.channel(app: appID, channel)], writes: false) { reply in
            guard let fields = reply?.array else { return completion(nil) }
            completion(fields.compactMap { $0.string }.filter { $0.hasPrefix("i:") }.map { String($0.dropFirst(2)) }.sorted())
        }
    }

    public func presentMembers(appID: String, channel: String, among userIDs: [String],
                               completion: @escaping @Sendable ([String]?) -> Void) {
        evaluate(["HMGET", keys.channel(app: appID, channel)] + userIDs.map { "i:" + $0 }, writes: false) { reply in
            guard let values = reply?.array, values.count == userIDs.count else { return completion(nil) }
            completion(zip(userIDs, values).filter { !$0.1.isNull }.map(\.0))
        }
    }

    // MARK: Commands

    /// Runs one of `SharedStateScripts` by its SHA (loaded on every connect), the whole script
    /// if Redis no longer has it (SCRIPT FLUSH).
    private func run(_ script: RedisScript, keys: [String], _ arguments: [any RedisArgument], writes: Bool,
                     completion: @escaping @Sendable (RESPValue?) -> Void) {
        let call = [keys.count] + keys as [any RedisArgument] + arguments
        let failed = failure(writes: writes, completion: completion)
        send(["EVALSHA", script.sha] + call, onError: failed) { [self] value in
            switch value {
            case .success(let reply):
                completion(reply)
            case .failure(.server(let message)) where message.hasPrefix("NOSCRIPT"):
                send(["EVAL", script.source] + call, onError: failed) { retried in
                    switch retried {
                    case .success(let reply): completion(reply)
                    case .failure(let error): failed(error)
                    }
                }
            case .failure(let error):
                failed(error)
            }
        }
    }

    /// A plain command; `completion` gets nil when Redis cannot answer.
    private func evaluate(_ arguments: [any RedisArgument], writes: Bool, completion: @escaping @Sendable (RESPValue?) -> Void) {
        let failed = failure(writes: writes, completion: completion)
        send(arguments, onError: failed) { result in
            switch result {
            case .success(let reply): completion(reply)
            case .failure(let error): failed(error)
            }
        }
    }

    /// What a failed command does: a write that fails leaves the shared state stale.
    private func failure(writes: Bool, completion: @escaping @Sendable (RESPValue?) -> Void) -> @Sendable (RedisError) -> Void {
        { [state, log] error in
            if writes { state.withLock { $0.stale = true } }
            if case .server(let message) = error { log("redis: command refused: \(message)") }
            completion(nil)
        }
    }

    /// Sends, or reports the refusal on `queue`: never on the caller's thread, which may hold a hub's lock.
    private func send(_ arguments: [any RedisArgument], onError: @escaping @Sendable (RedisError) -> Void,
                      completion: @escaping RedisCompletion) {
        do {
            try redis.send(arguments, completion: completion)
        } catch {
            queue.async { onError(error) }
        }
    }

    // MARK: Health and shutdown

    /// Nil while both connections are up; else what is wrong (for `/ready` and the logs).
    public var problem: String? {
        let current = state.withLock { $0 }
        if current.commandsUp && current.subscriberUp { return nil }
        return "redis \(url.host):\(url.port) unreachable: events reach this node's clients only"
    }

    /// Leaves the cluster: what this node still holds is taken away at once (announced like a
    /// sweep) instead of when its lease runs out. Waits at most a second for Redis.
    public func stop() {
        state.withLock { $0.stopped = true }
        let drop = SharedStateScripts.drop
        // No grace window (0 ms): this node writes its webhooks out as it stops and is not there to
        // cancel a departure against an arrival on another node, so arrivals after it are plain ones.
        let arguments: [any RedisArgument] = ["EVAL", drop.source, 3] + dropKeys(nodeID) as [any RedisArgument]
            + [nodeID, 0, "1", keys.channelPrefix, keys.channelSetPrefix, "", nodeID, keys.events] as [any RedisArgument]
        if let reply = try? redis.sendAndWait(arguments, timeoutMs: 1000) {
            applyChanges(reply.array)
            _ = try? redis.sendAndWait(["DEL", keys.lease(node: nodeID)], timeoutMs: 1000)
        }
        redis.close()
        subscriber.withLock { $0 }?.close()
    }
}

extension ChannelChange {
    /// The same change with its arrivals left out (they were announced before Redis lost its data).
    var withoutArrivals: ChannelChange {
        func quiet(_ transition: ClusterTransition) -> ClusterTransition { transition == .departed ? .departed : .unchanged }
        return ChannelChange(appID: appID, channel: channel, subscriptionCount: subscriptionCount, userCount: userCount,
                             transition: quiet(transition),
                             memberTransitions: memberTransitions.map { .init(userID: $0.userID, transition: quiet($0.transition), info: $0.info) },
                             members: members, membersVersion: membersVersion)
    }
}
