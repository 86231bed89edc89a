import Testing
@testable import Bridge
import Support

@Suite struct HTTPResponseTests {
    private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    private let date = "Sun, 06 Nov 1994 08:49:37 GMT"

    @Test func jsonResponseBytes() {
        let response = HTTPResponse.json(200, "{}")
        #expect(response.serialized(date: date, keepAlive: true) == Array(
            ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                + "Content-Length: 2\r\nConnection: keep-alive\r\n\r\n{}").utf8))
    }

    @Test func errorResponseEscapesItsMessage() {
        let response = HTTPResponse.error(400, "bad \"x\" \\ \n\t\u{1}é")
        #expect(text(response.body) == #"{"error":"bad \"x\" \\ \n\t\u0001é"}"#)
        #expect(response.headers["content-type"] == "application/json")
        #expect(text(response.serialized(date: date, keepAlive: false)).hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(text(response.serialized(date: date, keepAlive: false)).contains("\r\nConnection: close\r\n\r\n{"))
    }

    @Test func headResponseKeepsTheLengthAndDropsTheBody() {
        let response = HTTPResponse(status: 200, body: Array("hello".utf8))
        #expect(response.serialized(date: date, keepAlive: true, headOnly: true) == Array(
            "HTTP/1.1 200 OK\r\nDate: \(date)\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n".utf8))
    }

    @Test(arguments: [204, 304])
    func bodylessStatusesHaveNoContentLength(status: Int) {
        let response = HTTPResponse(status: status, body: Array("ignored".utf8))
        let reason = HTTPResponse.reasonPhrase(status)
        #expect(response.serialized(date: date, keepAlive: true) == Array(
            "HTTP/1.1 \(status) \(reason)\r\nDate: \(date)\r\nConnection: keep-alive\r\n\r\n".utf8))
    }

    @Test func informationalResponses() {
        #expect(HTTPResponse(status: 100).serialized(date: date, keepAlive: true) == Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
        let upgrade = HTTPResponse(status: 101, headers: HTTPHeaders([
            ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ]))
        #expect(upgrade.serialized(date: date, keepAlive: true) == Array(
            ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n").utf8))
    }

    @Test func serializerOwnsDateLengthAndConnection() {
        let response = HTTPResponse(status: 201, headers: HTTPHeaders([
            ("content-length", "99"), ("X-A", "1"), ("Connection", "keep-alive"), ("date", "never"),
        ]), body: [0x61])
        #expect(response.serialized(date: date, keepAlive: false) == Array(
            "HTTP/1.1 201 Created\r\nX-A: 1\r\nDate: \(date)\r\nContent-Length: 1\r\nConnection: close\r\n\r\na".utf8))
    }

    @Test func headerInjectionIsDefused() {
        let response = HTTPResponse(status: 200, headers: HTTPHeaders([("X-A", "1\r\nSet-Cookie: x"), ("X\nB", "\0")]))
        #expect(response.serialized(date: date, keepAlive: true) == Array(
            ("HTTP/1.1 200 OK\r\nX-A: 1  Set-Cookie: x\r\nX B:  \r\nDate: \(date)\r\n"
                + "Content-Length: 0\r\nConnection: keep-alive\r\n\r\n").utf8))
    }

    @Test func unknownStatusHasAnEmptyReason() {
        #expect(text(HTTPResponse(status: 599).serialized(date: date, keepAlive: true)).hasPrefix("HTTP/1.1 599 \r\nDate:"))
    }

    @Test func reasonPhrases() {
        let statuses = [100, 101, 200, 201, 202, 204, 301, 304, 400, 401, 403, 404, 405, 408, 409, 411, 413, 414,
                        415, 417, 422, 426, 429, 431, 500, 501, 503, 505]
        #expect(statuses.allSatisfy { !HTTPResponse.reasonPhrase($0).isEmpty })
        #expect(HTTPResponse.reasonPhrase(404) == "Not Found")
        #expect(HTTPResponse.reasonPhrase(413) == "Content Too Large")
        #expect(HTTPResponse.reasonPhrase(431) == "Request Header Fields Too Large")
    }

    @Test(arguments: [
        (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (-1, "Wed, 31 Dec 1969 23:59:59 GMT"),
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        (1_709_208_000, "Thu, 29 Feb 2024 12:00:00 GMT"),
        (1_732_477_200, "Sun, 24 Nov 2024 19:40:00 GMT"),
        (4_102_444_800, "Fri, 01 Jan 2100 00:00:00 GMT"),
        (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT"),
    ])
    func httpDate(seconds: Int, expected: String) {
        #expect(HTTPResponse.httpDate(epochSeconds: seconds) == expected)
    }
}
