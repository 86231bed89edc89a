import COpenSSL

/// What OpenSSL reported, read from (and so cleared off) the thread's error queue. The queue is
/// per thread and shared by every connection of a loop: whatever one connection's call left there
/// must be taken before the next call, or it would be blamed on another connection.
public struct OpenSSLError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ context: String) {
        let queued = Self.drainQueue()
        description = queued.isEmpty ? context : "\(context): \(queued.joined(separator: "; "))"
    }

    /// Empties the thread's error queue and returns its entries as text.
    @discardableResult
    public static func drainQueue() -> [String] {
        var entries: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { return entries }
            // Only the first few are kept: a hostile peer must not make us build long strings.
            guard entries.count < 4 else { continue }
            var text = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &text, text.count)
            entries.append(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
    }
}
