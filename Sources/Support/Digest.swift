import COpenSSL

/// Message digests over OpenSSL's libcrypto.
public enum Digest {
    /// SHA-1, for the WebSocket accept value only (RFC 6455 §4.2.2); never for security.
    public static func sha1(_ bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(SHA_DIGEST_LENGTH))
        bytes.withUnsafeBufferPointer { input in
            digest.withUnsafeMutableBufferPointer { output in
                _ = SHA1(input.baseAddress, input.count, output.baseAddress)
            }
        }
        return digest
    }
}
