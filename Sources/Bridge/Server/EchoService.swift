/// Echoes every message back unchanged: the endpoint the Autobahn Testsuite and the benchmarks drive.
final class EchoService: WebSocketService {
    func open(_ connection: Connection, request: HTTPRequest, parameters: [String: String]) -> (any WebSocketSession)? {
        EchoSession(connection: connection)
    }
}

/// One echoing connection.
final class EchoSession: WebSocketSession {
    /// Unowned: the connection owns its session and drops it when it closes.
    private unowned let connection: Connection

    init(connection: Connection) {
        self.connection = connection
    }

    func received(_ message: WebSocketMessage) {
        switch message {
        case .text(let payload): connection.send(.text, payload)
        case .binary(let payload): connection.send(.binary, payload)
        default: break
        }
    }
}
