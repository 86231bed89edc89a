import CSystem
import Glibc
import System

/// The listeners: binding, accepting (bounded per turn), and what happens at the fd limit.
extension EventLoop {
    /// Binds this loop's listener (`tls`: the TLS one); returns the bound port.
    func listen(host: String, port: Int, tls: Bool = false) throws(SystemError) -> Int {
        let (fd, bound) = try ListeningSocket.open(host: host, port: port)
        if tls { tlsListenFD = fd } else { listenFD = fd }
        try epoll.add(fd, events: UInt32(EPOLLIN.rawValue), token: tls ? Self.tlsListenToken : Self.listenToken)
        return bound
    }

    func acceptConnections(from listener: Int32, tls: Bool) {
        // Bounded per turn so a connection storm cannot starve established connections.
        for _ in 0..<256 {
            let fd: Int32
            do {
                switch try Syscall.accept(listener) {
                case .wouldBlock: return
                case .done(let accepted): fd = accepted
                }
            } catch {
                if error.errno == EMFILE || error.errno == ENFILE {
                    shedOneConnection(from: listener)
                } else {
                    Log.warn("accept: \(error)")
                }
                return
            }
            register(fd, tls: tls)
        }
    }

    /// At the fd limit: free the spare fd, accept and close one pending connection, take the spare
    /// back. Loops share the process's fds, so another loop may take the freed number first; when
    /// nothing could be shed, accepting pauses for a tick instead of spinning on a listener that
    /// stays readable.
    private func shedOneConnection(from listener: Int32) {
        Log.warn("out of file descriptors: refusing a connection")
        var shed = false
        if spareFD >= 0 {
            close(spareFD)
            if case .done(let fd)? = try? Syscall.accept(listener) {
                close(fd)
                shed = true
            }
        }
        spareFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        if !shed || spareFD < 0 { pauseAccepting() }
    }

    private func pauseAccepting() {
        guard acceptPausedUntil == nil else { return }
        if listenFD >= 0 { try? epoll.modify(listenFD, events: 0, token: Self.listenToken) }
        if tlsListenFD >= 0 { try? epoll.modify(tlsListenFD, events: 0, token: Self.tlsListenToken) }
        acceptPausedUntil = now &+ 2
    }

    func resumeAcceptingIfDue() {
        guard let until = acceptPausedUntil, now >= until else { return }
        acceptPausedUntil = nil
        if spareFD < 0 { spareFD = open("/dev/null", O_RDONLY | O_CLOEXEC) }
        if listenFD >= 0 { try? epoll.modify(listenFD, events: UInt32(EPOLLIN.rawValue), token: Self.listenToken) }
        if tlsListenFD >= 0 { try? epoll.modify(tlsListenFD, events: UInt32(EPOLLIN.rawValue), token: Self.tlsListenToken) }
    }

    private func register(_ fd: Int32, tls: Bool) {
        try? Syscall.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        var stream: TLSStream?
        if tls {
            stream = server.tls?.stream(fd: fd)
            guard stream != nil else {
                Log.warn("cannot start a TLS session: connection dropped")
                close(fd)
                return
            }
        }
        let admitted = !isDraining && group.admitConnection()
        let generation = nextGeneration
        nextGeneration = nextGeneration == UInt32.max ? 1 : nextGeneration + 1
        let connection = Connection(fd: fd, generation: generation, id: group.nextConnectionID(), loop: self, counted: admitted,
                                    tls: stream)
        do {
            try epoll.add(fd, events: Epoll.readable, token: Epoll.token(fd: fd, generation: generation))
        } catch {
            Log.warn("register: \(error)")
            if admitted { group.releaseConnection() }
            close(fd)
            return
        }
        connections.insert(connection)
        if admitted {
            Log.debug("accepted", conn: connection.id)
            connection.startHTTP()
        } else {
            // Read the request first: a WebSocket client is told in its own protocol (see refuseOverCapacity).
            Log.warn(group.memory.isOver ? "over the memory threshold: refusing" : "connection limit reached (\(server.config.maxConnections)): refusing",
                     conn: connection.id)
            connection.startHTTP()
        }
    }
}
