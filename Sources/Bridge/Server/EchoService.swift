/// Echoes every message back unchanged: the endpoint the Autobahn Testsuite and the benchmarks drive.
final class EchoService: WebSocketService {
    func didReceive(_ message: WebSocketMessage, on connection: Connection) {
        switch message {
        case .text(let payload): connection.send(.text, payload)
        case .binary(let payload): connection.send(.binary, payload)
        default: break
        }
    }
}
