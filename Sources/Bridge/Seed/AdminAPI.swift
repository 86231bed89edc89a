import Dispatch
import Glibc
import Support

/// The operator's API for organizations and their apps, behind `Authorization: Bearer <admin token>`.
/// Off (403) when no admin token is configured. Every change goes through the store (so the CLI
/// and this API see each other's changes) and is applied to the running apps before the answer.
///
/// The handlers run on a serial queue of their own, not on the event loop that read the request:
/// a store change waits for the store's flock (which a CLI may hold) and fsyncs, and a loop must
/// never wait for either. The answer goes back through the loop (`Endpoint.deferredHTTP`).
struct AdminAPI: Sendable {
    let store: OrganizationStore
    let adminToken: String?
    /// Ids and keys of apps from elsewhere (the config file), which new apps must not take.
    let reservedAppIDs: @Sendable () -> Set<String>
    /// Why an app's settings cannot run (its webhook targets), nil when they can.
    let validateApp: @Sendable (AppConfig) -> String?
    /// Applies the store's apps to the running server.
    let didChange: @Sendable () -> Void

    /// One queue for every admin request: store changes happen one at a time, in arrival order.
    private let storeQueue = DispatchQueue(label: "bridge-admin-store")

    typealias Handler = @Sendable (_ request: HTTPRequest, _ parameters: [String: String]) throws(OrganizationError) -> (Int, JSON)

    func install(on server: Server) {
        let base = "/admin/organizations"
        route(server, "GET", base) { _, _ in
            (200, .object(JSONObject(members: [.init("organizations", .array(store.directory.organizations.map(\.json)))])))
        }
        route(server, "POST", base) { request, _ throws(OrganizationError) in
            let body = try Self.object(request)
            guard let slug = body["slug"]?.stringValue else { throw OrganizationError(.invalid, "slug is required") }
            let organization = try change { directory throws(OrganizationError) in
                try directory.createOrganization(slug: slug, name: body["name"]?.stringValue, now: time(nil))
            }
            return (201, organization.json)
        }
        route(server, "GET", base + "/:org") { _, parameters throws(OrganizationError) in
            guard let organization = store.directory.organization(parameters["org"]!) else {
                throw OrganizationError(.notFound, "organization \(parameters["org"]!) does not exist")
            }
            return (200, organization.json)
        }
        route(server, "DELETE", base + "/:org") { _, parameters throws(OrganizationError) in
            _ = try change { directory throws(OrganizationError) in try directory.deleteOrganization(parameters["org"]!) }
            return (200, .object(JSONObject()))
        }
        route(server, "POST", base + "/:org/rotate-token") { _, parameters throws(OrganizationError) in
            (200, try change { directory throws(OrganizationError) in try directory.rotateToken(parameters["org"]!) }.json)
        }
        route(server, "GET", base + "/:org/applications") { _, parameters throws(OrganizationError) in
            guard let organization = store.directory.organization(parameters["org"]!) else {
                throw OrganizationError(.notFound, "organization \(parameters["org"]!) does not exist")
            }
            return (200, .object(JSONObject(members: [.init("applications", .array(organization.apps.map(\.json)))])))
        }
        route(server, "POST", base + "/:org/applications") { request, parameters throws(OrganizationError) in
            let settings = try Self.object(request)
            let taken = reservedAppIDs()
            let app = try change { directory throws(OrganizationError) in
                try directory.createApp(in: parameters["org"]!, settings: settings, taken: taken, validate: validateApp)
            }
            return (201, app.json)
        }
        route(server, "DELETE", base + "/:org/applications/:app_id") { _, parameters throws(OrganizationError) in
            _ = try change { directory throws(OrganizationError) in try directory.deleteApp(parameters["app_id"]!, in: parameters["org"]!) }
            return (200, .object(JSONObject()))
        }
        route(server, "POST", base + "/:org/applications/:app_id/rotate-secret") { _, parameters throws(OrganizationError) in
            (200, try change { directory throws(OrganizationError) in
                try directory.rotateSecret(parameters["app_id"]!, in: parameters["org"]!)
            }.json)
        }
    }

    private func change<T>(_ body: (inout OrganizationDirectory) throws(OrganizationError) -> T) throws(OrganizationError) -> T {
        let result = try store.update(body)
        didChange()
        return result
    }

    private func route(_ server: Server, _ method: String, _ pattern: String, _ handler: @escaping Handler) {
        let adminToken = self.adminToken
        let storeQueue = self.storeQueue
        server.route(method, pattern, maxBodyBytes: 64 << 10, .deferredHTTP { request, parameters, responder in
            guard let adminToken else {
                return responder.respond(.error(403, "the admin API is off: start bridge with --admin-token (or BRIDGE_ADMIN_TOKEN)"))
            }
            guard let given = request.bearerToken,
                  Digest.constantTimeEquals(Array(given.utf8), Array(adminToken.utf8)) else {
                return responder.respond(.error(401, "Missing or wrong admin token (Authorization: Bearer <admin token>)"))
            }
            storeQueue.async {
                do throws(OrganizationError) {
                    let (status, body) = try handler(request, parameters)
                    responder.respond(.json(status, body.serialized))
                } catch {
                    if error.kind == .storage { Log.error("admin API: \(error.message)") }
                    responder.respond(.error(error.httpStatus, error.message))
                }
            }
        })
    }

    /// The request body as a JSON object; an empty body is an empty object.
    private static func object(_ request: HTTPRequest) throws(OrganizationError) -> JSONObject {
        guard !request.body.isEmpty else { return JSONObject() }
        guard let object = (try? JSONParser.parse(request.body))?.objectValue else {
            throw OrganizationError(.invalid, "the body must be a JSON object")
        }
        return object
    }
}
