import Bridge

/// What `bridge serve` runs with: the transport settings and the apps.
struct ServeSettings {
    var server = ServerConfig()
    var apps: [AppConfig] = []
    /// Set by `--app-id`/`--app-key`/`--app-secret`, used when the config file names no apps.
    var defaultApp = AppConfig.defaultApp
    var defaultAppChanged = false
    var webhooks = WebhookOptions()
    var seed = SeedOptions()
    var cluster = ClusterOptions()
    var tls = TLSOptions()
}

/// The TLS listener, as the options give it; `settings` checks that they go together.
struct TLSOptions {
    var port: Int?
    var host: String?
    var certificatePath: String?
    var keyPath: String?
    var ticketKeyHours = 12.0
    /// Certificates by host name (SNI), from the config file's "tls-certificates".
    var certificates: [TLSCertificateFiles] = []

    func settings() throws(CLIError) -> TLSSettings? {
        guard let port else {
            guard certificatePath == nil, keyPath == nil, host == nil, certificates.isEmpty else {
                throw CLIError(message: "--tls-cert, --tls-key, --tls-host and \"tls-certificates\" need --tls-port")
            }
            return nil
        }
        guard let certificatePath, let keyPath else {
            throw CLIError(message: "--tls-port needs --tls-cert (PEM certificate chain) and --tls-key (PEM private key)")
        }
        var settings = TLSSettings(host: host, port: port,
                                   defaultCertificate: TLSCertificateFiles(certificatePath: certificatePath, keyPath: keyPath),
                                   certificates: certificates)
        settings.ticketKeyLifetimeSeconds = ticketKeyHours * 3600
        return settings
    }
}

/// The seed and admin APIs' settings.
struct SeedOptions {
    /// Turns the admin API on; nil leaves it off.
    var adminToken: String?
    /// Signs session JWTs; nil: the key in `<data-dir>/jwt.key`, generated on first start.
    var jwtSecret: String?
    var jwtTTLSeconds = 86_400
    var eventsPerSecond = 100
}

/// The webhook pipeline's knobs (the per-target ones live in each app's `webhooks` list).
struct WebhookOptions {
    var graceSeconds = 3.0
    /// Nil: fdatasync on every append; else at most every this many milliseconds.
    var fsyncIntervalMs: Int? = 100
    var outboxMaxBytes = 256 << 20
    /// The percentage of `outboxMaxBytes` one app's backlog may take.
    var appSharePercent = 50
    var deadLetterMaxBytes = 64 << 20
    var timeoutSeconds = 10.0
    var maxAgeSeconds = 290.0
    var retryDelaySeconds = 1.0
    var retryMaxDelaySeconds = 60.0
}
