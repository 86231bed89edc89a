/// One webhook POST to an app backend: the exact body bytes, signed with the
/// app's secret (PROTOCOL.md §1.16).
public struct WebhookRequest: Sendable {
    /// The backend's webhook endpoint, `http://` or `https://`.
    public var url: String
    /// The JSON payload, `{"time_ms":…,"events":[…]}`, exactly as it goes on the wire.
    public var body: [UInt8]
    /// Sent as `X-Pusher-Key`; receivers use it to pick the secret.
    public var appKey: String
    /// Keys the HMAC-SHA256 in `X-Pusher-Signature`; never sent.
    public var secret: String

    public init(url: String, body: [UInt8], appKey: String, secret: String) {
        self.url = url
        self.body = body
        self.appKey = appKey
        self.secret = secret
    }

    /// The request headers. The Ruby library rejects any media type but exactly
    /// `application/json`, so no charset parameter (PROTOCOL.md §1.16).
    public func headers() -> [(String, String)] {
        [
            ("Content-Type", "application/json"),
            ("X-Pusher-Key", appKey),
            ("X-Pusher-Signature", WebhookSignature.sign(body: body, secret: secret)),
            ("User-Agent", "Bridge-Webhooks/0.1"),
        ]
    }

    /// POSTs the webhook on the calling thread, waiting at most `timeoutMs`
    /// milliseconds in all, and returns the HTTP status the backend answered.
    public func send(timeoutMs: Int) -> Result<Int, CurlError> {
        do {
            let easy = try CurlEasy()
            try easy.setURL(url)
            // Without an empty Expect, curl sends `Expect: 100-continue` for bodies over
            // 1 MiB and waits up to a second for a 100 that many backends never send.
            try easy.setHeaders(headers() + [("Expect", "")])
            try easy.setPostBody(body)
            try easy.setConnectTimeout(milliseconds: timeoutMs)
            try easy.setTimeout(milliseconds: timeoutMs)
            return easy.perform()
        } catch {
            return .failure(error)
        }
    }
}
