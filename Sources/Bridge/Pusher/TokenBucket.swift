/// A rate limit that lets bursts through: `burst` tokens at first, refilled at `rate` per second.
struct TokenBucket {
    let rate: Double
    let burst: Double
    private var tokens: Double
    private var refilledAt: Double

    init(rate: Double, burst: Double, now: Double) {
        self.rate = rate
        self.burst = burst
        tokens = burst
        refilledAt = now
    }

    /// Takes one token; false (and nothing taken) when none is left.
    mutating func take(now: Double) -> Bool {
        if now > refilledAt {  // a clock that went back refills nothing
            tokens = min(burst, tokens + (now - refilledAt) * rate)
            refilledAt = now
        }
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
