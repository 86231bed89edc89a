import Bridge
import Dispatch
import Glibc
import Redis
import RedisCluster
import Synchronization
import RedisServerSupport

/// The broker as an adapter sees it, reduced to what the tests look at: every `apply`d change,
/// received message, `restoreShares` call and `otherNodesHave` value, kept under a lock
/// (they arrive on the adapter's threads).
final class TestNode: ClusterNode {
    private struct State {
        var changes: [ChannelChange] = []
        var messages: [ClusterMessage] = []
        var restores = 0
        var others: [[String: Int]] = []
        var counts: [String: Int] = [:]
        var frozen = false
        var onRestore: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    init(counts: [String: Int] = [:]) {
        state.withLock { $0.counts = counts }
    }

    // MARK: ClusterNode

    func receive(_ message: ClusterMessage) { state.withLock { $0.messages.append(message) } }
    func apply(_ change: ChannelChange) { state.withLock { $0.changes.append(change) } }

    func restoreShares() {
        let onRestore = state.withLock { state -> (@Sendable () -> Void)? in
            state.restores += 1
            return state.onRestore
        }
        onRestore?()
    }

    /// Blocks while `frozen`: the adapter's heartbeat asks for the counts first, so a frozen
    /// node stops renewing its lease, as a hung process would.
    func connectionCounts() -> [String: Int] {
        while state.withLock({ $0.frozen }) { usleep(5000) }
        return state.withLock { $0.counts }
    }

    func otherNodesHave(connections: [String: Int]) { state.withLock { $0.others.append(connections) } }

    // MARK: For the tests

    var changes: [ChannelChange] { state.withLock { $0.changes } }
    var messages: [ClusterMessage] { state.withLock { $0.messages } }
    var restores: Int { state.withLock { $0.restores } }
    var others: [[String: Int]] { state.withLock { $0.others } }
    /// Heartbeats that completed (each one reports the other nodes' connections).
    var heartbeats: Int { state.withLock { $0.others.count } }

    func set(counts: [String: Int]) { state.withLock { $0.counts = counts } }
    func freeze(_ frozen: Bool) { state.withLock { $0.frozen = frozen } }
    /// What `restoreShares` does besides counting (the hub calls `ClusterAdapter.restore` there).
    func onRestore(_ body: @escaping @Sendable () -> Void) { state.withLock { $0.onRestore = body } }

    func clear() {
        state.withLock {
            $0.changes = []
            $0.messages = []
        }
    }

    /// Waits (bounded) until `condition` holds for what arrived; returns whether it did.
    func wait(timeoutMs: Int64 = 5_000, until condition: (TestNode) -> Bool) -> Bool {
        eventually(timeoutMs: timeoutMs) { condition(self) }
    }
}

/// One value handed from an adapter's thread to the test's.
private final class Slot<Value: Sendable>: Sendable {
    private let value = Mutex<Value?>(nil)
    private let semaphore = DispatchSemaphore(value: 0)

    func fill(_ new: Value) {
        value.withLock { $0 = new }
        semaphore.signal()
    }

    func wait(timeoutMs: Int) -> Value? {
        guard semaphore.wait(timeout: .now() + .milliseconds(timeoutMs)) == .success else { return nil }
        return value.withLock { $0 }
    }
}

/// Calls an adapter method and waits (bounded) for its completion; throws when none came.
func completion<Value: Sendable>(timeoutMs: Int = 5_000, _ call: (@escaping @Sendable (Value) -> Void) -> Void) throws -> Value {
    let slot = Slot<Value>()
    call { slot.fill($0) }
    guard let value = slot.wait(timeoutMs: timeoutMs) else { throw TestFailure("no completion within \(timeoutMs) ms") }
    return value
}

/// Adapters of one test: distinct node ids, one fresh key prefix (with colons, as real ones may
/// have), all stopped at the end.
final class TestCluster {
    let url: RedisURL
    let prefix = "bridge:test:" + SecureRandom.hex(6)
    private(set) var adapters: [RedisClusterAdapter] = []
    private var stopped: Set<String> = []

    init(url: RedisURL) {
        self.url = url
    }

    convenience init() throws {
        self.init(url: try RedisServerTrait.server.url)
    }

    deinit { stopAll() }

    /// A node: `id` is repeated to the 16 hex characters of a node id ("a" → "aaaaaaaaaaaaaaaa").
    /// Started (heartbeat, subscriber) with `node` unless that is nil.
    func adapter(_ id: Character, node: TestNode? = TestNode(), leaseSeconds: Int = 15, graceMs: Int = 3_000) throws -> RedisClusterAdapter {
        let adapter = try RedisClusterAdapter(url: url, prefix: prefix, leaseSeconds: leaseSeconds, graceMs: graceMs,
                                              nodeID: String(repeating: id, count: 16), log: { _ in })
        adapters.append(adapter)
        if let node { adapter.start(node) }
        return adapter
    }

    func stop(_ adapter: RedisClusterAdapter) {
        guard stopped.insert(adapter.nodeID).inserted else { return }
        adapter.stop()
    }

    func stopAll() {
        for adapter in adapters { stop(adapter) }
    }
}

extension RedisClusterAdapter {
    /// `record`, waited for; nil when the shared state could not be reached.
    func record(_ share: ChannelShare) throws -> ChannelChange? {
        try completion { self.record(share, completion: $0) }
    }

    func record(_ appID: String, _ channel: String, _ subscriptions: Int, member: MemberShare? = nil,
                wantsMembers: Bool = false) throws -> ChannelChange? {
        try record(ChannelShare(appID: appID, channel: channel, subscriptions: subscriptions, members: member.map { [$0] } ?? [],
                                wantsMembers: wantsMembers))
    }

    func occupiedChannels(_ appID: String) throws -> [ChannelSummary]? {
        try completion { self.occupiedChannels(appID: appID, completion: $0) }
    }

    func channel(_ appID: String, _ name: String) throws -> ChannelSummary? {
        try completion { self.channel(appID: appID, name: name, completion: $0) }
    }

    func presenceUserIDs(_ appID: String, _ channel: String) throws -> [String]? {
        try completion { self.presenceUserIDs(appID: appID, channel: channel, completion: $0) }
    }

    /// Waits for every command sent before (one connection, answered in order): a query's
    /// completion runs after those of the earlier `restore`/`record` scripts.
    func barrier() throws {
        _ = try occupiedChannels("")
    }
}

extension ChannelChange {
    /// The member transitions as (user, transition), for comparisons that ignore `info`.
    var memberEvents: [String: ClusterTransition] {
        Dictionary(memberTransitions.map { ($0.userID, $0.transition) }, uniquingKeysWith: { a, _ in a })
    }

    var memberInfos: [String: String] {
        Dictionary(members.map { ($0.id, $0.info) }, uniquingKeysWith: { a, _ in a })
    }
}
