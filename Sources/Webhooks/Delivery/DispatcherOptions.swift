public struct DispatcherOptions: Sendable {
    /// Bounds the TCP and TLS connect phase of one attempt.
    public var connectTimeoutMs = 5_000
    /// Bounds one whole attempt, connect included.
    public var requestTimeoutMs = 10_000
    public var maxInFlightPerTarget = 8
    public var maxInFlight = 256
    public var initialRetryDelayMs = 1_000
    public var maxRetryDelayMs = 60_000
    /// Stop retrying when now - createdAtMs would exceed this (Python's
    /// validate_webhook rejects time_ms older than 300 s, PROTOCOL.md §1.16).
    public var maxAgeMs: Int64 = 290_000
    public var userAgent = "Bridge-Webhooks/1.0"
    /// A failed attempt that will be retried is logged at most once per target per this many ms.
    public var retryLogIntervalMs: Int64 = 10_000

    public init() {}
}

public enum DeliveryOutcome: Sendable, Equatable {
    case delivered(status: Int, attempts: Int)
    /// Will not be retried: a final status (non-retryable 4xx, 3xx), a non-retryable curl error, or maxAge reached.
    case failed(lastError: String, attempts: Int)
}
