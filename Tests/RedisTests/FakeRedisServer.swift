import Glibc
import Synchronization
import RedisServerSupport

/// A loopback TCP server that plays a broken or silent Redis: every accepted connection is
/// handed to `behaviour` on the server's thread, one at a time. Counts connections.
final class FakeRedisServer: Sendable {
    let port: Int
    private let listener: Int32
    private let accepted = Atomic<Int>(0)
    /// Set with the listener shut down, under one lock, so the thread closes it only after.
    private let stopping = Mutex(false)
    private let finished = Atomic<Bool>(false)

    /// `behaviour` gets the connected fd (blocking, 2 s receive timeout) and closes nothing:
    /// the server closes it when `behaviour` returns.
    init(behaviour: @escaping @Sendable (Int32) -> Void) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = loopbackAddress(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(listener, pointer, length) == 0 && getsockname(listener, pointer, &length) == 0
            }
        }
        guard ok, listen(listener, 16) == 0 else {
            close(listener)
            throw TestFailure("fake server cannot listen")
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        self.listener = listener
        startThread { [self] in serve(behaviour) }
    }

    /// A server that answers the first command of every connection with `reply`, then waits
    /// for the client to go.
    convenience init(answeringFirstCommandWith reply: String) throws {
        try self.init { fd in
            if !readSome(fd).isEmpty { writeAll(fd, reply) }
            _ = readSome(fd)
        }
    }

    /// A server that relays every connection to `port` on loopback, both ways: a real server
    /// whose connection attempts can be counted.
    convenience init(relayingTo port: Int) throws {
        try self.init { fd in relay(fd, toPort: port) }
    }

    var connections: Int { accepted.load(ordering: .relaxed) }

    /// Stops accepting and waits (bounded) for the current connection's behaviour to end.
    /// The server's thread closes the listener, so that it is never used after being closed.
    func stop() {
        stopping.withLock { stopping in
            stopping = true
            shutdown(listener, Int32(SHUT_RDWR))
        }
        _ = eventually(timeoutMs: 10_000) { finished.load(ordering: .acquiring) }
    }

    private var isStopping: Bool { stopping.withLock { $0 } }

    private func serve(_ behaviour: @Sendable (Int32) -> Void) {
        while !isStopping {
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { continue }
            if isStopping {
                close(fd)
                break
            }
            accepted.add(1, ordering: .relaxed)
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            behaviour(fd)
            close(fd)
        }
        close(listener)
        finished.store(true, ordering: .releasing)
    }
}

/// Reads whatever arrives within the receive timeout; empty when the peer closed or was silent.
func readSome(_ fd: Int32) -> [UInt8] {
    var buffer = [UInt8](repeating: 0, count: 65536)
    let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
    return count > 0 ? Array(buffer[..<count]) : []
}

/// Copies bytes between `fd` and a new connection to `port` until either side closes.
private func relay(_ fd: Int32, toPort port: Int) {
    guard let upstream = try? BlockingConnection(port: port) else { return }
    var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: upstream.fd, events: Int16(POLLIN), revents: 0)]
    var buffer = [UInt8](repeating: 0, count: 65536)
    while poll(&fds, 2, 10_000) > 0 {
        for (from, to) in [(0, 1), (1, 0)] where fds[from].revents != 0 {
            let count = buffer.withUnsafeMutableBytes { recv(fds[from].fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return }
            let sent = buffer.withUnsafeBytes { send(fds[to].fd, $0.baseAddress, count, Int32(MSG_NOSIGNAL)) }
            guard sent == count else { return }
        }
    }
}

func writeAll(_ fd: Int32, _ text: String) {
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
}

/// Runs `body` on a new detached thread.
func startThread(_ body: @escaping @Sendable () -> Void) {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    var id = pthread_t()
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    pthread_create(&id, nil, { raw in
        Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, box)
    pthread_detach(id)
}
