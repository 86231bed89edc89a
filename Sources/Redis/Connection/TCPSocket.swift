import Glibc
import System

/// One resolved address of the Redis host.
struct SocketAddress {
    var storage = sockaddr_storage()
    var length: socklen_t = 0

    var family: Int32 { Int32(storage.ss_family) }

    /// `host:port` as numbers, for error messages.
    var text: String {
        var name = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        var copy = storage
        let status = withUnsafePointer(to: &copy) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &name, socklen_t(name.count), &service, socklen_t(service.count),
                            NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard status == 0 else { return "?" }
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let port = String(decoding: service.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Every TCP address of `host`, in the resolver's order. Blocks for DNS: call it on the
    /// connection thread only, never on an event loop.
    static func resolve(host: String, port: Int) throws(RedisDisconnectReason) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else {
            throw .resolveFailed(host: host, message: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let info = entry {
            if let address = info.pointee.ai_addr, Int(info.pointee.ai_addrlen) <= MemoryLayout<sockaddr_storage>.size {
                var resolved = SocketAddress()
                withUnsafeMutableBytes(of: &resolved.storage) { target in
                    target.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(info.pointee.ai_addrlen)))
                }
                resolved.length = info.pointee.ai_addrlen
                addresses.append(resolved)
            }
            entry = info.pointee.ai_next
        }
        return addresses
    }
}

/// A non-blocking TCP socket to Redis. Every call returns at once; `poll` says when to retry.
struct TCPSocket {
    let fd: Int32

    /// Starts connecting; the socket is usable once `poll` reports it writable and
    /// `connectError()` is 0.
    static func startConnect(to address: SocketAddress) throws(SystemError) -> TCPSocket {
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket") }
        let socket = TCPSocket(fd: fd)
        var storage = address.storage
        let status = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, address.length) }
        }
        if status != 0 && errno != EINPROGRESS {
            let error = SystemError("connect")
            socket.close()
            throw error
        }
        // Commands are small and pipelined: send each batch at once rather than wait for Nagle.
        socket.setOption(Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        // Notice a Redis host that vanished without a FIN within about a minute.
        socket.setOption(SOL_SOCKET, SO_KEEPALIVE, 1)
        socket.setOption(Int32(IPPROTO_TCP), TCP_KEEPIDLE, 30)
        socket.setOption(Int32(IPPROTO_TCP), TCP_KEEPINTVL, 10)
        socket.setOption(Int32(IPPROTO_TCP), TCP_KEEPCNT, 3)
        return socket
    }

    /// The outcome of a non-blocking connect: 0 when connected, else its errno.
    func connectError() -> Int32 {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { return errno }
        return error
    }

    /// Reads what is there; `.done(0)` means the server closed the connection.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try Syscall.read(fd, into: buffer)
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try Syscall.send(fd, bytes)
    }

    func close() {
        Glibc.close(fd)
    }

    private func setOption(_ level: Int32, _ name: Int32, _ value: Int32) {
        var value = value
        setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
    }
}
