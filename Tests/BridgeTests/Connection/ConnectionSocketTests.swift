import Bridge
import Glibc
import Testing

/// The echo endpoint over a real socket: what the connection does with the exchanges' actions.
@Suite struct ConnectionSocketTests {
    private func startEcho(_ configure: (inout ServerConfig) -> Void = { _ in }) throws -> Int {
        var config = ServerConfig()
        config.host = "127.0.0.1"
        config.port = 0
        config.threads = 1
        config.echoPath = "/echo"
        configure(&config)
        let server = Server(config: config)
        server.route("GET", "/a", .http { _, _ in .json(200, #"{"a":1}"#) })
        return try server.start()
    }

    private static let upgrade = "GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

    @Test func aFrameSentWithTheUpgradeIsEchoed() throws {
        let client = try TestClient(port: try startEcho())
        client.send(Array(Self.upgrade.utf8) + ClientFrame.text("with the head"))
        #expect(client.readHead().hasPrefix("HTTP/1.1 101"))
        let echo = client.readFrame()
        #expect(echo?.opcode == 1)
        #expect(echo?.payload == Array("with the head".utf8))
    }

    @Test func theCloseHandshakeEchoesTheCodeThenCloses() throws {
        let client = try TestClient(port: try startEcho())
        #expect(client.upgrade(path: "/echo").hasPrefix("HTTP/1.1 101"))
        client.sendFrame(opcode: 0x8, [0x03, 0xE8] + Array("done".utf8))
        let close = client.readFrame()
        #expect(close?.opcode == 0x8)
        #expect(close?.payload == [0x03, 0xE8] + Array("done".utf8))
        #expect(client.read(exactly: 1).isEmpty)
    }

    @Test func aProtocolErrorClosesWith1002() throws {
        let client = try TestClient(port: try startEcho())
        #expect(client.upgrade(path: "/echo").hasPrefix("HTTP/1.1 101"))
        // A reserved opcode.
        client.sendFrame(opcode: 0x3, [])
        let close = client.readFrame()
        #expect(close?.opcode == 0x8)
        #expect(close.map { Array($0.payload.prefix(2)) } == [0x03, 0xEA])
        #expect(client.read(exactly: 1).isEmpty)
    }

    @Test func pipelinedRequestsAreAnsweredInOrderThenTheUpgrade() throws {
        let client = try TestClient(port: try startEcho())
        client.send("GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: h\r\n\r\n" + Self.upgrade)
        #expect(client.readHead().hasPrefix("HTTP/1.1 200"))
        #expect(client.read(exactly: 7) == Array(#"{"a":1}"#.utf8))
        let notFound = client.readHead()
        #expect(notFound.hasPrefix("HTTP/1.1 404"))
        let length = notFound.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        _ = client.read(exactly: length)
        #expect(client.readHead().hasPrefix("HTTP/1.1 101"))
        client.sendFrame(opcode: 0x2, [9, 9])
        #expect(client.readFrame()?.payload == [9, 9])
    }

    @Test func aRequestThatCannotBeFramedGets400AndTheClose() throws {
        let client = try TestClient(port: try startEcho())
        client.send("GET /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
        let head = client.readHead()
        #expect(head.hasPrefix("HTTP/1.1 400"))
        #expect(head.contains("Connection: close"))
    }
}
