import Synchronization

/// Hands a hub's shares to its state authority in the order the directory made them, without
/// holding the directory's lock while the authority runs: a share is queued under that lock, and
/// after it is released one thread at a time delivers everything queued. Order matters because a
/// share is an absolute value ("this node has 3"): two loops' shares must not overtake each other.
final class ShareHandoff: Sendable {
    typealias Work = @Sendable (any StateAuthority) -> Void

    private struct Pending {
        var work: [Work] = []
        var delivering = false
    }

    private let pending = Mutex(Pending())
    private let authority: any StateAuthority

    init(authority: any StateAuthority) {
        self.authority = authority
    }

    /// Called under the directory's lock.
    func queue(_ share: ChannelShare, then completion: @escaping @Sendable (ChannelChange?) -> Void) {
        queue { $0.record(share, completion: completion) }
    }

    /// Any other write of this node's share (a restore), in the same order.
    func queue(_ work: @escaping Work) {
        pending.withLock { $0.work.append(work) }
    }

    /// Called after the directory's lock is released: delivers what is queued unless another
    /// thread is already doing so (it then delivers this too). A completion that queues more
    /// (the local authority answers at once) has it delivered by the same loop.
    func deliver() {
        let taken = pending.withLock { pending -> [Work]? in
            guard !pending.delivering else { return nil }
            pending.delivering = true
            defer { pending.work = [] }
            return pending.work
        }
        guard var batch = taken else { return }
        while true {
            for work in batch { work(authority) }
            batch = pending.withLock { pending in
                defer { pending.work = [] }
                if pending.work.isEmpty { pending.delivering = false }
                return pending.work
            }
            if batch.isEmpty { return }
        }
    }
}
