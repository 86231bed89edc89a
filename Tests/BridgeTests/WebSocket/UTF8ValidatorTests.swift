import Testing
@testable import Bridge

private func firstInvalid(_ bytes: [UInt8]) -> Int? {
    var validator = UTF8Validator()
    return bytes.withUnsafeBytes { validator.validate($0) }
}

struct UTF8ValidatorTests {
    static let valid: [[UInt8]] = [
        [],
        Array("Hello, world".utf8),
        Array("κόσμε".utf8),
        [0x00],
        [0x7F],
        [0xC2, 0x80],                   // U+0080, smallest 2-byte
        [0xDF, 0xBF],                   // U+07FF
        [0xE0, 0xA0, 0x80],             // U+0800, smallest 3-byte
        [0xED, 0x9F, 0xBF],             // U+D7FF, just below the surrogates
        [0xEE, 0x80, 0x80],             // U+E000, just above them
        [0xEF, 0xBF, 0xBE],             // U+FFFE: a noncharacter, still valid UTF-8
        [0xEF, 0xBF, 0xBF],             // U+FFFF
        [0xF0, 0x90, 0x80, 0x80],       // U+10000, smallest 4-byte
        [0xF3, 0xBF, 0xBF, 0xBF],
        [0xF4, 0x8F, 0xBF, 0xBF],       // U+10FFFF, the largest code point
        Array("ascii run long enough for the word-at-a-time path, then é and 𝄞 and more ascii".utf8),
    ]

    /// Invalid input with the offset of the first byte that proves it invalid.
    static let invalid: [([UInt8], Int)] = [
        ([0x80], 0),                        // continuation without a lead
        ([0xBF], 0),
        ([0xC0, 0x80], 0),                  // overlong NUL
        ([0xC1, 0xBF], 0),                  // overlong U+007F
        ([0xE0, 0x80, 0x80], 1),            // overlong 3-byte
        ([0xE0, 0x9F, 0xBF], 1),            // overlong U+07FF
        ([0xF0, 0x80, 0x80, 0x80], 1),      // overlong 4-byte
        ([0xF0, 0x8F, 0xBF, 0xBF], 1),      // overlong U+FFFF
        ([0xED, 0xA0, 0x80], 1),            // U+D800, a surrogate
        ([0xED, 0xBF, 0xBF], 1),            // U+DFFF
        ([0xF4, 0x90, 0x80, 0x80], 1),      // U+110000, above the last code point
        ([0xF5, 0x80, 0x80, 0x80], 0),
        ([0xF8, 0x88, 0x80, 0x80, 0x80], 0),// 5-byte form
        ([0xFE], 0),
        ([0xFF], 0),
        ([0xC2, 0x41], 1),                  // sequence cut by ASCII
        ([0xE2, 0x82, 0x41], 2),
        ([0xF0, 0x9D, 0x84, 0xC2], 3),
        (Array("hello".utf8) + [0xFF], 5),
        (Array("sixteen bytes!!!".utf8) + [0x80] + Array("tail".utf8), 16),
        // Autobahn 6.3.1: "κόσμε" followed by an encoded surrogate.
        ([0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80, 0x65, 0x64, 0x69, 0x74, 0x65, 0x64], 12),
    ]

    static let truncated: [[UInt8]] = [
        [0xC2], [0xE0, 0xA0], [0xE2, 0x82], [0xF0, 0x90, 0x80], [0xF4], Array("ok".utf8) + [0xF0, 0x9D],
    ]

    @Test(arguments: valid)
    func acceptsValidUTF8(bytes: [UInt8]) {
        #expect(UTF8Validator.isValid(bytes))
    }

    @Test(arguments: valid)
    func acceptsValidUTF8SplitAnywhere(bytes: [UInt8]) {
        for split in 0...bytes.count {
            var validator = UTF8Validator()
            #expect(bytes[..<split].withUnsafeBytes { validator.validate($0) } == nil)
            #expect(bytes[split...].withUnsafeBytes { validator.validate($0) } == nil)
            #expect(validator.isComplete)
        }
    }

    @Test(arguments: invalid)
    func reportsTheFirstInvalidByte(bytes: [UInt8], position: Int) {
        #expect(firstInvalid(bytes) == position)
        #expect(!UTF8Validator.isValid(bytes))
    }

    /// Fed one byte at a time, validation fails on exactly the invalid byte, not later.
    @Test(arguments: invalid)
    func failsOnTheInvalidByteWhenFedByteByByte(bytes: [UInt8], position: Int) {
        var validator = UTF8Validator()
        for index in 0...position {
            let result = [bytes[index]].withUnsafeBytes { validator.validate($0) }
            #expect(result == (index == position ? 0 : nil))
        }
    }

    @Test(arguments: truncated)
    func aTruncatedSequenceIsAValidPrefixButIncomplete(bytes: [UInt8]) {
        var validator = UTF8Validator()
        #expect(bytes.withUnsafeBytes { validator.validate($0) } == nil)
        #expect(!validator.isComplete)
        #expect(!UTF8Validator.isValid(bytes))
    }

    @Test func resetForgetsAPendingSequence() {
        var validator = UTF8Validator()
        _ = [UInt8]([0xE2]).withUnsafeBytes { validator.validate($0) }
        validator.reset()
        #expect(validator.isComplete)
        #expect([UInt8]([0x41]).withUnsafeBytes { validator.validate($0) } == nil)
    }

    /// Agrees with the standard library's strict decoder on random byte strings
    /// drawn mostly from the bytes that make or break UTF-8.
    @Test func agreesWithTheStandardLibrary() {
        let interesting: [UInt8] = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
                                    0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
        var random = FrameTestRandom(state: 6455)
        for _ in 0..<20_000 {
            let count = Int.random(in: 0...12, using: &random)
            let bytes = (0..<count).map { _ in
                Bool.random(using: &random) ? interesting.randomElement(using: &random)! : UInt8.random(in: 0...255, using: &random)
            }
            let expected = String(validating: bytes, as: UTF8.self) != nil
            #expect(UTF8Validator.isValid(bytes) == expected, "\(bytes)")
        }
    }
}
