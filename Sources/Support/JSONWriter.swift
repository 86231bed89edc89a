/// The one way Bridge writes JSON for the wire: Pusher frames, HTTP API answers, error bodies,
/// webhook bodies. Compact (no spaces), members in call order, written straight into one byte
/// buffer: strings are escaped as they are copied and integers written digit by digit, so a
/// Pusher envelope costs one allocation however it nests.
///
///     let body = JSONWriter.object {
///         $0.field("channel", name)
///         $0.field("subscription_count", count)
///         $0.rawField("data", alreadyEncodedJSON)
///     }.text
///
/// It checks nothing: a field outside an object, or raw text that is not JSON, is written as asked.
public struct JSONWriter {
    /// The UTF-8 JSON text written so far.
    public private(set) var bytes: [UInt8]
    /// No member of the innermost open object or array written yet: the next needs no comma.
    private var atFirstMember = true

    public init(reservingCapacity capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var text: String { String(decoding: bytes, as: UTF8.self) }

    /// A whole JSON object: `{` + what `members` writes + `}`.
    public static func object(reservingCapacity capacity: Int = 64, _ members: (inout JSONWriter) -> Void) -> JSONWriter {
        var writer = JSONWriter(reservingCapacity: capacity)
        writer.object(members)
        return writer
    }

    /// A whole JSON array: `[` + what `elements` writes + `]`.
    public static func array(reservingCapacity capacity: Int = 64, _ elements: (inout JSONWriter) -> Void) -> JSONWriter {
        var writer = JSONWriter(reservingCapacity: capacity)
        writer.array(elements)
        return writer
    }

    /// `text` as a JSON string literal, quotes included (RFC 8259 §7): for messages that show a value.
    public static func quoted(_ text: String) -> String {
        var writer = JSONWriter(reservingCapacity: text.utf8.count + 2)
        writer.string(text)
        return writer.text
    }

    // MARK: Values: array elements, or the whole text

    public mutating func string(_ text: String) {
        beginMember()
        appendString(text)
    }

    public mutating func int(_ value: Int) {
        beginMember()
        appendInt(value)
    }

    public mutating func bool(_ value: Bool) {
        beginMember()
        appendBool(value)
    }

    public mutating func null() {
        beginMember()
        bytes.append(contentsOf: Self.nullLiteral)
    }

    /// JSON text that is already encoded (a parsed number's text, a stored member's info), copied as is.
    public mutating func raw(_ json: String) {
        beginMember()
        bytes.append(contentsOf: json.utf8)
    }

    public mutating func raw(_ json: ArraySlice<UInt8>) {
        beginMember()
        bytes.append(contentsOf: json)
    }

    public mutating func object(_ members: (inout JSONWriter) -> Void) {
        beginMember()
        appendContainer(open: Self.openBrace, close: Self.closeBrace, members)
    }

    public mutating func array(_ elements: (inout JSONWriter) -> Void) {
        beginMember()
        appendContainer(open: Self.openBracket, close: Self.closeBracket, elements)
    }

    // MARK: Fields: members of the object being written

    public mutating func field(_ name: String, _ value: String) {
        appendKey(name)
        appendString(value)
    }

    public mutating func field(_ name: String, _ value: Int) {
        appendKey(name)
        appendInt(value)
    }

    public mutating func field(_ name: String, _ value: Int64) {
        appendKey(name)
        appendInteger(negative: value < 0, magnitude: value.magnitude)
    }

    public mutating func field(_ name: String, _ value: UInt64) {
        appendKey(name)
        appendInteger(negative: false, magnitude: value)
    }

    public mutating func field(_ name: String, _ value: Bool) {
        appendKey(name)
        appendBool(value)
    }

    /// A member whose one value `value` writes (with `string`, `int`, `object`, …).
    public mutating func field(_ name: String, _ value: (inout JSONWriter) -> Void) {
        appendKey(name)
        atFirstMember = true
        value(&self)
        atFirstMember = false
    }

    /// The string, or `null` when there is none (a missing value is still named).
    public mutating func field(_ name: String, orNull value: String?) {
        appendKey(name)
        if let value { appendString(value) } else { bytes.append(contentsOf: Self.nullLiteral) }
    }

    /// The integer, or `null` when there is none.
    public mutating func field(_ name: String, orNull value: Int?) {
        appendKey(name)
        if let value { appendInt(value) } else { bytes.append(contentsOf: Self.nullLiteral) }
    }

    /// A member whose value is JSON text already encoded, copied as is.
    public mutating func rawField(_ name: String, _ json: String) {
        appendKey(name)
        bytes.append(contentsOf: json.utf8)
    }

    public mutating func rawField(_ name: String, _ json: ArraySlice<UInt8>) {
        appendKey(name)
        bytes.append(contentsOf: json)
    }

    public mutating func rawField(_ name: String, _ json: [UInt8]) {
        appendKey(name)
        bytes.append(contentsOf: json)
    }

    public mutating func objectField(_ name: String, _ members: (inout JSONWriter) -> Void) {
        appendKey(name)
        appendContainer(open: Self.openBrace, close: Self.closeBrace, members)
    }

    public mutating func arrayField(_ name: String, _ elements: (inout JSONWriter) -> Void) {
        appendKey(name)
        appendContainer(open: Self.openBracket, close: Self.closeBracket, elements)
    }

    // MARK: Writing

    private mutating func beginMember() {
        if !atFirstMember { bytes.append(Self.comma) }
        atFirstMember = false
    }

    private mutating func appendKey(_ name: String) {
        beginMember()
        appendString(name)
        bytes.append(Self.colon)
    }

    private mutating func appendContainer(open: UInt8, close: UInt8, _ members: (inout JSONWriter) -> Void) {
        bytes.append(open)
        atFirstMember = true
        members(&self)
        bytes.append(close)
        // Back in the enclosing container, which now has this member.
        atFirstMember = false
    }

    private mutating func appendBool(_ value: Bool) {
        bytes.append(contentsOf: value ? Self.trueLiteral : Self.falseLiteral)
    }

    private mutating func appendInt(_ value: Int) {
        appendInteger(negative: value < 0, magnitude: UInt64(value.magnitude))
    }

    /// Digits written in place, least significant last; `Int.min`'s magnitude fits in `UInt64`.
    private mutating func appendInteger(negative: Bool, magnitude: UInt64) {
        if negative { bytes.append(UInt8(ascii: "-")) }
        var magnitude = magnitude
        var digits = 1
        var rest = magnitude / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digits))
        var index = bytes.count
        repeat {
            index -= 1
            bytes[index] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: magnitude % 10)
            magnitude /= 10
        } while magnitude > 0
    }

    private mutating func appendString(_ text: String) {
        bytes.append(Self.quote)
        var text = text
        text.withUTF8 { appendEscaped($0) }
        bytes.append(Self.quote)
    }

    /// RFC 8259 §7: `"` and `\` escaped, control characters as `\n`-style or `\u00XX` escapes; all
    /// else (DEL, non-ASCII, U+2028) as it is. Runs without escapes are copied whole.
    private mutating func appendEscaped(_ utf8: UnsafeBufferPointer<UInt8>) {
        var runStart = 0
        for index in 0..<utf8.count {
            let byte = utf8[index]
            guard byte < 0x20 || byte == Self.quote || byte == Self.backslash else { continue }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
            bytes.append(Self.backslash)
            switch byte {
            case Self.quote, Self.backslash: bytes.append(byte)
            case 0x0A: bytes.append(UInt8(ascii: "n"))
            case 0x0D: bytes.append(UInt8(ascii: "r"))
            case 0x09: bytes.append(UInt8(ascii: "t"))
            case 0x08: bytes.append(UInt8(ascii: "b"))
            case 0x0C: bytes.append(UInt8(ascii: "f"))
            default:
                bytes.append(UInt8(ascii: "u"))
                bytes.append(UInt8(ascii: "0"))
                bytes.append(UInt8(ascii: "0"))
                bytes.append(Self.hexDigit(byte >> 4))
                bytes.append(Self.hexDigit(byte & 0xF))
            }
            runStart = index + 1
        }
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? 0x30 + nibble : 0x61 + nibble - 10 }

    private static let quote = UInt8(ascii: "\"")
    private static let backslash = UInt8(ascii: "\\")
    private static let comma = UInt8(ascii: ",")
    private static let colon = UInt8(ascii: ":")
    private static let openBrace = UInt8(ascii: "{")
    private static let closeBrace = UInt8(ascii: "}")
    private static let openBracket = UInt8(ascii: "[")
    private static let closeBracket = UInt8(ascii: "]")
    private static let nullLiteral: [UInt8] = Array("null".utf8)
    private static let trueLiteral: [UInt8] = Array("true".utf8)
    private static let falseLiteral: [UInt8] = Array("false".utf8)
}
