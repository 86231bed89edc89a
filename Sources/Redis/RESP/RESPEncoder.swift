/// Writes RESP2: commands as arrays of bulk strings (the only form Redis accepts from
/// clients besides inline commands), and any reply value (for tests and fake servers).
public enum RESPEncoder {
    /// `*<n>\r\n` then `$<len>\r\n<bytes>\r\n` per argument.
    public static func command(_ arguments: [any RedisArgument]) -> [UInt8] {
        var buffer: [UInt8] = []
        appendCommand(arguments, to: &buffer)
        return buffer
    }

    public static func appendCommand(_ arguments: [any RedisArgument], to buffer: inout [UInt8]) {
        appendHeader(UInt8(ascii: "*"), arguments.count, to: &buffer)
        for argument in arguments {
            argument.withRedisBytes { appendBulk($0, to: &buffer) }
        }
    }

    public static func value(_ value: RESPValue) -> [UInt8] {
        var buffer: [UInt8] = []
        appendValue(value, to: &buffer)
        return buffer
    }

    /// Writes a reply. A simple string or error containing CR or LF cannot be written
    /// faithfully in RESP2; those bytes are replaced by spaces.
    public static func appendValue(_ value: RESPValue, to buffer: inout [UInt8]) {
        switch value {
        case .simpleString(let text):
            appendLine(UInt8(ascii: "+"), text, to: &buffer)
        case .error(let text):
            appendLine(UInt8(ascii: "-"), text, to: &buffer)
        case .integer(let number):
            appendHeader(UInt8(ascii: ":"), number, to: &buffer)
        case .bulkString(let bytes):
            bytes.withUnsafeBytes { appendBulk($0, to: &buffer) }
        case .array(let elements):
            appendHeader(UInt8(ascii: "*"), elements.count, to: &buffer)
            for element in elements { appendValue(element, to: &buffer) }
        case .null:
            buffer.append(contentsOf: "$-1\r\n".utf8)
        }
    }

    private static func appendBulk(_ bytes: UnsafeRawBufferPointer, to buffer: inout [UInt8]) {
        appendHeader(UInt8(ascii: "$"), bytes.count, to: &buffer)
        buffer.append(contentsOf: bytes)
        buffer.append(contentsOf: crlf)
    }

    private static func appendHeader(_ type: UInt8, _ number: some BinaryInteger, to buffer: inout [UInt8]) {
        buffer.append(type)
        buffer.append(contentsOf: String(number).utf8)
        buffer.append(contentsOf: crlf)
    }

    private static func appendLine(_ type: UInt8, _ text: String, to buffer: inout [UInt8]) {
        buffer.append(type)
        for byte in text.utf8 {
            buffer.append(byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") ? UInt8(ascii: " ") : byte)
        }
        buffer.append(contentsOf: crlf)
    }

    private static let crlf: [UInt8] = [UInt8(ascii: "\r"), UInt8(ascii: "\n")]
}
