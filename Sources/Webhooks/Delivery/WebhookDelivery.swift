import Support

/// One webhook to deliver to one target.
public struct WebhookDelivery: Sendable {
    /// Stable delivery id, sent as `X-Bridge-Webhook-Id` on every attempt so receivers can de-duplicate.
    public var id: String
    /// Target name, for per-target in-flight caps and logs.
    public var target: String
    public var url: String
    /// Sent as `X-Pusher-Key`.
    public var appKey: String
    /// HMAC key for `X-Pusher-Signature`; never sent.
    public var secret: String
    /// The JSON array text of the events, e.g. `[{"name":"channel_occupied","channel":"c"}]`.
    public var eventsJSON: [UInt8]
    /// Unix ms when the webhook was created.
    public var createdAtMs: Int64
    /// false: the body's `time_ms` is `createdAtMs` (Pusher's meaning); true: it is the time of each attempt.
    public var stampTimeAtDelivery: Bool
    /// The target's configured headers. They never replace the headers the dispatcher sets itself.
    public var extraHeaders: [(String, String)]
    /// How the receiver's certificate is checked, when the URL is `https://`.
    public var tls: WebhookTLS

    public init(id: String, target: String, url: String, appKey: String, secret: String, eventsJSON: [UInt8],
                createdAtMs: Int64, stampTimeAtDelivery: Bool, extraHeaders: [(String, String)],
                tls: WebhookTLS = .systemTrust) {
        self.id = id
        self.target = target
        self.url = url
        self.appKey = appKey
        self.secret = secret
        self.eventsJSON = eventsJSON
        self.createdAtMs = createdAtMs
        self.stampTimeAtDelivery = stampTimeAtDelivery
        self.extraHeaders = extraHeaders
        self.tls = tls
    }

    /// `{"time_ms":T,"events":<eventsJSON>}` exactly as sent for an attempt at `nowMs`.
    public func body(nowMs: Int64) -> [UInt8] {
        let timeMs = stampTimeAtDelivery ? nowMs : createdAtMs
        return JSONWriter.object(reservingCapacity: 32 + eventsJSON.count) {
            $0.field("time_ms", timeMs)
            $0.rawField("events", eventsJSON)
        }.bytes
    }
}

extension WebhookDelivery {
    /// Headers the dispatcher owns; an extra header with one of these names is dropped.
    /// Host, Content-Length and Transfer-Encoding belong to curl, Connection to the connection cache.
    static let reservedHeaderNames: Set<String> = [
        "content-type", "x-pusher-key", "x-pusher-signature", "user-agent",
        "x-bridge-webhook-id", "x-bridge-webhook-attempt", "expect",
        "host", "content-length", "transfer-encoding", "connection",
    ]

    /// The header lines for one attempt, in curl's `CURLOPT_HTTPHEADER` form:
    /// `Name: value`; `Name:` removes a header curl would add itself; `Name;` sends it empty.
    func headerLines(body: [UInt8], attempt: Int, userAgent: String) -> [String] {
        var lines = [
            // Exactly this: the Ruby library rejects any other media type, charset included (PROTOCOL.md §1.16).
            "Content-Type: application/json",
            "X-Pusher-Key: \(appKey)",
            "X-Pusher-Signature: \(WebhookSignature.sign(body: body, secret: secret))",
            "User-Agent: \(userAgent)",
            "X-Bridge-Webhook-Id: \(id)",
            "X-Bridge-Webhook-Attempt: \(attempt)",
        ]
        let extras = extraHeaders.filter { Self.isSafeExtraHeader(name: $0.0, value: $0.1) }
        for (name, value) in extras {
            lines.append(value.isEmpty ? "\(name);" : "\(name): \(value)")
        }
        // Without these curl adds `Accept: */*` (unless the target configured an
        // Accept) and, for bodies over 1 MiB, `Expect: 100-continue`, then waits
        // up to a second for a 100 that many backends never send.
        if !extras.contains(where: { $0.0.lowercased() == "accept" }) {
            lines.append("Accept:")
        }
        lines.append("Expect:")
        return lines
    }

    /// A configured header goes out only if it cannot replace ours or smuggle in extra lines.
    static func isSafeExtraHeader(name: String, value: String) -> Bool {
        let isToken = !name.isEmpty && name.utf8.allSatisfy { byte in
            byte > 0x20 && byte < 0x7f && byte != UInt8(ascii: ":") && byte != UInt8(ascii: ";")
        }
        let isCleanValue = !value.utf8.contains { $0 == 0x0d || $0 == 0x0a || $0 == 0 }
        return isToken && isCleanValue && !reservedHeaderNames.contains(name.lowercased())
    }
}
