@testable import Bridge
import Testing

/// What the exchange asked for, in a form tests can compare.
private enum Seen: Equatable {
    case send(String)
    case request(String, body: String)
    case startRequestDeadline
    case reject(Int)
}

/// Plays the connection's part without a socket: feeds input, records actions, answers requests.
private final class Driver {
    var exchange: HTTPExchange
    var router = Router<Endpoint>()
    /// Called for each request; a test may make the exchange await a deferred answer here.
    var onRequest: (HTTPRequest, inout HTTPExchange) -> Void = { _, _ in }

    init(limits: HTTPParserLimits = HTTPParserLimits(), requestTimeout: Double = 30) {
        exchange = HTTPExchange(limits: limits, requestTimeout: requestTimeout)
        router.add("GET", "/a", .http { _, _ in .json(200, "{}") })
        router.add("GET", "/b", .http { _, _ in .json(200, "{}") })
        router.add("POST", "/echo", .http { _, _ in .json(200, "{}") })
        router.add("POST", "/small", maxBodyBytes: 4, .http { _, _ in .json(200, "{}") })
    }

    /// Feeds `text` as one read, the way `Connection.receiveHTTP` does, until the exchange asks for more.
    func feed(_ text: String) -> [Seen] {
        feed(Array(text.utf8))
    }

    func feed(_ bytes: [UInt8]) -> [Seen] {
        var seen: [Seen] = []
        var offset = 0
        bytes.withUnsafeBytes { input in
            while true {
                let (consumed, action) = exchange.receive(UnsafeRawBufferPointer(rebasing: input[offset...]), router: router)
                offset += consumed
                switch action {
                case nil:
                    return
                case .send(let buffer):
                    seen.append(.send(String(decoding: buffer.bytes, as: UTF8.self)))
                case .startRequestDeadline:
                    seen.append(.startRequestDeadline)
                case .reject(let status, _):
                    seen.append(.reject(status))
                    return
                case .request(let request, _):
                    seen.append(.request("\(request.method) \(request.path)", body: String(decoding: request.body, as: UTF8.self)))
                    onRequest(request, &exchange)
                }
            }
        }
        return seen
    }
}

private func get(_ path: String, _ extra: String = "") -> String {
    "GET \(path) HTTP/1.1\r\nHost: h\r\n\(extra)\r\n"
}

@Suite struct HTTPExchangeTests {
    @Test func aRequestWithItsBodyInOneRead() {
        let driver = Driver()
        #expect(driver.feed("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello") == [.request("POST /echo", body: "hello")])
        #expect(!driver.exchange.requestInProgress)
        #expect(driver.exchange.parser.isIdle)
    }

    @Test func theFirstBytesStartTheRequestDeadlineOnce() {
        let driver = Driver()
        #expect(driver.feed("GET /a HT") == [.startRequestDeadline])
        #expect(driver.exchange.requestInProgress)
        #expect(driver.feed("TP/1.1\r\nHo") == [])
        #expect(driver.feed("st: h\r\n\r\n") == [.request("GET /a", body: "")])
        #expect(!driver.exchange.requestInProgress)
    }

    @Test func pipelinedRequestsComeOutInOrder() {
        let driver = Driver()
        #expect(driver.feed(get("/a") + get("/b") + get("/a")) == [.request("GET /a", body: ""), .request("GET /b", body: ""), .request("GET /a", body: "")])
    }

    @Test func aDeferredAnswerHoldsWhatFollowsUntilItArrives() {
        let driver = Driver()
        let responder = HTTPResponder(request: HTTPRequest(method: "GET", target: "/a", path: "/a")) { _, _ in }
        driver.onRequest = { request, exchange in
            if request.path == "/a" { exchange.await(responder) }
        }
        // /b arrives behind the deferred /a: it is held, not parsed.
        #expect(driver.feed(get("/a") + get("/b")) == [.request("GET /a", body: "")])
        #expect(driver.exchange.awaited === responder)
        #expect(driver.feed(get("/b")) == [])
        driver.onRequest = { _, _ in }
        let held = driver.exchange.answerArrived()
        #expect(driver.exchange.awaited == nil)
        #expect(driver.feed(held) == [.request("GET /b", body: ""), .request("GET /b", body: "")])
    }

    @Test func heldInputBeyondOneRequestsLimitsIs413() {
        let driver = Driver(limits: HTTPParserLimits(maxHeadBytes: 256, maxBodyBytes: 64))
        driver.exchange.await(HTTPResponder(request: HTTPRequest(method: "GET", target: "/a", path: "/a")) { _, _ in })
        #expect(driver.feed(String(repeating: "x", count: 320)) == [])
        #expect(driver.feed("x") == [.reject(413)])
    }

    @Test func expectContinueIsAnsweredBeforeTheBody() {
        let driver = Driver()
        let head = "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        #expect(driver.feed(head) == [.send("HTTP/1.1 100 Continue\r\n\r\n"), .startRequestDeadline])
        #expect(driver.feed("hi") == [.request("POST /echo", body: "hi")])
    }

    @Test func parseErrorsGiveTheirStatus() {
        let malformed = Driver()
        #expect(malformed.feed("GET /a HTTP/1.1\nHost: h\n\n") == [.reject(400)])
        let tooLarge = Driver(limits: HTTPParserLimits(maxHeadBytes: 64))
        #expect(tooLarge.feed(get("/a", "X-Long: " + String(repeating: "y", count: 80) + "\r\n")) == [.reject(431)])
        let noLength = Driver()
        #expect(noLength.feed("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n") == [.reject(400)])
    }

    @Test func theRoutesBodyLimitIsCheckedAtTheHead() {
        let driver = Driver()
        #expect(driver.feed("POST /small HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n") == [.reject(413)])
        let withinLimit = Driver()
        #expect(withinLimit.feed("POST /small HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nabcd") == [.request("POST /small", body: "abcd")])
    }

    @Test func theRouteIsHandedOverWithTheRequest() {
        var exchange = HTTPExchange(limits: HTTPParserLimits(), requestTimeout: 30)
        var router = Router<Endpoint>()
        router.add("GET", "/a", .http { _, _ in .json(200, "{}") })
        let bytes = Array((get("/a") + get("/nowhere")).utf8)
        bytes.withUnsafeBytes { input in
            let first = exchange.receive(input, router: router)
            guard case .request(_, .found(.http, _, _))? = first.action else {
                Issue.record("expected /a's route, got \(String(describing: first.action))")
                return
            }
            let second = exchange.receive(UnsafeRawBufferPointer(rebasing: input[first.consumed...]), router: router)
            guard case .request(_, .notFound)? = second.action else {
                Issue.record("expected no route, got \(String(describing: second.action))")
                return
            }
        }
    }

    @Test func deadlines() {
        let idle = Driver(requestTimeout: 2.5)
        _ = idle.feed(get("/a"))
        guard case .closeNow = idle.exchange.deadlineReached() else {
            Issue.record("an idle keep-alive connection is closed")
            return
        }
        let started = Driver(requestTimeout: 2.5)
        _ = started.feed("GET /a")
        guard case .reject(408, "request not completed within 2.5 seconds") = started.exchange.deadlineReached() else {
            Issue.record("a started request gets 408")
            return
        }
        let waiting = Driver()
        let responder = HTTPResponder(request: HTTPRequest(method: "GET", target: "/a", path: "/a")) { _, _ in }
        waiting.exchange.await(responder)
        guard case .answerOverdue(let overdue) = waiting.exchange.deadlineReached(), overdue === responder else {
            Issue.record("an awaited answer is overdue")
            return
        }
        waiting.exchange.gaveUpWaiting()
        #expect(waiting.exchange.awaited == nil)
        #expect(waiting.exchange.closeAfterResponse)
    }

    @Test func keepAliveFollowsTheRequestTheServerAndADrain() throws {
        let driver = Driver()
        var requests: [HTTPRequest] = []
        driver.onRequest = { request, _ in requests.append(request) }
        _ = driver.feed(get("/a") + "GET /a HTTP/1.0\r\n\r\n" + get("/a", "Connection: close\r\n"))
        try #require(requests.count == 3)
        #expect(driver.exchange.keepsAlive(after: requests[0], serverDraining: false))
        #expect(!driver.exchange.keepsAlive(after: requests[0], serverDraining: true))
        #expect(!driver.exchange.keepsAlive(after: requests[1], serverDraining: false))
        #expect(!driver.exchange.keepsAlive(after: requests[2], serverDraining: false))
    }

    @Test func drainClosesAnIdleConnectionAndLetsARequestInFlightFinish() {
        let idle = Driver()
        _ = idle.feed(get("/a"))
        let closesIdle = idle.exchange.drain(outputEmpty: true)
        #expect(closesIdle)
        let unsent = Driver()
        let closesWithOutput = unsent.exchange.drain(outputEmpty: false)
        #expect(!closesWithOutput)
        let midRequest = Driver()
        _ = midRequest.feed("GET /a HTTP/1.1\r\n")
        let closesMidRequest = midRequest.exchange.drain(outputEmpty: true)
        #expect(!closesMidRequest)
        #expect(midRequest.exchange.closeAfterResponse)
    }
}
