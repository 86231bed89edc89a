import Glibc
import System

/// One accepted TCP connection: first HTTP/1.1, possibly upgraded to WebSocket. Owned and touched
/// by its loop only. It reads through the loop's shared buffer and holds no input buffer itself;
/// output goes through a `WriteQueue` that is flushed once per loop turn.
public final class Connection {
    public let id: UInt64
    let fd: Int32
    let generation: UInt32
    unowned let loop: EventLoop
    /// Whether this connection counts against `--max-connections` (a refused one does not).
    let counted: Bool

    /// HTTP, WebSocket or closing, with the state of each (see `ConnectionMode`).
    var mode: ConnectionMode
    /// Set once the peer closed its side: epoll then watches for writability only.
    var readingStopped = false
    var awaitingFlush = false
    var writableArmed = false
    var output = WriteQueue()
    /// TLS between the exchanges and the socket (Connection+TLS.swift); nil on the plain listener
    /// (and once plain text on the TLS port is being refused).
    var tls: TLSStream?

    // Timer wheel links (see TimerWheel).
    var timerSlot: Int32 = -1
    var timerPrev: Int32 = -1
    var timerNext: Int32 = -1
    var deadline: UInt32 = 0

    init(fd: Int32, generation: UInt32, id: UInt64, loop: EventLoop, counted: Bool, tls: TLSStream? = nil) {
        self.fd = fd
        self.tls = tls
        self.generation = generation
        self.id = id
        self.loop = loop
        self.counted = counted
        let config = loop.server.config
        // One past the connection limit only gets to say what it wanted, and quickly.
        let requestTimeout = counted ? config.requestTimeout : min(config.requestTimeout, config.closeTimeout)
        mode = .http(HTTPExchange(limits: config.http, requestTimeout: requestTimeout))
    }

    public var address: ConnectionAddress {
        ConnectionAddress(loop: loop.index, fd: fd, generation: generation)
    }

    var isClosed: Bool {
        if case .closed = mode { return true }
        return false
    }
    var isOpen: Bool { mode.isOpen }
    private var isLingering: Bool {
        if case .lingering = mode { return true }
        return false
    }
    var config: ServerConfig { loop.server.config }

    // MARK: Input

    func readable() {
        guard !isClosed else { return }
        if readingStopped {
            // Only hang-up or error can be reported now; the flush finds out which and closes.
            flush()
            return
        }
        if let tls, !isLingering {
            readTLS(tls)
            return
        }
        let count: Int
        do {
            guard case .done(let n) = try Syscall.read(fd, into: loop.readBuffer) else { return }
            count = n
        } catch {
            Log.debug("read: \(error)", conn: id)
            closeNow()
            return
        }
        if count == 0 {
            peerClosed()
            return
        }
        receive(UnsafeRawBufferPointer(rebasing: loop.readBuffer[0..<count]))
    }

    /// Input for whatever the connection speaks now; draining and lingering connections discard it.
    func receive(_ input: UnsafeRawBufferPointer) {
        switch mode {
        case .http: receiveHTTP(input)
        case .webSocket: receiveWebSocket(input)
        case .draining, .lingering, .closed: break
        }
    }

    /// The peer closed its write side. Whatever we still owe it is flushed, then the fd is closed.
    func peerClosed() {
        endSession(code: nil)
        if output.isEmpty || isLingering {
            closeNow()
            return
        }
        readingStopped = true
        loop.setWritableInterest(self, writableArmed)
        closeAfterFlush()
    }

    // MARK: Output

    /// Queues bytes; they leave in this turn's flush. A peer that lets more than
    /// `maxOutboundBytes` pile up is too slow to keep and is disconnected. The bound counts what
    /// was queued before this frame, so one frame is always taken: no single legitimate frame (an
    /// echo of a message of the largest allowed size) trips it, and what a reader that never reads
    /// can pin stays below the bound plus one frame.
    func enqueue(_ buffer: OutboundBuffer) {
        switch mode {
        case .http, .webSocket, .draining: break
        case .lingering, .closed: return
        }
        let queuedBefore = output.cost
        output.append(buffer)
        if !droppedAsSlow(queuedBefore) { requestFlush() }
    }

    /// Queues the answer to a ping; past a few unsent answers the oldest is dropped (RFC 6455 §5.5.3).
    func enqueuePong(_ buffer: OutboundBuffer) {
        guard isOpen, !droppedAsSlow(output.cost) else { return }
        output.addPong(buffer)
        requestFlush()
    }

    /// Disconnects the peer when `queued` is over the bound; true when it did.
    private func droppedAsSlow(_ queued: Int) -> Bool {
        guard queued > config.maxOutboundBytes else { return false }
        Log.warn("slow consumer: \(output.pendingBytes) bytes unsent, disconnecting", conn: id)
        disconnectSlowConsumer()
        return true
    }

    /// A WebSocket whose session names a close code gets that close frame after what is queued
    /// (nothing more is accepted, so memory stays bounded); anything else is dropped at once.
    private func disconnectSlowConsumer() {
        guard let exchange = mode.webSocket, exchange.acceptsOutput,
              let (code, reason) = exchange.session?.closeReason(for: .slowConsumer),
              let ending = mode.updateWebSocket({ $0.end(sending: code, reason: reason) }) else {
            closeNow()
            return
        }
        // Past the bound on purpose: the close frame is the last thing this peer gets.
        if let frame = ending.closeFrame { output.append(frame) }
        ending.session?.closed(code: ending.code)
        closeAfterFlush()
    }

    private func requestFlush() {
        // While EPOLLOUT is armed the socket is full: the writable event will flush.
        guard !awaitingFlush, !writableArmed else { return }
        awaitingFlush = true
        loop.needsFlush(self)
    }

    func flush() {
        guard !isClosed else { return }
        if let tls {
            flushTLS(tls)
            return
        }
        do {
            switch try output.flush(to: fd, scratch: loop.iovecs, maxBatch: EventLoop.maxIOVecs) {
            case .blocked:
                watchWritable(true)
            case .drained:
                watchWritable(false)
                if case .draining = mode { finishDraining() }
            }
        } catch {
            Log.debug("write: \(error)", conn: id)
            closeNow()
        }
    }

    /// Arms EPOLLOUT while output (or a TLS read) waits for the socket to take more.
    func watchWritable(_ on: Bool) {
        guard writableArmed != on else { return }
        writableArmed = on
        loop.setWritableInterest(self, on)
    }

    // MARK: Closing

    /// Stops processing input, sends what is queued, then shuts down the write side and waits
    /// (at most `closeTimeout`) for the peer to close: closing with unread input would make the
    /// kernel send RST and could destroy the response we just wrote.
    func closeAfterFlush() {
        guard isOpen else { return }
        // Every path here told the session already; this only guards against one that did not.
        endSession(code: nil)
        mode = .draining
        loop.schedule(self, afterSeconds: config.closeTimeout)
        if output.isEmpty {
            finishDraining()
        } else {
            requestFlush()
        }
    }

    func finishDraining() {
        if readingStopped {
            closeNow()
            return
        }
        tls?.sendCloseNotify()
        shutdown(fd, Int32(SHUT_WR))
        mode = .lingering
    }

    /// Drops the connection; the fd is released at the end of the loop turn.
    func closeNow() {
        guard !isClosed else { return }
        let session = mode.updateWebSocket { $0.takeSession() } ?? nil
        mode = .closed
        output.removeAll()
        session?.closed(code: nil)
        loop.needsClose(self)
    }

    /// Tells the WebSocket session, if there still is one, that the connection closed.
    func endSession(code: CloseCode?) {
        guard let session = mode.updateWebSocket({ $0.takeSession() }) ?? nil else { return }
        session.closed(code: code)
    }

    func deadlineReached() {
        switch mode {
        case .closed: return
        case .draining, .lingering: closeNow()
        case .http where tls?.isEstablished == false:
            // The handshake did not finish within the request timeout: nothing to answer in.
            Log.debug("TLS handshake not finished in time", conn: id)
            closeNow()
        case .http: httpDeadlineReached()
        case .webSocket: webSocketDeadlineReached()
        }
    }

    /// SIGTERM: WebSockets get close 1001 (or their session's code); HTTP connections finish the
    /// request in flight.
    func drain() {
        switch mode {
        case .webSocket(let exchange):
            let (code, reason) = exchange.session?.closeReason(for: .shutdown) ?? (.goingAway, "server shutting down")
            close(code: code, reason: reason)
        case .http:
            let outputEmpty = output.isEmpty
            if mode.updateHTTP({ $0.drain(outputEmpty: outputEmpty) }) == true { closeNow() }
        case .draining, .lingering, .closed:
            return
        }
    }
}
