/// Failed attempts that will be retried, said at most once per target per interval: the first at
/// once, the ones after it counted and mentioned in the next line. A receiver that is down gets
/// one line every interval, not one per attempt of every webhook queued for it.
struct RetryLog {
    private struct Said {
        var atMs: Int64
        var unsaid = 0
    }

    let intervalMs: Int64
    private var targets: [String: Said] = [:]

    init(intervalMs: Int64) {
        self.intervalMs = intervalMs
    }

    /// The line to log for this failure, or nil when one was logged for the target within the interval.
    mutating func line(target: String, error: String, attempts: Int, nowMs: Int64) -> String? {
        if var said = targets[target], nowMs - said.atMs < intervalMs {
            said.unsaid += 1
            targets[target] = said
            return nil
        }
        let unsaid = targets[target]?.unsaid ?? 0
        if targets.count >= 1_024 { targets = targets.filter { nowMs - $0.value.atMs < intervalMs } }
        targets[target] = Said(atMs: nowMs)
        let more = unsaid == 0 ? "" : "; \(unsaid) more failed attempt\(unsaid == 1 ? "" : "s") since the last line"
        return "webhooks: attempt \(attempts) to \(target) failed, retrying: \(error)\(more)"
    }
}
