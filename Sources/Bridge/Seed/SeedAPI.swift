import Glibc
import Support
import System

/// The seed service's own HTTP API (seed/000_2bdc7b043d2b9c53.txt), exactly as its article calls it:
/// `POST /api/sessions` trades an organization's secret token for a JWT, and
/// `POST /api/organizations/{org}/applications/{app_key}/event/{event}` publishes with that JWT,
/// from a backend or from a browser on another origin (CORS is the server's).
struct SeedAPI: Sendable {
    let apps: AppRegistry
    let authority: SeedAuthority
    /// Events per organization per second: JWTs reach browsers, so the endpoint has a default bound.
    let eventRate: PerKeyRateLimit
    /// A chat message is small; this bounds what a request may make us buffer (413 above it).
    static let maxBodyBytes = 256 << 10

    func install(on server: Server) {
        server.route("POST", "/api/sessions", maxBodyBytes: 4096, .http { request, _ in session(request) })
        server.route("POST", "/api/organizations/:org/applications/:app_key/event/:event", maxBodyBytes: Self.maxBodyBytes,
                     .http { request, parameters in event(request, parameters) })
    }

    private func session(_ request: HTTPRequest) -> HTTPResponse {
        let token: String?
        if request.hasJSONBody {
            token = (try? JSONParser.parse(request.body))?.objectValue?["token"]?.stringValue
        } else {
            token = request.formFields?.last { $0.name == "token" }?.value
        }
        guard let token, !token.isEmpty else { return .error(401, "Missing token: send the organization's secret token as token=…") }
        guard let issued = authority.issue(secretToken: token, now: time(nil)) else { return .error(401, "Invalid token") }
        return .json(200, JSONWriter.object {
            $0.field("jwt", issued.jwt)
            $0.field("organization", issued.organization.slug)
            $0.field("expires_at", issued.expiresAt)
        })
    }

    private func event(_ request: HTTPRequest, _ parameters: [String: String]) -> HTTPResponse {
        // Who asks (401), then whether they may (403), then what they address (404).
        guard let jwt = request.bearerToken else { return .error(401, "Missing Authorization: Bearer <JWT from POST /api/sessions>") }
        let organization: Organization
        switch authority.organization(for: jwt, now: time(nil)) {
        case .failure(let refusal): return .error(401, refusal.message)
        case .success(let found): organization = found
        }
        let slug = parameters["org"] ?? ""
        guard slug == organization.slug else {
            guard authority.store.directory.organization(slug) != nil else { return .error(404, "Unknown organization \(slug)") }
            return .error(403, "The JWT is for organization \(organization.slug), not \(slug)")
        }
        let key = parameters["app_key"] ?? ""
        guard let app = apps.app(key: key), app.config.organization == organization.slug else {
            return .error(404, "Unknown application \(key) in organization \(slug)")
        }
        let config = app.config
        guard config.enabled else { return .error(403, "App \(config.id) is disabled") }

        let name = parameters["event"] ?? ""
        guard name.utf8.count <= config.maxEventNameLength else {
            return .error(400, "Event name is longer than \(config.maxEventNameLength) characters")
        }
        guard !name.hasPrefix("pusher:"), !name.hasPrefix("pusher_internal:") else {
            return .error(400, "Event names starting with pusher: or pusher_internal: are reserved")
        }
        var fields: [JSONObject.Member]
        switch Self.fields(of: request) {
        case .success(let found): fields = found
        case .failure(.malformed):
            return .error(400, request.hasJSONBody ? "The body must be a JSON object" : "The body is not valid form encoding")
        case .failure(.tooMany(let count)):
            return .error(400, "The body has \(count) fields, over the limit of \(Self.maxFields)")
        }
        let requestedChannel = Self.take("channel", from: &fields)
        let socketID = Self.take("socket_id", from: &fields)
        if let requestedChannel, requestedChannel.stringValue == nil { return .error(400, "channel must be a string") }
        let channelName = requestedChannel?.stringValue ?? config.defaultChannel
        guard let channel = ChannelName(channelName, maxLength: max(PusherAPI.maxChannelNameLength, config.maxChannelNameLength)),
              channel.kind == .public || channel.kind == .private || channel.kind == .presence else {
            return .error(400, "Invalid channel name \"\(channelName)\"")
        }
        if let socketID, !(socketID.stringValue.map(PusherAPI.isSocketID) ?? false) { return .error(400, "Invalid socket_id") }
        let data = JSON.object(JSONObject(members: fields)).serialized
        guard data.utf8.count <= config.maxEventPayloadBytes else {
            return .error(400, "Event data is \(data.utf8.count) bytes, over the limit of \(config.maxEventPayloadBytes)")
        }
        guard app.hub.admitsCache([channel], limit: config.maxCacheChannels) else {
            return .error(403, "Over the limit of \(config.maxCacheChannels) cache channels holding an event (max_cache_channels)")
        }
        guard eventRate.admit(organization.slug, now: MonotonicClock.seconds) else {
            return .error(403, "Over the organization's rate limit of \(eventRate.perSecond) events per second")
        }
        guard app.admitBackendEvents(1, limit: config.maxBackendEventsPerSecond) else {
            return .error(403, "Over the rate limit of \(config.maxBackendEventsPerSecond ?? 0) events per second")
        }
        // `data` goes out as a JSON string token, like a string `data` of the HTTP API.
        var token = JSONWriter(reservingCapacity: data.utf8.count + 2)
        token.string(data)
        app.hub.publishFromAPI(name: name, channel: channel, data: token.bytes[...], dataString: data,
                                except: socketID?.stringValue, cacheTTL: config.cacheTTL)
        return .json(200, JSONWriter.object {
            $0.field("channel", channel.name)
            $0.field("event", name)
        })
    }

    /// Fields one event may carry: far above any chat message, and a bound on the work a body buys.
    static let maxFields = 1000

    enum FieldsRefusal: Error {
        case malformed
        case tooMany(Int)
    }

    /// The request's fields: a JSON object's members, or form fields as strings. A repeated name
    /// keeps its last value, at the place of its last occurrence; linear in the body's size.
    static func fields(of request: HTTPRequest) -> Result<[JSONObject.Member], FieldsRefusal> {
        let members: [JSONObject.Member]
        if request.hasJSONBody {
            guard let object = (try? JSONParser.parse(request.body))?.objectValue else { return .failure(.malformed) }
            members = object.members
        } else {
            guard let form = request.formFields else { return .failure(.malformed) }
            members = form.map { .init($0.name, .string($0.value)) }
        }
        guard members.count <= maxFields else { return .failure(.tooMany(members.count)) }
        var seen: Set<String> = []
        var lastOfEachName: [JSONObject.Member] = []
        for member in members.reversed() where seen.insert(member.key).inserted {
            lastOfEachName.append(member)
        }
        return .success(lastOfEachName.reversed())
    }

    /// Removes the member named `key` (names are unique by now) and returns its value.
    private static func take(_ key: String, from members: inout [JSONObject.Member]) -> JSON? {
        guard let index = members.firstIndex(where: { $0.key == key }) else { return nil }
        return members.remove(at: index).value
    }
}
