/// A Redis connection for commands, shared by any number of threads.
///
/// - `send` encodes the command on the caller's thread, queues it and returns at once;
///   commands are pipelined and each completion is called exactly once, in the order the
///   commands were sent, on the client's own thread. Completions must not block: hand the
///   result to your own thread (an event loop's task queue) and return.
/// - The connection is made and kept by that thread: connect (with a timeout), AUTH and
///   SELECT from the URL, and after any failure a pause with exponential backoff and
///   jitter before the next attempt. Commands in flight when a connection fails complete
///   with `RedisError.disconnected`; while waiting to reconnect, `send` throws
///   `.notConnected` at once. Nothing is resent on its own: callers decide.
/// - `onEvent` reports `.connected` / `.disconnected(reason)` on the client's thread; after
///   a reconnect, state kept in Redis may need writing again.
/// - Unsent bytes are bounded by `RedisOptions.maxQueuedBytes`; past it `send` throws
///   `.bufferFull` rather than grow.
public final class RedisClient: Sendable {
    public let url: RedisURL
    private let inbox: CommandInbox
    private let thread: ConnectionThread

    public init(url: RedisURL, options: RedisOptions = RedisOptions(),
                onEvent: @escaping @Sendable (RedisConnectionEvent) -> Void = { _ in }) throws(RedisError) {
        self.url = url
        (inbox, thread) = try ConnectionThread.start(url: url, options: options, onEvent: onEvent) { wake in
            let inbox = CommandInbox(maxUnsentBytes: options.maxQueuedBytes, wake: wake)
            return (inbox, ClientSession(inbox: inbox))
        }
    }

    deinit {
        close()
    }

    /// Queues a command; `completion` gets its reply (an error reply as `.server`).
    /// Throws instead, without calling `completion`, when the command cannot be accepted:
    /// `.notConnected`, `.bufferFull`, `.closed`, `.emptyCommand`, `.unsupportedCommand`.
    public func send(_ arguments: [any RedisArgument], completion: @escaping RedisCompletion) throws(RedisError) {
        try Self.checkSupported(arguments)
        try inbox.enqueue(.init(bytes: RESPEncoder.command(arguments), completion: completion))
    }

    /// Stops the connection thread and waits for it (unless called on it). Commands in
    /// flight complete with `.disconnected(.closedByClient)`, queued ones with `.closed`.
    public func close() {
        inbox.close()
        thread.waitForExit()
    }

    /// True on the client's thread, where completions and events run.
    public var isOnClientThread: Bool { thread.isCurrent }

    /// Commands that do not get exactly one reply each would break reply matching.
    private static func checkSupported(_ arguments: [any RedisArgument]) throws(RedisError) {
        guard let first = arguments.first else { throw .emptyCommand }
        let name = first.withRedisBytes { String(decoding: $0, as: UTF8.self) }.uppercased()
        switch name {
        case "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE",
             "MONITOR", "HELLO", "RESET":
            throw .unsupportedCommand(name)
        case "CLIENT" where arguments.count > 1:
            let subcommand = arguments[1].withRedisBytes { String(decoding: $0, as: UTF8.self) }.uppercased()
            if subcommand == "REPLY" { throw .unsupportedCommand("CLIENT REPLY") }
        default:
            break
        }
    }
}
