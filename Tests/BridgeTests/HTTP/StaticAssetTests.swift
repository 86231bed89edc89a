import Testing
@testable import Bridge
import Support

@Suite struct StaticAssetTests {
    private let script = Array(String(repeating: "channel.bind('new_message', render);\n", count: 100).utf8)
    private var asset: StaticAsset { StaticAsset(bytes: script, contentType: "application/javascript; charset=utf-8") }
    private var identityTag: String { "\"" + Digest.hex(Digest.sha1(script)) + "\"" }
    private var gzipTag: String { "\"" + Digest.hex(Digest.sha1(script)) + "-gzip\"" }

    private func request(_ method: String = "GET", _ headers: [(String, String)] = []) -> HTTPRequest {
        HTTPRequest(method: method, target: "/js/pusher.js", path: "/js/pusher.js",
                    headers: HTTPHeaders(headers.map { (name: $0.0, value: $0.1) }))
    }

    @Test func plainGetServesTheBytesWithCachingHeaders() {
        let response = asset.response(to: request())
        #expect(response.status == 200)
        #expect(response.body == script)
        #expect(response.headers["Content-Type"] == "application/javascript; charset=utf-8")
        #expect(response.headers["Cache-Control"] == "public, max-age=300")
        #expect(response.headers["ETag"] == identityTag)
        #expect(response.headers["Vary"] == "Accept-Encoding")
        #expect(response.headers["Content-Encoding"] == nil)
        #expect(response.headers["X-Content-Type-Options"] == "nosniff")
    }

    @Test func gzipIsServedWhenAcceptedWithItsOwnTag() {
        let response = asset.response(to: request("GET", [("Accept-Encoding", "gzip, deflate, br")]))
        #expect(response.status == 200)
        #expect(response.headers["Content-Encoding"] == "gzip")
        #expect(response.body == Gzip.compress(script))
        #expect(response.body.count < script.count / 4)
        #expect(response.headers["ETag"] == gzipTag)
        #expect(response.headers["Vary"] == "Accept-Encoding")
    }

    @Test(arguments: [
        ("gzip", true),
        ("GZIP", true),
        ("x-gzip", true),
        (" gzip ; q=0.8 ", true),
        ("*", true),
        ("deflate, *;q=0.1", true),
        ("identity;q=0.5, gzip;q=0.5", true),
        ("gzip;q=0", false),
        ("gzip;q=0.000", false),
        ("*;q=0", false),
        ("gzip;q=0, *", false),
        ("gzip;q=0.5, identity", false),
        ("gzip;q=abc", false),
        ("gzip;q=1.5", false),
        ("br, deflate", false),
        ("", false),
    ])
    func acceptEncodingNegotiation(field: String, wantsGzip: Bool) {
        let response = asset.response(to: request("GET", [("Accept-Encoding", field)]))
        #expect(response.status == 200)
        #expect((response.headers["Content-Encoding"] == "gzip") == wantsGzip)
        #expect(response.body == (wantsGzip ? Gzip.compress(script) : script))
    }

    @Test func noAcceptEncodingFieldMeansIdentity() {
        #expect(asset.response(to: request()).headers["Content-Encoding"] == nil)
    }

    @Test func acceptEncodingSpreadOverTwoFieldsCounts() {
        let response = asset.response(to: request("GET", [("Accept-Encoding", "br"), ("Accept-Encoding", "gzip")]))
        #expect(response.headers["Content-Encoding"] == "gzip")
    }

    @Test func incompressibleBytesAreNeverGzipped() {
        let tiny = StaticAsset(bytes: Array("ok".utf8), contentType: "text/plain")
        let response = tiny.response(to: request("GET", [("Accept-Encoding", "gzip")]))
        #expect(response.headers["Content-Encoding"] == nil)
        #expect(response.body == Array("ok".utf8))
        // Nothing to choose between: the response does not vary.
        #expect(response.headers["Vary"] == nil)
    }

    /// `TAG` stands for the asset's identity ETag.
    @Test(arguments: ["TAG", "W/TAG", "\"other\", TAG", "W/\"a,b\",\tTAG ,\"c\"", "*", " * "])
    func matchingIfNoneMatchGives304(template: String) {
        let field = template.replacing("TAG", with: identityTag)
        let response = asset.response(to: request("GET", [("If-None-Match", field)]))
        #expect(response.status == 304)
        #expect(response.body.isEmpty)
        #expect(response.headers["ETag"] == identityTag)
        #expect(response.headers["Cache-Control"] == "public, max-age=300")
        #expect(response.headers["Vary"] == "Accept-Encoding")
        #expect(response.headers["Content-Type"] == nil)
    }

    @Test func ifNoneMatchComparesWithTheSelectedRepresentation() {
        // A tag of the gzip body does not validate an identity response, and the other way round.
        #expect(asset.response(to: request("GET", [("If-None-Match", gzipTag)])).status == 200)
        #expect(asset.response(to: request("GET", [("If-None-Match", identityTag), ("Accept-Encoding", "gzip")])).status == 200)
        let revalidated = asset.response(to: request("GET", [("If-None-Match", gzipTag), ("Accept-Encoding", "gzip")]))
        #expect(revalidated.status == 304)
        #expect(revalidated.headers["ETag"] == gzipTag)
    }

    @Test(arguments: ["\"other\"", "W/\"other\"", "", "\"" + String(repeating: "0", count: 40), "W/ \"x\""])
    func otherTagsGiveTheFullResponse(field: String) {
        let response = asset.response(to: request("GET", [("If-None-Match", field)]))
        #expect(response.status == 200)
        #expect(response.body == script)
    }

    @Test func notModifiedGoesOutWithoutLengthOrBody() {
        let response = asset.response(to: request("GET", [("If-None-Match", identityTag)]))
        let wire = String(decoding: response.serialized(date: "Sun, 06 Nov 1994 08:49:37 GMT", keepAlive: true), as: UTF8.self)
        #expect(wire.hasPrefix("HTTP/1.1 304 Not Modified\r\n"))
        #expect(!wire.lowercased().contains("content-length"))
        #expect(wire.hasSuffix("\r\n\r\n"))
    }

    @Test func headGivesTheLengthOfTheBodyItLeavesOut() {
        let head = request("HEAD", [("Accept-Encoding", "gzip")])
        let response = asset.response(to: head)
        #expect(response.status == 200)
        #expect(response.headers["Content-Encoding"] == "gzip")
        let wire = response.serialized(date: "Sun, 06 Nov 1994 08:49:37 GMT", keepAlive: true, headOnly: true)
        let text = String(decoding: wire, as: UTF8.self)
        #expect(text.contains("\r\nContent-Length: \(Gzip.compress(script).count)\r\n"))
        #expect(text.hasSuffix("\r\n\r\n"))
    }

    @Test func otherMethodsAreRefused() {
        let response = asset.response(to: request("POST"))
        #expect(response.status == 405)
        #expect(response.headers["Allow"] == "GET, HEAD")
    }

    @Test func cachePolicies() {
        let page = StaticAsset(bytes: script, contentType: "text/html; charset=utf-8", cache: .noCache)
        #expect(page.response(to: request()).headers["Cache-Control"] == "no-cache")
        let shortLived = StaticAsset(bytes: script, contentType: "text/plain", cache: .maxAge(60))
        #expect(shortLived.response(to: request()).headers["Cache-Control"] == "public, max-age=60")
    }
}
