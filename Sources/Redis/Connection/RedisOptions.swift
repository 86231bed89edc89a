/// How a client or subscriber connects, reconnects and bounds its memory.
public struct RedisOptions: Sendable {
    /// Limit on TCP connect plus the TLS handshake (rediss://) plus AUTH/SELECT; past it the
    /// attempt fails and is retried.
    public var connectTimeoutMs: Int
    /// Backoff after a failure: the first pause is about this long, doubling per
    /// consecutive failure up to `maxReconnectDelayMs`, each picked at random from its
    /// upper half so that many nodes do not reconnect in step.
    public var initialReconnectDelayMs: Int
    public var maxReconnectDelayMs: Int
    /// Most command bytes held unsent (queued or partly written); a command that would
    /// go over is refused with `RedisError.bufferFull`.
    public var maxQueuedBytes: Int
    public var parserLimits: RESPParserLimits
    /// The connection thread's name, as `ps -L` and debuggers show it (at most 15 bytes).
    public var threadName: String
    /// For `rediss://`: a PEM file of CA certificates trusted besides the system's store (a
    /// private CA that signed the Redis server's certificate). Read again at every connection
    /// attempt, so a renewed file is used from the next reconnect on. Ignored for `redis://`.
    public var tlsCAFile: String?

    public init(connectTimeoutMs: Int = 2000, initialReconnectDelayMs: Int = 100, maxReconnectDelayMs: Int = 5000,
                maxQueuedBytes: Int = 16 << 20, parserLimits: RESPParserLimits = RESPParserLimits(),
                threadName: String = "redis", tlsCAFile: String? = nil) {
        self.connectTimeoutMs = connectTimeoutMs
        self.initialReconnectDelayMs = initialReconnectDelayMs
        self.maxReconnectDelayMs = maxReconnectDelayMs
        self.maxQueuedBytes = maxQueuedBytes
        self.parserLimits = parserLimits
        self.threadName = threadName
        self.tlsCAFile = tlsCAFile
    }
}
