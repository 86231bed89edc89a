import Synchronization

/// At most `perSecond` admissions per key and clock second, for any number of threads.
/// Keys of past seconds are dropped whenever the second turns, so memory follows the keys of one second.
final class PerKeyRateLimit: Sendable {
    let perSecond: Int
    private let window = Mutex<(second: Int, counts: [String: Int])>((0, [:]))

    init(perSecond: Int) {
        self.perSecond = perSecond
    }

    func admit(_ key: String, now: Double) -> Bool {
        let second = Int(now.rounded(.down))
        return window.withLock { window in
            if window.second != second { window = (second, [:]) }
            let count = window.counts[key, default: 0]
            guard count < perSecond else { return false }
            window.counts[key] = count + 1
            return true
        }
    }
}
