import Glibc
import System

/// One accepted TCP connection: first HTTP/1.1, possibly upgraded to WebSocket. Owned and touched
/// by its loop only. It reads through the loop's shared buffer and holds no input buffer itself;
/// output goes through a `WriteQueue` that is flushed once per loop turn.
public final class Connection {
    /// Lifecycle of the TCP connection itself, whatever protocol runs on it.
    enum Phase {
        /// Reading and writing.
        case open
        /// No more input is processed; output is flushed, then the write side is shut down.
        case draining
        /// Write side shut down; input is read and discarded until the peer closes or the close timeout.
        case lingering
        /// Waiting to be released at the end of the loop turn.
        case closed
    }

    public let id: UInt64
    let fd: Int32
    let generation: UInt32
    unowned let loop: EventLoop
    /// Whether this connection counts against `--max-connections` (a refused one does not).
    let counted: Bool

    var phase = Phase.open
    /// Set once the peer closed its side: epoll then watches for writability only.
    var readingStopped = false
    var awaitingFlush = false
    var writableArmed = false
    var output = WriteQueue()

    // Timer wheel links (see TimerWheel).
    var timerSlot: Int32 = -1
    var timerPrev: Int32 = -1
    var timerNext: Int32 = -1
    var deadline: UInt32 = 0

    /// HTTP state until the connection upgrades; nil afterwards.
    var http: HTTPExchange?
    /// WebSocket state after the upgrade.
    var decoder: WebSocketDecoder?
    var service: (any WebSocketService)?
    var lastActivity: UInt32 = 0
    var pingOutstanding = false
    var closeSent = false
    var closeNotified = false

    /// Per-connection state of the WebSocket service (for example a Pusher session).
    public var userInfo: AnyObject?
    /// Keep-alive overrides a service may set: seconds of silence before a ping (else
    /// `webSocketPingInterval`), and the frame sent as the ping (else a WebSocket ping frame).
    public var pingInterval: Double?
    public var pingFrame: OutboundBuffer?

    init(fd: Int32, generation: UInt32, id: UInt64, loop: EventLoop, counted: Bool) {
        self.fd = fd
        self.generation = generation
        self.id = id
        self.loop = loop
        self.counted = counted
    }

    public var address: ConnectionAddress {
        ConnectionAddress(loop: loop.index, fd: fd, generation: generation)
    }

    var isClosed: Bool { phase == .closed }
    var config: ServerConfig { loop.server.config }

    // MARK: Input

    func readable() {
        guard phase != .closed else { return }
        if readingStopped {
            // Only hang-up or error can be reported now; the flush finds out which and closes.
            flush()
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
        // Draining and lingering connections read only to discard.
        guard phase == .open else { return }
        let input = UnsafeRawBufferPointer(rebasing: loop.readBuffer[0..<count])
        if http != nil {
            handleHTTP(input)
        } else if decoder != nil {
            handleWebSocket(input)
        }
    }

    /// The peer closed its write side. Whatever we still owe it is flushed, then the fd is closed.
    private func peerClosed() {
        notifyClosed(nil)
        if output.isEmpty || phase == .lingering {
            closeNow()
            return
        }
        readingStopped = true
        loop.setWritableInterest(self, writableArmed)
        if phase == .open { closeAfterFlush() }
    }

    // MARK: Output

    /// Queues bytes; they leave in this turn's flush. A peer that lets more than
    /// `maxOutboundBytes` pile up is too slow to keep and is disconnected. The bound counts what
    /// was queued before this frame, so one frame is always taken: no single legitimate frame (an
    /// echo of a message of the largest allowed size) trips it, and what a reader that never reads
    /// can pin stays below the bound plus one frame.
    func enqueue(_ buffer: OutboundBuffer) {
        guard phase == .open || phase == .draining else { return }
        let queuedBefore = output.cost
        output.append(buffer)
        if !droppedAsSlow(queuedBefore) { requestFlush() }
    }

    /// Queues the answer to a ping; past a few unsent answers the oldest is dropped (RFC 6455 §5.5.3).
    func enqueuePong(_ buffer: OutboundBuffer) {
        guard phase == .open, !droppedAsSlow(output.cost) else { return }
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

    /// A WebSocket whose service names a close code gets that close frame after what is queued
    /// (nothing more is accepted, so memory stays bounded); anything else is dropped at once.
    private func disconnectSlowConsumer() {
        guard decoder != nil, !closeSent,
              let (code, reason) = service?.closeReason(for: .slowConsumer, on: self) else {
            closeNow()
            return
        }
        closeSent = true
        output.append(.webSocketFrame(.close, FrameEncoder.closePayload(code: code, reason: reason)))
        notifyClosed(code)
        closeAfterFlush()
    }

    private func requestFlush() {
        // While EPOLLOUT is armed the socket is full: the writable event will flush.
        guard !awaitingFlush, !writableArmed else { return }
        awaitingFlush = true
        loop.needsFlush(self)
    }

    func flush() {
        guard phase != .closed else { return }
        do {
            switch try output.flush(to: fd, scratch: loop.iovecs, maxBatch: EventLoop.maxIOVecs) {
            case .blocked:
                if !writableArmed {
                    writableArmed = true
                    loop.setWritableInterest(self, true)
                }
            case .drained:
                if writableArmed {
                    writableArmed = false
                    loop.setWritableInterest(self, false)
                }
                if phase == .draining { finishDraining() }
            }
        } catch {
            Log.debug("write: \(error)", conn: id)
            closeNow()
        }
    }

    // MARK: Closing

    /// Stops processing input, sends what is queued, then shuts down the write side and waits
    /// (at most `closeTimeout`) for the peer to close: closing with unread input would make the
    /// kernel send RST and could destroy the response we just wrote.
    func closeAfterFlush() {
        guard phase == .open else { return }
        phase = .draining
        loop.schedule(self, afterSeconds: config.closeTimeout)
        if output.isEmpty {
            finishDraining()
        } else {
            requestFlush()
        }
    }

    private func finishDraining() {
        if readingStopped {
            closeNow()
            return
        }
        shutdown(fd, Int32(SHUT_WR))
        phase = .lingering
    }

    /// Drops the connection; the fd is released at the end of the loop turn.
    func closeNow() {
        guard phase != .closed else { return }
        phase = .closed
        output.removeAll()
        notifyClosed(nil)
        http = nil
        decoder = nil
        loop.needsClose(self)
    }

    func deadlineReached() {
        switch phase {
        case .closed:
            return
        case .draining, .lingering:
            closeNow()
        case .open:
            if http != nil {
                httpDeadlineReached()
            } else if decoder != nil {
                webSocketDeadlineReached()
            } else {
                closeNow()
            }
        }
    }

    /// SIGTERM: WebSockets get close 1001 (or their service's code); HTTP connections finish the
    /// request in flight.
    func drain() {
        guard phase == .open else { return }
        if decoder != nil {
            let (code, reason) = service?.closeReason(for: .shutdown, on: self) ?? (.goingAway, "server shutting down")
            close(code: code, reason: reason)
        } else if let exchange = http {
            if exchange.parser.isIdle && output.isEmpty && exchange.deferred == nil {
                closeNow()
            } else {
                exchange.closeAfterResponse = true
            }
        }
    }
}
