import Glibc
import Support

/// The Pusher HTTP API on the same port as the WebSocket endpoint (PROTOCOL.md §1.15): signed
/// requests from app backends that publish events and ask about channels and users.
struct PusherAPI: Sendable {
    let apps: AppRegistry
    /// The server libraries accept channel names up to 200 characters (PROTOCOL.md §1.5).
    static let maxChannelNameLength = 200

    func install(on server: Server) {
        route(server, "POST", "/apps/:app_id/events", events)
        route(server, "POST", "/apps/:app_id/batch_events", batchEvents)
        route(server, "GET", "/apps/:app_id/channels", channels)
        route(server, "GET", "/apps/:app_id/channels/:channel_name", channel)
        route(server, "GET", "/apps/:app_id/channels/:channel_name/users", users)
        route(server, "POST", "/apps/:app_id/users/:user_id/terminate_connections", terminateConnections)
        // pusher-http-python 3.3 leaves `/apps/{id}` out of this one path; its auth_key names the app.
        route(server, "POST", "/users/:user_id/terminate_connections", terminateConnections)
    }

    /// Answers with the JSON body, at once or later: in a cluster, questions about channels are
    /// answered from the shared state. A nil body: the cluster's state cannot be reached (503).
    typealias Handler = @Sendable (Call, _ answer: @escaping Answer) throws(APIError) -> Void
    typealias Answer = @Sendable (String?) -> Void

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

    private func route(_ server: Server, _ method: String, _ pattern: String, _ handler: @escaping Handler) {
        let apps = self.apps
        server.route(method, pattern, .deferredHTTP { request, parameters, responder in
            do throws(APIError) {
                try handler(try Self.call(request, parameters, apps: apps)) { body in
                    responder.respond(body.map { .json(200, $0) } ?? .error(503, "The cluster's shared state cannot be reached, try again"))
                }
            } catch {
                responder.respond(.error(error.status, error.message))
            }
        })
    }

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

    /// Also the debug console's way to send an event, so that it obeys the same rules.
    func events(_ call: Call, answer: @escaping Answer) throws(APIError) {
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
        guard !event.info.isEmpty else { return answer("{}") }
        Self.info(event.channels.map { (event.info, $0) }, in: call.app.hub) { infos in
            let entries = zip(event.channels, infos).map { "\"" + JSONString.escaped($0.name) + "\":" + $1 }
            answer(#"{"channels":{"# + entries.joined(separator: ",") + "}}")
        }
    }

    private func batchEvents(_ call: Call, answer: @escaping Answer) throws(APIError) {
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
        guard events.contains(where: { !$0.info.isEmpty }) else { return answer("{}") }
        Self.info(events.map { ($0.info, $0.channels[0]) }, in: call.app.hub) { infos in
            answer(#"{"batch":["# + infos.joined(separator: ",") + "]}")
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

    /// `{"user_count":…,"subscription_count":…}` for the attributes that apply to each channel, in
    /// order (one question at a time: a trigger names a few channels at most). The event is
    /// published by then, so while a cluster cannot answer, this node's own counts will do.
    private static func info(_ asked: [(attributes: Set<String>, channel: ChannelName)], in hub: Hub, answered: [String] = [],
                             completion: @escaping @Sendable ([String]) -> Void) {
        guard let (attributes, channel) = asked.first else { return completion(answered) }
        let rest = Array(asked.dropFirst())
        guard !attributes.isEmpty else { return info(rest, in: hub, answered: answered + ["{}"], completion: completion) }
        hub.channelInfo(channel.name) { state in
            let state = state ?? hub.channelInfoHere(channel.name)
            info(rest, in: hub, answered: answered + [infoJSON(attributes, of: channel, state)], completion: completion)
        }
    }

    private static func infoJSON(_ attributes: Set<String>, of channel: ChannelName, _ state: Hub.ChannelInfo) -> String {
        var fields: [String] = []
        if attributes.contains("user_count") && channel.kind == .presence { fields.append(#""user_count":\#(state.userCount)"#) }
        if attributes.contains("subscription_count") { fields.append(#""subscription_count":\#(state.subscriptionCount)"#) }
        return "{" + fields.joined(separator: ",") + "}"
    }

    // MARK: Queries

    private func channels(_ call: Call, answer: @escaping Answer) throws(APIError) {
        let prefix = call.request.queryValue("filter_by_prefix") ?? ""
        let attributes = try Self.attributes(call.request.queryValue("info") ?? "", allowed: ["user_count", "subscription_count"])
        if attributes.contains("user_count") && !prefix.hasPrefix("presence-") {
            throw APIError(400, "user_count is only available with filter_by_prefix=presence-")
        }
        call.app.hub.occupiedChannels(prefix: prefix) { channels in
            let entries = channels?.map { channel in
                var fields: [String] = []
                if attributes.contains("user_count") { fields.append(#""user_count":\#(channel.userCount)"#) }
                if attributes.contains("subscription_count") { fields.append(#""subscription_count":\#(channel.subscriptionCount)"#) }
                return "\"" + JSONString.escaped(channel.name) + "\":{" + fields.joined(separator: ",") + "}"
            }
            answer(entries.map { #"{"channels":{"# + $0.joined(separator: ",") + "}}" })
        }
    }

    private func channel(_ call: Call, answer: @escaping Answer) throws(APIError) {
        let channel = try Self.channelName(call)
        let attributes = try Self.attributes(call.request.queryValue("info") ?? "", allowed: ["user_count", "subscription_count", "cache"])
        if attributes.contains("user_count") && channel.kind != .presence {
            throw APIError(400, "user_count is only available for presence channels")
        }
        if attributes.contains("cache") && !channel.isCache {
            throw APIError(400, "cache is only available for cache channels")
        }
        call.app.hub.channelInfo(channel.name) { state in
            guard let state else { return answer(nil) }
            var fields = [#""occupied":\#(state.occupied)"#]
            if attributes.contains("user_count") { fields.append(#""user_count":\#(state.userCount)"#) }
            if attributes.contains("subscription_count") { fields.append(#""subscription_count":\#(state.subscriptionCount)"#) }
            if attributes.contains("cache"), let cached = state.lastEvent {
                let ttl = max(0, cached.ttlMs / 1000 + (cached.ttlMs % 1000 > 0 ? 1 : 0))
                fields.append(#""cache":{"data":"# + "\"" + JSONString.escaped(cached.data) + #"","ttl":\#(ttl)}"#)
            }
            answer("{" + fields.joined(separator: ",") + "}")
        }
    }

    private func users(_ call: Call, answer: @escaping Answer) throws(APIError) {
        let channel = try Self.channelName(call)
        guard channel.kind == .presence else { throw APIError(400, "Users are only available for presence channels") }
        call.app.hub.presenceUserIDs(channel.name) { users in
            answer(users.map { #"{"users":["# + $0.map { #"{"id":"# + "\"" + JSONString.escaped($0) + "\"}" }.joined(separator: ",") + "]}" })
        }
    }

    private func terminateConnections(_ call: Call, answer: @escaping Answer) throws(APIError) {
        guard let userID = call.parameters["user_id"], !userID.isEmpty else { throw APIError(400, "Missing user id") }
        call.app.hub.terminateEverywhere(userID: userID)
        answer("{}")
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

    private static func channelName(_ call: Call) throws(APIError) -> ChannelName {
        let name = call.parameters["channel_name"] ?? ""
        guard let channel = ChannelName(name, maxLength: max(maxChannelNameLength, call.config.maxChannelNameLength)) else {
            throw APIError(400, "Invalid channel name \"\(name)\"")
        }
        return channel
    }

    /// The comma-separated `info` attributes; an unknown one is a 400.
    private static func attributes(_ text: String, allowed: Set<String>) throws(APIError) -> Set<String> {
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
