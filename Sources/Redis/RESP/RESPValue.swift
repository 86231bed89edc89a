/// One RESP2 reply from Redis.
///
/// Only RESP2 is spoken: the client never sends `HELLO 3`, so Redis 7 never sends the
/// RESP3 types (maps, sets, doubles, pushes…); a RESP3 type byte is reported as
/// `RESPParseError.unknownType`. RESP2's two nulls (`$-1` and `*-1`) are one `.null`.
public enum RESPValue: Equatable, Hashable, Sendable {
    /// `+OK`: a status line. Redis only sends ASCII here; other bytes are decoded leniently.
    case simpleString(String)
    /// `-ERR …`: an error reply. At the top of a reply the client turns it into
    /// `RedisError.server`; inside an array (EXEC, EVAL results) it stays a value.
    case error(String)
    /// `:42`
    case integer(Int64)
    /// `$5\r\nhello`: binary-safe bytes.
    case bulkString([UInt8])
    /// `*2\r\n…`
    case array([RESPValue])
    /// `$-1` or `*-1`: no value (a missing key, a timed-out blocking pop).
    case null
}

extension RESPValue {
    /// The text of a simple or bulk string (bulk bytes decoded as UTF-8, leniently).
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let bytes): String(decoding: bytes, as: UTF8.self)
        default: nil
        }
    }

    /// The bytes of a bulk or simple string.
    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let bytes): bytes
        case .simpleString(let text): Array(text.utf8)
        default: nil
        }
    }

    public var integer: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    public var array: [RESPValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    public var isNull: Bool { self == .null }
}

extension RESPValue: CustomStringConvertible {
    /// A short rendering for logs and error texts: `+OK`, `-ERR x`, `:5`, `"bytes"`, `nil`,
    /// `[a, b]`. Arrays are cut at 8 elements, bulk strings at 40 bytes and escaped where not printable ASCII.
    public var description: String {
        switch self {
        case .simpleString(let text): "+" + text
        case .error(let text): "-" + text
        case .integer(let number): ":" + String(number)
        case .null: "nil"
        case .array(let elements):
            "[" + elements.prefix(8).map(\.description).joined(separator: ", ") + (elements.count > 8 ? ", …]" : "]")
        case .bulkString(let bytes): Self.printable(bytes)
        }
    }

    /// In quotes, cut at 40 bytes, other bytes than printable ASCII as `\xNN` (a log rendering, not JSON).
    private static func printable(_ bytes: [UInt8]) -> String {
        var text = "\""
        for byte in bytes.prefix(40) {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): text += "\\" + String(Unicode.Scalar(byte))
            case 32..<127: text.unicodeScalars.append(Unicode.Scalar(byte))
            default: text += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
            }
        }
        return text + (bytes.count > 40 ? "…\"" : "\"")
    }
}
