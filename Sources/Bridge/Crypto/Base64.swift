import COpenSSL

/// Standard base64 with padding (RFC 4648 §4) over OpenSSL's libcrypto.
enum Base64 {
    static func encode(_ bytes: [UInt8]) -> String {
        let length = 4 * ((bytes.count + 2) / 3)
        // EVP_EncodeBlock writes a terminating NUL after the text.
        var text = [UInt8](repeating: 0, count: length + 1)
        let written = bytes.withUnsafeBufferPointer { input in
            text.withUnsafeMutableBufferPointer { output in
                EVP_EncodeBlock(output.baseAddress, input.baseAddress, Int32(input.count))
            }
        }
        precondition(Int(written) == length, "EVP_EncodeBlock wrote an unexpected length")
        return String(decoding: text[..<length], as: UTF8.self)
    }

    /// Decodes strict base64: a multiple of four characters from the standard alphabet,
    /// with `=` padding only at the end. Returns nil for anything else (whitespace included).
    static func decode(_ text: String) -> [UInt8]? {
        let input = Array(text.utf8)
        guard input.count % 4 == 0 else { return nil }
        guard !input.isEmpty else { return [] }
        var padding = 0
        if input[input.count - 1] == UInt8(ascii: "=") { padding += 1 }
        if input[input.count - 2] == UInt8(ascii: "=") { padding += 1 }
        // EVP_DecodeBlock skips surrounding whitespace and accepts `=` mid-text, so check first.
        for byte in input[..<(input.count - padding)] where !isAlphabet(byte) { return nil }
        var output = [UInt8](repeating: 0, count: input.count / 4 * 3)
        let decoded = input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { destination in
                EVP_DecodeBlock(destination.baseAddress, source.baseAddress, Int32(source.count))
            }
        }
        guard decoded == Int32(output.count) else { return nil }
        // EVP_DecodeBlock counts each padding character as a zero output byte.
        output.removeLast(padding)
        return output
    }

    /// base64url without padding (RFC 4648 §5), as JWTs use it (RFC 7515 §2).
    static func encodeURL(_ bytes: [UInt8]) -> String {
        var text = encode(bytes)
        while text.last == "=" { text.removeLast() }
        return String(text.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
    }

    /// Decodes canonical unpadded base64url; nil for padding, the standard alphabet's `+`/`/`, or a bad length.
    static func decodeURL(_ text: String) -> [UInt8]? {
        guard !text.contains("+"), !text.contains("/"), !text.contains("="), text.utf8.count % 4 != 1 else { return nil }
        var standard = String(text.map { $0 == "-" ? "+" : $0 == "_" ? "/" : $0 })
        standard += String(repeating: "=", count: (4 - standard.utf8.count % 4) % 4)
        // Only the canonical spelling: unused low bits in the last character must be zero, so
        // one token has one text (a JWT with a flipped padding bit is a different token).
        guard let bytes = decode(standard), encodeURL(bytes) == text else { return nil }
        return bytes
    }

    private static func isAlphabet(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"):
            return true
        default:
            return false
        }
    }
}
