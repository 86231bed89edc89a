import Support
import Testing
@testable import Bridge

@Suite struct GzipTests {
    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// The check value of the CRC-32 catalogue, the empty input, and two common references.
    @Test func crc32KnownVectors() {
        #expect(CRC32.ieee.checksum(bytes("123456789")) == 0xCBF4_3926)
        #expect(CRC32.ieee.checksum([]) == 0)
        #expect(CRC32.ieee.checksum(bytes("a")) == 0xE8B7_BE43)
        #expect(CRC32.ieee.checksum(bytes("The quick brown fox jumps over the lazy dog")) == 0x414F_A339)
    }

    /// Raw DEFLATE streams with fixed codes. Those of literals only are byte for byte what zlib writes
    /// (`Z_FIXED`); those with matches differ from zlib's lazy choices, and were checked to inflate
    /// to their input with Python's `zlib.decompress(stream, -15)`. They cover an overlapping
    /// distance-1 match, lengths with and without extra bits, and the 258 code.
    @Test(arguments: [
        ("", "03 00"),
        ("a", "4b 04 00"),
        ("aaaaaaaaaa", "4b 84 03 00"),
        ("abcabcabcabc", "4b 4c 4a 86 23 00"),
        ("hello hello hello!", "cb 48 cd c9 c9 57 40 22 15 01"),
        (String(repeating: "x", count: 300), "ab 18 05 44 03 00"),
    ])
    func deflateMatchesReferenceStreams(input: String, expectedHex: String) {
        #expect(hex(Deflate.compress(bytes(input))) == expectedHex)
    }

    @Test func deflateWritesEveryLiteralRange() {
        // 0 and 143 have 8-bit codes, 144, 200 and 255 have 9-bit codes (zlib's bytes).
        #expect(hex(Deflate.compress([0, 255, 144, 143, 200])) == "63 f8 3f a1 ff 04 00")
    }

    @Test func headerAndTrailerFrameTheDeflateStream() {
        let input = bytes("123456789")
        let member = Gzip.compress(input)
        // ID1 ID2 CM, no flags, no mtime, XFL 0, OS unknown.
        #expect(Array(member.prefix(10)) == [0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xFF])
        #expect(Array(member.dropFirst(10).dropLast(8)) == Deflate.compress(input))
        // CRC-32 then ISIZE, both little-endian.
        #expect(Array(member.suffix(8)) == [0x26, 0x39, 0xF4, 0xCB, 9, 0, 0, 0])
    }

    @Test func emptyInputIsAValidMember() {
        #expect(Gzip.compress([]) == [0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xFF, 0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func repetitiveInputShrinks() {
        let input = bytes(String(repeating: "channel.bind('new_message', handler);\n", count: 2_000))
        let member = Gzip.compress(input)
        #expect(member.count * 50 < input.count, "\(member.count) bytes for \(input.count)")
        // ISIZE still counts every input byte.
        #expect(Array(member.suffix(4)) == [UInt8(input.count & 0xFF), UInt8(input.count >> 8 & 0xFF), UInt8(input.count >> 16), 0])
    }

    @Test func matchesReachBackAcrossMostOfTheWindow() {
        #expect(costOfRepeatingBlock(after: 30 * 1024) <= 4)
    }

    @Test func matchesNeverReachFurtherBackThanTheWindow() {
        // Too far to refer back to: the second copy costs as much as the first (at least 8 bits a literal).
        #expect(costOfRepeatingBlock(after: 40 * 1024) >= 60)
    }

    /// What a second copy of 64 distinct bytes adds to the stream when `gap` spaces separate the copies.
    private func costOfRepeatingBlock(after gap: Int) -> Int {
        let block = (0..<64).map { UInt8($0 * 4 + 1) }
        let spaces = [UInt8](repeating: 0x20, count: gap)
        return Deflate.compress(block + spaces + block).count - Deflate.compress(block + spaces).count
    }

    private func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ")
    }
}
