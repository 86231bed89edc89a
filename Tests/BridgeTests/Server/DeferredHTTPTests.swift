import Bridge
import Dispatch
import Glibc
import Synchronization
import Testing

/// The responders handed out so far, for tests that answer from outside the handler.
private final class Responders: Sendable {
    private let list = Mutex<[HTTPResponder]>([])

    func append(_ responder: HTTPResponder) { list.withLock { $0.append(responder) } }

    /// Waits (up to 5 s) until `count` requests reached the handler.
    func wait(for count: Int) -> [HTTPResponder] {
        for _ in 0..<500 {
            let taken = list.withLock { $0 }
            if taken.count >= count { return taken }
            usleep(10_000)
        }
        return list.withLock { $0 }
    }
}

@Suite struct DeferredHTTPTests {
    /// One loop, so that a new connection takes the fd a closed one left.
    private func startServer(requestTimeout: Double = 30, limits: HTTPParserLimits = HTTPParserLimits(),
                             _ routes: (Server) -> Void) throws -> Int {
        var config = ServerConfig()
        config.host = "127.0.0.1"
        config.port = 0
        config.threads = 1
        config.requestTimeout = requestTimeout
        config.http = limits
        let server = Server(config: config)
        server.route("GET", "/sync", .http { _, _ in .json(200, #"{"from":"sync"}"#) })
        routes(server)
        return try server.start()
    }

    /// Answers from another thread after `milliseconds`.
    private static func later(_ milliseconds: Int, _ body: String) -> Endpoint {
        .deferredHTTP { _, _, responder in
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(milliseconds)) {
                responder.respond(.json(200, body))
            }
        }
    }

    private static func get(_ path: String) -> String {
        "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    }

    /// One response: its head and its body (read by Content-Length).
    private func readResponse(_ client: TestClient) -> (head: String, body: String) {
        let head = client.readHead()
        let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        return (head, String(decoding: client.read(exactly: length), as: UTF8.self))
    }

    /// Whether the server sends anything (or closes) within `milliseconds`.
    private func hasInput(_ client: TestClient, within milliseconds: Int32) -> Bool {
        var entry = pollfd(fd: client.fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, milliseconds) > 0
    }

    @Test func answerFromAnotherThreadThenKeepAlive() throws {
        let port = try startServer { $0.route("GET", "/later", Self.later(50, #"{"from":"later"}"#)) }
        let client = try TestClient(port: port)
        for _ in 0..<2 {
            client.send(Self.get("/later"))
            let response = readResponse(client)
            #expect(response.head.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(response.head.contains("Connection: keep-alive"))
            #expect(response.body == #"{"from":"later"}"#)
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let port = try startServer { $0.route("GET", "/later", Self.later(100, #"{"from":"later"}"#)) }
        let client = try TestClient(port: port)
        client.send(Self.get("/later") + Self.get("/sync"))
        #expect(readResponse(client).body == #"{"from":"later"}"#)
        #expect(readResponse(client).body == #"{"from":"sync"}"#)
    }

    @Test func requestArrivingWhileWaitingIsHeldAndThenAnswered() throws {
        let responders = Responders()
        let port = try startServer { $0.route("GET", "/held", .deferredHTTP { _, _, responder in responders.append(responder) }) }
        let client = try TestClient(port: port)
        client.send(Self.get("/held") + "GET /sy")
        let waiting = responders.wait(for: 1)
        client.send("nc HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        #expect(!hasInput(client, within: 200))
        waiting.first?.respond(.json(200, #"{"from":"held"}"#))
        #expect(readResponse(client).body == #"{"from":"held"}"#)
        #expect(readResponse(client).body == #"{"from":"sync"}"#)
    }

    @Test func answerInsideTheHandlerKeepsOrder() throws {
        let port = try startServer { $0.route("GET", "/now", .deferredHTTP { _, _, responder in responder.respond(.json(200, #"{"from":"now"}"#)) }) }
        let client = try TestClient(port: port)
        client.send(Self.get("/now") + Self.get("/sync") + Self.get("/now"))
        #expect(readResponse(client).body == #"{"from":"now"}"#)
        #expect(readResponse(client).body == #"{"from":"sync"}"#)
        #expect(readResponse(client).body == #"{"from":"now"}"#)
    }

    @Test func heldInputBeyondTheRequestLimitsIsRejected() throws {
        let port = try startServer(limits: HTTPParserLimits(maxHeadBytes: 1024, maxBodyBytes: 1024)) {
            $0.route("GET", "/never", .deferredHTTP { _, _, _ in })
        }
        let client = try TestClient(port: port)
        client.send(Self.get("/never") + String(repeating: Self.get("/sync"), count: 60))
        #expect(client.readHead().hasPrefix("HTTP/1.1 413 "))
    }

    @Test func answerAfterTheClientLeftIsDropped() throws {
        let responders = Responders()
        let port = try startServer { $0.route("GET", "/held", .deferredHTTP { _, _, responder in responders.append(responder) }) }
        var leaving: TestClient? = try TestClient(port: port)
        leaving!.send(Self.get("/held"))
        _ = responders.wait(for: 1)
        leaving = nil
        usleep(100_000)

        // Most likely on the fd the first one left: the stale answer must not reach it.
        let next = try TestClient(port: port)
        next.send(Self.get("/held"))
        let both = responders.wait(for: 2)
        #expect(both.count == 2)
        both[0].respond(.json(200, #"{"to":"gone"}"#))
        #expect(!hasInput(next, within: 200))
        both[1].respond(.json(200, #"{"to":"next"}"#))
        #expect(readResponse(next).body == #"{"to":"next"}"#)
        _ = leaving
    }

    @Test func noAnswerGives504AndCloses() throws {
        let responders = Responders()
        let port = try startServer(requestTimeout: 0.3) {
            $0.route("GET", "/never", .deferredHTTP { _, _, responder in responders.append(responder) })
        }
        let client = try TestClient(port: port)
        client.send(Self.get("/never"))
        let response = readResponse(client)
        #expect(response.head.hasPrefix("HTTP/1.1 504 Gateway Timeout\r\n"))
        #expect(response.head.contains("Connection: close"))
        #expect(response.body.contains(#""error":"#))
        // A late answer is ignored, and the server closes its side.
        responders.wait(for: 1).first?.respond(.json(200, "{}"))
        #expect(client.read(exactly: 1).isEmpty)
    }

    @Test func secondRespondIsIgnored() throws {
        let port = try startServer {
            $0.route("GET", "/twice", .deferredHTTP { _, _, responder in
                DispatchQueue.global().async {
                    responder.respond(.json(200, #"{"answer":1}"#))
                    responder.respond(.json(200, #"{"answer":2}"#))
                }
            })
        }
        let client = try TestClient(port: port)
        client.send(Self.get("/twice"))
        #expect(readResponse(client).body == #"{"answer":1}"#)
        #expect(!hasInput(client, within: 200))
        client.send(Self.get("/sync"))
        #expect(readResponse(client).body == #"{"from":"sync"}"#)
    }
}
