/// Pauses between reconnection attempts: exponential with jitter, reset by a success.
struct ReconnectBackoff {
    let initialMs: Int
    let maxMs: Int
    /// Failures since the last successful connection.
    private(set) var failures = 0

    init(initialMs: Int, maxMs: Int) {
        self.initialMs = max(1, initialMs)
        self.maxMs = max(self.initialMs, maxMs)
    }

    /// Records a failure and returns the pause before the next attempt: `initialMs`
    /// doubled per earlier consecutive failure, capped at `maxMs`, picked uniformly in
    /// [ceiling/2, ceiling] by `pick` (random in production, an end of the range in tests).
    mutating func nextDelayMs(pick: (ClosedRange<Int>) -> Int = { Int.random(in: $0) }) -> Int {
        let doublings = min(failures, 30)
        failures += 1
        let (doubled, overflow) = initialMs.multipliedReportingOverflow(by: 1 << doublings)
        let ceiling = overflow ? maxMs : min(doubled, maxMs)
        return pick((ceiling / 2)...ceiling)
    }

    mutating func reset() {
        failures = 0
    }
}
