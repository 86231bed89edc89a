import Glibc
import Support
import System

/// The Pusher WebSocket endpoint, `/app/{key}?protocol=7&client=…&version=…` (PROTOCOL.md §1.1):
/// checks the app and the protocol version, then hands the connection a `PusherSession`.
final class PusherService: WebSocketService {
    let apps: AppRegistry
    /// Checks the `jwt` of seed-mode connections; nil when the server has no seed API.
    let seed: SeedAuthority?
    /// Protocols 4–7 share the wire format Bridge speaks; 1–3 are retired (PROTOCOL.md §1.1).
    static let supportedProtocols = 4...7

    init(apps: AppRegistry, seed: SeedAuthority?) {
        self.apps = apps
        self.seed = seed
    }

    func open(_ connection: Connection, request: HTTPRequest, parameters: [String: String]) -> (any WebSocketSession)? {
        let key = parameters["key"] ?? ""
        guard let app = apps.app(key: key) else {
            return refuse(connection, .appNotFound("App key \(key) does not exist"))
        }
        let config = app.config
        guard config.enabled else {
            return refuse(connection, .appDisabled("App \(config.id) is disabled"))
        }
        if let error = Self.checkProtocol(request.queryValue("protocol")) {
            return refuse(connection, error)
        }
        if !config.allowedOrigins.contains("*") {
            let origin = request.headers["Origin"] ?? ""
            guard config.allowedOrigins.contains(origin) else {
                return refuse(connection, .unauthorized("Origin \"\(origin)\" is not allowed for this app"))
            }
        }
        var seed: PusherSession.SeedMode?
        if let jwt = request.queryValue("jwt") {
            switch seedMode(jwt, for: config, userID: request.queryValue("user_id").flatMap { $0.isEmpty ? nil : $0 }) {
            case .failure(let refusal): return refuse(connection, refusal)
            case .success(let mode): seed = mode
            }
        }
        guard app.admitConnection(limit: config.maxConnections) else {
            return refuse(connection, .overConnectionQuota(
                                                  "App is over its connection quota (\(config.maxConnections ?? 0))"))
        }

        let session = PusherSession(connection: connection, app: app, seed: seed)
        let shard = app.hub.shard(session.loopIndex)
        shard.add(session)
        if config.enableUserAuthentication {
            shard.requireAuthorization(of: session, by: MonotonicClock.seconds + config.userAuthenticationTimeout)
        }
        let established = JSONWriter.object {
            $0.field("socket_id", session.socketID)
            $0.field("activity_timeout", config.activityTimeout)
        }.text
        session.send(event: "pusher:connection_established", data: established)
        return session
    }

    /// Seed mode when `jwt` speaks for the organization that owns the app; else the 4009 to close with.
    private func seedMode(_ jwt: String, for config: AppConfig, userID: String?) -> Result<PusherSession.SeedMode, PusherError> {
        guard let seed else { return .failure(.unauthorized("This server has no seed API: connect without jwt")) }
        switch seed.verify(jwt, now: time(nil)) {
        case .failure(let refusal):
            return .failure(.unauthorized(refusal.message))
        case .success(let granted) where granted.organization.slug != config.organization:
            return .failure(.unauthorized(
                                        "The JWT is for organization \(granted.organization.slug), which does not own this app"))
        case .success(let granted):
            return .success(PusherSession.SeedMode(userID: userID, claims: granted.claims, authority: seed))
        }
    }

    /// Nil when `protocol` names a version we speak; else the error Pusher defines for it.
    static func checkProtocol(_ value: String?) -> PusherError? {
        guard let value else {
            return PusherError.noProtocolVersion("No protocol version supplied")
        }
        guard let version = Int(value) else {
            return PusherError.invalidVersionFormat("Invalid version string format \"\(value)\"")
        }
        guard supportedProtocols.contains(version) else {
            return PusherError.unsupportedProtocol(
                               "Unsupported protocol version \(version) (supported: \(supportedProtocols.lowerBound)-\(supportedProtocols.upperBound))")
        }
        return nil
    }

    /// Turns the connection away: the error, then a close with its code; no session.
    private func refuse(_ connection: Connection, _ error: PusherError) -> (any WebSocketSession)? {
        Log.info("refusing connection: \(error.message)", conn: connection.id)
        connection.sendWebSocketFrame(error.frame)
        connection.close(code: error.closeCode, reason: error.message)
        return nil
    }

    func overCapacityCloseReason(on connection: Connection) -> (CloseCode, String)? {
        let error = PusherError.overCapacity("Over capacity: the server is at its connection limit")
        connection.sendWebSocketFrame(error.frame)
        return (error.closeCode, error.message)
    }
}
