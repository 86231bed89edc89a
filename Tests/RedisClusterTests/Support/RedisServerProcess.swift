import Glibc
import Redis
import Synchronization
import Testing

/// A real `redis-server` on a free loopback port (as in RedisTests), shared by the tests of one
/// suite through `RedisServerTrait`. Nothing is persisted (`--save '' --appendonly no`); its
/// output goes to /dev/null.
final class RedisServerProcess: @unchecked Sendable {
    // `pid` changes only in `kill`/`start`, which only the restart test calls (its suite has its own server).
    private(set) var port = 0
    private(set) var pid: pid_t = 0

    init() throws {
        // A port can be taken by another test between the pick and redis binding it; try a few.
        var lastError: Error = TestFailure("redis-server never started")
        for _ in 0..<5 {
            do {
                port = try RedisPorts.next()
                try start()
                return
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    deinit { kill() }

    var url: RedisURL { RedisURL(host: "127.0.0.1", port: port) }

    /// Starts (again, empty) on the same port, after `kill()`.
    func start() throws {
        let binary = "/usr/bin/redis-server"
        guard access(binary, X_OK) == 0 else { throw TestFailure("redis-server is not installed at \(binary)") }
        pid = try spawn([binary, "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                         "--daemonize", "no", "--dir", "/tmp"])
        try waitUntilServing()
    }

    /// SIGKILL, as a crash would be, and reaps the process.
    func kill() {
        guard pid > 0 else { return }
        Glibc.kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        pid = 0
    }

    /// Ready when `INFO server` on the port names our child's `process_id`.
    private func waitUntilServing() throws {
        let deadline = MonotonicMs.now() + 5000
        while MonotonicMs.now() < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                pid = 0
                throw TestFailure("redis-server on port \(port) exited at start")
            }
            if let connection = try? BlockingConnection(port: port),
               case .bulkString(let bytes)? = try? connection.roundTrip(["INFO", "server"]),
               String(decoding: bytes, as: UTF8.self).contains("process_id:\(pid)\r\n") {
                return
            }
            usleep(5000)
        }
        kill()
        throw TestFailure("redis-server on port \(port) did not answer within 5 s")
    }

    private func spawn(_ arguments: [String]) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var argv = arguments.map { strdup($0) }
        argv.append(nil)
        defer { for pointer in argv { free(pointer) } }
        var child: pid_t = 0
        let status = posix_spawn(&child, arguments[0], &actions, nil, argv, environ)
        guard status == 0 else { throw TestFailure("posix_spawn redis-server: \(String(cString: strerror(status)))") }
        return child
    }
}

/// One redis-server for a whole suite: started before its first test, killed after its last.
/// Tests read it from `RedisServerTrait.current`.
struct RedisServerTrait: SuiteTrait, TestScoping {
    @TaskLocal static var current: RedisServerProcess?

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let server = try RedisServerProcess()
        defer { server.kill() }
        try await Self.$current.withValue(server) { try await function() }
    }

    static var server: RedisServerProcess {
        get throws {
            guard let current else { throw TestFailure("the suite has no .redisServer trait") }
            return current
        }
    }
}

extension Trait where Self == RedisServerTrait {
    /// A redis-server for the suite.
    static var redisServer: Self { RedisServerTrait() }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

enum MonotonicMs {
    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
    }
}

/// Polls `condition` every 5 ms until it holds or `timeoutMs` passes; returns whether it held.
func eventually(timeoutMs: Int64 = 5_000, _ condition: () -> Bool) -> Bool {
    let deadline = MonotonicMs.now() + timeoutMs
    while !condition() {
        if MonotonicMs.now() >= deadline { return false }
        usleep(5000)
    }
    return true
}

/// A loopback port nobody listens on right now.
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    guard let port = boundPort(fd, 0) else { throw TestFailure("cannot bind a loopback port: errno \(errno)") }
    return port
}

/// Ports for redis-server outside the kernel's ephemeral range, so a port freed by killing a
/// server is not taken before it restarts there. A block of 50 per process, by pid; another
/// range than RedisTests' (20000-29999), as both may run in one test process.
enum RedisPorts {
    private static let counter = Atomic<Int>(0)

    static func next() throws -> Int {
        let block = 10_000 + Int(getpid() % 200) * 50
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

private func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return address
}

/// A blocking loopback connection with a 2 s receive timeout: one command, one reply.
/// Independent of the adapter, to check the server (and to look at keys) directly.
final class BlockingConnection {
    let fd: Int32

    init(port: Int) throws {
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

    func roundTrip(_ command: [any RedisArgument]) throws -> RESPValue {
        let bytes = RESPEncoder.command(command)
        guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else {
            throw TestFailure("send failed")
        }
        var parser = RESPParser()
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { throw TestFailure("no reply") }
            received += buffer[..<count]
            let step = received.withUnsafeBytes { raw in Result { () throws(RESPParseError) in try parser.parse(raw) } }
            let (consumed, value) = try step.get()
            received.removeFirst(consumed)
            if let value { return value }
        }
    }
}
