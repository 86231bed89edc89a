/// The seam between one broker node and the rest of its cluster (DESIGN.md §2). Without an
/// adapter a broker is a single node and nothing leaves the process: that stays the fast path.
/// An adapter (Redis, in the executable) carries `ClusterMessage`s to the other nodes and hands
/// theirs to `receive`, which delivers to this node's subscribers only.
public protocol ClusterAdapter: Sendable {
    /// Sends to every other node; must not block (it is called on event loops).
    func broadcast(_ message: ClusterMessage)
    /// Called once by the broker before any message flows.
    func start(receive: @escaping @Sendable (ClusterMessage) -> Void)
}
