import Testing
import Webhooks

/// `WebhookRequest.send` against a real HTTP/1.1 receiver on loopback.
@Suite struct WebhookDeliveryTests {
    static let body = Array(#"{"time_ms":1327078148132,"events":[{"name":"channel_occupied","channel":"my-channel"}]}"#.utf8)

    @Test func deliversSignedPost() throws {
        let receiver = try TestReceiver(replies: [.status(200)])
        defer { receiver.stop() }
        let request = WebhookRequest(url: receiver.url, body: Self.body, appKey: "app-key", secret: "app-secret")

        #expect(request.send(timeoutMs: 5_000) == .success(200))

        let received = receiver.waitForRequests(count: 1)
        #expect(received.count == 1)
        let got = try #require(received.first)
        #expect(got.method == "POST")
        #expect(got.target == "/webhooks")
        #expect(got.version == "HTTP/1.1")
        #expect(got.values(of: "Content-Type") == ["application/json"])
        #expect(got.values(of: "X-Pusher-Key") == ["app-key"])
        #expect(got.values(of: "User-Agent") == ["Bridge-Webhooks/0.1"])
        #expect(got.values(of: "Content-Length") == ["\(Self.body.count)"])
        #expect(got.body == Self.body)
        let signatures = got.values(of: "X-Pusher-Signature")
        #expect(signatures.count == 1)
        let signature = try #require(signatures.first)
        #expect(WebhookSignature.isValid(body: got.body, secret: "app-secret", signature: signature))
        #expect(!WebhookSignature.isValid(body: got.body, secret: "other-secret", signature: signature))
    }

    @Test func returnsTheStatusTheReceiverAnswered() throws {
        let receiver = try TestReceiver(replies: [.status(500), .status(200), .status(404)])
        defer { receiver.stop() }
        let request = WebhookRequest(url: receiver.url, body: Self.body, appKey: "app-key", secret: "app-secret")

        #expect(request.send(timeoutMs: 5_000) == .success(500))
        #expect(request.send(timeoutMs: 5_000) == .success(200))
        #expect(request.send(timeoutMs: 5_000) == .success(404))
        #expect(receiver.waitForRequests(count: 3).map(\.body) == [Self.body, Self.body, Self.body])
    }

    // Every byte value, NULs included, past the 1 MiB size at which curl would
    // otherwise send `Expect: 100-continue` and wait for an interim 100.
    @Test func largeBinaryBodyArrivesUnchangedWithoutExpect() throws {
        let receiver = try TestReceiver(replies: [.status(204, body: [])])
        defer { receiver.stop() }
        let body = (0..<1_100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let request = WebhookRequest(url: receiver.url, body: body, appKey: "app-key", secret: "app-secret")

        #expect(request.send(timeoutMs: 5_000) == .success(204))

        let got = try #require(receiver.waitForRequests(count: 1).first)
        #expect(got.body.count == body.count)
        let unchanged = got.body == body
        #expect(unchanged)
        #expect(got.values(of: "Expect").isEmpty)
        let signature = try #require(got.values(of: "X-Pusher-Signature").first)
        #expect(WebhookSignature.isValid(body: got.body, secret: "app-secret", signature: signature))
    }

    @Test func emptyBodyIsPostedWithZeroLength() throws {
        let receiver = try TestReceiver(replies: [.status(200)])
        defer { receiver.stop() }
        let request = WebhookRequest(url: receiver.url, body: [], appKey: "app-key", secret: "app-secret")

        #expect(request.send(timeoutMs: 5_000) == .success(200))

        let got = try #require(receiver.waitForRequests(count: 1).first)
        #expect(got.method == "POST")
        #expect(got.values(of: "Content-Length") == ["0"])
        #expect(got.body.isEmpty)
    }

    // The response body is capped in memory, but the transfer must still complete.
    @Test func largeResponseBodyStillGivesTheStatus() throws {
        let receiver = try TestReceiver(replies: [.status(200, body: [UInt8](repeating: 0x61, count: 200_000))])
        defer { receiver.stop() }
        let request = WebhookRequest(url: receiver.url, body: Self.body, appKey: "app-key", secret: "app-secret")

        #expect(request.send(timeoutMs: 5_000) == .success(200))
    }

    @Test func connectionRefusedIsRetryable() throws {
        let result = try TestReceiver.withClosedPort { port in
            WebhookRequest(url: "http://127.0.0.1:\(port)/webhooks", body: Self.body, appKey: "app-key", secret: "app-secret")
                .send(timeoutMs: 5_000)
        }
        guard case .failure(let error) = result else {
            Issue.record("expected a failure, got \(result)")
            return
        }
        #expect(error.code == 7) // CURLE_COULDNT_CONNECT
        #expect(error.isRetryable)
        #expect(!error.message.isEmpty)
    }

    @Test func silentReceiverTimesOutRetryably() throws {
        let receiver = try TestReceiver(replies: [.silence])
        defer { receiver.stop() }
        let request = WebhookRequest(url: receiver.url, body: Self.body, appKey: "app-key", secret: "app-secret")

        let result = request.send(timeoutMs: 300)

        guard case .failure(let error) = result else {
            Issue.record("expected a failure, got \(result)")
            return
        }
        #expect(error.code == 28) // CURLE_OPERATION_TIMEDOUT
        #expect(error.isRetryable)
        #expect(receiver.waitForRequests(count: 1).first?.body == Self.body)
    }

    // 1 is CURLE_UNSUPPORTED_PROTOCOL (file:// is refused by the http,https allow-list), 3 CURLE_URL_MALFORMAT.
    @Test(arguments: [("notascheme://x", Int32(1)), ("file:///etc/passwd", 1), ("http://[::1", 3)])
    func badURLIsNotRetryable(url: String, code: Int32) {
        let result = WebhookRequest(url: url, body: Self.body, appKey: "app-key", secret: "app-secret")
            .send(timeoutMs: 5_000)
        guard case .failure(let error) = result else {
            Issue.record("expected a failure, got \(result)")
            return
        }
        #expect(error.code == code, "\(error)")
        #expect(!error.isRetryable, "\(error)")
    }

    @Test func headersAreExactlyTheFourPusherOnes() {
        let request = WebhookRequest(url: "http://127.0.0.1/", body: Self.body, appKey: "app-key", secret: "app-secret")
        let headers = request.headers()
        #expect(headers.map(\.0) == ["Content-Type", "X-Pusher-Key", "X-Pusher-Signature", "User-Agent"])
        #expect(headers.map(\.1) == [
            "application/json",
            "app-key",
            "e9ea3bd210dd97133a5b221229cbee6d5cf2f42f34877c7d3ae84be2353449ba",
            "Bridge-Webhooks/0.1",
        ])
    }
}
