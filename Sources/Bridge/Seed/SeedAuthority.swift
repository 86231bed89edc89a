import Glibc
import Support
import System

/// Who may use the seed API: trades an organization's secret token for a session JWT, and checks
/// such JWTs (on the event API and on WebSocket connections in seed mode).
public final class SeedAuthority: Sendable {
    public let store: OrganizationStore
    private let key: [UInt8]
    public let ttl: Int

    public init(store: OrganizationStore, key: [UInt8], ttl: Int) {
        self.store = store
        self.key = key
        self.ttl = ttl
    }

    /// A JWT for the organization that holds `secretToken`; nil for an unknown token.
    public func issue(secretToken: String, now: Int) -> (jwt: String, organization: Organization, expiresAt: Int)? {
        guard let organization = store.directory.organization(secretToken: secretToken) else { return nil }
        let claims = JWT.Claims(organization: organization.slug, epoch: organization.epoch, generation: organization.tokenGeneration,
                                issuedAt: now, expiresAt: now + ttl)
        return (JWT.sign(claims, key: key), organization, claims.expiresAt)
    }

    /// The organization a JWT speaks for, or why it does not: a bad or expired token, or one for
    /// an organization that is gone or has rotated its secret token since.
    public func organization(for jwt: String, now: Int) -> Result<Organization, JWTRefusal> {
        verify(jwt, now: now).map(\.organization)
    }

    /// As `organization(for:now:)`, with the token's claims (which a seed-mode socket keeps).
    public func verify(_ jwt: String, now: Int) -> Result<(organization: Organization, claims: JWT.Claims), JWTRefusal> {
        switch JWT.verify(jwt, key: key, now: now) {
        case .failure(let failure):
            return .failure(JWTRefusal(message: failure.description))
        case .success(let claims):
            return current(claims, now: now).map { ($0, claims) }
        }
    }

    /// The organization verified claims still speak for at `now`: they have not expired, and the
    /// very organization they name (its epoch, not only its slug) has not rotated its token since.
    public func current(_ claims: JWT.Claims, now: Int) -> Result<Organization, JWTRefusal> {
        guard now < claims.expiresAt else { return .failure(JWTRefusal(message: JWT.Failure.expired.description)) }
        guard let organization = store.directory.organization(claims.organization),
              organization.epoch == claims.epoch, organization.tokenGeneration == claims.generation else {
            return .failure(JWTRefusal(message: "JWT is no longer valid: its organization's secret token was rotated or removed"))
        }
        return .success(organization)
    }

    public struct JWTRefusal: Error {
        public let message: String
    }

    /// The server's JWT key: `configured` when given, else the one in `<dataDir>/jwt.key`,
    /// created from the CSPRNG on first use so sessions survive restarts.
    public static func key(configured: String?, dataDir: String) throws(SystemError) -> [UInt8] {
        if let configured { return Array(configured.utf8) }
        let path = dataDir + "/jwt.key"
        if let stored = try DurableFile.read(path) {
            let text = String(decoding: stored, as: UTF8.self).filter { !$0.isWhitespace }
            if !text.isEmpty { return Array(text.utf8) }
        }
        try DurableFile.makeDirectory(dataDir)
        let generated = SecureRandom.hex(32)
        try DurableFile.write(path, Array((generated + "\n").utf8))
        return Array(generated.utf8)
    }
}
