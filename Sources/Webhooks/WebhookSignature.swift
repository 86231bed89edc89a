import COpenSSL

/// The Pusher webhook signature: `X-Pusher-Signature` is the lowercase hex
/// HMAC-SHA256 of the raw request body, keyed with the app secret (PROTOCOL.md §1.16).
public enum WebhookSignature {
    /// Lowercase hex HMAC-SHA256 of `body` under `secret`.
    public static func sign(body: [UInt8], secret: String) -> String {
        let digest = hmacSHA256(key: Array(secret.utf8), data: body)
        let hexDigits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(digest.count * 2)
        for byte in digest {
            hex.append(hexDigits[Int(byte >> 4)])
            hex.append(hexDigits[Int(byte & 0x0f)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    /// Whether `signature` is the signature of `body` under `secret`, compared
    /// in constant time. Only the lowercase hex form that `sign` produces matches.
    public static func isValid(body: [UInt8], secret: String, signature: String) -> Bool {
        let expected = Array(sign(body: body, secret: secret).utf8)
        let given = Array(signature.utf8)
        // The length of a correct signature is public (64), so rejecting early leaks nothing.
        guard given.count == expected.count else { return false }
        return CRYPTO_memcmp(expected, given, expected.count) == 0
    }

    private static func hmacSHA256(key: [UInt8], data: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        // OpenSSL treats a NULL key as "reuse the previous key", so an empty
        // secret or body still needs a real pointer.
        var placeholder: UInt8 = 0
        let result = withUnsafePointer(to: &placeholder) { placeholder in
            key.withUnsafeBufferPointer { key in
                data.withUnsafeBufferPointer { data in
                    HMAC(EVP_sha256(), key.baseAddress ?? placeholder, Int32(key.count),
                         data.baseAddress ?? placeholder, data.count, &digest, &length)
                }
            }
        }
        precondition(result != nil, "HMAC-SHA256 failed: OpenSSL could not allocate its context")
        return Array(digest.prefix(Int(length)))
    }
}
