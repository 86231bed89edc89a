import Testing
@testable import Bridge

/// A comparable summary of a parsed request (HTTPRequest holds tuples, which are not Equatable).
private struct Parsed: Equatable, CustomStringConvertible {
    var method: String
    var target: String
    var path: String
    var query: [String]
    var version: HTTPRequest.Version
    var headers: [String]
    var body: [UInt8]

    init(_ request: HTTPRequest) {
        method = request.method
        target = request.target
        path = request.path
        query = request.query.map { "\($0.name)=\($0.value)" }
        version = request.version
        headers = request.headers.map { "\($0.name): \($0.value)" }
        body = request.body
    }

    var description: String { "\(method) \(target) \(headers) body=\(body.count)" }
}

/// What feeding a stream produced: the finished requests, then the error if one stopped it.
private struct Outcome {
    var requests: [HTTPRequest] = []
    var error: HTTPParseError?
    var parsed: [Parsed] { requests.map(Parsed.init) }
}

/// Feeds `stream` in pieces of the given sizes (the rest in one piece), following the parser's
/// contract: call again until a nil event, set the body limit after each head. Checks the contract
/// on every call.
private func feed(_ stream: [UInt8], pieces: [Int] = [], limits: HTTPParserLimits = HTTPParserLimits(),
                  bodyLimit: Int? = nil) -> Outcome {
    var parser = HTTPRequestParser(limits: limits)
    var outcome = Outcome()
    var sawHead = false
    var offset = 0
    var sizes = pieces[...]
    while offset < stream.count {
        let size = min(sizes.popFirst() ?? stream.count, stream.count - offset)
        let piece = Array(stream[offset..<(offset + size)])
        offset += size
        var used = 0
        var calls = 0
        while true {
            calls += 1
            #expect(calls <= piece.count + 3, "parser made no progress")
            if calls > piece.count + 3 { return outcome }
            let result: (consumed: Int, event: HTTPParseEvent?)
            do {
                result = try piece.withUnsafeBytes { bytes in
                    try Result { () throws(HTTPParseError) in
                        try parser.parse(UnsafeRawBufferPointer(rebasing: bytes[used...]))
                    }.get()
                }
            } catch {
                outcome.error = error as? HTTPParseError
                return outcome
            }
            #expect(result.consumed <= piece.count - used)
            used += result.consumed
            guard let event = result.event else {
                #expect(used == piece.count, "nil event before all input was consumed")
                break
            }
            switch event {
            case .headComplete:
                #expect(!sawHead)
                #expect(parser.head != nil)
                sawHead = true
                if let bodyLimit {
                    do { try parser.setBodyLimit(bodyLimit) } catch {
                        outcome.error = error
                        return outcome
                    }
                }
            case .requestComplete(let request):
                #expect(sawHead)
                #expect(parser.head == nil)
                #expect(parser.isIdle)
                sawHead = false
                outcome.requests.append(request)
            }
        }
    }
    // A request without a body completes on the call after its head, even with no more input.
    if sawHead, let (_, event) = try? parser.parse(UnsafeRawBufferPointer(start: nil, count: 0)),
       case .requestComplete(let request)? = event {
        outcome.requests.append(request)
    }
    return outcome
}

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// One parse call on a copy of `input`, so the parser cannot read past it.
private func step(_ parser: inout HTTPRequestParser, _ input: [UInt8]) throws -> (consumed: Int, event: HTTPParseEvent?) {
    try input.withUnsafeBytes { buffer in
        try Result { () throws(HTTPParseError) in try parser.parse(buffer) }.get()
    }
}

private func error(of text: String, limits: HTTPParserLimits = HTTPParserLimits(), bodyLimit: Int? = nil) -> HTTPParseError? {
    feed(bytes(text), limits: limits, bodyLimit: bodyLimit).error
}

/// Deterministic generator for the random-split test (SplitMix64).
private struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private let pipelined = bytes(
    "GET /apps/1/channels?filter_by_prefix=presence- HTTP/1.1\r\nHost: a\r\n\r\n"
        + "POST /apps/1/events HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nContent-Type: application/json\r\n\r\n{\"a\":\"b c\"}"
        + "POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nWiki\r\n5\r\npedia\r\n0\r\nT: 1\r\n\r\n"
        + "\r\nGET /after-empty-line HTTP/1.0\r\n\r\n"
        + "HEAD /x?q=%41+b HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n")

@Suite struct HTTPRequestParserTests {
    @Test func simpleGet() throws {
        let input = bytes("GET /apps/1/channels?filter_by_prefix=presence-&info=user_count HTTP/1.1\r\nHost: localhost:6001\r\nUser-Agent: t\r\n\r\n")
        var parser = HTTPRequestParser()
        #expect(parser.head == nil)
        let first = try step(&parser, input)
        #expect(first.consumed == input.count)
        guard case .headComplete? = first.event else { Issue.record("expected head"); return }
        let head = try #require(parser.head)
        #expect(head.method == "GET")
        #expect(head.headers["user-agent"] == "t")
        #expect(head.body.isEmpty)
        let second = try step(&parser, [])
        #expect(second.consumed == 0)
        guard case .requestComplete(let request)? = second.event else { Issue.record("expected request"); return }
        #expect(request.method == "GET")
        #expect(request.target == "/apps/1/channels?filter_by_prefix=presence-&info=user_count")
        #expect(request.path == "/apps/1/channels")
        #expect(request.queryValue("filter_by_prefix") == "presence-")
        #expect(request.queryValue("info") == "user_count")
        #expect(request.version == .http1_1)
        #expect(request.headers.fields.map(\.name) == ["Host", "User-Agent"])
        #expect(request.headers["host"] == "localhost:6001")
        #expect(request.body.isEmpty)
        #expect(parser.head == nil)
        #expect(parser.isIdle)
        let third = try step(&parser, [])
        #expect(third.consumed == 0 && third.event == nil)
    }

    @Test func headersAreCaseInsensitiveAndTrimmed() throws {
        let outcome = feed(bytes("GET / HTTP/1.1\r\nhOsT: h\r\nX-Spaces: \t a  b \t\r\nX-Empty:\r\nx-spaces: second\r\n\r\n"))
        let request = try #require(outcome.requests.first)
        #expect(request.headers["HOST"] == "h")
        #expect(request.headers["x-spaces"] == "a  b")
        #expect(request.headers.values("X-SPACES") == ["a  b", "second"])
        #expect(request.headers["x-empty"] == "")
        #expect(request.headers.fields.map(\.name) == ["hOsT", "X-Spaces", "X-Empty", "x-spaces"])
    }

    @Test func obsTextInValueIsKept() throws {
        let stream = bytes("GET / HTTP/1.1\r\nHost: h\r\nX-Name: caf") + [0xC3, 0xA9] + bytes("\r\n\r\n")
        let request = try #require(feed(stream).requests.first)
        #expect(request.headers["x-name"] == "café")
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\nHost: h\r\n\r\n", true),
        ("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n", false),
        ("GET / HTTP/1.0\r\n\r\n", false),
        ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
        ("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", true),
    ])
    func keepAliveRules(text: String, keepAlive: Bool) throws {
        let request = try #require(feed(bytes(text)).requests.first)
        #expect(request.keepAlive == keepAlive)
    }

    @Test func higherMinorVersionIsServedAsHTTP11() throws {
        let request = try #require(feed(bytes("GET / HTTP/1.7\r\nHost: h\r\n\r\n")).requests.first)
        #expect(request.version == .http1_1)
    }

    @Test func pipelinedRequestsComeInOrder() throws {
        let outcome = feed(pipelined)
        #expect(outcome.error == nil)
        #expect(outcome.requests.map(\.target) == [
            "/apps/1/channels?filter_by_prefix=presence-", "/apps/1/events", "/chunked", "/after-empty-line", "/x?q=%41+b",
        ])
        #expect(outcome.requests.map(\.method) == ["GET", "POST", "POST", "GET", "HEAD"])
        #expect(outcome.requests[1].body == bytes("{\"a\":\"b c\"}"))
        #expect(outcome.requests[2].body == bytes("Wikipedia"))
        #expect(outcome.requests[2].headers["T"] == nil)
        #expect(outcome.requests[3].version == .http1_0)
        #expect(outcome.requests[4].query.map(\.value) == ["A b"])
        #expect(outcome.requests[4].keepAlive == false)
    }

    @Test func oneByteAtATimeGivesTheSameRequests() {
        let whole = feed(pipelined)
        let byByte = feed(pipelined, pieces: Array(repeating: 1, count: pipelined.count))
        #expect(byByte.error == nil)
        #expect(byByte.parsed == whole.parsed)
        #expect(byByte.requests.count == 5)
    }

    @Test func randomSplitsGiveTheSameRequests() {
        let whole = feed(pipelined)
        var generator = SeededGenerator(state: 0x5EED)
        for _ in 0..<300 {
            var pieces: [Int] = []
            var total = 0
            while total < pipelined.count {
                let size = Int.random(in: 1...40, using: &generator)
                pieces.append(size)
                total += size
            }
            let split = feed(pipelined, pieces: pieces)
            #expect(split.error == nil)
            #expect(split.parsed == whole.parsed, "pieces \(pieces)")
        }
    }

    @Test(arguments: [
        "GET /bad\0 HTTP/1.1\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "x", count: 17_000),
    ])
    func randomSplitsOfACorruptStreamFailTheSameWay(tail: String) {
        let stream = pipelined + bytes(tail)
        let whole = feed(stream)
        #expect(whole.error != nil)
        #expect(whole.requests.count == 5)
        var generator = SeededGenerator(state: 0xBAD)
        for _ in 0..<100 {
            var pieces: [Int] = []
            var total = 0
            while total < stream.count {
                let size = Int.random(in: 1...3000, using: &generator)
                pieces.append(size)
                total += size
            }
            let split = feed(stream, pieces: pieces)
            #expect(split.error == whole.error, "pieces \(pieces)")
            #expect(split.parsed == whole.parsed)
        }
    }

    @Test func headCompleteStopsBeforeTheBodyAndRequestCompleteBeforeTheNextRequest() throws {
        let head = bytes("POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n")
        let input = head + bytes("abcGET / HTTP/1.1\r\nHost: h\r\n\r\n")
        var parser = HTTPRequestParser()
        let first = try step(&parser, input)
        #expect(first.consumed == head.count)
        try parser.setBodyLimit(3)
        let second = try step(&parser, Array(input[first.consumed...]))
        #expect(second.consumed == 3)
        guard case .requestComplete(let request)? = second.event else { Issue.record("expected request"); return }
        #expect(request.body == bytes("abc"))
        #expect(parser.isIdle)
    }

    @Test func bytesAfterAnUpgradeRequestAreLeftToTheCaller() throws {
        let head = "GET /app/key?protocol=7 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        let frame: [UInt8] = [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]
        let input = bytes(head) + frame
        var parser = HTTPRequestParser()
        let first = try step(&parser, input)
        let rest = Array(input[first.consumed...])
        let second = try step(&parser, rest)
        guard case .requestComplete(let request)? = second.event else { Issue.record("expected request"); return }
        #expect(request.headers.hasToken("upgrade", in: "connection"))
        #expect(Array(rest[second.consumed...]) == frame)
    }

    @Test func chunkedBodyWithExtensionsAndTrailers() throws {
        let text = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"
            + "5;name=value\r\nhello\r\n1 ; a ; b=\"q s\"\r\n \r\nA\r\n0123456789\r\n0;last\r\nX-Trailer: t\r\nY: u\r\n\r\n"
        let outcome = feed(bytes(text))
        #expect(outcome.error == nil)
        let request = try #require(outcome.requests.first)
        #expect(request.body == bytes("hello 0123456789"))
        #expect(request.headers["x-trailer"] == nil)
        #expect(request.headers["transfer-encoding"] == "Chunked")
    }

    @Test func chunkedWithOnlyTheLastChunk() throws {
        let request = try #require(feed(bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")).requests.first)
        #expect(request.body.isEmpty)
    }

    @Test func transferEncodingListElementsAreTrimmed() throws {
        let text = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , chunked \r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        let request = try #require(feed(bytes(text)).requests.first)
        #expect(request.body == bytes("abc"))
    }

    @Test(arguments: [
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n",
    ])
    func contentLengthWithTransferEncodingIsRejected(text: String) {
        #expect(error(of: text) == .contentLengthWithTransferEncoding)
        #expect(error(of: text)?.status == 400)
    }

    @Test(arguments: [
        "Content-Length: 3\r\nContent-Length: 4",
        "Content-Length: 3, 4",
        "Content-Length: -1",
        "Content-Length: +3",
        "Content-Length: abc",
        "Content-Length: 0x10",
        "Content-Length: 1 2",
        "Content-Length:",
        "Content-Length: 3,",
        "Content-Length: 99999999999999999999999",
    ])
    func invalidContentLengthIsRejected(field: String) {
        let text = "POST / HTTP/1.1\r\nHost: h\r\n\(field)\r\n\r\nabc"
        #expect(error(of: text) == .invalidContentLength)
        #expect(error(of: text)?.status == 400)
    }

    @Test func equalContentLengthsAreAccepted() throws {
        let text = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\ncontent-length: 003, 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: h\r\n\r\n"
        let outcome = feed(bytes(text))
        #expect(outcome.error == nil)
        #expect(outcome.requests.map(\.body) == [bytes("abc"), []])
    }

    @Test func transferCodings() {
        let prefix = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
        #expect(error(of: prefix + "gzip\r\n\r\n") == .unsupportedTransferEncoding)
        #expect(error(of: prefix + "gzip, chunked\r\n\r\n") == .unsupportedTransferEncoding)
        #expect(error(of: prefix + "identity\r\n\r\n")?.status == 501)
        #expect(error(of: prefix + "chunked, gzip\r\n\r\n")?.status == 501)
        #expect(error(of: prefix + "chunked\r\nTransfer-Encoding: chunked\r\n\r\n")?.status == 400)
        #expect(error(of: prefix + "\r\n\r\n")?.status == 400)
        #expect(error(of: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n")?.status == 400)
    }

    @Test(arguments: ["HTTP/2.0", "HTTP/0.9", "HTTP/3.0"])
    func unsupportedVersions(version: String) {
        #expect(error(of: "GET / \(version)\r\nHost: h\r\n\r\n") == .unsupportedVersion)
        #expect(error(of: "GET / \(version)\r\nHost: h\r\n\r\n")?.status == 505)
    }

    @Test(arguments: ["http/1.1", "HTTP/1.1 ", "HTTP/11", "HTTP/1.", "HTTP/a.1", "HTTP/1.10", "", "HTTP/1.1\0"])
    func malformedVersions(version: String) {
        #expect(error(of: "GET / \(version)\r\nHost: h\r\n\r\n")?.status == 400)
    }

    @Test func hostRules() {
        #expect(error(of: "GET / HTTP/1.1\r\n\r\n") == .malformed("missing Host header"))
        #expect(error(of: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")?.status == 400)
        #expect(error(of: "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n")?.status == 400)
        #expect(feed(bytes("GET / HTTP/1.0\r\n\r\n")).requests.count == 1)
        #expect(feed(bytes("GET / HTTP/1.1\r\nHost:\r\n\r\n")).requests.count == 1)
    }

    /// A head of exactly `size` bytes, padded in one header value.
    private func head(ofSize size: Int) -> [UInt8] {
        let fixed = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: \r\n\r\n"
        let text = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: " + String(repeating: "p", count: size - fixed.utf8.count) + "\r\n\r\n"
        return bytes(text)
    }

    @Test func headLimitIsInclusive() {
        let exact = head(ofSize: 16 * 1024)
        #expect(exact.count == 16_384)
        #expect(feed(exact).requests.count == 1)
        #expect(feed(exact, pieces: Array(repeating: 100, count: 200)).requests.count == 1)
        #expect(feed(head(ofSize: 16 * 1024 + 1)).error == .headTooLarge)
        #expect(feed(head(ofSize: 16 * 1024 + 1), pieces: Array(repeating: 7, count: 3000)).error == .headTooLarge)
        #expect(HTTPParseError.headTooLarge.status == 431)
    }

    @Test func headLimitIsCheckedAsBytesArrive() throws {
        // A header line that never ends: rejected once it passes the limit, not at the CRLFCRLF.
        var parser = HTTPRequestParser()
        let start = bytes("GET / HTTP/1.1\r\nX: ")
        let filler = [UInt8](repeating: 0x61, count: 1000)
        #expect(try step(&parser, start).consumed == start.count)
        var fed = start.count
        var rejected = false
        for _ in 0..<20 {
            do {
                _ = try step(&parser, filler)
                fed += filler.count
            } catch {
                #expect(error as? HTTPParseError == .headTooLarge)
                rejected = true
                break
            }
        }
        #expect(rejected)
        #expect(fed <= 16 * 1024)
        #expect(fed + filler.count > 16 * 1024)
    }

    @Test func headLimitAppliesToAPartialRequestLine() {
        let line = bytes("GET /" + String(repeating: "a", count: 16 * 1024))
        #expect(feed(line).error == .headTooLarge)
        #expect(feed(line, pieces: Array(repeating: 512, count: 40)).error == .headTooLarge)
    }

    private func request(withHeaderCount count: Int) -> [UInt8] {
        var text = "GET / HTTP/1.1\r\nHost: h\r\n"
        for i in 1..<count { text += "X-\(i): v\r\n" }
        return bytes(text + "\r\n")
    }

    @Test func headerCountLimit() {
        #expect(feed(request(withHeaderCount: 100)).requests.count == 1)
        #expect(feed(request(withHeaderCount: 101)).error == .tooManyHeaders)
        #expect(HTTPParseError.tooManyHeaders.status == 431)
    }

    @Test func trailersCountIntoTheLimits() {
        var limits = HTTPParserLimits()
        limits.maxHeaderCount = 3
        let prefix = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
        #expect(feed(bytes(prefix + "A: 1\r\n\r\n"), limits: limits).requests.count == 1)
        #expect(feed(bytes(prefix + "A: 1\r\nB: 2\r\n\r\n"), limits: limits).error == .tooManyHeaders)
        limits = HTTPParserLimits()
        limits.maxHeadBytes = 100
        let big = prefix + "A: " + String(repeating: "a", count: 60) + "\r\n\r\n"
        #expect(feed(bytes(big), limits: limits).error == .headTooLarge)
        #expect(error(of: prefix + "A : 1\r\n\r\n") == .malformed("whitespace before colon"))
    }

    @Test func declaredBodyOverTheLimitIsRejectedAtSetBodyLimit() throws {
        let text = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n"
        var parser = HTTPRequestParser()
        guard case .headComplete? = try step(&parser, bytes(text)).event else { Issue.record("expected head"); return }
        #expect(throws: HTTPParseError.bodyTooLarge) { try parser.setBodyLimit(10) }
        #expect(throws: HTTPParseError.bodyTooLarge) { try step(&parser, bytes("hello world")) }
        #expect(feed(bytes(text + "hello world"), bodyLimit: 11).requests.first?.body == bytes("hello world"))
        #expect(HTTPParseError.bodyTooLarge.status == 413)
    }

    @Test func defaultBodyLimitApplies() {
        let over = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \((1 << 20) + 1)\r\n\r\n"
        #expect(feed(bytes(over)).error == .bodyTooLarge)
        var limits = HTTPParserLimits()
        limits.maxBodyBytes = 4
        #expect(feed(bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nabcde"), limits: limits).error == .bodyTooLarge)
        #expect(feed(bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nabcde"), limits: limits, bodyLimit: 5).error == nil)
    }

    @Test func chunkedBodyGrowingPastTheLimitIsRejectedAtTheChunkSize() throws {
        let head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        #expect(feed(bytes(head + "6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n"), bodyLimit: 10).requests.first?.body.count == 10)
        // The second size would pass the limit: rejected before any of its data arrives.
        #expect(feed(bytes(head + "6\r\nabcdef\r\n5\r\n"), bodyLimit: 10).error == .bodyTooLarge)
        #expect(feed(bytes(head + "B\r\n"), bodyLimit: 10).error == .bodyTooLarge)
    }

    @Test func hugeChunkSizeIsRejected() {
        let head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        #expect(error(of: head + "FFFFFFFFFFFFFFFFFF\r\n") == .bodyTooLarge)
        #expect(error(of: head + "FFFFFFFFFFFFFFFFFF\r\n", bodyLimit: Int.max) == .bodyTooLarge)
        #expect(error(of: head + "7FFFFFFFFFFFFFFF\r\n", bodyLimit: Int.max) == nil)
        #expect(error(of: head + "00000000000000000000000005\r\nhello\r\n0\r\n\r\n") == nil)
    }

    @Test(arguments: [
        "x\r\n", "\r\n", "-5\r\n", "5 \r\n", "5x\r\n", " 5\r\n", "5\n", "5\r\nhelloX\r\n", "5\r\nhello\n",
        "5;a\0b\r\n", "5;a\rb\r\n", "0\r\nA: 1\n\r\n", "0\r\n A: 1\r\n\r\n",
    ])
    func malformedChunkedBodies(body: String) {
        let head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        #expect(error(of: head + body)?.status == 400)
    }

    @Test func chunkSizeLineLimit() {
        let head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        let long = "1;" + String(repeating: "e", count: 1100) + "\r\na\r\n0\r\n\r\n"
        #expect(error(of: head + long) == .malformed("chunk size line too long"))
    }

    @Test func expectContinue() throws {
        var parser = HTTPRequestParser()
        #expect(!parser.expectsContinue)
        let head = try step(&parser, bytes("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n"))
        guard case .headComplete? = head.event else { Issue.record("expected head"); return }
        #expect(parser.expectsContinue)
        _ = try step(&parser, [])
        #expect(parser.expectsContinue)
        _ = try step(&parser, bytes("a"))
        #expect(!parser.expectsContinue)
    }

    @Test func expectContinueClearsOnTheFirstChunkByte() throws {
        var parser = HTTPRequestParser()
        _ = try step(&parser, bytes("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"))
        #expect(parser.expectsContinue)
        _ = try step(&parser, bytes("1"))
        #expect(!parser.expectsContinue)
    }

    @Test func expectContinueNeedsABodyAndHTTP11() throws {
        for text in ["GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
                     "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
                     "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"] {
            var parser = HTTPRequestParser()
            _ = try step(&parser, bytes(text))
            #expect(parser.head != nil)
            #expect(!parser.expectsContinue)
        }
    }

    @Test func otherExpectationsAreRejected() {
        #expect(error(of: "POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\na") == .unsupportedExpectation)
        #expect(error(of: "GET / HTTP/1.1\r\nHost: h\r\nExpect:\r\n\r\n")?.status == 417)
    }

    @Test func queryIsPercentDecoded() throws {
        let text = "GET /a%20b/c+d?a=1%202&b=x+y&c&%E2%9C%93=ok&&=v&e==&f=%2b HTTP/1.1\r\nHost: h\r\n\r\n"
        let request = try #require(feed(bytes(text)).requests.first)
        #expect(request.path == "/a%20b/c+d")
        #expect(request.query.map(\.name) == ["a", "b", "c", "✓", "", "e", "f"])
        #expect(request.query.map(\.value) == ["1 2", "x y", "", "ok", "v", "=", "+"])
    }

    @Test(arguments: ["%", "%2", "%zz", "a=%G1", "a=%FF", "%C3%28=1", "a=1%"])
    func invalidQueryEscapesAreRejected(query: String) {
        #expect(error(of: "GET /?\(query) HTTP/1.1\r\nHost: h\r\n\r\n") == .malformed("invalid percent-encoding in query"))
    }

    @Test func requestTargetForms() throws {
        let options = try #require(feed(bytes("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")).requests.first)
        #expect(options.path == "*")
        #expect(options.target == "*")
        let absolute = try #require(feed(bytes("GET http://example.com:80/a/b?x=1 HTTP/1.1\r\nHost: h\r\n\r\n")).requests.first)
        #expect(absolute.path == "/a/b")
        #expect(absolute.query.map(\.value) == ["1"])
        #expect(absolute.target == "http://example.com:80/a/b?x=1")
        let bare = try #require(feed(bytes("GET HTTPS://example.com?x=2 HTTP/1.1\r\nHost: h\r\n\r\n")).requests.first)
        #expect(bare.path == "/")
        #expect(bare.query.map(\.value) == ["2"])
        #expect(error(of: "GET * HTTP/1.1\r\nHost: h\r\n\r\n")?.status == 400)
        #expect(error(of: "CONNECT example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n")?.status == 400)
        #expect(error(of: "GET http:///a HTTP/1.1\r\nHost: h\r\n\r\n")?.status == 400)
        #expect(error(of: "GET ftp://h/a HTTP/1.1\r\nHost: h\r\n\r\n")?.status == 400)
    }

    @Test(arguments: [
        "GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /a\u{7F} HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /é HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
        "GET /\r\nHost: h\r\n\r\n",
        "GET\r\n\r\n",
        " GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n\n",
        "GET / HTTP/1.1\rHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX: \0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\u{1}b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\u{7F}\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n  folded\r\n\r\n",
        "GET / HTTP/1.1\r\n Host: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n: empty\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX\0Y: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX(Y): a\r\n\r\n",
        "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "\n",
        "\0\0\0\0\r\n",
    ])
    func hostileHeadsAreRejectedWith400(text: String) {
        #expect(error(of: text)?.status == 400, "\(text.debugDescription)")
    }

    @Test func oneLeadingEmptyLineIsIgnored() throws {
        let request = try #require(feed(bytes("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")).requests.first)
        #expect(request.path == "/")
    }

    @Test func errorsAreSticky() throws {
        var parser = HTTPRequestParser()
        #expect(throws: HTTPParseError.unsupportedVersion) { try step(&parser, bytes("GET / HTTP/2.0\r\n")) }
        #expect(throws: HTTPParseError.unsupportedVersion) { try step(&parser, bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n")) }
        #expect(!parser.isIdle)
        #expect(parser.head == nil)
    }

    @Test func idleness() throws {
        var parser = HTTPRequestParser()
        #expect(parser.isIdle)
        _ = try step(&parser, bytes("\r\n"))
        #expect(parser.isIdle)
        _ = try step(&parser, bytes("G"))
        #expect(!parser.isIdle)
        #expect(try step(&parser, bytes("ET / HTTP/1.1\r\nHost: h\r\n\r\n")).event != nil)
        #expect(!parser.isIdle)
        #expect(try step(&parser, []).event != nil)
        #expect(parser.isIdle)
    }

    @Test func errorStatusesAndMessages() {
        let all: [HTTPParseError] = [
            .malformed("x"), .headTooLarge, .tooManyHeaders, .bodyTooLarge, .contentLengthWithTransferEncoding,
            .invalidContentLength, .unsupportedTransferEncoding, .unsupportedVersion, .unsupportedExpectation,
        ]
        #expect(all.map(\.status) == [400, 431, 431, 413, 400, 400, 501, 505, 417])
        #expect(all.allSatisfy { !$0.message.isEmpty && $0.message.hasSuffix(".") })
        #expect(HTTPParseError.malformed("bare LF").message == "Malformed request: bare LF.")
    }
}
