/// What was wrong with a reply. Every malformed or oversized input ends in one of these;
/// the parser never traps on input. Texts quoted from the input are cut to 40 bytes.
public enum RESPParseError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// A value started with a byte that is not one of `+ - : $ *`.
    case unknownType(UInt8)
    /// A status, error, integer or length line ran past `maxLineLength` without CRLF.
    case lineTooLong(limit: Int)
    /// A CR inside a line was followed by this byte instead of LF.
    case carriageReturnWithoutLineFeed(followedBy: UInt8)
    /// A line ended with LF alone.
    case lineFeedWithoutCarriageReturn
    /// An integer reply (`:`) that is not a decimal 64-bit integer.
    case invalidInteger(String)
    /// A bulk (`$`) or array (`*`) length that is not a decimal number ≥ -1.
    case invalidLength(String)
    case bulkTooLong(length: Int64, limit: Int)
    case arrayTooLong(length: Int64, limit: Int)
    case nestingTooDeep(limit: Int)
    case replyTooLarge(limit: Int)
    /// The two bytes after a bulk string's payload were not CRLF; this is the first wrong one.
    case bulkStringNotTerminated(found: UInt8)

    public var description: String {
        switch self {
        case .unknownType(let byte):
            "unknown reply type byte \(Self.show(byte)) (RESP2 expects + - : $ *)"
        case .lineTooLong(let limit):
            "reply line longer than \(limit) bytes without CRLF"
        case .carriageReturnWithoutLineFeed(let byte):
            "CR followed by \(Self.show(byte)) instead of LF in a reply line"
        case .lineFeedWithoutCarriageReturn:
            "LF without CR in a reply line"
        case .invalidInteger(let text):
            "integer reply \"\(text)\" is not a 64-bit decimal integer"
        case .invalidLength(let text):
            "length \"\(text)\" is not a decimal number of at least -1"
        case .bulkTooLong(let length, let limit):
            "bulk string of \(length) bytes is over the limit of \(limit)"
        case .arrayTooLong(let length, let limit):
            "array of \(length) elements is over the limit of \(limit)"
        case .nestingTooDeep(let limit):
            "arrays nested deeper than \(limit) levels"
        case .replyTooLarge(let limit):
            "reply larger than \(limit) bytes"
        case .bulkStringNotTerminated(let byte):
            "bulk string payload followed by \(Self.show(byte)) instead of CRLF"
        }
    }

    private static func show(_ byte: UInt8) -> String {
        let hex = "0x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
        return (32..<127).contains(byte) ? "\(hex) '\(Character(Unicode.Scalar(byte)))'" : hex
    }

    /// The start of an offending line, for the error text.
    static func quote(_ line: [UInt8]) -> String {
        String(decoding: line.prefix(40), as: UTF8.self)
    }
}
