import COpenSSL

/// OpenSSL's error queue of the calling thread. Each connection has a thread of its own, but the
/// queue outlives a call: whatever a failed call left there is taken off at once, or the next
/// failure would be explained by it.
enum OpenSSLErrorQueue {
    /// Entries kept for a disconnect reason; the rest are read and dropped.
    static let keptEntries = 3

    /// Empties the queue; returns its first entries as text
    /// (`error:0A000086:SSL routines::certificate verify failed`).
    @discardableResult
    static func drain() -> [String] {
        var entries: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { return entries }
            guard entries.count < keptEntries else { continue }
            var text = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &text, text.count)
            entries.append(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
    }

    /// A `tlsFailed` reason: `what`, then what the queue held (which this empties).
    static func failure(_ what: String) -> RedisDisconnectReason {
        let entries = drain()
        return .tlsFailed(entries.isEmpty ? what : "\(what) (\(entries.joined(separator: "; ")))")
    }
}
