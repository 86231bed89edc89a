@testable import Bridge
import Support
import Testing

@Suite struct JSONWriterTests {
    private func string(_ text: String) -> String { JSONWriter.quoted(text) }

    @Test func escapesQuotesBackslashesAndControlCharacters() {
        #expect(string(#"a"b\c"#) == #""a\"b\\c""#)
        #expect(string("\n\r\t\u{8}\u{C}") == #""\n\r\t\b\f""#)
        #expect(string("\u{0}\u{1}\u{1F}") == #""\u0000\u0001\u001f""#)
        #expect(string("") == #""""#)
    }

    /// DEL, `/`, non-ASCII and the JavaScript line terminators are valid in JSON strings and left as they are.
    @Test func leavesEverythingElseAsItIs() {
        #expect(string("\u{7F}/é✓𝄞") == "\"\u{7F}/é✓𝄞\"")
        #expect(string("a\u{2028}b\u{2029}") == "\"a\u{2028}b\u{2029}\"")
        #expect(Array(string("\u{2028}").utf8) == [0x22, 0xE2, 0x80, 0xA8, 0x22])
    }

    @Test func escapesBetweenLongRuns() {
        let run = String(repeating: "x", count: 1000)
        #expect(string(run + "\"" + run + "\n") == "\"" + run + "\\\"" + run + "\\n\"")
    }

    @Test(arguments: [0, 7, -7, 10, -10, 99, 100, 1_000_000, Int.max, Int.min, Int.min + 1])
    func integersAsSwiftWritesThem(value: Int) {
        #expect(JSONWriter.array { $0.int(value) }.text == "[\(value)]")
    }

    @Test func extremeIntegers() {
        let text = JSONWriter.object {
            $0.field("max", Int.max)
            $0.field("min", Int.min)
            $0.field("u", UInt64.max)
            $0.field("i", Int64.min)
        }.text
        #expect(text == #"{"max":9223372036854775807,"min":-9223372036854775808,"u":18446744073709551615,"i":-9223372036854775808}"#)
    }

    @Test func objectsAndArraysNestWithCommasOnlyBetweenMembers() {
        let text = JSONWriter.object {
            $0.field("s", "x")
            $0.objectField("empty") { _ in }
            $0.arrayField("list") { list in
                list.int(1)
                list.object { $0.field("a", true) }
                list.array { $0.null(); $0.bool(false) }
                list.string("y")
            }
            $0.objectField("deep") { $0.objectField("er") { $0.field("n", 0) } }
            $0.field("last", false)
        }.text
        #expect(text == #"{"s":"x","empty":{},"list":[1,{"a":true},[null,false],"y"],"deep":{"er":{"n":0}},"last":false}"#)
        #expect(JSONWriter.array { _ in }.text == "[]")
        #expect(JSONWriter.object { _ in }.text == "{}")
    }

    @Test func keysAreEscapedToo() {
        #expect(JSONWriter.object { $0.field("a\"b\n", 1) }.text == #"{"a\"b\n":1}"#)
    }

    @Test func nullableFieldsNameAMissingValue() {
        let text = JSONWriter.object {
            $0.field("a", orNull: nil as String?)
            $0.field("b", orNull: "x")
            $0.field("c", orNull: nil as Int?)
            $0.field("d", orNull: 4)
        }.text
        #expect(text == #"{"a":null,"b":"x","c":null,"d":4}"#)
    }

    @Test func rawFieldsAreCopiedByteForByte() {
        let bytes = Array(#"{"a": [1, 2.50], "é":"\u2028"}"#.utf8)
        let text = JSONWriter.object {
            $0.rawField("slice", bytes[...])
            $0.rawField("array", [0x31])
            $0.rawField("text", "null")
            $0.arrayField("values") { $0.raw("-0.5e3"); $0.raw(bytes[0..<1]) }
        }.text
        #expect(text == #"{"slice":{"a": [1, 2.50], "é":"\u2028"},"array":1,"text":null,"values":[-0.5e3,{]}"#)
    }

    @Test func writesIntoOneGrowingBuffer() {
        var writer = JSONWriter(reservingCapacity: 256)
        writer.object { $0.field("event", "e") }
        #expect(writer.bytes == Array(#"{"event":"e"}"#.utf8))
        #expect(writer.bytes.capacity >= 256)
    }
}
