/// Why a connection to Redis ended or could not be made.
public enum RedisDisconnectReason: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    case resolveFailed(host: String, message: String)
    case connectFailed(address: String, message: String)
    /// Connecting plus the TLS handshake plus AUTH/SELECT took longer than `RedisOptions.connectTimeoutMs`.
    case connectTimedOut(afterMs: Int)
    /// `rediss://`: the TLS handshake failed (the certificate did not verify, the server does not
    /// speak TLS, the CA file cannot be read) or TLS failed later. The text says which, with the
    /// first entries of OpenSSL's error queue.
    case tlsFailed(String)
    /// AUTH or SELECT on connect was answered with an error (a wrong password, a bad db).
    case handshakeFailed(command: String, message: String)
    case closedByServer
    case socketError(String)
    case malformedReply(RESPParseError)
    /// A reply arrived that no command was waiting for, or a pub/sub message of an unknown shape.
    case unexpectedReply(String)
    /// `close()` was called.
    case closedByClient

    public var description: String {
        switch self {
        case .resolveFailed(let host, let message): "cannot resolve Redis host \(host): \(message)"
        case .connectFailed(let address, let message): "cannot connect to Redis at \(address): \(message)"
        case .connectTimedOut(let ms): "connecting to Redis timed out after \(ms) ms"
        case .handshakeFailed(let command, let message): "Redis refused \(command) on connect: \(message)"
        case .tlsFailed(let message): "TLS: \(message)"
        case .closedByServer: "Redis closed the connection"
        case .socketError(let message): "Redis connection failed: \(message)"
        case .malformedReply(let error): "malformed reply from Redis: \(error)"
        case .unexpectedReply(let summary): "unexpected reply from Redis: \(summary)"
        case .closedByClient: "the Redis client was closed"
        }
    }
}

/// Why a command failed.
public enum RedisError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// Redis answered with an error reply (`-ERR …`, `-WRONGTYPE …`).
    case server(String)
    /// The command was accepted but the connection ended before its reply arrived: it may or
    /// may not have run.
    case disconnected(RedisDisconnectReason)
    /// Refused at `send`: the client is waiting to reconnect after this failure.
    case notConnected(RedisDisconnectReason)
    /// Refused at `send`: accepting it would take the unsent bytes over `RedisOptions.maxQueuedBytes`.
    case bufferFull(limitBytes: Int)
    /// Refused at `send`: the client was closed.
    case closed
    case emptyCommand
    /// Refused at `send`: the command would break reply matching on this connection
    /// (SUBSCRIBE and friends, MONITOR, CLIENT REPLY, HELLO, RESET).
    case unsupportedCommand(String)
    /// `sendAndWait` gave up waiting; the command may still run.
    case timedOut(afterMs: Int)
    /// The client or subscriber could not start its thread or wake-up fd.
    case startFailed(String)

    public var description: String {
        switch self {
        case .server(let message): "Redis error: \(message)"
        case .disconnected(let reason): "Redis command lost: \(reason)"
        case .notConnected(let reason): "not connected to Redis (\(reason))"
        case .bufferFull(let limit): "Redis send buffer full (\(limit) bytes unsent)"
        case .closed: "the Redis client is closed"
        case .emptyCommand: "a Redis command needs at least one argument"
        case .unsupportedCommand(let name): "\(name) is not supported on a RedisClient (use RedisSubscriber for pub/sub)"
        case .timedOut(let ms): "no reply from Redis within \(ms) ms"
        case .startFailed(let message): "cannot start the Redis connection thread: \(message)"
        }
    }
}

/// Reported on the connection's thread when the connection comes up (after AUTH and SELECT)
/// or goes down. They alternate, starting with either: an outage is reported once, however
/// many reconnection attempts fail during it. After `.connected`, state kept in Redis may
/// have been lost (a restart without persistence): that is the moment to write it again.
public enum RedisConnectionEvent: Hashable, Sendable {
    case connected
    case disconnected(RedisDisconnectReason)
}
