@testable import Bridge
import Testing

/// Accepts every upgrade; its sessions record what they receive.
private final class UpgradeService: WebSocketService {
    func open(_ connection: Connection, request: HTTPRequest, parameters: [String: String]) -> (any WebSocketSession)? { nil }
}

private final class Listener: WebSocketSession {
    var messages: [WebSocketMessage] = []
    func received(_ message: WebSocketMessage) { messages.append(message) }
}

@Suite struct ConnectionModeTests {
    /// Head → upgrade → WebSocket, as the connection drives it: the exchange stops right after the
    /// upgrade request, and the frame pipelined behind it goes to the WebSocket exchange.
    @Test func anUpgradeHandsThePipelinedFrameToTheWebSocket() throws {
        var router = Router<Endpoint>()
        router.add("GET", "/ws", .webSocket(UpgradeService()))
        let head = "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        let input = Array(head.utf8) + ClientFrame.text("right behind")
        var mode = ConnectionMode.http(HTTPExchange(limits: HTTPParserLimits(), requestTimeout: 30))
        let listener = Listener()
        try input.withUnsafeBytes { input in
            let step = try #require(mode.updateHTTP { $0.receive(input, router: router) })
            guard case .request(let request, .found(.webSocket, _, _))? = step.action else {
                Issue.record("expected the upgrade request, got \(String(describing: step.action))")
                return
            }
            #expect(step.consumed == head.utf8.count)
            guard case .success = WebSocketHandshake.validate(request) else {
                Issue.record("the upgrade request is valid")
                return
            }
            mode = .webSocket(WebSocketExchange(limits: WebSocketLimits(), now: 0, pingInterval: 10))
            mode.updateWebSocket { $0.opened(listener, pingInterval: nil, pingFrame: nil) }
            #expect(mode.updateHTTP { _ in true } == nil)
            let rest = UnsafeRawBufferPointer(rebasing: input[step.consumed...])
            let frame = try #require(mode.updateWebSocket { $0.receive(rest, now: 1) })
            guard case .deliver(let message, let session)? = frame.action else {
                Issue.record("expected the pipelined message, got \(String(describing: frame.action))")
                return
            }
            session.received(message)
        }
        #expect(listener.messages == [.text(Array("right behind".utf8))])
        #expect(mode.isOpen)
    }

    @Test func onlyHTTPAndWebSocketAreOpen() {
        #expect(ConnectionMode.http(HTTPExchange(limits: HTTPParserLimits(), requestTimeout: 1)).isOpen)
        #expect(ConnectionMode.webSocket(WebSocketExchange(limits: WebSocketLimits(), now: 0, pingInterval: 1)).isOpen)
        #expect(!ConnectionMode.draining.isOpen)
        #expect(!ConnectionMode.lingering.isOpen)
        #expect(!ConnectionMode.closed.isOpen)
    }

    /// A transition's changes stay in the mode (the payload is moved out and put back).
    @Test func transitionsChangeTheModeInPlace() {
        var mode = ConnectionMode.webSocket(WebSocketExchange(limits: WebSocketLimits(), now: 0, pingInterval: 1))
        #expect(mode.updateWebSocket { $0.close(code: .normalClosure, reason: "") } != nil)
        #expect(mode.webSocket?.closeSent == true)
        let second = mode.updateWebSocket { $0.close(code: .normalClosure, reason: "") }
        // In WebSocket mode (an outer value), with no second close frame (a nil inner one).
        #expect(second != nil)
        #expect(second.flatMap { $0 } == nil)
    }
}
