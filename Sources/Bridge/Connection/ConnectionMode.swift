/// What a connection is doing: one enum, so that no state can outlive its mode. An HTTP exchange
/// may become a WebSocket; either ends by draining, lingering, then closed.
enum ConnectionMode {
    /// HTTP/1.1 requests, answered in order.
    case http(HTTPExchange)
    /// After the 101: frames to and from the service's session.
    case webSocket(WebSocketExchange)
    /// Closing: no more input is processed; output is flushed, then the write side is shut down.
    case draining
    /// Closing: write side shut down; input is read and discarded until the peer closes or the
    /// close timeout.
    case lingering
    /// Waiting to be released at the end of the loop turn.
    case closed

    /// Reading requests or frames.
    var isOpen: Bool {
        switch self {
        case .http, .webSocket: true
        case .draining, .lingering, .closed: false
        }
    }

    var httpExchange: HTTPExchange? {
        if case .http(let exchange) = self { return exchange }
        return nil
    }

    /// A WebSocket that has not sent its close frame. Asked once per frame of a fan-out, so it
    /// reads the flag in place rather than copying the exchange out.
    var acceptsWebSocketOutput: Bool {
        switch self {
        case .webSocket(let exchange): exchange.acceptsOutput
        default: false
        }
    }

    var webSocket: WebSocketExchange? {
        if case .webSocket(let exchange) = self { return exchange }
        return nil
    }

    /// Runs a transition on the HTTP exchange in place; nil when the mode is not HTTP. The
    /// exchange is moved out while it runs, so its buffers are mutated rather than copied; the
    /// transition is pure and cannot observe the placeholder.
    @discardableResult
    mutating func updateHTTP<Result>(_ transition: (inout HTTPExchange) -> Result) -> Result? {
        guard case .http(var exchange) = self else { return nil }
        self = .closed
        defer { self = .http(exchange) }
        return transition(&exchange)
    }

    /// Runs a transition on the WebSocket exchange in place; nil when the mode is not WebSocket.
    @discardableResult
    mutating func updateWebSocket<Result>(_ transition: (inout WebSocketExchange) -> Result) -> Result? {
        guard case .webSocket(var exchange) = self else { return nil }
        self = .closed
        defer { self = .webSocket(exchange) }
        return transition(&exchange)
    }
}
