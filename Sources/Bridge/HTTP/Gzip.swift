import Support

/// gzip (RFC 1952) of our own, so that serving compressed assets links no zlib: a member with a
/// ten-byte header, one DEFLATE block with the fixed Huffman codes, and a CRC-32 + length trailer.
/// Assets are compressed once at start, so the encoder favours clarity over speed and ratio.
public enum Gzip {
    public static func compress(_ input: [UInt8]) -> [UInt8] {
        // ID1 ID2, CM=8 (deflate), FLG=0 (no name, no extra), MTIME=0 (none), XFL=0, OS=255 (unknown).
        var out: [UInt8] = [0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xFF]
        out += Deflate.compress(input)
        appendLittleEndian(CRC32.ieee.checksum(input), to: &out)
        // ISIZE is the input length modulo 2^32.
        appendLittleEndian(UInt32(truncatingIfNeeded: input.count), to: &out)
        return out
    }

    private static func appendLittleEndian(_ value: UInt32, to out: inout [UInt8]) {
        for shift in stride(from: 0, to: 32, by: 8) {
            out.append(UInt8(truncatingIfNeeded: value >> UInt32(shift)))
        }
    }
}

/// Raw DEFLATE (RFC 1951): greedy LZ77 matching over a 32 KiB window, written as a single final
/// block with the fixed Huffman codes (BTYPE=01), which need no code tables in the output.
enum Deflate {
    static let windowSize = 32 * 1024
    static let minMatch = 3
    static let maxMatch = 258
    /// How many earlier positions with the same 3-byte hash are tried per position: enough for
    /// text assets, and a bound on the work for inputs full of one repeated byte.
    static let maxChainLength = 32

    static func compress(_ input: [UInt8]) -> [UInt8] {
        var writer = BitWriter()
        writer.write(1, bitCount: 1)  // BFINAL: the only block
        writer.write(1, bitCount: 2)  // BTYPE=01: fixed Huffman codes
        var finder = MatchFinder(input)
        var position = 0
        while position < input.count {
            if let match = finder.longestMatch(at: position) {
                writeLength(match.length, to: &writer)
                writeDistance(match.distance, to: &writer)
                for covered in position..<(position + match.length) { finder.insert(covered) }
                position += match.length
            } else {
                writeLiteralOrLength(Int(input[position]), to: &writer)
                finder.insert(position)
                position += 1
            }
        }
        writeLiteralOrLength(endOfBlock, to: &writer)
        return writer.finish()
    }

    private static let endOfBlock = 256

    private static func writeLiteralOrLength(_ symbol: Int, to writer: inout BitWriter) {
        let code = literalOrLengthCodes[symbol]
        writer.write(code.bits, bitCount: code.bitCount)
    }

    /// The fixed literal/length codes of RFC 1951 §3.2.6 for symbols 0–287, bit-reversed once here
    /// because Huffman codes go out most significant bit first.
    private static let literalOrLengthCodes: [(bits: UInt32, bitCount: Int)] = (0..<288).map { symbol in
        switch symbol {
        case 0...143: return (BitWriter.reversed(0x30 + symbol, bitCount: 8), 8)
        case 144...255: return (BitWriter.reversed(0x190 + symbol - 144, bitCount: 9), 9)
        case 256...279: return (BitWriter.reversed(symbol - 256, bitCount: 7), 7)
        default: return (BitWriter.reversed(0xC0 + symbol - 280, bitCount: 8), 8)
        }
    }

    private static func writeLength(_ length: Int, to writer: inout BitWriter) {
        let code = lengthBases.lastIndex { $0 <= length }!
        writeLiteralOrLength(257 + code, to: &writer)
        writer.write(UInt32(length - lengthBases[code]), bitCount: lengthExtraBits[code])
    }

    /// Distance codes are all five bits long in the fixed code: the code is the symbol itself.
    private static func writeDistance(_ distance: Int, to writer: inout BitWriter) {
        let code = distanceBases.lastIndex { $0 <= distance }!
        writer.write(BitWriter.reversed(code, bitCount: 5), bitCount: 5)
        writer.write(UInt32(distance - distanceBases[code]), bitCount: distanceExtraBits[code])
    }

    // RFC 1951 §3.2.5: the base value of each length code (257–285) and distance code (0–29),
    // and how many extra bits follow it. Length 258 has a code of its own (285) with no extra bits.
    private static let lengthBases = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
                                      35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    private static let lengthExtraBits = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
                                          3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    private static let distanceBases = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
                                        257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
                                        8193, 12289, 16385, 24577]
    private static let distanceExtraBits = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
                                            7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
}

/// Finds earlier occurrences through hash chains: `head` holds the latest position of each
/// 3-byte hash, `previous` links a position to the one before it with the same hash.
private struct MatchFinder {
    private let input: [UInt8]
    private var head: [Int]
    private var previous: [Int]

    private static let hashBits = 15
    private static let none = -1

    init(_ input: [UInt8]) {
        self.input = input
        head = Array(repeating: Self.none, count: 1 << Self.hashBits)
        previous = Array(repeating: Self.none, count: Deflate.windowSize)
    }

    private func hash(at position: Int) -> Int {
        let value = Int(input[position]) << 16 | Int(input[position + 1]) << 8 | Int(input[position + 2])
        // Multiplicative hashing spreads the 24 bits over the table.
        return (value &* 2_654_435_761) >> (32 - Self.hashBits) & ((1 << Self.hashBits) - 1)
    }

    /// Records `position` as the newest start of its three bytes.
    mutating func insert(_ position: Int) {
        guard position + Deflate.minMatch <= input.count else { return }
        let key = hash(at: position)
        previous[position % Deflate.windowSize] = head[key]
        head[key] = position
    }

    /// The longest earlier match for the bytes at `position`, or nil when none reaches `minMatch`.
    func longestMatch(at position: Int) -> (length: Int, distance: Int)? {
        guard position + Deflate.minMatch <= input.count else { return nil }
        let limit = min(Deflate.maxMatch, input.count - position)
        let oldest = position - Deflate.windowSize
        var bestLength = Deflate.minMatch - 1
        var bestDistance = 0
        var candidate = head[hash(at: position)]
        var tries = 0
        input.withUnsafeBufferPointer { bytes in
            while candidate != Self.none, candidate > oldest, tries < Deflate.maxChainLength {
                // Only a candidate that also agrees one byte past the best so far can beat it.
                if bytes[candidate + bestLength] == bytes[position + bestLength] {
                    var length = 0
                    while length < limit, bytes[candidate + length] == bytes[position + length] { length += 1 }
                    if length > bestLength {
                        bestLength = length
                        bestDistance = position - candidate
                        if length == limit { break }
                    }
                }
                candidate = previous[candidate % Deflate.windowSize]
                tries += 1
            }
        }
        return bestDistance > 0 ? (bestLength, bestDistance) : nil
    }
}

/// Packs bits least significant first into bytes, as DEFLATE requires (RFC 1951 §3.1.1).
private struct BitWriter {
    private var bytes: [UInt8] = []
    private var pending: UInt64 = 0
    private var pendingCount = 0

    /// Writes the low `bitCount` bits of `value`, least significant first (header fields, extra bits).
    mutating func write(_ value: UInt32, bitCount: Int) {
        pending |= UInt64(value) << UInt64(pendingCount)
        pendingCount += bitCount
        while pendingCount >= 8 {
            bytes.append(UInt8(truncatingIfNeeded: pending))
            pending >>= 8
            pendingCount -= 8
        }
    }

    /// `code` with its low `bitCount` bits in the opposite order: a Huffman code goes out most
    /// significant bit first, so `write` must get it reversed.
    static func reversed(_ code: Int, bitCount: Int) -> UInt32 {
        var result: UInt32 = 0
        for bit in 0..<bitCount {
            result |= UInt32((code >> bit) & 1) << UInt32(bitCount - 1 - bit)
        }
        return result
    }

    /// The bytes written, the last one padded with zero bits.
    mutating func finish() -> [UInt8] {
        if pendingCount > 0 { bytes.append(UInt8(truncatingIfNeeded: pending)) }
        pending = 0
        pendingCount = 0
        return bytes
    }
}
