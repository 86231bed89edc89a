@testable import Bridge
import Support
import Testing

@Suite struct APISignatureTests {
    // The worked example of the HTTP API reference (PROTOCOL.md §1.15), recomputed.
    static let body = Array(#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#.utf8)
    static let key = "278d425bdf160c739803"
    static let secret = "7ad3773142a6692b25b8"
    static let timestamp = 1353088179

    static func request(query: [(String, String)], body: [UInt8] = body, path: String = "/apps/3/events") -> HTTPRequest {
        HTTPRequest(method: "POST", target: path, path: path, query: query.map { (name: $0.0, value: $0.1) }, body: body)
    }

    static var signedQuery: [(String, String)] {
        [("auth_key", key), ("auth_timestamp", String(timestamp)), ("auth_version", "1.0"),
         ("body_md5", "ec365a775a4cd0599faeb73354201b6f"),
         ("auth_signature", "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c")]
    }

    @Test func bodyMD5OfTheDocumentedExample() {
        #expect(Digest.hex(Digest.md5(Self.body)) == "ec365a775a4cd0599faeb73354201b6f")
    }

    @Test func stringToSignOfTheDocumentedExample() {
        let text = APISignature.stringToSign(method: "POST", path: "/apps/3/events", query: Self.signedQuery.map { (name: $0.0, value: $0.1) })
        #expect(text == "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f")
    }

    @Test func documentedRequestVerifiesWithTheClockPinned() {
        #expect(APISignature.verify(Self.request(query: Self.signedQuery), key: Self.key, secret: Self.secret, now: Self.timestamp) == nil)
        #expect(APISignature.verify(Self.request(query: Self.signedQuery), key: Self.key, secret: Self.secret, now: Self.timestamp + 600) == nil)
    }

    @Test func timestampOutsideTheWindowIsRefused() {
        let failure = APISignature.verify(Self.request(query: Self.signedQuery), key: Self.key, secret: Self.secret, now: Self.timestamp + 601)
        #expect(failure?.hasPrefix("Timestamp expired") == true)
    }

    @Test(arguments: [Int.min, Int.min + 1, Int.max, -1, 0])
    func timestampsAtTheEndsOfIntAreRefusedWithoutOverflow(given: Int) {
        let query = Self.signedQuery.map { $0.0 == "auth_timestamp" ? ($0.0, String(given)) : $0 }
        for now in [Self.timestamp, Int.max - 600, Int.min + 600] where !(now - 600...now + 600).contains(given) {
            let failure = APISignature.verify(Self.request(query: query), key: Self.key, secret: Self.secret, now: now)
            #expect(failure?.hasPrefix("Timestamp expired") == true)
        }
    }

    @Test func tamperedBodyFailsTheMD5Check() {
        var body = Self.body
        body[10] = UInt8(ascii: "x")
        let failure = APISignature.verify(Self.request(query: Self.signedQuery, body: body), key: Self.key, secret: Self.secret, now: Self.timestamp)
        #expect(failure?.hasPrefix("body_md5") == true)
    }

    @Test func wrongKeyWrongSecretAndMissingParametersAreRefused() {
        #expect(APISignature.verify(Self.request(query: Self.signedQuery), key: "other", secret: Self.secret, now: Self.timestamp)?.contains("auth_key") == true)
        #expect(APISignature.verify(Self.request(query: Self.signedQuery), key: Self.key, secret: "wrong", now: Self.timestamp)?.hasPrefix("Invalid signature") == true)
        let unsigned = Self.signedQuery.filter { $0.0 != "auth_signature" }
        #expect(APISignature.verify(Self.request(query: unsigned), key: Self.key, secret: Self.secret, now: Self.timestamp)?.hasPrefix("Missing") == true)
    }

    @Test func queryIsSortedLowercasedAndUnescaped() {
        // "given auth_key foo and Name Something else, you get auth_key=foo&name=Something else"
        let text = APISignature.stringToSign(method: "GET", path: "/apps/3/channels",
                                             query: [(name: "Name", value: "Something else"), (name: "auth_key", value: "foo"),
                                                     (name: "auth_signature", value: "ignored")])
        #expect(text == "GET\n/apps/3/channels\nauth_key=foo&name=Something else")
    }

    @Test func socketIDShape() {
        #expect(PusherAPI.isSocketID("123.456"))
        #expect(!PusherAPI.isSocketID("123."))
        #expect(!PusherAPI.isSocketID("12a.4"))
        #expect(!PusherAPI.isSocketID("1.2.3"))
    }
}
