import Testing
@testable import Bridge

private func upgradeRequest(method: String = "GET", version: HTTPRequest.Version = .http1_1,
                            _ fields: [(String, String)]? = nil) -> HTTPRequest {
    let headers = fields ?? [
        ("Host", "server.example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Origin", "http://example.com"),
        ("Sec-WebSocket-Version", "13"),
    ]
    return HTTPRequest(method: method, target: "/app/app-key?protocol=7", path: "/app/app-key",
                       version: version, headers: HTTPHeaders(headers.map { (name: $0.0, value: $0.1) }))
}

private func replacing(_ name: String, with value: String?) -> [(String, String)] {
    var fields: [(String, String)] = [
        ("Host", "server.example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ]
    fields.removeAll { $0.0 == name }
    if let value { fields.append((name, value)) }
    return fields
}

private func rejection(_ request: HTTPRequest) -> HandshakeRejection? {
    if case .failure(let rejection) = WebSocketHandshake.validate(request) { return rejection }
    return nil
}

struct HandshakeTests {
    /// RFC 6455 §1.3.
    @Test func computesTheAcceptValueOfRFC6455Section1_3() {
        #expect(WebSocketHandshake.acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test func acceptsTheRequestOfRFC6455Section1_2() throws {
        let accept = try WebSocketHandshake.validate(upgradeRequest()).get()
        #expect(accept == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test func writesTheExact101Response() {
        let response = WebSocketHandshake.switchingProtocolsResponse(accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(String(decoding: response, as: UTF8.self) ==
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
    }

    /// RFC 6455 §9.1: an offered extension is declined by leaving it out of the response.
    @Test func declinesPermessageDeflateByOmission() throws {
        let request = upgradeRequest(replacing("Sec-WebSocket-Extensions", with: "permessage-deflate; client_max_window_bits"))
        let accept = try WebSocketHandshake.validate(request).get()
        let response = String(decoding: WebSocketHandshake.switchingProtocolsResponse(accept: accept), as: UTF8.self)
        #expect(!response.lowercased().contains("sec-websocket-extensions"))
        #expect(!response.lowercased().contains("deflate"))
    }

    @Test func tokensAreCaseInsensitiveAndMayBeInLists() {
        var fields = replacing("Connection", with: "keep-alive, UPGRADE")
        fields = fields.filter { $0.0 != "Upgrade" } + [("Upgrade", "WebSocket")]
        #expect((try? WebSocketHandshake.validate(upgradeRequest(fields)).get()) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test func rejectsAMethodOtherThanGET() {
        let result = rejection(upgradeRequest(method: "POST"))
        #expect(result?.status == 405)
        #expect(result?.headers.contains { $0 == ("Allow", "GET") } == true)
    }

    @Test func rejectsHTTP1_0() {
        #expect(rejection(upgradeRequest(version: .http1_0))?.status == 400)
    }

    @Test(arguments: [
        replacing("Upgrade", with: nil),
        replacing("Upgrade", with: "h2c"),
        replacing("Connection", with: nil),
        replacing("Connection", with: "keep-alive"),
    ])
    func rejectsARequestThatIsNotAnUpgradeWith426(fields: [(String, String)]) {
        let result = rejection(upgradeRequest(fields))
        #expect(result?.status == 426)
        #expect(result?.headers.contains { $0 == ("Upgrade", "websocket") } == true)
    }

    /// RFC 6455 §4.4: 426 naming the version we speak.
    @Test(arguments: [nil, "8", "12", "14", ""] as [String?])
    func rejectsOtherVersionsWith426(version: String?) {
        let result = rejection(upgradeRequest(replacing("Sec-WebSocket-Version", with: version)))
        #expect(result?.status == 426)
        #expect(result?.headers.contains { $0 == ("Sec-WebSocket-Version", "13") } == true)
    }

    @Test(arguments: [
        nil,
        "",
        "dGhlIHNhbXBsZSBub25jZQ",          // padding missing
        "dGhlIHNhbXBsZSBub25j",            // 15 bytes
        "dGhlIHNhbXBsZSBub25jZTEx",        // 18 bytes
        "AAAAAAAAAAAAAAAAAAAAAAA=",        // 17 bytes
        "dGhlIHNhbXBsZSBub25jZQ==x",
        "dGhlIHNhbXBsZSBub25j ZQ==",
        "dGhlIHNhbXBsZSBub25jZQ=!",
        "not base64 at all!!!!!!!",
    ] as [String?])
    func rejectsAKeyThatIsNotBase64Of16Bytes(key: String?) {
        #expect(rejection(upgradeRequest(replacing("Sec-WebSocket-Key", with: key)))?.status == 400)
    }

    @Test func rejectsTwoKeys() {
        let fields = replacing("Sec-WebSocket-Key", with: "dGhlIHNhbXBsZSBub25jZQ==") + [("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA==")]
        #expect(rejection(upgradeRequest(fields))?.status == 400)
    }

    @Test func acceptsAnyValidNonce() throws {
        let key = Base64.encode((0..<16).map { UInt8($0 * 17) })
        let accept = try WebSocketHandshake.validate(upgradeRequest(replacing("Sec-WebSocket-Key", with: key))).get()
        #expect(accept == WebSocketHandshake.acceptValue(forKey: key))
        #expect(Base64.decode(accept)?.count == 20)
    }
}
