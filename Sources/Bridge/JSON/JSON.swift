import Support

/// A parsed JSON value (RFC 8259).
///
/// Equality is structural: numbers compare by their text (`1.0` ≠ `1`), objects compare their
/// members in order (duplicates included) and ignore where in the input each value was.
public indirect enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's text exactly as it appeared (validated against the RFC 8259 grammar), e.g. "10", "-1.5e3".
    case number(String)
    case string(String)
    case array([JSON])
    case object(JSONObject)

    /// The text of a `.string`; nil for every other case (numbers are not converted).
    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let object) = self { return object }
        return nil
    }

    public var arrayValue: [JSON]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let flag) = self { return flag }
        return nil
    }

    /// A `.number` written as an integer (no fraction, no exponent) that fits in `Int`.
    public var intValue: Int? {
        guard case .number(let text) = self else { return nil }
        // Int(_:) would also accept a leading "+", which the parser never produces; checking the
        // text keeps hand-built `.number("1.0")` from sneaking through as well.
        guard !text.utf8.contains(where: { $0 == UInt8(ascii: ".") || $0 | 0x20 == UInt8(ascii: "e") }) else { return nil }
        return Int(text)
    }

    /// Any `.number`, rounded to the nearest `Double` (out-of-range magnitudes become ±infinity or 0).
    public var doubleValue: Double? {
        guard case .number(let text) = self else { return nil }
        return Double(text)
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// Compact serialization: numbers as their raw text, strings escaped, members in order.
    public var serialized: String {
        var json = JSONWriter()
        write(to: &json)
        return json.text
    }

    /// Writes the value as one value of `json` (an element, a member's value, or the whole text).
    public func write(to json: inout JSONWriter) {
        switch self {
        case .null: json.null()
        case .bool(let flag): json.bool(flag)
        case .number(let text): json.raw(text)
        case .string(let text): json.string(text)
        case .array(let elements): json.array { for element in elements { element.write(to: &$0) } }
        case .object(let object): json.object { for member in object.members { $0.field(member.key) { member.value.write(to: &$0) } } }
        }
    }
}
