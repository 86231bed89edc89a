import Foundation
import Glibc
import Synchronization

/// A small HTTP/1.1 server on 127.0.0.1 for webhook tests. Each connection
/// gets its own thread and may carry many requests (keep-alive). Every request
/// is recorded (head, Content-Length body, arrival time, connection number) and
/// answered as the script says: by arrival order from a list, or by a closure.
/// Every wait is bounded by `lifetimeMs`; call `stop()` when done.
final class TestReceiver: Sendable {
    /// What the receiver does with one request.
    enum Reply: Sendable {
        /// Wait `delayMs`, then answer with this status, headers and body; the connection stays open.
        case status(Int, body: [UInt8] = Array("ok".utf8), headers: [(String, String)] = [], delayMs: Int = 0)
        /// Never answer; close once the client gives up (or at stop or the deadline).
        case silence
        /// Close the connection without answering.
        case hangUp
    }

    /// One request as received, bytes untouched.
    struct Request: Sendable {
        let method: String
        let target: String
        let version: String
        let headers: [(name: String, value: String)]
        let body: [UInt8]
        /// When the whole request (head and body) had arrived.
        var arrivedAt = ContinuousClock.now
        /// Which accepted connection carried it, counting from 1.
        var connection = 0

        /// Values of every header called `name`, in order (RFC 9110 §5.1: names are case-insensitive).
        func values(of name: String) -> [String] {
            headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
        }
    }

    struct SocketError: Error {
        let call: String
        let errno: Int32
    }

    private struct Counters {
        var requests: [Request] = []
        var connections = 0
        var unanswered = 0
        var maxUnanswered = 0
    }

    static let maxHeadBytes = 64 * 1024
    static let maxBodyBytes = 4 * 1024 * 1024

    let port: UInt16
    private let listener: Int32
    private let deadline: ContinuousClock.Instant
    private let script: @Sendable (_ index: Int, _ request: Request) -> Reply
    private let counters = Mutex(Counters())
    private let listening = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let liveThreads = Atomic<Int>(0)

    /// A URL that reaches this receiver.
    var url: String { "http://127.0.0.1:\(port)/webhooks" }

    /// Answers the n-th request with `replies[n]` and any request beyond them with `.hangUp`.
    convenience init(replies: [Reply], listening: Bool = true, lifetimeMs: Int = 10_000) throws(SocketError) {
        try self.init(listening: listening, lifetimeMs: lifetimeMs) { index, _ in
            index < replies.count ? replies[index] : .hangUp
        }
    }

    /// Answers each request with `reply(index, request)`, index counting arrivals from 0.
    /// With `listening: false` the port is reserved but refuses connections until `startListening()`.
    init(listening: Bool = true, lifetimeMs: Int = 10_000,
         reply: @escaping @Sendable (_ index: Int, _ request: Request) -> Reply) throws(SocketError) {
        (listener, port) = try Self.boundLoopbackSocket()
        deadline = ContinuousClock.now + .milliseconds(lifetimeMs)
        script = reply
        if listening {
            try startListening()
        }
    }

    /// Starts accepting connections on the reserved port.
    func startListening() throws(SocketError) {
        guard !listening.exchange(true, ordering: .acquiringAndReleasing) else { return }
        guard listen(listener, 128) == 0 else { throw SocketError(call: "listen", errno: errno) }
        spawn { [self] in
            acceptConnections()
            close(listener)
        }
    }

    /// The requests received so far, in arrival order.
    func received() -> [Request] {
        counters.withLock { $0.requests }
    }

    /// Connections accepted so far.
    var connectionCount: Int {
        counters.withLock { $0.connections }
    }

    /// The most requests that were ever received but not yet answered at the same time.
    var maxConcurrentRequests: Int {
        counters.withLock { $0.maxUnanswered }
    }

    /// Waits until `count` requests have arrived or `timeoutMs` passed.
    func waitForRequests(count: Int, timeoutMs: Int = 5_000) -> [Request] {
        let deadline = ContinuousClock.now + .milliseconds(timeoutMs)
        while received().count < count && ContinuousClock.now < deadline {
            usleep(5_000)
        }
        return received()
    }

    /// Stops accepting, closes every connection and waits (at most five seconds) for the threads to end.
    func stop() {
        stopping.store(true, ordering: .releasing)
        if !listening.exchange(true, ordering: .acquiringAndReleasing) {
            close(listener)  // Never listened: no thread owns it.
        }
        let deadline = ContinuousClock.now + .seconds(5)
        while liveThreads.load(ordering: .acquiring) > 0 && ContinuousClock.now < deadline {
            usleep(5_000)
        }
    }

    /// Runs `body` with a loopback port that refuses connections: the port is
    /// bound (so nobody else gets it) but not listening, so a connect gets RST.
    static func withClosedPort<T>(_ body: (UInt16) throws -> T) throws -> T {
        let (fd, port) = try boundLoopbackSocket()
        defer { close(fd) }
        return try body(port)
    }

    private static func boundLoopbackSocket() throws(SocketError) -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(call: "socket", errno: errno) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr = in_addr(s_addr: UInt32(0x7f00_0001).bigEndian)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(fd, address, length) == 0 && getsockname(fd, address, &length) == 0
            }
        }
        guard ok else {
            let error = SocketError(call: "bind", errno: errno)
            close(fd)
            throw error
        }
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    // MARK: Serving

    private func spawn(_ body: @escaping @Sendable () -> Void) {
        liveThreads.add(1, ordering: .acquiringAndReleasing)
        Thread { [self] in
            body()
            liveThreads.subtract(1, ordering: .acquiringAndReleasing)
        }.start()
    }

    private var isDone: Bool {
        stopping.load(ordering: .acquiring) || ContinuousClock.now >= deadline
    }

    private func acceptConnections() {
        while !isDone {
            var pollFD = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&pollFD, 1, 20) == 1 else { continue }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            let number = counters.withLock { counters in
                counters.connections += 1
                return counters.connections
            }
            spawn { [self] in
                serve(connection, number: number)
                close(connection)
            }
        }
    }

    /// Reads and answers requests on one connection until it closes or a reply ends it.
    private func serve(_ connection: Int32, number: Int) {
        var buffer: [UInt8] = []
        while !isDone {
            guard var request = readRequest(connection, buffer: &buffer) else { return }
            request.arrivedAt = ContinuousClock.now
            request.connection = number
            let index = counters.withLock { counters in
                counters.requests.append(request)
                counters.unanswered += 1
                counters.maxUnanswered = max(counters.maxUnanswered, counters.unanswered)
                return counters.requests.count - 1
            }
            defer { counters.withLock { $0.unanswered -= 1 } }

            switch script(index, request) {
            case .status(let status, let body, let headers, let delayMs):
                sleepUnlessDone(milliseconds: delayMs)
                var head = "HTTP/1.1 \(status) Test\r\nContent-Type: text/plain\r\nContent-Length: \(body.count)\r\n"
                for (name, value) in headers {
                    head += "\(name): \(value)\r\n"
                }
                head += "\r\n"
                guard sendAll(connection, Array(head.utf8) + body) else { return }
                if request.values(of: "Connection").contains(where: { $0.lowercased() == "close" }) { return }
            case .silence:
                // Hold the connection until the client closes it, stop() or the deadline.
                while receive(connection) != nil {}
                return
            case .hangUp:
                return
            }
        }
    }

    /// One request from `buffer` plus what arrives; leftover bytes stay in `buffer`.
    /// Nil on end of stream, a malformed or oversized head, stop or the deadline.
    private func readRequest(_ connection: Int32, buffer: inout [UInt8]) -> Request? {
        var headEnd = Self.endOfHead(in: buffer)
        while headEnd == nil {
            guard buffer.count < Self.maxHeadBytes, let chunk = receive(connection) else { return nil }
            buffer += chunk
            headEnd = Self.endOfHead(in: buffer)
        }
        guard let headEnd, let head = Self.parseHead(Array(buffer[..<headEnd])) else { return nil }
        buffer.removeFirst(headEnd + 4)

        let declared = min(head.values(of: "Content-Length").first.flatMap { Int($0) } ?? 0, Self.maxBodyBytes)
        if declared > buffer.count && head.values(of: "Expect").contains(where: { $0.lowercased() == "100-continue" }) {
            guard sendAll(connection, Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)) else { return nil }
        }
        while buffer.count < declared {
            guard let chunk = receive(connection) else { return nil }
            buffer += chunk
        }
        let body = Array(buffer[..<declared])
        buffer.removeFirst(declared)
        return Request(method: head.method, target: head.target, version: head.version, headers: head.headers, body: body)
    }

    /// Up to 16 KiB as soon as any arrives; nil on end of stream, error, stop or the deadline.
    private func receive(_ connection: Int32) -> [UInt8]? {
        var pollFD = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
        while poll(&pollFD, 1, 20) != 1 {
            if isDone { return nil }
        }
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        var count: Int
        repeat {
            count = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
        } while count < 0 && errno == EINTR
        guard count > 0 else { return nil }
        return Array(chunk[..<count])
    }

    private func sendAll(_ connection: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 && errno == EINTR { continue }
            guard sent > 0 else { return false }
            offset += sent
        }
        return true
    }

    private func sleepUnlessDone(milliseconds: Int) {
        let end = ContinuousClock.now + .milliseconds(milliseconds)
        while ContinuousClock.now < end && !isDone {
            usleep(2_000)
        }
    }

    private static func endOfHead(in buffer: [UInt8]) -> Int? {
        guard buffer.count >= 4 else { return nil }
        return (0...(buffer.count - 4)).first { index in
            buffer[index] == 13 && buffer[index + 1] == 10 && buffer[index + 2] == 13 && buffer[index + 3] == 10
        }
    }

    /// RFC 9112 §3 request line, §5 field lines; anything malformed is dropped.
    private static func parseHead(_ head: [UInt8]) -> Request? {
        let lines = String(decoding: head, as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false)
        guard let requestLine = lines.first else { return nil }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let value = line[line.index(after: colon)...].trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
            headers.append((String(line[..<colon]), value))
        }
        return Request(method: String(parts[0]), target: String(parts[1]), version: String(parts[2]),
                       headers: headers, body: [])
    }
}
