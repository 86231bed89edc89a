import Support

extension OpenSSLErrorQueue {
    /// A `tlsFailed` reason: `what`, then the first entries the queue held (which this empties).
    static func failure(_ what: String) -> RedisDisconnectReason {
        let entries = drain(keeping: 3)
        return .tlsFailed(entries.isEmpty ? what : "\(what) (\(entries.joined(separator: "; ")))")
    }
}
