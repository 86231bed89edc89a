import Bridge
import Foundation
import Redis

struct CLIError: Error {
    let message: String
}

/// The command line of `bridge serve`. Every option is a flag, an environment variable
/// (`--max-connections` ⇔ `BRIDGE_MAX_CONNECTIONS`) and a key of the JSON config file
/// (`"max-connections"`). Precedence: flags, then environment, then the file, then defaults.
enum CLI {
    struct Option: Sendable {
        let name: String
        let placeholder: String
        let help: String
        let apply: @Sendable (inout ServeSettings, String) throws(CLIError) -> Void

        var environmentName: String {
            "BRIDGE_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
        }
    }

    static let options: [Option] = [
        Option(name: "host", placeholder: "ADDR", help: "bind address (default 0.0.0.0)") { c, v throws(CLIError) in c.server.host = v },
        Option(name: "port", placeholder: "N", help: "TCP port, 0 for any free one (default 6001)") { c, v throws(CLIError) in
            c.server.port = try integer(v, "port", 0...65535)
        },
        Option(name: "tls-port", placeholder: "N", help: "also serve TLS (wss://, https://) on this port, 0 for any free one (off by default)") { c, v throws(CLIError) in
            c.tls.port = try integer(v, "tls-port", 0...65535)
        },
        Option(name: "tls-host", placeholder: "ADDR", help: "bind address of the TLS listener (default: --host)") { c, v throws(CLIError) in c.tls.host = v },
        Option(name: "tls-cert", placeholder: "FILE", help: "PEM certificate chain for --tls-port (reloaded on SIGHUP)") { c, v throws(CLIError) in
            c.tls.certificatePath = v
        },
        Option(name: "tls-key", placeholder: "FILE", help: "PEM private key for --tls-cert") { c, v throws(CLIError) in c.tls.keyPath = v },
        Option(name: "tls-ticket-key-hours", placeholder: "H", help: "session ticket keys are replaced this often (default 12)") { c, v throws(CLIError) in
            c.tls.ticketKeyHours = try seconds(v, "tls-ticket-key-hours")
        },
        Option(name: "threads", placeholder: "N", help: "event loop threads (default: number of cores)") { c, v throws(CLIError) in
            c.server.threads = try integer(v, "threads", 1...256)
        },
        Option(name: "data-dir", placeholder: "DIR", help: "directory for persistent state (default ./data)") { c, v throws(CLIError) in
            c.server.dataDir = v
        },
        Option(name: "config", placeholder: "FILE", help: "JSON config file; its keys are these option names") { _, _ throws(CLIError) in },
        Option(name: "echo-path", placeholder: "PATH", help: "serve a WebSocket echo endpoint at PATH (off by default)") { c, v throws(CLIError) in
            guard v.hasPrefix("/") else { throw CLIError(message: "--echo-path must start with /, got \"\(v)\"") }
            c.server.echoPath = v
        },
        Option(name: "log-level", placeholder: "LEVEL", help: "debug, info, warn or error (default info)") { c, v throws(CLIError) in
            guard let level = Log.Level(name: v) else {
                throw CLIError(message: "--log-level must be debug, info, warn or error, got \"\(v)\"")
            }
            c.server.logLevel = level
        },
        Option(name: "log-format", placeholder: "FORMAT", help: "text (default) or json: one JSON object per line") { c, v throws(CLIError) in
            guard let format = Log.Format(rawValue: v) else { throw CLIError(message: "--log-format must be text or json, got \"\(v)\"") }
            c.server.logFormat = format
        },
        Option(name: "max-connections", placeholder: "N", help: "open connections before new ones get 503 (default: open-file limit - 100)") { c, v throws(CLIError) in
            c.server.maxConnections = try integer(v, "max-connections", 1...10_000_000)
        },
        Option(name: "max-header-bytes", placeholder: "N", help: "request line + headers limit, else 431 (default 16384)") { c, v throws(CLIError) in
            c.server.http.maxHeadBytes = try integer(v, "max-header-bytes", 256...1 << 20)
        },
        Option(name: "max-headers", placeholder: "N", help: "header count limit, else 431 (default 100)") { c, v throws(CLIError) in
            c.server.http.maxHeaderCount = try integer(v, "max-headers", 1...10_000)
        },
        Option(name: "max-body-bytes", placeholder: "N", help: "default request body limit, else 413 (default 1048576)") { c, v throws(CLIError) in
            c.server.http.maxBodyBytes = try integer(v, "max-body-bytes", 0...1 << 30)
        },
        Option(name: "request-timeout", placeholder: "SECONDS", help: "a request must complete within this, else 408 (default 30)") { c, v throws(CLIError) in
            c.server.requestTimeout = try seconds(v, "request-timeout")
        },
        Option(name: "keepalive-timeout", placeholder: "SECONDS", help: "idle keep-alive connections close after this (default 60)") { c, v throws(CLIError) in
            c.server.keepAliveTimeout = try seconds(v, "keepalive-timeout")
        },
        Option(name: "max-frame-bytes", placeholder: "N", help: "WebSocket frame payload limit, else close 1009 (default 1048576)") { c, v throws(CLIError) in
            c.server.webSocket.maxFrameBytes = try integer(v, "max-frame-bytes", 125...1 << 30)
        },
        Option(name: "max-message-bytes", placeholder: "N", help: "WebSocket message limit, else close 1009 (default 1048576)") { c, v throws(CLIError) in
            c.server.webSocket.maxMessageBytes = try integer(v, "max-message-bytes", 125...1 << 30)
        },
        Option(name: "ws-ping-interval", placeholder: "SECONDS", help: "ping a WebSocket after this much silence (default 60)") { c, v throws(CLIError) in
            c.server.webSocketPingInterval = try seconds(v, "ws-ping-interval")
        },
        Option(name: "ws-pong-timeout", placeholder: "SECONDS", help: "drop a WebSocket that stays silent this long after a ping (default 30)") { c, v throws(CLIError) in
            c.server.webSocketPongTimeout = try seconds(v, "ws-pong-timeout")
        },
        Option(name: "close-timeout", placeholder: "SECONDS", help: "longest wait for the peer after a close (default 5)") { c, v throws(CLIError) in
            c.server.closeTimeout = try seconds(v, "close-timeout")
        },
        Option(name: "shutdown-grace", placeholder: "SECONDS", help: "SIGTERM drains for at most this long (default 10)") { c, v throws(CLIError) in
            c.server.shutdownGrace = try seconds(v, "shutdown-grace")
        },
        Option(name: "max-outbound-bytes", placeholder: "N", help: "unsent bytes per connection before a slow reader is disconnected (default 1048576)") { c, v throws(CLIError) in
            c.server.maxOutboundBytes = try integer(v, "max-outbound-bytes", 1024...1 << 30)
        },
        Option(name: "max-memory-mb", placeholder: "N", help: "above this resident memory, refuse new connections and subscriptions; 0: off (default 80% of RAM)") { c, v throws(CLIError) in
            let megabytes = try integer(v, "max-memory-mb", 0...1 << 30)
            c.server.maxMemoryBytes = megabytes == 0 ? nil : megabytes << 20
        },
        Option(name: "app-id", placeholder: "ID", help: "id of the app served when the config file has no apps (default 1)") { c, v throws(CLIError) in
            c.defaultApp.id = v
            c.defaultAppChanged = true
        },
        Option(name: "app-key", placeholder: "KEY", help: "key of that app (default app-key)") { c, v throws(CLIError) in
            c.defaultApp.key = v
            c.defaultAppChanged = true
        },
        Option(name: "app-secret", placeholder: "SECRET", help: "secret of that app (default app-secret)") { c, v throws(CLIError) in
            c.defaultApp.secret = v
            c.defaultAppChanged = true
        },
        Option(name: "webhook-grace", placeholder: "SECONDS", help: "channel_vacated/member_removed wait this long for a rejoin that cancels them (default 3)") { c, v throws(CLIError) in
            guard let value = Double(v), value >= 0, value <= 60 else {
                throw CLIError(message: "--webhook-grace must be 0 to 60 seconds, got \"\(v)\"")
            }
            c.webhooks.graceSeconds = value
        },
        Option(name: "webhook-fsync", placeholder: "always|MS", help: "outbox fdatasync on every append, or at most every MS milliseconds (default 100)") { c, v throws(CLIError) in
            c.webhooks.fsyncIntervalMs = v == "always" ? nil : try integer(v, "webhook-fsync", 1...60_000)
        },
        Option(name: "webhook-outbox-bytes", placeholder: "N", help: "webhook outbox size bound; past 80% of it client events are refused (default 268435456)") { c, v throws(CLIError) in
            c.webhooks.outboxMaxBytes = try integer(v, "webhook-outbox-bytes", 1 << 16...1 << 40)
        },
        Option(name: "webhook-app-share", placeholder: "PERCENT", help: "one app's webhook backlog may take this much of the outbox bound: past 80% of it its client events are refused, past all of it its webhooks are dropped, counted and logged (default 50)") { c, v throws(CLIError) in
            c.webhooks.appSharePercent = try integer(v, "webhook-app-share", 1...100)
        },
        Option(name: "webhook-dead-letter-bytes", placeholder: "N", help: "dead-letter file bound; past it failed webhooks stay in the outbox until replayed (default 67108864)") { c, v throws(CLIError) in
            c.webhooks.deadLetterMaxBytes = try integer(v, "webhook-dead-letter-bytes", 4096...1 << 40)
        },
        Option(name: "webhook-timeout", placeholder: "SECONDS", help: "one webhook request, connect included (default 10)") { c, v throws(CLIError) in
            c.webhooks.timeoutSeconds = try seconds(v, "webhook-timeout")
        },
        Option(name: "webhook-max-age", placeholder: "SECONDS", help: "retries stop this long after a webhook was created; then it is dead-lettered (default 290)") { c, v throws(CLIError) in
            c.webhooks.maxAgeSeconds = try seconds(v, "webhook-max-age")
        },
        Option(name: "webhook-retry-delay", placeholder: "SECONDS", help: "first retry delay, doubled per attempt (default 1)") { c, v throws(CLIError) in
            c.webhooks.retryDelaySeconds = try seconds(v, "webhook-retry-delay")
        },
        Option(name: "webhook-retry-max-delay", placeholder: "SECONDS", help: "longest delay between two attempts (default 60)") { c, v throws(CLIError) in
            c.webhooks.retryMaxDelaySeconds = try seconds(v, "webhook-retry-max-delay")
        },
        Option(name: "admin-token", placeholder: "TOKEN", help: "turns on the admin API (/admin/…) for Authorization: Bearer TOKEN (default off)") { c, v throws(CLIError) in
            guard v.utf8.count >= 16 else { throw CLIError(message: "--admin-token must be at least 16 characters") }
            c.seed.adminToken = v
        },
        Option(name: "jwt-secret", placeholder: "SECRET", help: "key that signs session JWTs (default: generated into DATA-DIR/jwt.key)") { c, v throws(CLIError) in
            guard v.utf8.count >= 32 else { throw CLIError(message: "--jwt-secret must be at least 32 characters") }
            c.seed.jwtSecret = v
        },
        Option(name: "jwt-ttl", placeholder: "SECONDS", help: "lifetime of a session JWT from POST /api/sessions (default 86400)") { c, v throws(CLIError) in
            c.seed.jwtTTLSeconds = try integer(v, "jwt-ttl", 1...31_536_000)
        },
        Option(name: "seed-events-per-sec", placeholder: "N", help: "events one organization may publish per second through the seed event API (default 100)") { c, v throws(CLIError) in
            c.seed.eventsPerSecond = try integer(v, "seed-events-per-sec", 1...1_000_000)
        },
        Option(name: "adapter", placeholder: "local|redis", help: "local: a single node (default); redis: a cluster through --redis-url") { c, v throws(CLIError) in
            guard let adapter = ClusterOptions.Adapter(rawValue: v) else {
                throw CLIError(message: "--adapter must be local or redis, got \"\(v)\"")
            }
            c.cluster.adapter = adapter
        },
        Option(name: "redis-url", placeholder: "URL", help: "redis://[[user]:password@]host[:port][/db], rediss://… for TLS (default redis://127.0.0.1:6379/0)") { c, v throws(CLIError) in
            do { _ = try RedisURL(v) } catch { throw CLIError(message: "--redis-url: \(error)") }
            c.cluster.redisURL = v
        },
        Option(name: "redis-ca-file", placeholder: "FILE", help: "PEM CA certificates trusted for a rediss:// server besides the system's") { c, v throws(CLIError) in
            c.cluster.redisCAFile = v
        },
        Option(name: "redis-prefix", placeholder: "PREFIX", help: "prefix of every Redis key and channel (default bridge)") { c, v throws(CLIError) in
            guard !v.isEmpty, !v.contains(" ") else { throw CLIError(message: "--redis-prefix must be non-empty without spaces") }
            c.cluster.redisPrefix = v
        },
        Option(name: "cluster-lease", placeholder: "SECONDS", help: "a node silent this long is taken for dead and its clients removed (default 15)") { c, v throws(CLIError) in
            c.cluster.leaseSeconds = try integer(v, "cluster-lease", 3...300)
        },
        Option(name: "cors-origins", placeholder: "LIST", help: "comma-separated origins allowed cross-origin, * for any (default *)") { c, v throws(CLIError) in
            c.server.corsOrigins = v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        },
    ]

    static let usage = """
        bridge: a realtime broker between HTTP backends and WebSocket clients

        usage:
          bridge serve [options]             run the server (see `bridge serve --help`)
          bridge webhooks replay [options]   send the dead-lettered webhooks again (same options as serve)
          bridge webhooks status [options]   the running server's webhook backlog
          bridge webhooks verify …           check a webhook's signature (see `bridge webhooks`)
          bridge orgs create|list|delete|rotate-token …   organizations (see `bridge orgs`)
          bridge apps create|list|delete|rotate-secret …  their applications
          bridge --help                      this text
        """

    static var serveUsage: String {
        var text = "usage: bridge serve [options]\n\nEach option can also be set by an environment variable or a key of the --config file.\n\n"
        for option in options {
            let flag = "  --\(option.name) \(option.placeholder)"
            text += flag.padding(toLength: max(flag.count + 2, 32), withPad: " ", startingAt: 0)
            text += option.help + "  [\(option.environmentName)]\n"
        }
        text += "  -h, --help                    this text\n"
        return text
    }

    static func environment() -> [String: String] {
        ProcessInfo.processInfo.environment
    }

    /// Returns nil when help was asked for.
    static func parseServe(_ arguments: [String], environment: [String: String]) throws(CLIError) -> ServeSettings? {
        var flags: [(Option, String)] = []
        var configPath = environment["BRIDGE_CONFIG"]
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "-h" || argument == "--help" { return nil }
            guard argument.hasPrefix("--") else { throw CLIError(message: "unexpected argument \"\(argument)\"") }
            var name = String(argument.dropFirst(2))
            var value: String?
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard let option = options.first(where: { $0.name == name }) else {
                throw CLIError(message: "unknown option --\(name) (see `bridge serve --help`)")
            }
            if value == nil {
                guard index < arguments.count else { throw CLIError(message: "--\(name) needs a value") }
                value = arguments[index]
                index += 1
            }
            if name == "config" { configPath = value }
            flags.append((option, value!))
        }

        var settings = ServeSettings()
        var fileApps: [AppConfig]?
        if let configPath {
            let file = try readConfigFile(configPath)
            fileApps = file.apps
            settings.tls.certificates = file.tlsCertificates
            for (option, value) in file.settings { try option.apply(&settings, value) }
        }
        for option in options {
            if let value = environment[option.environmentName] {
                do { try option.apply(&settings, value) } catch {
                    throw CLIError(message: "\(option.environmentName): \(error.message)")
                }
            }
        }
        for (option, value) in flags { try option.apply(&settings, value) }

        if let fileApps {
            guard !settings.defaultAppChanged else {
                throw CLIError(message: "--app-id, --app-key and --app-secret cannot be combined with \"apps\" in the config file")
            }
            settings.apps = fileApps
        } else {
            let app = settings.defaultApp
            guard !app.id.isEmpty, !app.key.isEmpty, !app.secret.isEmpty else {
                throw CLIError(message: "--app-id, --app-key and --app-secret must not be empty")
            }
            settings.apps = [app]
        }
        _ = try WebhookSettings.apps(settings.apps)
        settings.server.tls = try settings.tls.settings()
        // Both listeners use SO_REUSEPORT: on one port they would share connections at random.
        if let tls = settings.server.tls, tls.port != 0, tls.port == settings.server.port {
            throw CLIError(message: "--tls-port must differ from --port (\(tls.port))")
        }
        try settings.cluster.check()
        return settings
    }

    /// Reads the JSON config file: the option settings, and the apps when it has an "apps" key.
    /// Unknown keys are refused.
    static func readConfigFile(_ path: String) throws(CLIError)
        -> (settings: [(Option, String)], apps: [AppConfig]?, tlsCertificates: [TLSCertificateFiles]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError(message: "cannot read config file \(path)")
        }
        let json: JSON
        do {
            json = try JSONParser.parse(Array(data))
        } catch {
            throw CLIError(message: "config file \(path) is not valid JSON: \(error)")
        }
        guard let object = json.objectValue else {
            throw CLIError(message: "config file \(path) is not a JSON object")
        }
        var settings: [(Option, String)] = []
        var apps: [AppConfig]?
        var tlsCertificates: [TLSCertificateFiles] = []
        for member in object.members {
            if member.key == "tls-certificates" {
                tlsCertificates = try parseTLSCertificates(member.value, path: path)
                continue
            }
            if member.key == "apps" {
                do { apps = try AppConfig.parseApps(member.value) } catch {
                    throw CLIError(message: "config file \(path): \(error.message)")
                }
                continue
            }
            guard let option = options.first(where: { $0.name == member.key }), member.key != "config" else {
                throw CLIError(message: "config file \(path): unknown key \"\(member.key)\"")
            }
            switch member.value {
            case .string(let text): settings.append((option, text))
            case .number(let text): settings.append((option, text))
            case .bool(let flag): settings.append((option, flag ? "true" : "false"))
            case .array(let list) where list.allSatisfy({ $0.stringValue != nil }):
                settings.append((option, list.compactMap(\.stringValue).joined(separator: ",")))
            default: throw CLIError(message: "config file \(path): \"\(member.key)\" must be a string or a number")
            }
        }
        return (settings, apps, tlsCertificates)
    }

    /// `"tls-certificates": [{"hostnames": ["chat.example.com", "*.example.org"], "cert": FILE, "key": FILE}, …]`
    private static func parseTLSCertificates(_ value: JSON, path: String) throws(CLIError) -> [TLSCertificateFiles] {
        guard let list = value.arrayValue else { throw CLIError(message: "config file \(path): \"tls-certificates\" must be an array") }
        var certificates: [TLSCertificateFiles] = []
        for (index, entry) in list.enumerated() {
            let field = "config file \(path): tls-certificates[\(index)]"
            guard let object = entry.objectValue else { throw CLIError(message: "\(field) must be an object") }
            for member in object.members where !["hostnames", "cert", "key"].contains(member.key) {
                throw CLIError(message: "\(field): unknown key \"\(member.key)\"")
            }
            guard let names = object["hostnames"]?.arrayValue, !names.isEmpty,
                  case let hostnames = names.compactMap(\.stringValue), hostnames.count == names.count,
                  hostnames.allSatisfy({ !$0.isEmpty && !$0.contains(" ") }) else {
                throw CLIError(message: "\(field).hostnames must be a non-empty array of host names")
            }
            guard let cert = object["cert"]?.stringValue, let key = object["key"]?.stringValue else {
                throw CLIError(message: "\(field) needs \"cert\" and \"key\" (PEM file paths)")
            }
            certificates.append(TLSCertificateFiles(hostnames: hostnames, certificatePath: cert, keyPath: key))
        }
        return certificates
    }

    static func integer(_ text: String, _ name: String, _ range: ClosedRange<Int>) throws(CLIError) -> Int {
        guard let value = Int(text), range.contains(value) else {
            throw CLIError(message: "--\(name) must be an integer in \(range.lowerBound)...\(range.upperBound), got \"\(text)\"")
        }
        return value
    }

    static func seconds(_ text: String, _ name: String) throws(CLIError) -> Double {
        guard let value = Double(text), value > 0, value <= 86_400 * 365 else {
            throw CLIError(message: "--\(name) must be a positive number of seconds, got \"\(text)\"")
        }
        return value
    }

    /// Whether `host` only reaches this machine: 127.0.0.0/8, ::1 or localhost.
    static func isLoopback(host: String) -> Bool {
        if host.lowercased() == "localhost" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, host, &v6) == 1 else { return false }
        return withUnsafeBytes(of: &v6) { $0.elementsEqual([UInt8](repeating: 0, count: 15) + [1]) }
    }

    /// One `bridge:` line on stderr, then exit (2: bad usage or configuration).
    static func fail(_ message: String, status: Int32 = 2) -> Never {
        FileHandle.standardError.write(Data("bridge: \(message)\n".utf8))
        exit(status)
    }
}
