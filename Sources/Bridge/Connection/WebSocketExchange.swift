/// The WebSocket side of a connection as a state machine: the frame decoder, the session its
/// service opened, the closing handshake (RFC 6455 §7) and the keep-alive. It does no I/O: each
/// transition returns what the connection must do, so tests drive it with plain values.
struct WebSocketExchange {
    /// What the connection does for one step of input.
    enum Action {
        /// A text or binary message for the session.
        case deliver(WebSocketMessage, to: any WebSocketSession)
        /// Queue a pong (answers wait outside the bounded queue, RFC 6455 §5.5.3).
        case pong(OutboundBuffer)
        /// The peer closed: the exchange is over.
        case finish(Ending)
        /// The peer broke the protocol: the exchange is over, with the error's close code.
        case fail(WebSocketError, Ending)
    }

    /// The end of the exchange: queue `closeFrame` when there is one (ours had not been sent),
    /// tell `session` the connection closed with `code`, then close once the output is flushed.
    struct Ending {
        let closeFrame: OutboundBuffer?
        let code: CloseCode?
        let session: (any WebSocketSession)?
    }

    /// What a deadline means for the exchange.
    enum Expiry {
        /// Our close frame went unanswered: drop the connection.
        case closeNow
        /// The ping went unanswered: close with the session's code (or drop the connection).
        case pongOverdue
        /// Silent long enough: send this ping, then wait `webSocketPongTimeout` for any answer.
        case ping(OutboundBuffer)
        /// Activity since: the next deadline is this tick.
        case wait(untilTick: UInt32)
    }

    private(set) var decoder: WebSocketDecoder
    /// Until the service opened it, and again once told of the close: nil.
    private(set) var session: (any WebSocketSession)?
    /// Our close frame is queued: no more data goes out or is delivered (RFC 6455 §5.5.1).
    private(set) var closeSent = false
    /// The decoder failed: its stream cannot be resynchronised.
    private(set) var decoderFailed = false
    private(set) var pingOutstanding = false
    private(set) var lastActivity: UInt32
    /// Ticks of silence that earn a ping, and the ping itself.
    private(set) var pingInterval: UInt32
    private(set) var pingFrame: OutboundBuffer

    init(limits: WebSocketLimits, now: UInt32, pingInterval: UInt32) {
        decoder = WebSocketDecoder(limits: limits)
        lastActivity = now
        self.pingInterval = pingInterval
        pingFrame = Self.defaultPingFrame
    }

    static let defaultPingFrame = OutboundBuffer.webSocketFrame(.ping, [])

    /// Takes the session the service opened, with its keep-alive settings (`pingInterval` in ticks).
    mutating func opened(_ session: any WebSocketSession, pingInterval: UInt32?, pingFrame: OutboundBuffer?) {
        self.session = session
        if let pingInterval { self.pingInterval = pingInterval }
        if let pingFrame { self.pingFrame = pingFrame }
    }

    /// Whether a data frame may still be queued.
    var acceptsOutput: Bool { !closeSent }

    // MARK: Input

    /// Decodes input and returns at most one action; call again with `input[consumed...]` until
    /// every byte is consumed or the action ends the exchange. Any input counts as activity.
    mutating func receive(_ input: UnsafeRawBufferPointer, now: UInt32) -> (consumed: Int, action: Action?) {
        lastActivity = now
        pingOutstanding = false
        guard !decoderFailed else { return (input.count, nil) }
        var offset = 0
        while offset < input.count {
            let step: (consumed: Int, message: WebSocketMessage?)
            do {
                step = try decoder.parse(UnsafeRawBufferPointer(rebasing: input[offset...]))
            } catch {
                decoderFailed = true
                return (input.count, .fail(error, end(sending: error.closeCode, reason: error.reason)))
            }
            offset += step.consumed
            guard let message = step.message else {
                if step.consumed == 0 { return (input.count, nil) }
                continue
            }
            if let action = handle(message) { return (offset, action) }
        }
        return (offset, nil)
    }

    private mutating func handle(_ message: WebSocketMessage) -> Action? {
        switch message {
        case .text, .binary:
            // After our close frame, data is no longer delivered (RFC 6455 §5.5.1).
            guard !closeSent, let session else { return nil }
            return .deliver(message, to: session)
        case .ping(let payload):
            return closeSent ? nil : .pong(.webSocketFrame(.pong, payload))
        case .pong:
            return nil
        case .close(let code, let reason):
            // Echo the status code and reason, or an empty close when none was sent (RFC 6455 §5.5.1).
            let payload = code.map { FrameEncoder.closePayload(code: $0, reason: String(decoding: reason, as: UTF8.self)) } ?? []
            return .finish(finish(closeFrame: payload, code: code))
        }
    }

    // MARK: Closing

    /// Starts our closing handshake: the close frame to queue, nil when ours was already sent.
    /// The connection then waits `closeTimeout` for the peer's answer.
    mutating func close(code: CloseCode, reason: String) -> OutboundBuffer? {
        guard !closeSent else { return nil }
        closeSent = true
        return .webSocketFrame(.close, FrameEncoder.closePayload(code: code, reason: reason))
    }

    /// Ends the exchange with our close frame (unless one was sent) and `code` for the session:
    /// a protocol error, or a peer too slow to keep.
    mutating func end(sending code: CloseCode, reason: String) -> Ending {
        finish(closeFrame: FrameEncoder.closePayload(code: code, reason: reason), code: code)
    }

    private mutating func finish(closeFrame payload: [UInt8], code: CloseCode?) -> Ending {
        let frame: OutboundBuffer? = closeSent ? nil : .webSocketFrame(.close, payload)
        closeSent = true
        return Ending(closeFrame: frame, code: code, session: takeSession())
    }

    /// The session to tell that the connection closed, once: afterwards the exchange holds none.
    mutating func takeSession() -> (any WebSocketSession)? {
        defer { session = nil }
        return session
    }

    // MARK: Time

    /// Silence for `pingInterval` earns a ping; silence for `pongTimeout` after it ends the
    /// connection. Input only stamps `lastActivity`: the deadline is corrected lazily here.
    mutating func deadlineReached(now: UInt32) -> Expiry {
        if closeSent { return .closeNow }
        if pingOutstanding { return .pongOverdue }
        if now &- lastActivity >= pingInterval {
            pingOutstanding = true
            return .ping(pingFrame)
        }
        return .wait(untilTick: lastActivity &+ pingInterval)
    }
}
