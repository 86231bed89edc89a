import Glibc

/// A blocking loopback client for in-process server tests: raw bytes in, raw bytes out.
final class TestClient: StreamTestClient {
    let fd: Int32

    /// `receiveBuffer`: a small one makes the server's writes block while the test does not read.
    init(port: Int, receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard status == 0 else { throw TestClientError.failed("connect errno \(errno)") }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }

    func read(exactly count: Int) -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while result.count < count {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, min($0.count, count - result.count), 0) }
            if n <= 0 { break }
            result += buffer[0..<n]
        }
        return result
    }
}

/// A blocking test client over some byte stream (plain TCP or TLS): the HTTP and WebSocket
/// framing the tests speak, on top of `send` and `read(exactly:)`.
protocol StreamTestClient: AnyObject {
    func send(_ bytes: [UInt8])
    /// Reads exactly `count` bytes, or fewer if the peer closes or 5 s pass.
    func read(exactly count: Int) -> [UInt8]
}

extension StreamTestClient {
    func send(_ text: String) { send(Array(text.utf8)) }

    /// Reads up to and including the blank line ending an HTTP head.
    func readHead() -> String {
        var bytes: [UInt8] = []
        while !bytes.suffix(4).elementsEqual([13, 10, 13, 10]) {
            let byte = read(exactly: 1)
            if byte.isEmpty { break }
            bytes += byte
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Upgrades to WebSocket on `path`; returns the response head.
    @discardableResult
    func upgrade(path: String) -> String {
        send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        return readHead()
    }

    /// Reads one unfragmented server frame: (opcode, payload).
    func readFrame() -> (opcode: UInt8, payload: [UInt8])? {
        let header = read(exactly: 2)
        guard header.count == 2 else { return nil }
        var length = Int(header[1] & 0x7F)
        if length >= 126 {
            let size = length == 126 ? 2 : 8
            let extended = read(exactly: size)
            guard extended.count == size else { return nil }
            length = extended.reduce(0) { $0 << 8 | Int($1) }
        }
        let payload = read(exactly: length)
        guard payload.count == length else { return nil }
        return (header[0] & 0x0F, payload)
    }

    /// Sends one masked client frame.
    func sendFrame(opcode: UInt8, _ payload: [UInt8], fin: Bool = true) {
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        var frame: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { frame.append(UInt8(payload.count >> shift & 0xFF)) }
        }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        send(frame)
    }
}

enum TestClientError: Error {
    case failed(String)
}
