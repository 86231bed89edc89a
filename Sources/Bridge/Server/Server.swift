import Foundation
import Glibc
import Support
import Synchronization
import System

/// The transport core put together: routes, loops, signals. Build one, add routes, call `run()`.
public final class Server {
    public let config: ServerConfig
    public private(set) var router = Router<Endpoint>()
    /// The loops, for fan-out (`LoopGroup.send`); they run once `start()` returns.
    public let loops: LoopGroup

    public init(config: ServerConfig) {
        self.config = config
        self.loops = LoopGroup(maxConnections: config.maxConnections, memory: MemoryGuard(limitBytes: config.maxMemoryBytes))
        addOperationalRoutes()
        let memory = loops.memory
        readinessChecks.add { memory.problem }
        if let echoPath = config.echoPath {
            router.add("GET", echoPath, .webSocket(EchoService()))
        }
    }

    private let readinessChecks = ReadinessChecks()

    /// `check` returns nil while its part works, else what is wrong; any problem makes `/ready` 503.
    public func addReadinessCheck(_ check: @escaping @Sendable () -> String?) {
        readinessChecks.add(check)
    }

    /// Adds a route; call before `start()`.
    public func route(_ method: String, _ pattern: String, maxBodyBytes: Int? = nil, _ endpoint: Endpoint) {
        router.add(method, pattern, maxBodyBytes: maxBodyBytes, endpoint)
    }

    /// Starts the loops and returns the bound port. Blocks SIGTERM/SIGINT in every thread it
    /// creates, so that only `run()`'s `sigwait` sees them.
    @discardableResult
    public func start() throws -> Int {
        Log.level = config.logLevel
        Log.format = config.logFormat
        signal(SIGPIPE, SIG_IGN)
        var signals = Server.handledSignals
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        if let settings = config.tls {
            SessionTicketKeys.setLifetime(settings.ticketKeyLifetimeSeconds)
            tls = try TLSServer(settings)
        }
        let ports = try loops.start(count: config.threads, server: ServerContext(config: config, router: router, tls: tls))
        loops.memory.start()
        Log.info("listening on http://\(config.host):\(ports.plain) threads=\(config.threads) max-connections=\(config.maxConnections)"
                 + (config.echoPath.map { " echo=\($0)" } ?? ""))
        if let tlsPort = ports.tls, let settings = config.tls {
            self.tlsPort = tlsPort
            Log.info("listening on https://\(settings.host ?? config.host):\(tlsPort) (TLS 1.2/1.3, \(settings.certificates.count + 1) certificate(s))")
        }
        return ports.plain
    }

    /// The TLS listener's certificates, once started with one.
    public private(set) var tls: TLSServer?
    /// The TLS listener's bound port, once started with one.
    public private(set) var tlsPort: Int?

    /// Checks the certificate and key files every `interval` seconds and reloads them when one
    /// changed (a renewal), as SIGHUP does; a failed reload is logged once per change.
    public func watchTLSFiles(every interval: Double) {
        guard let tls else { return }
        Thread.detachNewThread {
            while true {
                Thread.sleep(forTimeInterval: interval)
                do {
                    if try tls.reloadIfFilesChanged() { Log.info("TLS: certificate files changed on disk: reloaded") }
                } catch {
                    Log.error("TLS: certificate files changed on disk but did not load, the previous ones stay in use: \(error)")
                }
            }
        }
    }

    /// Loads new certificates for new handshakes (SIGHUP); on any error the old ones stay in use
    /// and the one log line says why.
    public func reloadTLS(_ settings: TLSSettings) {
        guard let tls else { return }
        do {
            try tls.reload(settings)
            Log.info("TLS: certificates reloaded (\(settings.certificates.count + 1) certificate(s))")
        } catch {
            Log.error("TLS: certificates not reloaded, the previous ones stay in use: \(error)")
        }
    }

    /// Called on SIGHUP, on the thread that runs `runUntilSignalled`.
    public var onReload: (() -> Void)?

    /// Waits for SIGTERM or SIGINT (running `onReload` on each SIGHUP meanwhile), then drains: stop accepting, close WebSockets with 1001,
    /// finish HTTP responses, and return once every connection is gone or `shutdownGrace` has
    /// passed. A second signal during the drain exits the process at once.
    public func runUntilSignalled() {
        let group = loops
        var signals = Server.handledSignals
        var received: Int32 = 0
        while true {
            sigwait(&signals, &received)
            guard received == SIGHUP else { break }
            Log.info("SIGHUP: reloading the configuration")
            onReload?()
        }
        Log.info("signal \(received): draining \(group.activeConnections) connections (grace \(config.shutdownGrace)s)")
        group.beginDrain()

        let deadline = MonotonicClock.nanoseconds + UInt64(config.shutdownGrace * 1e9)
        var poll = timespec(tv_sec: 0, tv_nsec: 20_000_000)
        var info = siginfo_t()
        while group.activeConnections > 0 && MonotonicClock.nanoseconds < deadline {
            if sigtimedwait(&signals, &info, &poll) > 0 && info.si_signo != SIGHUP {
                Log.warn("second signal: exiting now")
                exit(1)
            }
        }
        if group.activeConnections > 0 {
            Log.warn("grace period over with \(group.activeConnections) connections left")
        }
        group.stop()
        Log.info("stopped")
    }

    private static var handledSignals: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGHUP)
        return set
    }

    private func addOperationalRoutes() {
        router.add("GET", "/health", .http { _, _ in Self.status(200, "ok") })
        let group = loops
        let checks = readinessChecks
        router.add("GET", "/ready", .http { _, _ in
            guard !group.isDraining else { return Self.status(503, "draining") }
            if let problem = checks.firstProblem { return Self.status(503, "unavailable", reason: problem) }
            return Self.status(200, "ready")
        })
    }

    /// `{"status":…,"reason":…}`, the reason only when something is wrong.
    private static func status(_ code: Int, _ status: String, reason: String? = nil) -> HTTPResponse {
        .json(code, JSONWriter.object {
            $0.field("status", status)
            if let reason { $0.field("reason", reason) }
        })
    }
}

/// The checks behind `/ready`, added by the parts that can fail while the process runs.
private final class ReadinessChecks: Sendable {
    private let checks = Mutex<[@Sendable () -> String?]>([])

    func add(_ check: @escaping @Sendable () -> String?) {
        checks.withLock { $0.append(check) }
    }

    var firstProblem: String? {
        checks.withLock { $0 }.lazy.compactMap { $0() }.first
    }
}
