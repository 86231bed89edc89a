import Glibc
import System

/// One connection to Redis, driven by its own thread: connect with a timeout (TLS handshake
/// included for `rediss://`), AUTH and SELECT, then move commands out and replies in through a
/// non-blocking `RedisStream` and `poll`; after any failure, pause (exponential backoff with
/// jitter) and start over. What the commands and replies mean is the `ConnectionSession`'s business.
final class ConnectionLoop {
    private enum Phase {
        /// Backing off until this time (monotonic ms) before the next attempt.
        case waiting(untilMs: Int64)
        /// TCP connect in progress on `stream`.
        case connecting
        /// `rediss://`: TLS handshake in progress, the server's certificate checked at its end.
        case securing
        /// AUTH / SELECT sent, their replies awaited.
        case handshaking
        case ready
    }

    private let url: RedisURL
    private let options: RedisOptions
    private let session: ConnectionSession
    private let wake: WakeSignal
    private let onEvent: @Sendable (RedisConnectionEvent) -> Void

    private var phase = Phase.waiting(untilMs: 0)
    /// The TCP socket (`.plain` while it connects), then TLS over it for `rediss://`.
    private var stream: RedisStream?
    /// Addresses of the host not yet tried in this attempt, and why the last one failed.
    private var untried: [SocketAddress] = []
    private var lastConnectFailure: RedisDisconnectReason?
    private var connectingTo = ""
    /// End of the current attempt (connect plus handshake).
    private var deadlineMs: Int64 = 0
    /// Names of the handshake commands whose replies are still due, in order.
    private var handshakeReplies: [String] = []
    private var output = OutputBuffer()
    private var parser: RESPParser
    private var backoff: ReconnectBackoff
    private var lastEvent: RedisConnectionEvent?
    private let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 8)
    private static let readsPerTurn = 16

    init(url: RedisURL, options: RedisOptions, session: ConnectionSession, wake: WakeSignal,
         onEvent: @escaping @Sendable (RedisConnectionEvent) -> Void) {
        self.url = url
        self.options = options
        self.session = session
        self.wake = wake
        self.onEvent = onEvent
        parser = RESPParser(limits: options.parserLimits)
        backoff = ReconnectBackoff(initialMs: options.initialReconnectDelayMs, maxMs: options.maxReconnectDelayMs)
    }

    deinit { readBuffer.deallocate() }

    /// Runs until the session is closing. Every failure is handled here; nothing escapes.
    func run() {
        while !session.isClosing {
            var fds = [pollfd(fd: wake.fd, events: Int16(POLLIN), revents: 0)]
            if let stream { fds.append(pollfd(fd: stream.fd, events: socketEvents(), revents: 0)) }
            _ = poll(&fds, nfds_t(fds.count), pollTimeoutMs())
            if fds[0].revents != 0 { wake.drain() }
            if session.isClosing { break }
            do throws(RedisDisconnectReason) {
                if fds.count > 1, fds[1].revents != 0 || stream?.hasBufferedInput == true { try handleSocket(fds[1].revents) }
                try handleTimers()
                if case .ready = phase {
                    session.takeQueued(into: &output)
                    try flush()
                }
            } catch {
                fail(error)
            }
        }
        closeSocket()
        session.ended(.closedByClient)
    }

    private func socketEvents() -> Int16 {
        switch (phase, stream) {
        case (.connecting, _): Int16(POLLOUT)
        case (.securing, .tls(let session)?): session.handshakeAwaits
        case (.handshaking, let stream?), (.ready, let stream?): stream.pollEvents(reading: true, writing: !output.isEmpty)
        default: 0
        }
    }

    private func pollTimeoutMs() -> Int32 {
        // Input TLS holds already is read at once: poll would not report it.
        if stream?.hasBufferedInput == true { return 0 }
        let untilMs: Int64
        switch phase {
        case .waiting(let until): untilMs = until
        case .connecting, .securing, .handshaking: untilMs = deadlineMs
        case .ready: return -1
        }
        return Int32(clamping: max(0, untilMs - MonotonicClock.milliseconds))
    }

    private func handleTimers() throws(RedisDisconnectReason) {
        let now = MonotonicClock.milliseconds
        switch phase {
        case .waiting(let until) where now >= until:
            try startAttempt()
        case .connecting, .securing, .handshaking:
            if now >= deadlineMs { throw .connectTimedOut(afterMs: options.connectTimeoutMs) }
        default:
            break
        }
    }

    private func handleSocket(_ events: Int16) throws(RedisDisconnectReason) {
        switch phase {
        case .connecting:
            try finishConnect()
        case .securing:
            try continueTLSHandshake()
        case .handshaking, .ready:
            if stream?.canRead(events) == true { try readReplies() }
            if stream?.canWrite(events) == true { try flush() }
        case .waiting:
            break
        }
    }

    // MARK: connecting

    private func startAttempt() throws(RedisDisconnectReason) {
        session.attemptStarted()
        deadlineMs = MonotonicClock.milliseconds + Int64(options.connectTimeoutMs)
        lastConnectFailure = nil
        untried = try SocketAddress.resolve(host: url.host, port: url.port)
        try connectNextAddress()
    }

    /// Starts connecting to the next untried address; throws the last failure when none is left.
    private func connectNextAddress() throws(RedisDisconnectReason) {
        while !untried.isEmpty {
            let address = untried.removeFirst()
            connectingTo = address.text
            do throws(SystemError) {
                stream = .plain(try TCPSocket.startConnect(to: address))
                phase = .connecting
                return
            } catch {
                lastConnectFailure = .connectFailed(address: connectingTo, message: error.description)
            }
        }
        throw lastConnectFailure ?? .resolveFailed(host: url.host, message: "no addresses")
    }

    private func finishConnect() throws(RedisDisconnectReason) {
        guard case .plain(let socket)? = stream else { return }
        let error = socket.connectError()
        guard error == 0 else {
            lastConnectFailure = .connectFailed(address: connectingTo, message: String(cString: strerror(error)))
            closeSocket()
            try connectNextAddress()
            return
        }
        if url.usesTLS {
            let context = try TLSClientContext.make(caFile: options.tlsCAFile)
            stream = .tls(try TLSClientSession(context: context, socket: socket, host: url.host))
            phase = .securing
            try continueTLSHandshake()
        } else {
            try startHandshake()
        }
    }

    private func continueTLSHandshake() throws(RedisDisconnectReason) {
        guard case .tls(let session)? = stream, try session.handshake() else { return }
        try startHandshake()
    }

    /// Sends AUTH and SELECT as the URL asks, or is ready at once.
    private func startHandshake() throws(RedisDisconnectReason) {
        phase = .handshaking
        if let password = url.password {
            let user: [any RedisArgument] = url.user.map { [$0] } ?? []
            output.append(RESPEncoder.command(["AUTH"] + user + [password]))
            handshakeReplies.append("AUTH")
        }
        if url.database != 0 {
            output.append(RESPEncoder.command(["SELECT", url.database]))
            handshakeReplies.append("SELECT")
        }
        if handshakeReplies.isEmpty {
            becomeReady()
        }
        try flush()
    }

    private func becomeReady() {
        phase = .ready
        backoff.reset()
        session.becameReady(&output)
        report(.connected)
    }

    // MARK: moving bytes

    private func flush() throws(RedisDisconnectReason) {
        guard let stream, !output.isEmpty else { return }
        if try output.write(to: stream) > 0 {
            session.unsentBytesChanged(output.count)
        }
    }

    /// Reads until the stream has nothing more, or for at most `readsPerTurn` reads, handing
    /// each complete reply on. The cap returns to `poll` now and then under a flood of
    /// messages, so queued commands still go out and `close()` is still noticed; what TLS
    /// then holds is read on the next turn (`pollTimeoutMs`).
    private func readReplies() throws(RedisDisconnectReason) {
        for _ in 0..<Self.readsPerTurn {
            guard let stream else { return }
            guard case .done(let count) = try stream.read(into: readBuffer) else { return }
            guard count > 0 else { throw .closedByServer }
            var offset = 0
            while offset < count {
                let consumed: Int
                let value: RESPValue?
                do throws(RESPParseError) {
                    (consumed, value) = try parser.parse(UnsafeRawBufferPointer(rebasing: readBuffer[offset..<count]))
                } catch {
                    throw .malformedReply(error)
                }
                offset += consumed
                if let value { try dispatch(value) }
            }
        }
    }

    private func dispatch(_ value: RESPValue) throws(RedisDisconnectReason) {
        guard !handshakeReplies.isEmpty else {
            try session.received(value)
            return
        }
        let command = handshakeReplies.removeFirst()
        if case .error(let message) = value { throw .handshakeFailed(command: command, message: message) }
        if handshakeReplies.isEmpty { becomeReady() }
    }

    // MARK: failing

    private func fail(_ reason: RedisDisconnectReason) {
        closeSocket()
        session.ended(reason)
        report(.disconnected(reason))
        let delayMs = backoff.nextDelayMs()
        phase = .waiting(untilMs: MonotonicClock.milliseconds + Int64(delayMs))
    }

    private func closeSocket() {
        stream?.close()
        stream = nil
        output.removeAll()
        session.unsentBytesChanged(0)
        parser = RESPParser(limits: options.parserLimits)
        handshakeReplies = []
    }

    /// Reports a change of state: up after down, down after up; a second failure in a row
    /// is not news.
    private func report(_ event: RedisConnectionEvent) {
        switch (lastEvent, event) {
        case (.disconnected, .disconnected): return
        default: break
        }
        lastEvent = event
        onEvent(event)
    }
}
