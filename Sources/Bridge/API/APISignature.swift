import Support

/// Pusher HTTP API request signing, `auth_version=1.0` (PROTOCOL.md §1.15):
/// `auth_signature = hex(HMAC-SHA256(secret, METHOD\nPATH\nQUERY))`, where QUERY is every
/// parameter but `auth_signature`, keys lowercased, sorted, `k=v` joined by `&`, values percent-decoded.
enum APISignature {
    /// How far `auth_timestamp` may be from our clock, either way.
    static let maxClockSkew = 600

    static func stringToSign(method: String, path: String, query: [(name: String, value: String)]) -> String {
        let pairs = query
            .filter { $0.name != "auth_signature" }
            .map { (name: $0.name.lowercased(), value: $0.value) }
            .sorted { $0.name != $1.name ? $0.name < $1.name : $0.value < $1.value }
        return method + "\n" + path + "\n" + pairs.map { $0.name + "=" + $0.value }.joined(separator: "&")
    }

    /// Checks a request against the app's key and secret; the error is the 401 message.
    static func verify(_ request: HTTPRequest, key: String, secret: String, now: Int) -> String? {
        guard let givenKey = request.queryValue("auth_key"),
              let timestamp = request.queryValue("auth_timestamp"),
              let signature = request.queryValue("auth_signature") else {
            return "Missing authentication parameters: auth_key, auth_timestamp and auth_signature are required"
        }
        guard request.queryValue("auth_version") == "1.0" else {
            return "Unsupported auth_version: expected 1.0"
        }
        guard givenKey == key else {
            return "Unknown auth_key \(givenKey) for this app"
        }
        // The window is computed from our clock, never from the given number, which may be any Int.
        guard let seconds = Int(timestamp), (now - maxClockSkew)...(now + maxClockSkew) ~= seconds else {
            return "Timestamp expired: given timestamp (\(timestamp)) not within \(maxClockSkew)s of server time (\(now))"
        }
        let bodyMD5 = request.queryValue("body_md5")
        if !request.body.isEmpty || bodyMD5 != nil {
            let actual = Digest.hex(Digest.md5(request.body))
            guard bodyMD5 == actual else {
                return "body_md5 does not match the body: expected \(actual)"
            }
        }
        let expected = stringToSign(method: request.method, path: request.path, query: request.query)
        let wanted = Digest.hex(Digest.hmacSHA256(key: Array(secret.utf8), message: Array(expected.utf8)))
        guard Digest.constantTimeEquals(Array(signature.utf8), Array(wanted.utf8)) else {
            return "Invalid signature: you should have sent HmacSHA256Hex(\(Self.inQuotesWithVisibleNewlines(expected)), your_secret_key), but you sent \"\(signature)\""
        }
        return nil
    }

    /// The string to sign with its newlines visible, as Pusher shows it (not JSON: nothing else
    /// is escaped, and the whole message is escaped once more in the error body).
    private static func inQuotesWithVisibleNewlines(_ text: String) -> String {
        "\"" + text.replacingNewlines() + "\""
    }
}

private extension String {
    func replacingNewlines() -> String {
        split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\\n")
    }
}
