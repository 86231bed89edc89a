import Glibc

/// Everything the transport core needs to run, fixed at start. Every limit has its default and
/// reason here; `bridge serve --help` lists the same names as flags.
public struct ServerConfig: Sendable {
    /// Bind address. `0.0.0.0` serves every interface; tests use `127.0.0.1`.
    public var host = "0.0.0.0"
    /// 6001 is the port Pusher-compatible servers (soketi, Reverb) listen on by default. 0 = ephemeral.
    public var port = 6001
    /// A TLS listener beside the plain one (wss://, https://); nil: none.
    public var tls: TLSSettings?
    /// Event loop threads; one per core keeps every core busy without lock contention.
    public var threads = ServerConfig.coreCount
    /// Where later parts keep their state (outbox, stores).
    public var dataDir = "./data"
    /// Path of a WebSocket echo endpoint for conformance runs; off unless set.
    public var echoPath: String?
    public var logLevel = Log.Level.info
    public var logFormat = Log.Format.text

    /// Past this many open connections, new ones get HTTP 503. Defaults to the open-file limit
    /// minus a reserve for listeners, loop fds and files.
    public var maxConnections = ServerConfig.defaultMaxConnections
    public var http = HTTPParserLimits()
    public var webSocket = WebSocketLimits()

    /// A request must be complete this long after its first byte, or it gets 408 (slowloris).
    public var requestTimeout = 30.0
    /// An idle keep-alive connection is closed after this.
    public var keepAliveTimeout = 60.0
    /// A WebSocket silent this long is pinged…
    public var webSocketPingInterval = 60.0
    /// …and dropped if nothing arrives within this after the ping.
    public var webSocketPongTimeout = 30.0
    /// After our close frame (or an HTTP error with `Connection: close`), the TCP connection is
    /// closed at the latest after this, whatever the peer does.
    public var closeTimeout = 5.0
    /// SIGTERM drains for at most this long before exiting.
    public var shutdownGrace = 10.0
    /// Unsent output one connection may hold; a reader slower than that is disconnected rather
    /// than allowed to grow the server's memory without bound.
    public var maxOutboundBytes = 1 << 20
    /// Above this resident memory, new connections and subscriptions are refused and `/ready`
    /// answers 503, so that a node under attack sheds load instead of meeting the OOM killer. Nil: off.
    public var maxMemoryBytes: Int? = MemoryGuard.defaultLimitBytes
    /// Origins allowed for cross-origin browser requests; `["*"]` allows any.
    public var corsOrigins = ["*"]

    public init() {}

    public static var coreCount: Int {
        max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    public static var openFileLimit: Int {
        var limit = rlimit()
        guard getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 else { return 1024 }
        return Int(min(limit.rlim_cur, 1 << 24))
    }

    static var defaultMaxConnections: Int {
        max(16, openFileLimit - 100)
    }
}

private let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
