/// Incremental UTF-8 validation (RFC 3629 §4) that can resume at any byte, so a
/// text message is checked fragment by fragment, chunk by chunk, as it arrives
/// and rejected at the first byte that cannot start or continue a valid sequence
/// (RFC 6455 §8.1: fail the connection as soon as the data is known to be invalid).
///
/// The state is the number of continuation bytes still owed and the range the
/// next byte must fall in. That range is 80–BF except right after the lead bytes
/// whose second byte is narrower: that is where overlong forms (E0, F0),
/// surrogates U+D800–DFFF (ED) and code points above U+10FFFF (F4) are excluded.
/// Lead bytes C0, C1 and F5–FF can never appear.
public struct UTF8Validator: Sendable {
    private var owed: UInt8 = 0
    private var low: UInt8 = 0x80
    private var high: UInt8 = 0xBF

    public init() {}

    /// True when no sequence is cut short: check this at the end of the message.
    public var isComplete: Bool { owed == 0 }

    public mutating func reset() {
        self = UTF8Validator()
    }

    /// Validates the next bytes of the stream. Returns the offset in `bytes` of the
    /// first invalid byte, or nil when everything so far is (a prefix of) valid UTF-8.
    /// After a non-nil result the state is unspecified until `reset()`.
    public mutating func validate(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard let base = bytes.baseAddress else { return nil }
        let count = bytes.count
        var i = 0
        while i < count {
            if owed == 0 {
                // Text is mostly ASCII: skip it a word at a time.
                while i &+ 8 <= count,
                      base.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                    i &+= 8
                }
                if i == count { break }
                switch base.load(fromByteOffset: i, as: UInt8.self) {
                case 0x00...0x7F: break
                case 0xC2...0xDF: expect(1, 0x80, 0xBF)
                case 0xE0: expect(2, 0xA0, 0xBF)
                case 0xE1...0xEC, 0xEE, 0xEF: expect(2, 0x80, 0xBF)
                case 0xED: expect(2, 0x80, 0x9F)
                case 0xF0: expect(3, 0x90, 0xBF)
                case 0xF1...0xF3: expect(3, 0x80, 0xBF)
                case 0xF4: expect(3, 0x80, 0x8F)
                default: return i
                }
            } else {
                let byte = base.load(fromByteOffset: i, as: UInt8.self)
                guard byte >= low && byte <= high else { return i }
                expect(owed &- 1, 0x80, 0xBF)
            }
            i &+= 1
        }
        return nil
    }

    /// Whether `bytes` is, on its own, complete and valid UTF-8.
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var validator = UTF8Validator()
        return validator.validate(bytes) == nil && validator.isComplete
    }

    public static func isValid(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { isValid($0) }
    }

    private mutating func expect(_ owed: UInt8, _ low: UInt8, _ high: UInt8) {
        self.owed = owed
        self.low = low
        self.high = high
    }
}
