import COpenSSL
import Support

/// Secrets and ids from OpenSSL's CSPRNG.
public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard RAND_bytes(&bytes, Int32(count)) == 1 else { preconditionFailure("the OpenSSL CSPRNG failed") }
        return bytes
    }

    /// `count` random bytes as lowercase hex (2 × count characters).
    public static func hex(_ count: Int) -> String {
        Digest.hex(bytes(count))
    }
}
