/// One app's identity and settings. Names of the JSON keys follow soketi's snake_case app fields.
public struct AppConfig: Sendable, Equatable {
    /// "id": string or integer in JSON; non-empty, [A-Za-z0-9_-] only, ≤ 64 chars.
    public var id: String
    /// "key": what clients connect with; non-empty, [A-Za-z0-9_.-] only (so never a ':').
    public var key: String
    /// "secret": signs and verifies; non-empty.
    public var secret: String
    /// "name": for people reading logs and dashboards; defaults to the id.
    public var name: String
    /// "enabled": a disabled app refuses connections and API calls.
    public var enabled = true
    /// "enable_client_messages"
    public var enableClientMessages = true
    /// "enable_subscription_count"
    public var enableSubscriptionCount = false
    /// "enable_user_authentication": connections must sign in (pusher:signin) within the timeout.
    public var enableUserAuthentication = false
    /// "user_authentication_timeout", given in MILLISECONDS in JSON (soketi's unit), stored as seconds.
    public var userAuthenticationTimeout = 30.0
    /// "activity_timeout", seconds, 1...3600.
    public var activityTimeout = 120
    /// "max_connections": nil = unlimited (-1 or null in JSON).
    public var maxConnections: Int? = nil
    /// "max_client_events_per_sec": 0 refuses every client event.
    public var maxClientEventsPerSecond = 10
    /// "max_subscriptions_per_sec": subscribe requests one connection may make per second, on
    /// average; bursts of ten seconds' worth pass (a client resubscribing after a reconnect).
    /// Unsubscribes need a subscription first, so this bounds subscribe/unsubscribe churn too.
    public var maxSubscriptionsPerSecond = 50
    /// "max_cache_channels": cache channels holding a last event at once; a publish that would
    /// cache one more is refused (403). Bounds the memory of cached events to about this many
    /// times twice `max_event_payload_in_kb`.
    public var maxCacheChannels = 1000
    /// "max_backend_events_per_sec": nil = unlimited (-1 or null in JSON).
    public var maxBackendEventsPerSecond: Int? = nil
    /// "max_event_payload_in_kb", may be fractional.
    public var maxEventPayloadKB = 10.0
    /// "max_event_name_length"
    public var maxEventNameLength = 200
    /// "max_channel_name_length"
    public var maxChannelNameLength = 164
    /// "max_event_channels_at_once"
    public var maxEventChannelsAtOnce = 100
    /// "max_event_batch_size"
    public var maxEventBatchSize = 10
    /// "max_presence_members_per_channel"
    public var maxPresenceMembersPerChannel = 100
    /// "max_presence_member_size_in_kb", may be fractional.
    public var maxPresenceMemberSizeKB = 1.0
    /// "cache_ttl", seconds a cache channel keeps its last event, at most a year (deadlines computed
    /// from it stay far from the limits of the numbers that hold them).
    public var cacheTTL = 1800
    public static let maxCacheTTL = 31_536_000
    /// "allowed_origins": origins browsers may connect from; "*" allows any.
    public var allowedOrigins: [String] = ["*"]
    /// "default_channel": where the seed event API publishes when a request names no channel.
    public var defaultChannel = "general"
    /// The organization that owns the app; set for apps of the organizations store, nil for
    /// apps of the config file (which no seed JWT can reach).
    public var organization: String? = nil
    /// "webhooks": kept as parsed JSON objects (each with an http(s) "url") for the webhook sender to interpret.
    public var webhooks: [JSON] = []

    public init(id: String, key: String, secret: String) {
        self.id = id
        self.key = key
        self.secret = secret
        self.name = id
    }

    public var maxEventPayloadBytes: Int { Self.bytes(kilobytes: maxEventPayloadKB) }

    public var maxPresenceMemberSizeBytes: Int { Self.bytes(kilobytes: maxPresenceMemberSizeKB) }

    /// The app with no config at all: id "1", key "app-key", secret "app-secret", name "default".
    public static let defaultApp: AppConfig = {
        var app = AppConfig(id: "1", key: "app-key", secret: "app-secret")
        app.name = "default"
        return app
    }()

    /// Whole bytes in `kilobytes` KiB. Parsed configs are always in range; the clamping keeps a
    /// hand-set infinity or NaN from trapping in the Int conversion.
    private static func bytes(kilobytes: Double) -> Int {
        let bytes = kilobytes * 1024
        guard bytes > 0 else { return 0 }
        guard bytes < Double(Int.max) else { return Int.max }
        return Int(bytes)
    }
}
