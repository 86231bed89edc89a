import Support

/// The Pusher webhook signature: `X-Pusher-Signature` is the lowercase hex
/// HMAC-SHA256 of the raw request body, keyed with the app secret (PROTOCOL.md §1.16).
public enum WebhookSignature {
    /// Lowercase hex HMAC-SHA256 of `body` under `secret`.
    public static func sign(body: [UInt8], secret: String) -> String {
        Digest.hex(Digest.hmacSHA256(key: Array(secret.utf8), message: body))
    }

    /// Whether `signature` is the signature of `body` under `secret`, compared
    /// in constant time. Only the lowercase hex form that `sign` produces matches.
    public static func isValid(body: [UInt8], secret: String, signature: String) -> Bool {
        Digest.constantTimeEquals(Array(sign(body: body, secret: secret).utf8), Array(signature.utf8))
    }
}
