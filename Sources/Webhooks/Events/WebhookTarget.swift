/// Where one app's webhooks go and which of them (the entries of an app's `webhooks` list,
/// soketi's shape: `{url, event_types, filter, headers, batching}`, plus `time_ms` and the TLS keys).
public struct WebhookTarget: Sendable, Equatable {
    public var url: String
    /// The event kinds this target wants; all of them when empty.
    public var eventTypes: Set<WebhookEvent.Kind> = []
    /// `filter.channel_name_starts_with` / `filter.channel_name_ends_with`.
    public var channelPrefix: String?
    public var channelSuffix: String?
    /// Sent with every request; they never replace the signature headers.
    public var headers: [String: String] = [:]
    /// Nil: one event per webhook. Else events are collected for up to `windowMs` or `maxEvents`.
    public var batching: Batching?
    /// Pusher's `time_ms` is the creation time, which the Python library rejects after 5 minutes;
    /// a target may ask for the delivery time instead (then a late webhook still verifies, but its
    /// `time_ms` no longer tells when the event happened).
    public var stampTimeAtDelivery = false
    /// How an `https://` receiver's certificate is checked (`tls_ca_file`, `tls_verify`).
    public var tls = WebhookTLS.systemTrust

    public struct Batching: Sendable, Equatable {
        public var windowMs: Int
        public var maxEvents: Int

        public init(windowMs: Int = 50, maxEvents: Int = 100) {
            self.windowMs = windowMs
            self.maxEvents = maxEvents
        }
    }

    public init(url: String) {
        self.url = url
    }

    public func accepts(_ event: WebhookEvent) -> Bool {
        (eventTypes.isEmpty || eventTypes.contains(event.kind))
            && (channelPrefix.map { event.channel.hasPrefix($0) } ?? true)
            && (channelSuffix.map { event.channel.hasSuffix($0) } ?? true)
    }
}

/// An app as the webhook side sees it: who signs, and where its events go.
public struct WebhookApp: Sendable, Equatable {
    public var id: String
    public var key: String
    public var secret: String
    public var targets: [WebhookTarget]

    public init(id: String, key: String, secret: String, targets: [WebhookTarget]) {
        self.id = id
        self.key = key
        self.secret = secret
        self.targets = targets
    }
}
