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

/// The seam for WebSocket protocols (the echo endpoint, the Pusher protocol). One service instance
/// serves every connection on every loop; on open it hands back the connection's own
/// `WebSocketSession`, which the connection keeps and calls on its loop, so per-connection state
/// needs no lock and no lookup.
public protocol WebSocketService: AnyObject, Sendable {
    /// Called before the 101: return a response to refuse the upgrade, nil to accept.
    func shouldUpgrade(_ request: HTTPRequest, parameters: [String: String]) -> HTTPResponse?
    /// Called after the 101 is queued: the session that receives this connection's messages, or
    /// nil when the service turned the connection away (having started its close).
    func open(_ connection: Connection, request: HTTPRequest, parameters: [String: String]) -> (any WebSocketSession)?
    /// The close code and reason for a connection accepted past `--max-connections` only to be
    /// told so in its own protocol (it never gets a session); nil keeps 1013.
    func overCapacityCloseReason(on connection: Connection) -> (CloseCode, String)?
}

extension WebSocketService {
    public func shouldUpgrade(_ request: HTTPRequest, parameters: [String: String]) -> HTTPResponse? { nil }
    public func overCapacityCloseReason(on connection: Connection) -> (CloseCode, String)? { nil }
}
