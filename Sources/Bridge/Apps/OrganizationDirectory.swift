import Support

/// Why a change to the organizations was refused; the admin API maps `kind` to a status.
public struct OrganizationError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case invalid, notFound, conflict, storage }
    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    public var httpStatus: Int {
        switch kind {
        case .invalid: 400
        case .notFound: 404
        case .conflict: 409
        case .storage: 500
        }
    }
}

/// Every organization and its apps: the content of `organizations.json`, and the changes the
/// admin API and the CLI make to it. A value: the store swaps it whole.
public struct OrganizationDirectory: Sendable {
    public private(set) var organizations: [Organization] = []
    /// The last token generation handed out, to any organization ever created here: creations and
    /// rotations take the next one, so a generation is never issued twice.
    public private(set) var lastTokenGeneration = 0
    /// The last app id handed out: ids are never reused, not even the deleted newest app's.
    public private(set) var lastAppID = firstAppID - 1
    /// The file predates epochs and these counters: they were made up on load, and stick only
    /// once the file is written back (the store does that when it opens such a file).
    public private(set) var upgradedOnLoad = false

    /// Apps of organizations get numeric ids (the official Python library accepts no others),
    /// above this so they stay clear of the small ids config files use.
    static let firstAppID = 1001
    static let formatVersion = 1

    public init() {}

    public func organization(_ slug: String) -> Organization? {
        organizations.first { $0.slug == slug }
    }

    /// The organization whose secret token this is; every token is compared in constant time.
    public func organization(secretToken: String) -> Organization? {
        let given = Array(secretToken.utf8)
        var found: Organization?
        for organization in organizations where Digest.constantTimeEquals(Array(organization.secretToken.utf8), given) {
            found = organization
        }
        return found
    }

    /// The app with this id, in whichever organization holds it.
    public func app(id: String) -> OrganizationApp? {
        organizations.lazy.flatMap(\.apps).first { $0.config.id == id }
    }

    public var appConfigs: [AppConfig] { organizations.flatMap { $0.apps.map(\.config) } }

    // MARK: Changes

    public mutating func createOrganization(slug: String, name: String?, now: Int) throws(OrganizationError) -> Organization {
        guard Organization.isValidSlug(slug) else {
            throw OrganizationError(.invalid, "organization slug must be 1 to 63 characters from a-z 0-9 and -, not starting with -; got \"\(slug)\"")
        }
        guard organization(slug) == nil else { throw OrganizationError(.conflict, "organization \(slug) already exists") }
        let created = Organization(slug: slug, epoch: Organization.newEpoch(), name: name ?? slug, secretToken: SecureRandom.hex(20),
                                   tokenGeneration: try takeTokenGeneration(), createdAt: now, apps: [])
        organizations.append(created)
        return created
    }

    public mutating func deleteOrganization(_ slug: String) throws(OrganizationError) -> Organization {
        let index = try indexOf(slug)
        return organizations.remove(at: index)
    }

    public mutating func rotateToken(_ slug: String) throws(OrganizationError) -> Organization {
        let index = try indexOf(slug)
        organizations[index].secretToken = SecureRandom.hex(20)
        organizations[index].tokenGeneration = try takeTokenGeneration()
        return organizations[index]
    }

    private mutating func takeTokenGeneration() throws(OrganizationError) -> Int {
        let (next, overflow) = lastTokenGeneration.addingReportingOverflow(1)
        guard !overflow else { throw OrganizationError(.storage, "no token generation is left above \(lastTokenGeneration)") }
        lastTokenGeneration = next
        return next
    }

    /// Creates an app in `slug` from `settings` (any app setting but id, key and secret, which are
    /// generated). `taken` holds ids and keys in use elsewhere (the config file's apps); `validate`
    /// checks what the core cannot (the webhook targets), returning why the app is refused.
    public mutating func createApp(in slug: String, settings: JSONObject, taken: Set<String> = [],
                                   validate: (AppConfig) -> String? = { _ in nil }) throws(OrganizationError) -> OrganizationApp {
        let index = try indexOf(slug)
        for reserved in ["id", "key", "secret"] where settings[reserved] != nil {
            throw OrganizationError(.invalid, "\(reserved) is generated by Bridge; leave it out")
        }
        guard settings["name"]?.stringValue?.isEmpty == false else {
            throw OrganizationError(.invalid, "an application needs a name")
        }
        // Above every id handed out before (lastAppID) and every id in use, the config file's too.
        let highest = (appConfigs.compactMap { Int($0.id) } + taken.compactMap { Int($0) }).reduce(lastAppID, max)
        let (nextID, overflow) = highest.addingReportingOverflow(1)
        guard !overflow else { throw OrganizationError(.invalid, "no application id is left above \(highest)") }
        var members: [JSONObject.Member] = [
            .init("id", .string(String(nextID))), .init("key", .string(SecureRandom.hex(10))),
            .init("secret", .string(SecureRandom.hex(20))),
        ]
        if settings["default_channel"] == nil { members.append(.init("default_channel", .string("general"))) }
        // A repeated key keeps its last value (as the parser reads it), stored once.
        for member in settings.members {
            members.removeAll { $0.key == member.key }
            members.append(member)
        }
        let app: OrganizationApp
        do {
            app = try OrganizationApp(settings: JSONObject(members: members), organization: slug, path: "application")
        } catch {
            throw OrganizationError(.invalid, error.message)
        }
        if let problem = validate(app.config) { throw OrganizationError(.invalid, problem) }
        organizations[index].apps.append(app)
        lastAppID = nextID
        return app
    }

    public mutating func deleteApp(_ id: String, in slug: String? = nil) throws(OrganizationError) -> OrganizationApp {
        let (org, index) = try indexOfApp(id, in: slug)
        return organizations[org].apps.remove(at: index)
    }

    public mutating func rotateSecret(_ id: String, in slug: String? = nil) throws(OrganizationError) -> OrganizationApp {
        let (org, index) = try indexOfApp(id, in: slug)
        organizations[org].apps[index].replaceSecret(with: SecureRandom.hex(20))
        return organizations[org].apps[index]
    }

    private func indexOf(_ slug: String) throws(OrganizationError) -> Int {
        guard let index = organizations.firstIndex(where: { $0.slug == slug }) else {
            throw OrganizationError(.notFound, "organization \(slug) does not exist")
        }
        return index
    }

    private func indexOfApp(_ id: String, in slug: String?) throws(OrganizationError) -> (Int, Int) {
        for (org, organization) in organizations.enumerated() where slug == nil || organization.slug == slug {
            if let index = organization.apps.firstIndex(where: { $0.config.id == id }) { return (org, index) }
        }
        throw OrganizationError(.notFound, "application \(id) does not exist" + (slug.map { " in organization \($0)" } ?? ""))
    }

    // MARK: The file format

    public func encoded() -> [UInt8] {
        let organizations = organizations.map { organization -> JSON in
            .object(JSONObject(members: [
                .init("slug", .string(organization.slug)), .init("epoch", .string(organization.epoch)),
                .init("name", .string(organization.name)), .init("secret_token", .string(organization.secretToken)),
                .init("token_generation", .number(String(organization.tokenGeneration))),
                .init("created_at", .number(String(organization.createdAt))),
                .init("applications", .array(organization.apps.map { .object($0.settings) })),
            ]))
        }
        let document = JSON.object(JSONObject(members: [
            .init("version", .number(String(Self.formatVersion))),
            .init("last_token_generation", .number(String(lastTokenGeneration))), .init("last_app_id", .number(String(lastAppID))),
            .init("organizations", .array(organizations)),
        ]))
        return Array((document.serialized + "\n").utf8)
    }

    /// Parses the file; every problem names where it is, and nothing is guessed or dropped. A file
    /// written before epochs and counters existed (same version) gets them: a fresh epoch per
    /// organization, and counters at the highest generation and app id it holds.
    public static func decode(_ bytes: [UInt8]) throws(OrganizationError) -> OrganizationDirectory {
        func corrupt(_ why: String) -> OrganizationError { OrganizationError(.storage, why) }
        let json: JSON
        do { json = try JSONParser.parse(bytes) } catch { throw corrupt("not valid JSON (\(error))") }
        guard let document = json.objectValue else { throw corrupt("the top level must be an object") }
        guard document["version"]?.intValue == formatVersion else { throw corrupt("version must be \(formatVersion)") }
        guard let list = document["organizations"]?.arrayValue else { throw corrupt("organizations must be an array") }
        var directory = OrganizationDirectory()
        func counter(_ name: String) throws(OrganizationError) -> Int? {
            guard let value = document[name] else { return nil }
            guard let number = value.intValue, number >= 0 else { throw corrupt("\(name) must be a whole number of at least 0") }
            return number
        }
        let storedGeneration = try counter("last_token_generation")
        let storedAppID = try counter("last_app_id")
        directory.upgradedOnLoad = storedGeneration == nil || storedAppID == nil
        directory.lastTokenGeneration = storedGeneration ?? 0
        directory.lastAppID = max(directory.lastAppID, storedAppID ?? 0)
        var ids: Set<String> = []
        var keys: Set<String> = []
        for (index, element) in list.enumerated() {
            let path = "organizations[\(index)]"
            guard let object = element.objectValue,
                  let slug = object["slug"]?.stringValue, Organization.isValidSlug(slug),
                  let name = object["name"]?.stringValue,
                  let token = object["secret_token"]?.stringValue, !token.isEmpty,
                  let generation = object["token_generation"]?.intValue,
                  let createdAt = object["created_at"]?.intValue,
                  let apps = object["applications"]?.arrayValue else {
                throw corrupt("\(path) needs slug, name, secret_token, token_generation, created_at and applications")
            }
            guard directory.organization(slug) == nil else { throw corrupt("\(path).slug \(slug) appears twice") }
            let epoch: String
            if let stored = object["epoch"] {
                guard let text = stored.stringValue, !text.isEmpty else { throw corrupt("\(path).epoch must be a non-empty string") }
                epoch = text
            } else {
                epoch = Organization.newEpoch()
                directory.upgradedOnLoad = true
            }
            directory.lastTokenGeneration = max(directory.lastTokenGeneration, generation)
            var organization = Organization(slug: slug, epoch: epoch, name: name, secretToken: token, tokenGeneration: generation,
                                            createdAt: createdAt, apps: [])
            for (appIndex, settings) in apps.enumerated() {
                let appPath = "\(path).applications[\(appIndex)]"
                guard let settings = settings.objectValue else { throw corrupt("\(appPath) must be an object") }
                let app: OrganizationApp
                do { app = try OrganizationApp(settings: settings, organization: slug, path: appPath) } catch { throw corrupt(error.message) }
                guard ids.insert(app.config.id).inserted, keys.insert(app.config.key).inserted else {
                    throw corrupt("\(appPath): id or key used twice")
                }
                organization.apps.append(app)
                if let id = Int(app.config.id) { directory.lastAppID = max(directory.lastAppID, id) }
            }
            directory.organizations.append(organization)
        }
        return directory
    }
}
