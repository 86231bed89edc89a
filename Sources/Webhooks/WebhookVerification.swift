import Foundation

/// What a receiver checks before trusting a webhook, the same rules as the official libraries
/// (PROTOCOL.md §1.16): the key is the app's, the signature is the HMAC of the exact body, and
/// the body is JSON whose `time_ms` is within five minutes of the receiver's clock.
public enum WebhookVerification {
    public static let maxAgeMs: Int64 = 300_000

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case wrongKey(received: String)
        case badSignature
        case notJSON
        case stale(ageMs: Int64)

        public var description: String {
            switch self {
            case .wrongKey(let received): "X-Pusher-Key \(received) is not this app's key"
            case .badSignature: "X-Pusher-Signature is not the HMAC-SHA256 of this body under this secret"
            case .notJSON: "the body is not a JSON object with a numeric time_ms"
            case .stale(let age): "time_ms is \(age / 1000) s away from now (the libraries accept 300 s)"
            }
        }
    }

    /// Nil when the webhook is valid. `receivedKey` is the `X-Pusher-Key` header, when known.
    public static func check(body: [UInt8], signature: String, secret: String, key: String? = nil,
                             receivedKey: String? = nil, nowMs: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) -> Failure? {
        if let key, let receivedKey, key != receivedKey { return .wrongKey(received: receivedKey) }
        guard WebhookSignature.isValid(body: body, secret: secret, signature: signature) else { return .badSignature }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
              let time = (object["time_ms"] as? NSNumber)?.int64Value else { return .notJSON }
        // `time_ms` may be any Int64: the difference is clamped rather than allowed to overflow.
        let (difference, overflow) = nowMs.subtractingReportingOverflow(time)
        let age = overflow || difference == .min ? Int64.max : Swift.abs(difference)
        return age > maxAgeMs ? .stale(ageMs: age) : nil
    }
}
