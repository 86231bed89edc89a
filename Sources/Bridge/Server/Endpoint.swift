/// What a route leads to: a plain HTTP handler, one that answers later, or a WebSocket service
/// that takes over the connection.
public enum Endpoint: Sendable {
    case http(HTTPHandler)
    case deferredHTTP(DeferredHTTPHandler)
    case webSocket(any WebSocketService)
}

/// Handles one request on the loop that read it and returns the response at once.
/// `parameters` are the route's `:name` segments, percent-decoded.
public typealias HTTPHandler = @Sendable (_ request: HTTPRequest, _ parameters: [String: String]) -> HTTPResponse

/// Handles one request on the loop that read it and returns at once; the response comes later,
/// from any thread, through `responder` (e.g. after a Redis reply). Requests pipelined behind it
/// wait; without an answer within the request timeout the client gets 504.
public typealias DeferredHTTPHandler = @Sendable (_ request: HTTPRequest, _ parameters: [String: String], _ responder: HTTPResponder) -> Void

/// The seam for WebSocket protocols (the echo endpoint now, the Pusher protocol next).
/// One service instance serves every connection on every loop; each call happens on the loop that
/// owns `connection`, so per-connection state can live in `connection.userInfo` without locks.
public protocol WebSocketService: AnyObject, Sendable {
    /// Called before the 101: return a response to refuse the upgrade, nil to accept.
    func shouldUpgrade(_ request: HTTPRequest, parameters: [String: String]) -> HTTPResponse?
    func didOpen(_ connection: Connection, request: HTTPRequest, parameters: [String: String])
    /// A complete text or binary message (control frames are handled by the transport).
    func didReceive(_ message: WebSocketMessage, on connection: Connection)
    /// The connection is gone; `code` is the close code received or sent, nil when the TCP connection just dropped.
    func didClose(_ connection: Connection, code: CloseCode?)
    /// The close code and reason for a close the transport decides on; nil keeps the transport's
    /// default (1001 on shutdown, 1013 over capacity, dropping the TCP connection otherwise).
    func closeReason(for cause: TransportCloseCause, on connection: Connection) -> (CloseCode, String)?
}

/// Why the transport is closing a WebSocket on its own.
public enum TransportCloseCause: Sendable {
    /// SIGTERM: the server is draining.
    case shutdown
    /// The peer let more than `maxOutboundBytes` pile up unread.
    case slowConsumer
    /// The peer stayed silent after a ping.
    case pongTimeout
    /// The server is at `--max-connections`; the connection was never opened.
    case overCapacity
}

extension WebSocketService {
    public func shouldUpgrade(_ request: HTTPRequest, parameters: [String: String]) -> HTTPResponse? { nil }
    public func didOpen(_ connection: Connection, request: HTTPRequest, parameters: [String: String]) {}
    public func didClose(_ connection: Connection, code: CloseCode?) {}
    public func closeReason(for cause: TransportCloseCause, on connection: Connection) -> (CloseCode, String)? { nil }
}
