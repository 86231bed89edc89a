/// Table-driven CRC-32 in the reflected (LSB-first) form, one table lookup per byte, for the
/// two polynomials Bridge uses. Written here so zlib stays out of the dependencies.
public struct CRC32: Sendable {
    /// IEEE 802.3, as gzip uses it (RFC 1952 §8).
    public static let ieee = CRC32(reflectedPolynomial: 0xEDB8_8320)
    /// Castagnoli (iSCSI, ext4 metadata), the outbox records' checksum: it finds more error
    /// patterns in short records than the IEEE polynomial at the same cost.
    public static let castagnoli = CRC32(reflectedPolynomial: 0x82F6_3B78)

    private let table: [UInt32]

    private init(reflectedPolynomial polynomial: UInt32) {
        table = (0..<256).map { index in
            var crc = UInt32(index)
            for _ in 0..<8 {
                crc = crc & 1 == 1 ? (crc >> 1) ^ polynomial : crc >> 1
            }
            return crc
        }
    }

    /// The checksum of `bytes`. Passing an earlier result as `previous` continues it:
    /// `checksum(b, continuing: checksum(a)) == checksum(a + b)`.
    public func checksum(_ bytes: UnsafeRawBufferPointer, continuing previous: UInt32 = 0) -> UInt32 {
        var crc = ~previous
        table.withUnsafeBufferPointer { table in
            for byte in bytes {
                crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
            }
        }
        return ~crc
    }

    public func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }
}
