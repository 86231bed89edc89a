/// Strict RFC 8259 parsing of one JSON text into a `JSON` value.
///
/// Runs on every client WebSocket message, so it walks the raw bytes with an index, validates
/// UTF-8 only inside strings (the only place non-ASCII may appear), and builds Strings only for
/// keys, string values and number texts. Containers are tracked on an explicit stack, so even a
/// generous `maxDepth` cannot overflow the call stack.
public enum JSONParser {
    public static let defaultMaxDepth = 64

    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth) throws(JSONError) -> JSON {
        var reader = JSONReader(bytes: bytes, maxDepth: maxDepth)
        return try reader.parseDocument()
    }

    public static func parse(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws(JSONError) -> JSON {
        // withUnsafeBytes only rethrows untyped errors, so the outcome is carried out in a Result.
        let outcome = bytes.withUnsafeBytes { buffer in
            Result { () throws(JSONError) in try parse(buffer, maxDepth: maxDepth) }
        }
        return try outcome.get()
    }

    public static func parse(_ text: String, maxDepth: Int = defaultMaxDepth) throws(JSONError) -> JSON {
        var text = text
        let outcome = text.withUTF8 { buffer in
            Result { () throws(JSONError) in try parse(UnsafeRawBufferPointer(buffer), maxDepth: maxDepth) }
        }
        return try outcome.get()
    }
}

/// The state of one parse: the input, the read position and the containers still open.
private struct JSONReader {
    /// A container whose closing bracket has not been read yet.
    private struct OpenContainer {
        let isObject: Bool
        var elements: [JSON] = []
        var members: [JSONObject.Member] = []
        /// The member being read: its key, and where its value starts.
        var key = ""
        var valueStart = 0
    }

    private let bytes: UnsafeRawBufferPointer
    private let maxDepth: Int
    private var index = 0
    /// Reused for strings with escapes, so decoding them does not allocate per string.
    private var scratch: [UInt8] = []

    init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    // MARK: - Structure

    /// Reads one value and the whitespace around it; anything else is an error.
    mutating func parseDocument() throws(JSONError) -> JSON {
        var open: [OpenContainer] = []
        skipWhitespace()
        nextValue: while true {
            // A value starts at `index` (whitespace already skipped).
            var value: JSON
            guard index < bytes.count else { throw failure("unexpected end of input") }
            switch bytes[index] {
            case Byte.openBrace, Byte.openBracket:
                let isObject = bytes[index] == Byte.openBrace
                guard open.count < maxDepth else { throw failure("nesting deeper than \(maxDepth) levels") }
                index += 1
                skipWhitespace()
                let close = isObject ? Byte.closeBrace : Byte.closeBracket
                if index < bytes.count, bytes[index] == close {
                    index += 1
                    value = isObject ? .object(JSONObject()) : .array([])
                } else {
                    // Most containers in messages are small; starting at 4 skips the 1 → 2 → 4 regrowth.
                    var container = OpenContainer(isObject: isObject)
                    if isObject { container.members.reserveCapacity(4) } else { container.elements.reserveCapacity(4) }
                    open.append(container)
                    if isObject { try readKey(into: &open[open.count - 1]) }
                    continue nextValue
                }
            case Byte.quote:
                value = .string(try parseString())
            case UInt8(ascii: "t"):
                try expectLiteral("true")
                value = .bool(true)
            case UInt8(ascii: "f"):
                try expectLiteral("false")
                value = .bool(false)
            case UInt8(ascii: "n"):
                try expectLiteral("null")
                value = .null
            case Byte.minus, Byte.zero...Byte.nine:
                value = .number(try parseNumber())
            default:
                throw failure("expected a value")
            }

            // The value is complete: hand it to its container, closing every container it completes.
            while true {
                guard let top = open.indices.last else {
                    skipWhitespace()
                    guard index == bytes.count else { throw failure("unexpected data after the JSON value") }
                    return value
                }
                let valueEnd = index
                skipWhitespace()
                let next: UInt8? = index < bytes.count ? bytes[index] : nil
                if open[top].isObject {
                    let member = JSONObject.Member(key: open[top].key, value: value, raw: open[top].valueStart..<valueEnd)
                    open[top].members.append(member)
                    if next == Byte.comma {
                        index += 1
                        skipWhitespace()
                        try readKey(into: &open[top])
                        continue nextValue
                    }
                    guard next == Byte.closeBrace else { throw failure("expected ',' or '}' after object member") }
                    index += 1
                    value = .object(JSONObject(members: open.removeLast().members))
                } else {
                    open[top].elements.append(value)
                    if next == Byte.comma {
                        index += 1
                        skipWhitespace()
                        continue nextValue
                    }
                    guard next == Byte.closeBracket else { throw failure("expected ',' or ']' after array element") }
                    index += 1
                    value = .array(open.removeLast().elements)
                }
            }
        }
    }

    /// Reads `"key"` `:` and the whitespace after it, leaving `index` at the member's value.
    private mutating func readKey(into container: inout OpenContainer) throws(JSONError) {
        guard index < bytes.count, bytes[index] == Byte.quote else { throw failure("expected a string key") }
        container.key = try parseString()
        skipWhitespace()
        guard index < bytes.count, bytes[index] == Byte.colon else { throw failure("expected ':' after object key") }
        index += 1
        skipWhitespace()
        container.valueStart = index
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case Byte.space, Byte.tab, Byte.lineFeed, Byte.carriageReturn: index += 1
            default: return
            }
        }
    }

    private mutating func expectLiteral(_ word: StaticString) throws(JSONError) {
        let length = word.utf8CodeUnitCount
        let matches = index + length <= bytes.count
            && (0..<length).allSatisfy { bytes[index + $0] == word.utf8Start[$0] }
        guard matches else { throw failure("invalid literal, expected '\(word)'") }
        index += length
    }

    // MARK: - Numbers

    /// Checks `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` and returns the text as written.
    private mutating func parseNumber() throws(JSONError) -> String {
        let start = index
        if bytes[index] == Byte.minus { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { throw failure("expected a digit after '-'") }
        if bytes[index] == Byte.zero {
            index += 1
            if index < bytes.count, isDigit(bytes[index]) { throw failure("leading zeros are not allowed in numbers") }
        } else {
            skipDigits()
        }
        if index < bytes.count, bytes[index] == Byte.dot {
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw failure("expected a digit after '.'") }
            skipDigits()
        }
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < bytes.count, bytes[index] == Byte.plus || bytes[index] == Byte.minus { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw failure("expected a digit in the exponent") }
            skipDigits()
        }
        return text(start..<index)
    }

    private mutating func skipDigits() {
        while index < bytes.count, isDigit(bytes[index]) { index += 1 }
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte >= Byte.zero && byte <= Byte.nine }

    // MARK: - Strings

    /// Reads a string literal starting at its opening quote. Strings without escapes (the common
    /// case) become a String straight from the input; others are decoded into `scratch`.
    private mutating func parseString() throws(JSONError) -> String {
        index += 1
        let start = index
        try skipUnescaped()
        guard index < bytes.count else { throw failure("unterminated string") }
        if bytes[index] == Byte.quote {
            let string = text(start..<index)
            index += 1
            return string
        }

        // Room for typical strings up front, rather than growing from empty in several steps.
        scratch.removeAll(keepingCapacity: true)
        scratch.reserveCapacity(64)
        var runStart = start
        while true {
            scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
            guard index < bytes.count else { throw failure("unterminated string") }
            if bytes[index] == Byte.quote {
                index += 1
                return String(decoding: scratch, as: UTF8.self)
            }
            try decodeEscape()
            runStart = index
            try skipUnescaped()
        }
    }

    /// Advances over unescaped characters up to the next '"' or '\' (or the end of the input),
    /// rejecting control characters and malformed UTF-8 on the way.
    private mutating func skipUnescaped() throws(JSONError) {
        // A local cursor lets the compiler keep it in a register instead of storing `index` per byte.
        var cursor = index
        defer { index = cursor }
        let end = bytes.count
        while cursor < end {
            let byte = bytes[cursor]
            if byte >= 0x20 && byte < 0x80 {
                // Printable ASCII, by far the most common case.
                if byte == Byte.quote || byte == Byte.backslash { return }
                cursor += 1
            } else if byte < 0x20 {
                throw JSONError(offset: cursor, message: "unescaped control character in string")
            } else {
                cursor += try utf8SequenceLength(at: cursor)
            }
        }
    }

    /// Decodes the escape at `index` (a backslash) into `scratch`.
    private mutating func decodeEscape() throws(JSONError) {
        guard index + 1 < bytes.count else { throw JSONError(offset: bytes.count, message: "unterminated string") }
        let decoded: UInt8
        switch bytes[index + 1] {
        case Byte.quote: decoded = Byte.quote
        case Byte.backslash: decoded = Byte.backslash
        case UInt8(ascii: "/"): decoded = UInt8(ascii: "/")
        case UInt8(ascii: "b"): decoded = 0x08
        case UInt8(ascii: "f"): decoded = 0x0C
        case UInt8(ascii: "n"): decoded = Byte.lineFeed
        case UInt8(ascii: "r"): decoded = Byte.carriageReturn
        case UInt8(ascii: "t"): decoded = Byte.tab
        case UInt8(ascii: "u"):
            appendUTF8(try decodeUnicodeEscape())
            return
        default:
            throw failure("invalid escape sequence")
        }
        scratch.append(decoded)
        index += 2
    }

    /// Reads `\uXXXX`, or a `\uD8xx\uDCxx` surrogate pair, and returns the code point.
    private mutating func decodeUnicodeEscape() throws(JSONError) -> UInt32 {
        let escapeStart = index
        let first = try readHexQuad(at: index + 2)
        index += 6
        switch first {
        case 0xD800...0xDBFF:
            // A high surrogate must be followed at once by an escaped low surrogate.
            guard index + 1 < bytes.count, bytes[index] == Byte.backslash, bytes[index + 1] == UInt8(ascii: "u"),
                  case let second = try readHexQuad(at: index + 2), (0xDC00...0xDFFF).contains(second) else {
                throw JSONError(offset: escapeStart, message: "lone surrogate in \\u escape")
            }
            index += 6
            return 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        case 0xDC00...0xDFFF:
            throw JSONError(offset: escapeStart, message: "lone surrogate in \\u escape")
        default:
            return first
        }
    }

    private func readHexQuad(at position: Int) throws(JSONError) -> UInt32 {
        var value: UInt32 = 0
        for offset in position..<position + 4 {
            let byte: UInt8 = offset < bytes.count ? bytes[offset] : 0
            let digit: UInt8
            switch byte {
            case Byte.zero...Byte.nine: digit = byte - Byte.zero
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw JSONError(offset: offset, message: "expected four hex digits after \\u")
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    /// Appends a code point (never a surrogate, at most U+10FFFF) as UTF-8.
    private mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case ..<0x80:
            scratch.append(UInt8(scalar))
        case ..<0x800:
            scratch.append(0xC0 | UInt8(scalar >> 6))
            scratch.append(0x80 | UInt8(scalar & 0x3F))
        case ..<0x10000:
            scratch.append(0xE0 | UInt8(scalar >> 12))
            scratch.append(0x80 | UInt8(scalar >> 6 & 0x3F))
            scratch.append(0x80 | UInt8(scalar & 0x3F))
        default:
            scratch.append(0xF0 | UInt8(scalar >> 18))
            scratch.append(0x80 | UInt8(scalar >> 12 & 0x3F))
            scratch.append(0x80 | UInt8(scalar >> 6 & 0x3F))
            scratch.append(0x80 | UInt8(scalar & 0x3F))
        }
    }

    /// The length of the well-formed multi-byte UTF-8 sequence at `position` (RFC 3629 §4), which
    /// excludes overlong forms, UTF-16 surrogates and code points past U+10FFFF.
    private func utf8SequenceLength(at position: Int) throws(JSONError) -> Int {
        let lead = bytes[position]
        // The allowed range of the second byte depends on the lead; later bytes are always 80...BF.
        let length: Int
        let second: ClosedRange<UInt8>
        switch lead {
        case 0xC2...0xDF: length = 2; second = 0x80...0xBF
        case 0xE0: length = 3; second = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: length = 3; second = 0x80...0xBF
        case 0xED: length = 3; second = 0x80...0x9F
        case 0xF0: length = 4; second = 0x90...0xBF
        case 0xF1...0xF3: length = 4; second = 0x80...0xBF
        case 0xF4: length = 4; second = 0x80...0x8F
        default: throw JSONError(offset: position, message: "invalid UTF-8")
        }
        guard position + length <= bytes.count, second.contains(bytes[position + 1]) else {
            throw JSONError(offset: position, message: "invalid UTF-8")
        }
        for offset in position + 2..<position + length where bytes[offset] & 0xC0 != 0x80 {
            throw JSONError(offset: position, message: "invalid UTF-8")
        }
        return length
    }

    // MARK: - Helpers

    /// Input bytes already known to be valid UTF-8 as a String.
    private func text(_ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    private func failure(_ message: String) -> JSONError {
        JSONError(offset: index, message: message)
    }
}

/// The ASCII bytes the grammar is made of.
private enum Byte {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let comma = UInt8(ascii: ",")
    static let colon = UInt8(ascii: ":")
    static let minus = UInt8(ascii: "-")
    static let plus = UInt8(ascii: "+")
    static let dot = UInt8(ascii: ".")
    static let zero = UInt8(ascii: "0")
    static let nine = UInt8(ascii: "9")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let lineFeed = UInt8(ascii: "\n")
    static let carriageReturn = UInt8(ascii: "\r")
}
