import Foundation
import Glibc
import Synchronization

/// A tiny HTTP/1.1 server on 127.0.0.1 for webhook tests. It accepts one
/// connection per scripted reply, in order, records the request (head and
/// Content-Length body), answers it and closes. Every wait is bounded by
/// `lifetimeMs`; call `stop()` when done.
final class TestReceiver: Sendable {
    /// What the receiver does with one connection.
    enum Reply: Sendable {
        /// Answer with this status and body, then close.
        case status(Int, body: [UInt8] = Array("ok".utf8))
        /// Read the request, never answer, close once the client gives up.
        case silence
    }

    /// One request as received, bytes untouched.
    struct Request: Sendable {
        let method: String
        let target: String
        let version: String
        let headers: [(name: String, value: String)]
        let body: [UInt8]

        /// Values of every header called `name`, in order (RFC 9110 §5.1: names are case-insensitive).
        func values(of name: String) -> [String] {
            headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
        }
    }

    struct SocketError: Error {
        let call: String
        let errno: Int32
    }

    static let maxHeadBytes = 64 * 1024
    static let maxBodyBytes = 4 * 1024 * 1024

    let port: UInt16
    private let requests = Mutex<[Request]>([])
    private let stopping = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)

    /// A URL that reaches this receiver.
    var url: String { "http://127.0.0.1:\(port)/webhooks" }

    init(replies: [Reply], lifetimeMs: Int = 10_000) throws(SocketError) {
        let (listener, port) = try Self.boundLoopbackSocket()
        guard listen(listener, 16) == 0 else {
            let error = SocketError(call: "listen", errno: errno)
            close(listener)
            throw error
        }
        self.port = port
        let deadline = ContinuousClock.now + .milliseconds(lifetimeMs)
        let thread = Thread { [self] in
            serve(listener: listener, replies: replies, deadline: deadline)
            close(listener)
            finished.store(true, ordering: .releasing)
        }
        thread.start()
    }

    /// The requests received so far, in arrival order.
    func received() -> [Request] {
        requests.withLock { $0 }
    }

    /// Waits until `count` requests have arrived or `timeoutMs` passed.
    func waitForRequests(count: Int, timeoutMs: Int = 5_000) -> [Request] {
        let deadline = ContinuousClock.now + .milliseconds(timeoutMs)
        while received().count < count && ContinuousClock.now < deadline {
            usleep(5_000)
        }
        return received()
    }

    /// Stops accepting and waits (at most five seconds) for the server thread to end.
    func stop() {
        stopping.store(true, ordering: .releasing)
        let deadline = ContinuousClock.now + .seconds(5)
        while !finished.load(ordering: .acquiring) && ContinuousClock.now < deadline {
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

    private func serve(listener: Int32, replies: [Reply], deadline: ContinuousClock.Instant) {
        var next = 0
        while next < replies.count && !isDone(deadline) {
            var pollFD = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&pollFD, 1, 20) == 1 else { continue }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            handle(connection, reply: replies[next], deadline: deadline)
            close(connection)
            next += 1
        }
    }

    private func handle(_ connection: Int32, reply: Reply, deadline: ContinuousClock.Instant) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        var buffer: [UInt8] = []
        var headEnd: Int?
        while headEnd == nil && buffer.count < Self.maxHeadBytes {
            guard let chunk = receive(connection) else { return }
            buffer += chunk
            headEnd = Self.endOfHead(in: buffer)
        }
        guard let headEnd, var request = Self.parseHead(Array(buffer[..<headEnd])) else { return }

        var body = Array(buffer[(headEnd + 4)...])
        let declared = request.values(of: "Content-Length").first.flatMap { Int($0) } ?? 0
        if declared > body.count && request.values(of: "Expect").contains(where: { $0.lowercased() == "100-continue" }) {
            sendAll(connection, Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
        }
        while body.count < min(declared, Self.maxBodyBytes) {
            guard let chunk = receive(connection) else { break }
            body += chunk
        }
        request = Request(method: request.method, target: request.target, version: request.version,
                          headers: request.headers, body: body)
        requests.withLock { $0.append(request) }

        switch reply {
        case .status(let status, let responseBody):
            let head = "HTTP/1.1 \(status) Test\r\nContent-Type: text/plain\r\nContent-Length: \(responseBody.count)\r\nConnection: close\r\n\r\n"
            sendAll(connection, Array(head.utf8) + responseBody)
        case .silence:
            // Hold the connection until the client closes it, stop() or the deadline.
            var pollFD = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
            while !isDone(deadline) {
                if poll(&pollFD, 1, 20) == 1 && receive(connection) == nil { return }
            }
        }
    }

    private func isDone(_ deadline: ContinuousClock.Instant) -> Bool {
        stopping.load(ordering: .acquiring) || ContinuousClock.now >= deadline
    }

    /// Up to 16 KiB; nil on end of stream, error or the two-second receive timeout.
    private func receive(_ connection: Int32) -> [UInt8]? {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        var count: Int
        repeat {
            count = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
        } while count < 0 && errno == EINTR
        guard count > 0 else { return nil }
        return Array(chunk[..<count])
    }

    private func sendAll(_ connection: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 && errno == EINTR { continue }
            guard sent > 0 else { return }
            offset += sent
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
