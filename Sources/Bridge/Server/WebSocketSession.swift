/// One open WebSocket's protocol state (a Pusher session, an echo), created by its
/// `WebSocketService` when the connection opens and kept by the connection until it closes. Every
/// call happens on the connection's loop.
public protocol WebSocketSession: AnyObject {
    /// A complete text or binary message (control frames are handled by the transport).
    func received(_ message: WebSocketMessage)
    /// The connection is gone; `code` is the close code received or sent, nil when the TCP
    /// connection just dropped. Called once; the connection lets go of the session afterwards.
    func closed(code: CloseCode?)
    /// The close code and reason for a close the transport decides on; nil keeps the transport's
    /// default (1001 on shutdown, dropping the TCP connection otherwise).
    func closeReason(for cause: TransportCloseCause) -> (CloseCode, String)?
    /// Seconds of silence before the transport pings (nil: `webSocketPingInterval`), read once
    /// when the session opens.
    var pingInterval: Double? { get }
    /// The frame sent as the ping (nil: a WebSocket ping frame).
    var pingFrame: OutboundBuffer? { get }
}

extension WebSocketSession {
    public func closed(code: CloseCode?) {}
    public func closeReason(for cause: TransportCloseCause) -> (CloseCode, String)? { nil }
    public var pingInterval: Double? { nil }
    public var pingFrame: OutboundBuffer? { nil }
}

/// Why the transport is closing an open WebSocket on its own.
public enum TransportCloseCause: Sendable {
    /// SIGTERM: the server is draining.
    case shutdown
    /// The peer let more than `maxOutboundBytes` pile up unread.
    case slowConsumer
    /// The peer stayed silent after a ping.
    case pongTimeout
}
