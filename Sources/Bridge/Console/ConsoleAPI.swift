import Support

/// The JSON API behind the debug console page (`/console`, a static file): the apps a credential
/// may see, an app's connections and occupied channels, its debug log, and sending an event.
///
/// Credential: `Authorization: Bearer <admin token>` sees every app; `Bearer <key>:<secret>` sees
/// its own app only. An app the credential cannot see is a 404, like an unknown one, so that a
/// credential learns nothing about other apps.
public struct ConsoleAPI: Sendable {
    private let apps: AppRegistry
    /// Nil or empty: no admin credential, only app ones.
    private let adminToken: [UInt8]?
    /// The stats list at most this many channels (with the total): the page refreshes every second.
    static let maxListedChannels = 1000

    public init(broker: Broker, adminToken: String?) {
        apps = broker.apps
        self.adminToken = adminToken.flatMap { $0.isEmpty ? nil : Array($0.utf8) }
    }

    public func install(on server: Server) {
        let console = self
        server.route("GET", "/console/api/apps", .http { request, _ in
            guard let credential = console.credential(of: request) else { return Self.unauthorized }
            let visible = console.apps.all.filter(credential.sees).sorted { ($0.id.count, $0.id) < ($1.id.count, $1.id) }
            return Self.json(200, JSONWriter.object { json in
                json.arrayField("apps") { for app in visible { Self.summary(app, into: &$0) } }
            })
        })
        route(server, "GET", "/console/api/apps/:app_id/stats") { _, app in Self.stats(of: app) }
        route(server, "GET", "/console/api/apps/:app_id/log") { request, app in Self.log(request, app) }
        route(server, "POST", "/console/api/apps/:app_id/events") { request, app in console.send(request, app) }
    }

    /// A route about one app: the credential must see it.
    private func route(_ server: Server, _ method: String, _ pattern: String,
                       _ handler: @escaping @Sendable (HTTPRequest, App) -> HTTPResponse) {
        let console = self
        server.route(method, pattern, .http { request, parameters in
            guard let credential = console.credential(of: request) else { return Self.unauthorized }
            let id = parameters["app_id"] ?? ""
            guard let app = console.apps.app(id: id), credential.sees(app) else {
                return Self.error(404, "Unknown app \(id)")
            }
            return handler(request, app)
        })
    }

    // MARK: Credentials

    /// Who a bearer credential belongs to, for other endpoints behind the console's credentials
    /// (`/webhooks/status`).
    public enum Caller: Sendable, Equatable {
        case admin
        case app(id: String)
    }

    /// Nil when the credential is missing or wrong.
    public func caller(of request: HTTPRequest) -> Caller? {
        switch credential(of: request) {
        case nil: return nil
        case .admin: return .admin
        case .app(let app): return .app(id: app.config.id)
        }
    }

    public static var unauthorizedResponse: HTTPResponse { unauthorized }

    private enum Credential {
        case admin
        case app(App)

        func sees(_ app: App) -> Bool {
            switch self {
            case .admin: return true
            case .app(let own): return own === app
            }
        }
    }

    /// The bearer credential, compared in constant time; nil when missing or wrong.
    private func credential(of request: HTTPRequest) -> Credential? {
        guard let token = request.bearerToken.map({ Array($0.utf8) }) else { return nil }
        if let adminToken, Digest.constantTimeEquals(token, adminToken) { return .admin }
        // App keys never contain ':' (AppConfig), so the first one ends the key.
        guard let colon = token.firstIndex(of: UInt8(ascii: ":")),
              let app = apps.app(key: String(decoding: token[..<colon], as: UTF8.self)) else { return nil }
        let secret = Array(token[(colon + 1)...])
        return Digest.constantTimeEquals(secret, Array(app.config.secret.utf8)) ? .app(app) : nil
    }

    // MARK: Handlers

    private static func summary(_ app: App, into json: inout JSONWriter) {
        let config = app.config
        json.object {
            $0.field("id", config.id)
            $0.field("key", config.key)
            $0.field("name", config.name)
            $0.field("organization", orNull: config.organization)
        }
    }

    private static func stats(of app: App) -> HTTPResponse {
        let occupied = app.hub.occupiedChannelsHere(prefix: "")
        return json(200, JSONWriter.object {
            $0.field("connections", app.connectionCount)
            $0.field("channel_count", occupied.count)
            $0.arrayField("channels") { channels in
                for channel in occupied.prefix(maxListedChannels) {
                    channels.object {
                        $0.field("name", channel.name)
                        $0.field("subscription_count", channel.subscriptionCount)
                        if ChannelName(channel.name, maxLength: .max)?.kind == .presence { $0.field("user_count", channel.userCount) }
                    }
                }
            }
        })
    }

    /// Polling the log is what keeps the app's recording on.
    private static func log(_ request: HTTPRequest, _ app: App) -> HTTPResponse {
        var after: UInt64 = 0
        if let text = request.queryValue("after") {
            guard let value = UInt64(text) else { return error(400, "after must be a sequence number") }
            after = value
        }
        app.debugLog.watch()
        let (entries, last) = app.debugLog.entries(after: after)
        return json(200, JSONWriter.object {
            $0.field("next", last)
            $0.arrayField("entries") { for entry in entries { entry.write(to: &$0) } }
        })
    }

    /// `{"channel","event","data"}`: `data` a string sent as is, or any other JSON sent as its
    /// text. Goes through the HTTP API's own events handler, with its validation and limits.
    private func send(_ request: HTTPRequest, _ app: App) -> HTTPResponse {
        guard let object = (try? JSONParser.parse(request.body))?.objectValue else {
            return Self.error(400, #"The body must be a JSON object {"channel","event","data"}"#)
        }
        guard let channel = object["channel"]?.stringValue else { return Self.error(400, "channel must be a string") }
        guard let event = object["event"]?.stringValue else { return Self.error(400, "event must be a string") }
        guard let member = object.member("data") else { return Self.error(400, "Missing data") }
        let data = member.value.stringValue ?? String(decoding: request.body[member.raw], as: UTF8.self)
        let config = app.config
        guard config.enabled else { return Self.error(403, "App \(config.id) is disabled") }
        let body = JSONWriter.object {
            $0.field("name", event)
            $0.field("channel", channel)
            $0.field("data", data)
        }
        let trigger = HTTPRequest(method: "POST", target: request.target, path: request.path, body: body.bytes)
        do throws(PusherAPI.APIError) {
            // Without `info` the events handler publishes and answers at once, and only `{}`.
            _ = try PusherAPI(apps: apps).events(PusherAPI.Call(request: trigger, parameters: [:], app: app, config: config))
            return Self.json(200, JSONWriter.object { _ in })
        } catch {
            return Self.error(error.status, error.message)
        }
    }

    // MARK: Responses

    private static var unauthorized: HTTPResponse {
        var response = error(401, "Give Authorization: Bearer <admin token> or Bearer <app key>:<app secret>")
        response.headers.set("WWW-Authenticate", #"Bearer realm="bridge console""#)
        return response
    }

    /// Console answers are live views: never cached.
    private static func json(_ status: Int, _ body: JSONWriter) -> HTTPResponse {
        var response = HTTPResponse.json(status, body)
        response.headers.set("Cache-Control", "no-store")
        return response
    }

    private static func error(_ status: Int, _ message: String) -> HTTPResponse {
        var response = HTTPResponse.error(status, message)
        response.headers.set("Cache-Control", "no-store")
        return response
    }
}

extension DebugLog.Entry {
    /// `{"seq","time_ms","type","channel"?,"event"?,"data"?,"detail"?}`
    func write(to json: inout JSONWriter) {
        json.object {
            $0.field("seq", seq)
            $0.field("time_ms", timeMs)
            $0.field("type", kind.rawValue)
            if let channel { $0.field("channel", channel) }
            if let event { $0.field("event", event) }
            if let data { $0.field("data", data) }
            if let detail { $0.field("detail", detail) }
        }
    }

}
