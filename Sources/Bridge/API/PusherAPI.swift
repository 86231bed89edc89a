import Glibc
import Support

/// The Pusher HTTP API on the same port as the WebSocket endpoint (PROTOCOL.md §1.15): signed
/// requests from app backends that publish events and ask about channels and users.
struct PusherAPI: Sendable {
    let apps: AppRegistry
    /// The server libraries accept channel names up to 200 characters (PROTOCOL.md §1.5).
    static let maxChannelNameLength = 200

    func install(on server: Server) {
        mayAskTheAuthority(server, "POST", "/apps/:app_id/events", events)
        mayAskTheAuthority(server, "POST", "/apps/:app_id/batch_events", batchEvents)
        mayAskTheAuthority(server, "GET", "/apps/:app_id/channels", channels)
        mayAskTheAuthority(server, "GET", "/apps/:app_id/channels/:channel_name", channel)
        mayAskTheAuthority(server, "GET", "/apps/:app_id/channels/:channel_name/users", users)
        answersAtOnce(server, "POST", "/apps/:app_id/users/:user_id/terminate_connections", terminateConnections)
        // pusher-http-python 3.3 leaves `/apps/{id}` out of this one path; its auth_key names the app.
        answersAtOnce(server, "POST", "/users/:user_id/terminate_connections", terminateConnections)
    }

    /// What a request gets. Most answers are known at once; the counts and members of channels
    /// come from the state authority, which in a cluster is Redis and answers later, from its own thread.
    enum Reply: Sendable {
        case now(HTTPResponse)
        /// `ask` calls its argument once, from any thread, with the answer.
        case fromAuthority(_ ask: @Sendable (_ respond: @escaping @Sendable (HTTPResponse) -> Void) -> Void)
    }

    /// A route whose answer is always known at once (`Endpoint.http`): its JSON body.
    typealias ImmediateHandler = @Sendable (Call) throws(APIError) -> JSONWriter
    /// A route that may need the authority's answer (`Endpoint.deferredHTTP`).
    typealias Handler = @Sendable (Call) throws(APIError) -> Reply

    /// One authenticated request: the app it addresses, that app's settings, the route parameters.
    struct Call {
        let request: HTTPRequest
        let parameters: [String: String]
        let app: App
        let config: AppConfig
    }

    struct APIError: Error {
        let status: Int
        let message: String
        init(_ status: Int, _ message: String) {
            self.status = status
            self.message = message
        }
    }

    private func answersAtOnce(_ server: Server, _ method: String, _ pattern: String, _ handler: @escaping ImmediateHandler) {
        let apps = self.apps
        server.route(method, pattern, .http { request, parameters in
            do throws(APIError) {
                return .json(200, try handler(try Self.call(request, parameters, apps: apps)))
            } catch {
                return .error(error.status, error.message)
            }
        })
    }

    private func mayAskTheAuthority(_ server: Server, _ method: String, _ pattern: String, _ handler: @escaping Handler) {
        let api = self
        server.route(method, pattern, .deferredHTTP { request, parameters, responder in
            switch api.reply(to: request, parameters, handler) {
            case .now(let response): responder.respond(response)
            case .fromAuthority(let ask): ask { responder.respond($0) }
            }
        })
    }

    /// The reply of `handler` to one request, authentication and refusals included.
    func reply(to request: HTTPRequest, _ parameters: [String: String], _ handler: Handler) -> Reply {
        do throws(APIError) {
            return try handler(try Self.call(request, parameters, apps: apps))
        } catch {
            return .now(.error(error.status, error.message))
        }
    }

    /// The answer when the authority cannot be reached.
    static let authorityUnreachable = HTTPResponse.error(503, "The cluster's shared state cannot be reached, try again")

    /// Order: which app (404), then who asks (401), then whether the app may be used (403).
    private static func call(_ request: HTTPRequest, _ parameters: [String: String], apps: AppRegistry) throws(APIError) -> Call {
        let app = parameters["app_id"].map { apps.app(id: $0) } ?? request.queryValue("auth_key").flatMap { apps.app(key: $0) }
        guard let app else {
            throw APIError(404, "Unknown app \(parameters["app_id"] ?? request.queryValue("auth_key") ?? "")")
        }
        let config = app.config
        if let failure = APISignature.verify(request, key: config.key, secret: config.secret, now: time(nil)) {
            throw APIError(401, failure)
        }
        guard config.enabled else { throw APIError(403, "App \(config.id) is disabled") }
        return Call(request: request, parameters: parameters, app: app, config: config)
    }

    // MARK: Publishing

    /// One event to publish, validated.
    struct Event {
        let name: String
        let channels: [ChannelName]
        /// The `data` string token exactly as it appears in the request body, quotes included.
        let rawData: ArraySlice<UInt8>
        let data: String
        let excludedSocketID: String?
        let info: Set<String>
    }

    /// Publishes at once; the counts `info` asks for come from the authority. Also the debug
    /// console's way to send an event, so that it obeys the same rules.
    func events(_ call: Call) throws(APIError) -> Reply {
        let (body, object) = try Self.jsonBody(call.request)
        let channelNames: [String]
        if let list = object["channels"] {
            guard let array = list.arrayValue else { throw APIError(400, "channels must be an array of strings") }
            channelNames = try array.map { value throws(APIError) in
                guard let name = value.stringValue else { throw APIError(400, "channels must be an array of strings") }
                return name
            }
        } else if let single = object["channel"] {
            guard let name = single.stringValue else { throw APIError(400, "channel must be a string") }
            channelNames = [name]
        } else {
            throw APIError(400, "Missing channels: give channel or channels")
        }
        let event = try Self.event(object, body: body, channels: channelNames, config: call.config)
        try Self.checkCacheRoom(event.channels, call)
        guard call.app.admitBackendEvents(1, limit: call.config.maxBackendEventsPerSecond) else {
            throw APIError(403, "Over the rate limit of \(call.config.maxBackendEventsPerSecond ?? 0) events per second")
        }
        publish(event, app: call.app, config: call.config)
        guard !event.info.isEmpty else { return .now(Self.published) }
        let asked = event.channels.map { (attributes: event.info, channel: $0) }
        return .fromAuthority { [hub = call.app.hub] respond in
            Self.counts(asked, in: hub) { counts in
                respond(.json(200, JSONWriter.object { json in
                    json.objectField("channels") {
                        for (question, state) in zip(asked, counts) {
                            $0.objectField(question.channel.name) { Self.writeCounts(question, state, into: &$0) }
                        }
                    }
                }))
            }
        }
    }

    /// The answer to a publish that asks for no counts.
    static let published = HTTPResponse.json(200, "{}")

    func batchEvents(_ call: Call) throws(APIError) -> Reply {
        let (body, object) = try Self.jsonBody(call.request)
        guard let items = object["batch"]?.arrayValue else { throw APIError(400, "Missing batch: expected {\"batch\":[…]}") }
        guard items.count <= call.config.maxEventBatchSize else {
            throw APIError(400, "Batch too large: \(items.count) events, the limit is \(call.config.maxEventBatchSize)")
        }
        // Everything is checked before anything is published: a batch is accepted whole or not at all.
        let events = try items.enumerated().map { index, item throws(APIError) -> Event in
            guard let event = item.objectValue else { throw APIError(400, "batch[\(index)] must be an object") }
            guard event["channels"] == nil else { throw APIError(400, "batch[\(index)]: use channel, not channels, in a batch") }
            guard let channel = event["channel"]?.stringValue else { throw APIError(400, "batch[\(index)]: missing channel") }
            do throws(APIError) {
                return try Self.event(event, body: body, channels: [channel], config: call.config)
            } catch {
                throw APIError(error.status, "batch[\(index)]: \(error.message)")
            }
        }
        try Self.checkCacheRoom(events.map { $0.channels[0] }, call)
        guard call.app.admitBackendEvents(events.count, limit: call.config.maxBackendEventsPerSecond) else {
            throw APIError(403, "Over the rate limit of \(call.config.maxBackendEventsPerSecond ?? 0) events per second")
        }
        for event in events { publish(event, app: call.app, config: call.config) }
        guard events.contains(where: { !$0.info.isEmpty }) else { return .now(Self.published) }
        let asked = events.map { (attributes: $0.info, channel: $0.channels[0]) }
        return .fromAuthority { [hub = call.app.hub] respond in
            Self.counts(asked, in: hub) { counts in
                respond(.json(200, JSONWriter.object { json in
                    json.arrayField("batch") {
                        for (question, state) in zip(asked, counts) { $0.object { Self.writeCounts(question, state, into: &$0) } }
                    }
                }))
            }
        }
    }

    static func checkCacheRoom(_ channels: [ChannelName], _ call: Call) throws(APIError) {
        guard call.app.hub.admitsCache(channels, limit: call.config.maxCacheChannels) else {
            throw APIError(403, "Over the limit of \(call.config.maxCacheChannels) cache channels holding an event (max_cache_channels)")
        }
    }

    private func publish(_ event: Event, app: App, config: AppConfig) {
        for channel in event.channels {
            if case .serverToUser(let userID) = channel.kind {
                app.hub.publishToUserEverywhere(PusherEvent.encode(event: event.name, channel: channel.name, data: .json(event.rawData)),
                                                userID: userID)
            } else {
                app.hub.publishFromAPI(name: event.name, channel: channel, data: event.rawData, dataString: event.data,
                                        except: event.excludedSocketID, cacheTTL: config.cacheTTL)
            }
        }
    }

    /// Validates one event of `events` or `batch_events` against the app's limits.
    private static func event(_ object: JSONObject, body: [UInt8], channels names: [String], config: AppConfig) throws(APIError) -> Event {
        guard let name = object["name"]?.stringValue, !name.isEmpty else { throw APIError(400, "Missing event name") }
        guard name.utf8.count <= config.maxEventNameLength else {
            throw APIError(400, "Event name is longer than \(config.maxEventNameLength) characters")
        }
        guard !name.hasPrefix("pusher:"), !name.hasPrefix("pusher_internal:") else {
            throw APIError(400, "Event names starting with pusher: or pusher_internal: are reserved")
        }
        guard let dataMember = object.member("data") else { throw APIError(400, "Missing data") }
        guard let data = dataMember.value.stringValue else { throw APIError(400, "Expected data to be a string") }
        guard data.utf8.count <= config.maxEventPayloadBytes else {
            throw APIError(413, "Event data is \(data.utf8.count) bytes, over the limit of \(config.maxEventPayloadBytes)")
        }
        guard !names.isEmpty else { throw APIError(400, "Missing channels: give channel or channels") }
        guard names.count <= config.maxEventChannelsAtOnce else {
            throw APIError(400, "Too many channels: \(names.count), the limit is \(config.maxEventChannelsAtOnce)")
        }
        let maxLength = max(maxChannelNameLength, config.maxChannelNameLength)
        let channels = try names.map { name throws(APIError) in
            guard let channel = ChannelName(name, maxLength: maxLength) else { throw APIError(400, "Invalid channel name \"\(name)\"") }
            return channel
        }
        if channels.count > 1 && channels.contains(where: { $0.kind == .encrypted }) {
            throw APIError(400, "Cannot trigger to several channels when one of them is encrypted")
        }
        var excluded: String?
        if let socketID = object["socket_id"] {
            guard let text = socketID.stringValue, isSocketID(text) else { throw APIError(400, "Invalid socket_id") }
            excluded = text
        }
        var info: Set<String> = []
        if let requested = object["info"] {
            guard let text = requested.stringValue else { throw APIError(400, "info must be a comma-separated string") }
            info = try attributes(text, allowed: ["user_count", "subscription_count"])
        }
        return Event(name: name, channels: channels, rawData: body[dataMember.raw], data: data,
                     excludedSocketID: excluded, info: info)
    }

    /// The state of each channel asked about, in order (one question at a time: a trigger names a
    /// few channels at most); nil where no attribute was asked. The event is published by then, so
    /// while a cluster cannot answer, this node's own counts will do.
    private static func counts(_ asked: [(attributes: Set<String>, channel: ChannelName)], in hub: Hub,
                               answered: [Hub.ChannelInfo?] = [], completion: @escaping @Sendable ([Hub.ChannelInfo?]) -> Void) {
        guard let (attributes, channel) = asked.first else { return completion(answered) }
        let rest = Array(asked.dropFirst())
        guard !attributes.isEmpty else { return counts(rest, in: hub, answered: answered + [nil], completion: completion) }
        hub.channelInfo(channel.name) { state in
            let state = state ?? hub.channelInfoHere(channel.name)
            counts(rest, in: hub, answered: answered + [state], completion: completion)
        }
    }

    /// `"user_count":…,"subscription_count":…` for the attributes asked that apply to the channel.
    private static func writeCounts(_ asked: (attributes: Set<String>, channel: ChannelName), _ state: Hub.ChannelInfo?,
                                    into json: inout JSONWriter) {
        guard let state else { return }
        if asked.attributes.contains("user_count") && asked.channel.kind == .presence { json.field("user_count", state.userCount) }
        if asked.attributes.contains("subscription_count") { json.field("subscription_count", state.subscriptionCount) }
    }

    private func terminateConnections(_ call: Call) throws(APIError) -> JSONWriter {
        guard let userID = call.parameters["user_id"], !userID.isEmpty else { throw APIError(400, "Missing user id") }
        call.app.hub.terminateEverywhere(userID: userID)
        return JSONWriter.object { _ in }
    }

    // MARK: Parsing helpers

    private static func jsonBody(_ request: HTTPRequest) throws(APIError) -> ([UInt8], JSONObject) {
        let json: JSON
        do {
            json = try JSONParser.parse(request.body)
        } catch {
            throw APIError(400, "The body is not valid JSON: \(error)")
        }
        guard let object = json.objectValue else { throw APIError(400, "The body must be a JSON object") }
        return (request.body, object)
    }

    static func channelName(_ call: Call) throws(APIError) -> ChannelName {
        let name = call.parameters["channel_name"] ?? ""
        guard let channel = ChannelName(name, maxLength: max(maxChannelNameLength, call.config.maxChannelNameLength)) else {
            throw APIError(400, "Invalid channel name \"\(name)\"")
        }
        return channel
    }

    /// The comma-separated `info` attributes; an unknown one is a 400.
    static func attributes(_ text: String, allowed: Set<String>) throws(APIError) -> Set<String> {
        var result: Set<String> = []
        for part in text.split(separator: ",") {
            let name = part.trimmingCharacters(in: " ")
            guard allowed.contains(name) else { throw APIError(400, "Unknown info attribute \"\(name)\"") }
            result.insert(name)
        }
        return result
    }

    /// `\d+\.\d+`, the shape the official libraries check.
    static func isSocketID(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
    }
}

private extension Substring {
    func trimmingCharacters(in set: Character) -> String {
        String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }
}
