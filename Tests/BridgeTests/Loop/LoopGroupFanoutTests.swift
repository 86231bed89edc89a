import Bridge
import Glibc
import Synchronization
import Testing

/// Records every opened connection so the test can address them from outside the loops.
private final class RecordingService: WebSocketService {
    let opened = Mutex<[ConnectionAddress]>([])

    func open(_ connection: Connection, request: HTTPRequest, parameters: [String: String]) -> (any WebSocketSession)? {
        opened.withLock { $0.append(connection.address) }
        return SilentSession()
    }

    func waitForOpened(_ count: Int) -> [ConnectionAddress] {
        for _ in 0..<500 {
            let addresses = opened.withLock { $0 }
            if addresses.count >= count { return addresses }
            usleep(10_000)
        }
        return opened.withLock { $0 }
    }
}

/// Ignores what its client sends.
private final class SilentSession: WebSocketSession {
    func received(_ message: WebSocketMessage) {}
}

@Suite struct LoopGroupFanoutTests {
    private func startServer(_ service: RecordingService) throws -> (Server, Int) {
        var config = ServerConfig()
        config.host = "127.0.0.1"
        config.port = 0
        config.threads = 2
        let server = Server(config: config)
        server.route("GET", "/fanout", .webSocket(service))
        return (server, try server.start())
    }

    @Test func oneBufferReachesEveryConnectionOnEveryLoop() throws {
        let service = RecordingService()
        let (server, port) = try startServer(service)
        let clients = try (0..<40).map { _ in try TestClient(port: port) }
        for client in clients {
            #expect(client.upgrade(path: "/fanout").hasPrefix("HTTP/1.1 101"))
        }
        let addresses = service.waitForOpened(clients.count)
        #expect(addresses.count == clients.count)
        // SO_REUSEPORT spreads 40 connections over both loops (all on one: chance 2^-39).
        #expect(Set(addresses.map(\.loop)).count == 2)

        let frame = OutboundBuffer.webSocketFrame(.text, Array("to everyone".utf8))
        server.loops.send(frame, to: addresses)
        for client in clients {
            let received = client.readFrame()
            #expect(received?.opcode == 1)
            #expect(received?.payload == Array("to everyone".utf8))
        }
    }

    @Test func addressOfAClosedConnectionIsSkipped() throws {
        let service = RecordingService()
        let (server, port) = try startServer(service)
        var gone: TestClient? = try TestClient(port: port)
        gone!.upgrade(path: "/fanout")
        let staying = try TestClient(port: port)
        staying.upgrade(path: "/fanout")
        let addresses = service.waitForOpened(2)
        #expect(addresses.count == 2)
        gone = nil
        usleep(100_000)

        server.loops.send(OutboundBuffer.webSocketFrame(.text, Array("still here".utf8)), to: addresses)
        #expect(staying.readFrame()?.payload == Array("still here".utf8))
        _ = gone
    }
}
