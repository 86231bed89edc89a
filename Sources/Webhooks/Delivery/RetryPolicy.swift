import CCurl

/// What one attempt came to, before the dispatcher decides what happens next.
enum AttemptResult {
    /// The receiver answered. `retryAfter` is the raw `Retry-After` value, if any;
    /// `bodySnippet` is the start of the response body, for the error text.
    case answered(status: Int, retryAfter: String?, bodySnippet: String)
    /// No usable answer: connect failure, timeout, reset, bad URL and so on.
    case transportFailed(CurlError)
}

/// When to try again (PROTOCOL.md §1.16): retry network trouble, 408, 409,
/// 425, 429 and 5xx with exponential backoff and full jitter, honour
/// `Retry-After`, and give up before the webhook is too old to be accepted.
struct RetryPolicy {
    var initialDelayMs: Int
    var maxDelayMs: Int
    var maxAgeMs: Int64

    init(_ options: DispatcherOptions) {
        initialDelayMs = max(1, options.initialRetryDelayMs)
        maxDelayMs = max(initialDelayMs, options.maxRetryDelayMs)
        maxAgeMs = options.maxAgeMs
    }

    static func isSuccess(status: Int) -> Bool {
        (200...299).contains(status)
    }

    /// Statuses that say "not now" rather than "never": timeout, conflict, too
    /// early, too many requests, and every server error.
    static func isRetryable(status: Int) -> Bool {
        [408, 409, 425, 429].contains(status) || (500...599).contains(status)
    }

    /// The pause before attempt `attempts + 1`: `initialDelayMs` doubled per
    /// attempt so far, capped at `maxDelayMs`, then a uniform pick in [d/2, d].
    func backoffMs(afterAttempts attempts: Int, using random: inout some RandomNumberGenerator) -> Int {
        let doublings = min(max(attempts - 1, 0), 30)
        let ceiling = min(initialDelayMs.multipliedReportingOverflow(by: 1 << doublings).partialValue, maxDelayMs)
        return Int.random(in: (ceiling / 2)...ceiling, using: &random)
    }

    /// The pause before the next attempt: the server's `Retry-After` when it
    /// gives a positive one (capped at `maxDelayMs`), the backoff otherwise.
    /// A zero or past `Retry-After` gets the backoff too, so that a receiver
    /// answering "retry now" cannot pull us into a tight loop.
    func delayMs(afterAttempts attempts: Int, retryAfter: String?, nowMs: Int64,
                 using random: inout some RandomNumberGenerator) -> Int {
        if let retryAfter, let hinted = Self.retryAfterMs(retryAfter, nowMs: nowMs), hinted > 0 {
            return min(hinted, maxDelayMs)
        }
        return backoffMs(afterAttempts: attempts, using: &random)
    }

    /// Whether an attempt starting at `startMs` is still worth making.
    func isWithinMaxAge(_ delivery: WebhookDelivery, startMs: Int64) -> Bool {
        startMs - delivery.createdAtMs <= maxAgeMs
    }

    /// RFC 9110 §10.2.3: `Retry-After` is delay-seconds or an HTTP-date.
    /// Returns milliseconds from `nowMs` (negative for a past date), or nil when unparseable.
    static func retryAfterMs(_ value: String, nowMs: Int64) -> Int? {
        let trimmed = value.trimmingSpaces()
        guard !trimmed.isEmpty else { return nil }
        if trimmed.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            // Capped at maxDelayMs later; the bound here only keeps the multiplication safe
            // (and too many digits for an Int is just "a long time").
            let seconds = min(Int(trimmed) ?? .max, 1_000_000_000)
            return seconds * 1000
        }
        // curl_getdate reads all three HTTP-date forms (IMF-fixdate, RFC 850, asctime).
        let date = curl_getdate(String(trimmed), nil)
        guard date != -1 else { return nil }
        let deltaMs = Int64(date) * 1000 - nowMs
        return Int(clamping: deltaMs)
    }
}

private extension String {
    func trimmingSpaces() -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return self[start...end]
    }
}
