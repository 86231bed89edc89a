import Support

/// The seed API's session tokens: compact JWS with HS256 only (RFC 7519, RFC 7515), signed with the
/// server's key. Anything else — `alg: none`, another algorithm, another key, a token past its
/// expiry — is refused; the header is checked before the signature is trusted.
public enum JWT {
    public struct Claims: Sendable, Equatable {
        /// The organization's slug.
        public let organization: String
        /// The organization's epoch: random, drawn when it was created and never reissued, so a
        /// JWT of a deleted organization never speaks for a later one of the same slug.
        public let epoch: String
        /// The organization's token generation when the JWT was issued: rotating the secret
        /// token bumps it, and older JWTs stop working.
        public let generation: Int
        public let issuedAt: Int
        public let expiresAt: Int

        public init(organization: String, epoch: String, generation: Int, issuedAt: Int, expiresAt: Int) {
            self.organization = organization
            self.epoch = epoch
            self.generation = generation
            self.issuedAt = issuedAt
            self.expiresAt = expiresAt
        }
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case algorithm(String)
        case signature
        case expired

        public var description: String {
            switch self {
            case .malformed(let why): "malformed JWT: \(why)"
            case .algorithm(let alg): "JWT algorithm \"\(alg)\" is not accepted (only HS256)"
            case .signature: "JWT signature does not verify"
            case .expired: "JWT has expired"
            }
        }
    }

    static let issuer = "bridge"
    private static let header = Base64.encodeURL(JSONWriter.object {
        $0.field("alg", "HS256")
        $0.field("typ", "JWT")
    }.bytes)

    public static func sign(_ claims: Claims, key: [UInt8]) -> String {
        let payload = JSONWriter.object {
            $0.field("iss", issuer)
            $0.field("org", claims.organization)
            $0.field("epoch", claims.epoch)
            $0.field("gen", claims.generation)
            $0.field("iat", claims.issuedAt)
            $0.field("exp", claims.expiresAt)
        }
        let signingInput = header + "." + Base64.encodeURL(payload.bytes)
        return signingInput + "." + Base64.encodeURL(Digest.hmacSHA256(key: key, message: Array(signingInput.utf8)))
    }

    public static func verify(_ token: String, key: [UInt8], now: Int) -> Result<Claims, Failure> {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return .failure(.malformed("expected three dot-separated parts")) }
        guard let headerBytes = Base64.decodeURL(String(parts[0])),
              let header = (try? JSONParser.parse(headerBytes))?.objectValue else {
            return .failure(.malformed("the header is not base64url JSON"))
        }
        let algorithm = header["alg"]?.stringValue ?? ""
        guard algorithm == "HS256" else { return .failure(.algorithm(algorithm)) }
        guard let signature = Base64.decodeURL(String(parts[2])) else { return .failure(.malformed("the signature is not base64url")) }
        let expected = Digest.hmacSHA256(key: key, message: Array(token.utf8[..<parts[1].endIndex]))
        guard Digest.constantTimeEquals(signature, expected) else { return .failure(.signature) }

        guard let payloadBytes = Base64.decodeURL(String(parts[1])),
              let payload = (try? JSONParser.parse(payloadBytes))?.objectValue else {
            return .failure(.malformed("the payload is not base64url JSON"))
        }
        guard payload["iss"]?.stringValue == issuer,
              let organization = payload["org"]?.stringValue,
              let epoch = payload["epoch"]?.stringValue, !epoch.isEmpty,
              let generation = payload["gen"]?.intValue,
              let issuedAt = payload["iat"]?.intValue,
              let expiresAt = payload["exp"]?.intValue else {
            return .failure(.malformed("the claims need iss, org, epoch, gen, iat and exp"))
        }
        guard now < expiresAt else { return .failure(.expired) }
        return .success(Claims(organization: organization, epoch: epoch, generation: generation, issuedAt: issuedAt, expiresAt: expiresAt))
    }
}
