import Support

/// The framing of one record in a segment file. Integers are little-endian:
///
///     kind    UInt8    0x45 "E": an entry; 0x41 "A": an acknowledgement
///     length  UInt32   byte count of the body
///     body             entry: id (UInt64) then the payload; ack: id (UInt64)
///     crc     UInt32   CRC-32C of kind, length and body
///
/// Neither kind byte is 0x00 or 0xFF, so zero-filled or erased space never reads as a record.
enum OutboxRecord {
    enum Kind: UInt8 {
        case entry = 0x45
        case ack = 0x41
    }

    static let headerSize = 5  // kind + length
    static let idSize = 8
    static let trailerSize = 4  // crc
    /// What a record adds around its payload: 17 bytes.
    static let overhead = headerSize + idSize + trailerSize
    /// The largest payload accepted: far above any webhook body, and a bound on what
    /// recovery allocates when a corrupt length field slips past the kind check.
    static let maxPayload = 16 << 20

    /// Ids are 1...2^62. Larger ones only come from a crafted file, and refusing them keeps
    /// `id + 1` and the id reservation from overflowing. At a million appends a second
    /// 2^62 lasts 146,000 years.
    static let maxId: UInt64 = 1 << 62

    static func size(payloadCount: Int) -> Int {
        overhead + payloadCount
    }

    /// Appends the framed record to `buffer`, so several records can go out in one write.
    static func encode(_ kind: Kind, id: UInt64, payload: [UInt8] = [], into buffer: inout [UInt8]) {
        let start = buffer.count
        buffer.append(kind.rawValue)
        appendLittleEndian(UInt32(idSize + payload.count), to: &buffer)
        appendLittleEndian(id, to: &buffer)
        buffer.append(contentsOf: payload)
        let crc = buffer.withUnsafeBytes { CRC32.castagnoli.checksum(UnsafeRawBufferPointer(rebasing: $0[start...])) }
        appendLittleEndian(crc, to: &buffer)
    }

    struct Decoded {
        let kind: Kind
        let id: UInt64
        let payload: [UInt8]  // empty for an ack
        let size: Int  // of the whole framed record
    }

    enum Scan {
        case record(Decoded)
        case end  // exactly at the end of the bytes: a clean finish
        case torn(String)  // the bytes end inside a record: a write cut short
        case corrupt(String)  // a complete record that fails its checks
    }

    /// Reads the record at `offset`, trusting nothing until the checksum matches.
    static func decode(_ bytes: [UInt8], at offset: Int) -> Scan {
        let remaining = bytes.count - offset
        if remaining == 0 { return .end }
        if remaining < headerSize {
            return .torn("\(remaining) byte(s) left, too few for a record header")
        }
        guard let kind = Kind(rawValue: bytes[offset]) else {
            return .corrupt("unknown record kind 0x\(String(bytes[offset], radix: 16))")
        }
        let length = Int(readLittleEndian(UInt32.self, from: bytes, at: offset + 1))
        let maxLength = kind == .ack ? idSize : idSize + maxPayload
        guard length >= idSize, length <= maxLength else {
            return .corrupt("impossible body length \(length) for kind \(kind)")
        }
        let size = headerSize + length + trailerSize
        guard size <= remaining else {
            return .torn("a \(size)-byte record but only \(remaining) byte(s) left")
        }
        let bodyEnd = offset + headerSize + length
        let computed = bytes.withUnsafeBytes { CRC32.castagnoli.checksum(UnsafeRawBufferPointer(rebasing: $0[offset..<bodyEnd])) }
        guard readLittleEndian(UInt32.self, from: bytes, at: bodyEnd) == computed else {
            return .corrupt("checksum mismatch")
        }
        let id = readLittleEndian(UInt64.self, from: bytes, at: offset + headerSize)
        guard id >= 1, id <= maxId else { return .corrupt("impossible id \(id)") }
        let payload = Array(bytes[(offset + headerSize + idSize)..<bodyEnd])
        return .record(Decoded(kind: kind, id: id, payload: payload, size: size))
    }

    private static func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to buffer: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { buffer.append(contentsOf: $0) }
    }

    private static func readLittleEndian<T: FixedWidthInteger>(_: T.Type, from bytes: [UInt8], at offset: Int) -> T {
        bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }
}
