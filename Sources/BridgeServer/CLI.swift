import Bridge
import Foundation

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
        let apply: @Sendable (inout ServerConfig, String) throws(CLIError) -> Void

        var environmentName: String {
            "BRIDGE_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
        }
    }

    static let options: [Option] = [
        Option(name: "host", placeholder: "ADDR", help: "bind address (default 0.0.0.0)") { c, v throws(CLIError) in c.host = v },
        Option(name: "port", placeholder: "N", help: "TCP port, 0 for any free one (default 6001)") { c, v throws(CLIError) in
            c.port = try integer(v, "port", 0...65535)
        },
        Option(name: "threads", placeholder: "N", help: "event loop threads (default: number of cores)") { c, v throws(CLIError) in
            c.threads = try integer(v, "threads", 1...256)
        },
        Option(name: "data-dir", placeholder: "DIR", help: "directory for persistent state (default ./data)") { c, v throws(CLIError) in
            c.dataDir = v
        },
        Option(name: "config", placeholder: "FILE", help: "JSON config file; its keys are these option names") { _, _ throws(CLIError) in },
        Option(name: "echo-path", placeholder: "PATH", help: "serve a WebSocket echo endpoint at PATH (off by default)") { c, v throws(CLIError) in
            guard v.hasPrefix("/") else { throw CLIError(message: "--echo-path must start with /, got \"\(v)\"") }
            c.echoPath = v
        },
        Option(name: "log-level", placeholder: "LEVEL", help: "debug, info, warn or error (default info)") { c, v throws(CLIError) in
            guard let level = Log.Level(name: v) else {
                throw CLIError(message: "--log-level must be debug, info, warn or error, got \"\(v)\"")
            }
            c.logLevel = level
        },
        Option(name: "max-connections", placeholder: "N", help: "open connections before new ones get 503 (default: open-file limit - 100)") { c, v throws(CLIError) in
            c.maxConnections = try integer(v, "max-connections", 1...10_000_000)
        },
        Option(name: "max-header-bytes", placeholder: "N", help: "request line + headers limit, else 431 (default 16384)") { c, v throws(CLIError) in
            c.http.maxHeadBytes = try integer(v, "max-header-bytes", 256...1 << 20)
        },
        Option(name: "max-headers", placeholder: "N", help: "header count limit, else 431 (default 100)") { c, v throws(CLIError) in
            c.http.maxHeaderCount = try integer(v, "max-headers", 1...10_000)
        },
        Option(name: "max-body-bytes", placeholder: "N", help: "default request body limit, else 413 (default 1048576)") { c, v throws(CLIError) in
            c.http.maxBodyBytes = try integer(v, "max-body-bytes", 0...1 << 30)
        },
        Option(name: "request-timeout", placeholder: "SECONDS", help: "a request must complete within this, else 408 (default 30)") { c, v throws(CLIError) in
            c.requestTimeout = try seconds(v, "request-timeout")
        },
        Option(name: "keepalive-timeout", placeholder: "SECONDS", help: "idle keep-alive connections close after this (default 60)") { c, v throws(CLIError) in
            c.keepAliveTimeout = try seconds(v, "keepalive-timeout")
        },
        Option(name: "max-frame-bytes", placeholder: "N", help: "WebSocket frame payload limit, else close 1009 (default 1048576)") { c, v throws(CLIError) in
            c.webSocket.maxFrameBytes = try integer(v, "max-frame-bytes", 125...1 << 30)
        },
        Option(name: "max-message-bytes", placeholder: "N", help: "WebSocket message limit, else close 1009 (default 1048576)") { c, v throws(CLIError) in
            c.webSocket.maxMessageBytes = try integer(v, "max-message-bytes", 125...1 << 30)
        },
        Option(name: "ws-ping-interval", placeholder: "SECONDS", help: "ping a WebSocket after this much silence (default 60)") { c, v throws(CLIError) in
            c.webSocketPingInterval = try seconds(v, "ws-ping-interval")
        },
        Option(name: "ws-pong-timeout", placeholder: "SECONDS", help: "drop a WebSocket that stays silent this long after a ping (default 30)") { c, v throws(CLIError) in
            c.webSocketPongTimeout = try seconds(v, "ws-pong-timeout")
        },
        Option(name: "close-timeout", placeholder: "SECONDS", help: "longest wait for the peer after a close (default 5)") { c, v throws(CLIError) in
            c.closeTimeout = try seconds(v, "close-timeout")
        },
        Option(name: "shutdown-grace", placeholder: "SECONDS", help: "SIGTERM drains for at most this long (default 10)") { c, v throws(CLIError) in
            c.shutdownGrace = try seconds(v, "shutdown-grace")
        },
        Option(name: "max-outbound-bytes", placeholder: "N", help: "unsent bytes per connection before it is dropped as too slow (default 4194304)") { c, v throws(CLIError) in
            c.maxOutboundBytes = try integer(v, "max-outbound-bytes", 1024...1 << 30)
        },
        Option(name: "cors-origins", placeholder: "LIST", help: "comma-separated origins allowed cross-origin, * for any (default *)") { c, v throws(CLIError) in
            c.corsOrigins = v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        },
    ]

    static let usage = """
        bridge: a realtime broker between HTTP backends and WebSocket clients

        usage:
          bridge serve [options]   run the server (see `bridge serve --help`)
          bridge --help            this text
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
    static func parseServe(_ arguments: [String], environment: [String: String]) throws(CLIError) -> ServerConfig? {
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

        var config = ServerConfig()
        if let configPath {
            for (option, value) in try fileSettings(configPath) { try option.apply(&config, value) }
        }
        for option in options {
            if let value = environment[option.environmentName] {
                do { try option.apply(&config, value) } catch {
                    throw CLIError(message: "\(option.environmentName): \(error.message)")
                }
            }
        }
        for (option, value) in flags { try option.apply(&config, value) }
        return config
    }

    /// Reads the JSON config file as option settings, rejecting unknown keys.
    static func fileSettings(_ path: String) throws(CLIError) -> [(Option, String)] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError(message: "cannot read config file \(path)")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw CLIError(message: "config file \(path) is not a JSON object")
        }
        var settings: [(Option, String)] = []
        for (key, value) in object.sorted(by: { $0.key < $1.key }) {
            guard let option = options.first(where: { $0.name == key }), key != "config" else {
                throw CLIError(message: "config file \(path): unknown key \"\(key)\"")
            }
            switch value {
            case let text as String: settings.append((option, text))
            case let number as NSNumber: settings.append((option, number.stringValue))
            case let list as [String]: settings.append((option, list.joined(separator: ",")))
            default: throw CLIError(message: "config file \(path): \"\(key)\" must be a string or a number")
            }
        }
        return settings
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

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("bridge: \(message)\n".utf8))
        exit(2)
    }
}
