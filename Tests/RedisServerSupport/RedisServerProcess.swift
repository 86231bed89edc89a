import Glibc
import Redis
import Synchronization
import System

// What the Redis client's tests and the cluster adapter's tests both need: a real redis-server
// of their own, a plain connection to check it with, and bounded waits.

/// How a TLS server is set up: its certificate chain and key (PEM files).
public struct RedisServerTLS: Sendable {
    public var certificate: String
    public var key: String
    /// The CA file redis-server insists on having; clients are not asked for certificates.
    public var caFile: String

    public init(certificate: String, key: String, caFile: String) {
        self.certificate = certificate
        self.key = key
        self.caFile = caFile
    }
}

/// A real `redis-server` on a free loopback port, killed when released (or by `kill()`, as a
/// crash would be). Nothing is persisted (`--save '' --appendonly no`); its output goes to /dev/null.
public final class RedisServerProcess: @unchecked Sendable {
    // The ports are set once in `init`; `pid` changes only in `kill`/`start`, which the tests that
    // call them do not run concurrently with other users of the same server.
    /// Where clients connect: plain text, or TLS only when the server was started with `tls`.
    public private(set) var port = 0
    /// A plain-text port: `port` itself without TLS; with TLS a second port of the same server, for
    /// the checks of the tests themselves (`BlockingConnection` speaks no TLS).
    public private(set) var plainPort = 0
    public private(set) var pid: pid_t = 0
    private let extraArguments: [String]
    private let tls: RedisServerTLS?

    /// Starts a server; `arguments` are extra config, such as `["--requirepass", "pw"]`; with
    /// `tls`, `port` takes TLS connections only (`--tls-port`, clients not authenticated).
    public init(_ arguments: [String] = [], tls: RedisServerTLS? = nil) throws {
        extraArguments = arguments
        self.tls = tls
        // A port can be taken by another test between the pick and redis binding it; try a few.
        var lastError: Error = TestFailure("redis-server never started")
        for _ in 0..<5 {
            do {
                port = try RedisPorts.next()
                plainPort = tls == nil ? port : try RedisPorts.next()
                try start()
                return
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    deinit { kill() }

    public var url: RedisURL { RedisURL(host: "127.0.0.1", port: port, usesTLS: tls != nil) }

    /// Starts (again, empty) on the same port, after `kill()`.
    public func start() throws {
        let candidates: [String] = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        guard let binary = candidates.first(where: { access($0, X_OK) == 0 }) else {
            throw TestFailure("redis-server is not installed (scripts/install-deps.sh test installs it)")
        }
        var arguments = [binary, "--port", String(plainPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                         "--daemonize", "no", "--dir", "/tmp"] + extraArguments
        if let tls {
            arguments += ["--tls-port", String(port), "--tls-cert-file", tls.certificate, "--tls-key-file", tls.key,
                          "--tls-ca-cert-file", tls.caFile, "--tls-auth-clients", "no"]
        }
        pid = try spawnQuietly(arguments)
        try waitUntilServing()
    }

    /// SIGKILL, as a crash would be, and reaps the process.
    public func kill() {
        guard pid > 0 else { return }
        Glibc.kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        pid = 0
    }

    /// Ready when a connection on the port gets the `process_id` of our child from
    /// `INFO server`, so a server of another test on a reused port is never mistaken for ours.
    private func waitUntilServing() throws {
        let deadline = MonotonicClock.milliseconds + 5000
        while MonotonicClock.milliseconds < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                pid = 0
                throw TestFailure("redis-server on port \(plainPort) exited at start")
            }
            if let text = try? serverInfo(), text.contains("process_id:\(pid)\r\n") { return }
            usleep(5000)
        }
        kill()
        throw TestFailure("redis-server on port \(plainPort) did not answer within 5 s")
    }

    /// `INFO server` over a fresh connection, logging in first when the server has a password.
    private func serverInfo() throws -> String {
        let connection = try BlockingConnection(port: plainPort)
        if let index = extraArguments.firstIndex(of: "--requirepass"), index + 1 < extraArguments.count {
            _ = try connection.roundTrip(["AUTH", extraArguments[index + 1]])
        }
        guard case .bulkString(let bytes) = try connection.roundTrip(["INFO", "server"]) else { return "" }
        return String(decoding: bytes, as: UTF8.self)
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Polls `condition` every 5 ms until it holds or `timeoutMs` passes; returns whether it held.
/// The default is generous: two cores are shared by many tests and, at times, other work.
public func eventually(timeoutMs: Int64 = 10_000, _ condition: () -> Bool) -> Bool {
    let deadline = MonotonicClock.milliseconds + timeoutMs
    while !condition() {
        if MonotonicClock.milliseconds >= deadline { return false }
        usleep(5000)
    }
    return true
}

/// A loopback port nobody listens on right now, from the kernel's ephemeral range.
public func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    guard let port = boundPort(fd, 0) else { throw TestFailure("cannot bind a loopback port: errno \(errno)") }
    return port
}

/// Ports for redis-server, outside the kernel's ephemeral range (32768-60999 on Linux), so
/// that a port freed by killing a server is not handed straight to another test or to an
/// outgoing connection before the server restarts on it. Each test process takes its own
/// block of 50 by pid, and never reuses a port within it.
enum RedisPorts {
    private static let counter = Atomic<Int>(0)

    static func next() throws -> Int {
        let block = 20_000 + Int(getpid() % 200) * 50
        for _ in 0..<50 {
            let port = block + counter.add(1, ordering: .relaxed).newValue % 50
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            if boundPort(fd, port) != nil { return port }
        }
        throw TestFailure("no free port in \(block)..<\(block + 50)")
    }
}

/// Binds `fd` to 127.0.0.1:`port` (0: any); returns the port bound, or nil.
private func boundPort(_ fd: Int32, _ port: Int) -> Int? {
    var address = loopbackAddress(port: port)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    return bound ? Int(UInt16(bigEndian: address.sin_port)) : nil
}

public func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return address
}

/// A blocking loopback connection with a 2 s receive timeout: one command, one reply.
/// Independent of `RedisClient`, so it can check the server the client is tested against.
public final class BlockingConnection {
    public let fd: Int32

    public init(port: Int) throws {
        // Set `self.fd` only once connected: a class whose init throws after setting every
        // property is deinitialised, and closing the fd twice could close another test's socket.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = loopbackAddress(port: port)
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard status == 0 else {
            close(fd)
            throw TestFailure("connect to \(port) failed")
        }
        self.fd = fd
    }

    deinit { close(fd) }

    public func roundTrip(_ command: [any RedisArgument]) throws -> RESPValue {
        let bytes = RESPEncoder.command(command)
        guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else {
            throw TestFailure("send failed")
        }
        var parser = RESPParser()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { throw TestFailure("no reply") }
            var offset = 0
            while offset < count {
                let step = try buffer[offset..<count].withUnsafeBytes { try parser.parse($0) }
                offset += step.consumed
                if let value = step.value { return value }
                if step.consumed == 0 { break }
            }
        }
    }
}
