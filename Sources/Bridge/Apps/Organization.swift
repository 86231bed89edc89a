import Support

/// An organization of the seed API: it owns apps, and its secret token buys session JWTs
/// (`POST /api/sessions`).
public struct Organization: Sendable {
    public let slug: String
    /// Random, drawn at creation and never reissued: tells this organization from an earlier one
    /// of the same slug (its JWTs name it).
    public let epoch: String
    public var name: String
    public var secretToken: String
    /// Replaced by every token rotation with the directory's next generation, so it only grows;
    /// a JWT names the generation it was issued under.
    public var tokenGeneration: Int
    public let createdAt: Int
    public var apps: [OrganizationApp]

    /// A new epoch: 128 bits from the CSPRNG.
    static func newEpoch() -> String { SecureRandom.hex(16) }

    /// Slugs go into URLs (`/api/organizations/{org}/…`): lowercase letters, digits and inner hyphens.
    public static func isValidSlug(_ slug: String) -> Bool {
        let bytes = Array(slug.utf8)
        guard (1...63).contains(bytes.count), bytes.first != UInt8(ascii: "-") else { return false }
        return bytes.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: "-") }
    }

    /// The JSON the admin API and `bridge orgs … --json` show (secrets included: both are for the operator).
    public var json: JSON {
        .object(JSONObject(members: [
            .init("slug", .string(slug)), .init("name", .string(name)), .init("secret_token", .string(secretToken)),
            .init("created_at", .number(String(createdAt))), .init("applications", .array(apps.map(\.json))),
        ]))
    }
}

/// An app of an organization: its settings object as stored (the config file's app keys, with
/// id, key and secret) and the config it parses to.
public struct OrganizationApp: Sendable {
    public private(set) var settings: JSONObject
    public private(set) var config: AppConfig

    init(settings: JSONObject, organization: String, path: String) throws(AppConfigError) {
        self.settings = settings
        config = try AppConfig(json: .object(settings), path: path)
        config.organization = organization
    }

    mutating func replaceSecret(with secret: String) {
        settings.members = settings.members.map { $0.key == "secret" ? .init("secret", .string(secret)) : $0 }
        config.secret = secret
    }

    public var json: JSON {
        var members = settings.members
        members.append(.init("organization", .string(config.organization ?? "")))
        return .object(JSONObject(members: members))
    }
}

extension JSONObject.Member {
    /// A member built in code rather than parsed, so it has no place in any input.
    init(_ key: String, _ value: JSON) {
        self.init(key: key, value: value, raw: 0..<0)
    }
}
