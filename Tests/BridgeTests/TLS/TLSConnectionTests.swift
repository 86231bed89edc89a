import Bridge
import Glibc
import Testing

/// The echo endpoint over the TLS listener, driven by a real OpenSSL client.
@Suite struct TLSConnectionTests {
    /// Starts an echo server with a TLS listener; returns the TLS port.
    private func startTLSEcho(_ configure: (inout ServerConfig) -> Void = { _ in }) throws -> Int {
        let certificate = try TestCertificate()
        var config = ServerConfig()
        config.host = "127.0.0.1"
        config.port = 0
        config.threads = 1
        config.echoPath = "/echo"
        config.tls = TLSSettings(port: 0, defaultCertificate: TLSCertificateFiles(certificatePath: certificate.certificatePath,
                                                                                  keyPath: certificate.keyPath))
        configure(&config)
        let server = Server(config: config)
        try server.start()
        return try #require(server.tlsPort)
    }

    @Test func framesQueuedInOneTurnLeaveInOneRecord() throws {
        let client = try TLSTestClient(port: try startTLSEcho())
        #expect(client.upgrade(path: "/echo").hasPrefix("HTTP/1.1 101"))
        // One round trip first, so that the session tickets sent after the handshake are counted before.
        client.sendFrame(opcode: 1, Array("warm".utf8))
        #expect(client.readFrame()?.payload == Array("warm".utf8))
        let before = client.recordsReceived

        // 200 small frames in one write reach the server in one read, so their 200 echoes are queued
        // in one loop turn: they must leave in one SSL_write, not one record each.
        let messages = (0..<200).map { Array("message \($0)".utf8) }
        var burst: [UInt8] = []
        for message in messages { burst += ClientFrame.make(.text, message) }
        client.send(burst)
        for message in messages {
            #expect(client.readFrame()?.payload == message)
        }
        #expect(client.recordsReceived - before <= 2, "records for 200 echoes: \(client.recordsReceived - before)")
    }

    @Test func aLargeEchoReachesASlowReaderWhole() throws {
        let size = 6 << 20
        let port = try startTLSEcho {
            $0.webSocket.maxFrameBytes = size
            $0.webSocket.maxMessageBytes = size
            $0.maxOutboundBytes = 2 * size
        }
        let client = try TLSTestClient(port: port, receiveBuffer: 4096)
        #expect(client.upgrade(path: "/echo").hasPrefix("HTTP/1.1 101"))
        // 6 MiB cannot sit in the server's socket buffer (loopback's grows to 4 MiB at most) while
        // the client does not read: an SSL_write stops part-way (WANT_WRITE), and the connection
        // must wait for EPOLLOUT and finish it with the same bytes.
        let message = (0..<size).map { UInt8(truncatingIfNeeded: $0 % 251) }
        client.sendFrame(opcode: 2, message)
        usleep(200_000)
        let echo = client.readFrame()
        #expect(echo?.opcode == 2)
        #expect(echo?.payload.count == message.count)
        let intact = echo?.payload == message  // compared outside #expect: a failure must not print 6 MiB
        #expect(intact)
    }

    @Test func alpnSelectsHTTP11AndNothingElse() throws {
        let port = try startTLSEcho()
        #expect(try TLSTestClient(port: port, alpn: ["h2", "http/1.1"]).negotiatedProtocol == "http/1.1")
        let h2Only = try TLSTestClient(port: port, alpn: ["h2"])
        #expect(h2Only.negotiatedProtocol == nil)
        h2Only.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(h2Only.readHead().hasPrefix("HTTP/1.1 200"))
    }

    @Test func tls13IsNegotiated() throws {
        #expect(try TLSTestClient(port: try startTLSEcho()).version == "TLSv1.3")
    }

    @Test func plainHTTPOnTheTLSPortIsRefusedWith400() throws {
        let client = try TestClient(port: try startTLSEcho())
        client.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        let head = client.readHead()
        #expect(head.hasPrefix("HTTP/1.1 400"))
        #expect(head.contains("Connection: close"))
    }

    @Test func anUnfinishedHandshakeIsCutOffAtTheRequestTimeout() throws {
        let client = try TestClient(port: try startTLSEcho { $0.requestTimeout = 0.3 })
        // A handshake record header and nothing more: the server waits for the rest, then gives up.
        client.send([22, 3, 1, 0, 200])
        #expect(client.read(exactly: 1).isEmpty)
    }
}
