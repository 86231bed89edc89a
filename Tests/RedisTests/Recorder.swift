import Synchronization
import RedisServerSupport

/// Collects what callbacks report on other threads, for assertions with bounded waits.
final class Recorder<Item: Sendable>: Sendable {
    private let items = Mutex<[Item]>([])

    func append(_ item: Item) {
        items.withLock { $0.append(item) }
    }

    var all: [Item] { items.withLock { $0 } }

    /// Waits (bounded) until `count` items arrived; returns them all.
    @discardableResult
    func wait(count: Int, timeoutMs: Int64 = 10_000) -> [Item] {
        _ = eventually(timeoutMs: timeoutMs) { items.withLock { $0.count >= count } }
        return all
    }

    /// Waits (bounded) until an item matches; returns it.
    func first(timeoutMs: Int64 = 10_000, where matches: (Item) -> Bool) -> Item? {
        var found: Item?
        _ = eventually(timeoutMs: timeoutMs) {
            found = items.withLock { $0.first(where: matches) }
            return found != nil
        }
        return found
    }
}
