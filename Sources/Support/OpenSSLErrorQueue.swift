import COpenSSL

/// OpenSSL's error queue of the calling thread. It outlives a call: whatever a failed call left
/// there must be taken off at once, or the next failure (maybe another connection's, on the same
/// loop or connection thread) would be explained by it.
public enum OpenSSLErrorQueue {
    /// Empties the queue; returns its first `keeping` entries as text
    /// (`error:0A000086:SSL routines::certificate verify failed`). Only a few are kept: a hostile
    /// peer must not make us build long strings.
    @discardableResult
    public static func drain(keeping: Int = 4) -> [String] {
        var entries: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { return entries }
            guard entries.count < keeping else { continue }
            var text = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &text, text.count)
            entries.append(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
    }
}
