import Bridge
import Testing

/// Parses `text`, returning the error or nil when it was accepted.
private func rejection(_ text: String) -> JSONError? {
    rejection(Array(text.utf8))
}

private func rejection(_ bytes: [UInt8]) -> JSONError? {
    do {
        _ = try JSONParser.parse(bytes)
        return nil
    } catch {
        return error
    }
}

/// The input bytes a member's `raw` range covers, as text.
private func slice(_ input: String, _ range: Range<Int>) -> String {
    String(decoding: Array(input.utf8)[range], as: UTF8.self)
}

@Suite struct JSONParserTests {
    // MARK: - Accepted texts

    @Test func rfc8259ObjectExample() throws {
        let text = """
        {
          "Image": {
              "Width":  800,
              "Height": 600,
              "Title":  "View from 15th Floor",
              "Thumbnail": {
                  "Url":    "http://www.example.com/image/481989943",
                  "Height": 125,
                  "Width":  100
              },
              "Animated" : false,
              "IDs": [116, 943, 234, 38793]
            }
        }
        """
        let image = try #require(try JSONParser.parse(text).objectValue?["Image"]?.objectValue)
        #expect(image["Width"]?.intValue == 800)
        #expect(image["Title"]?.stringValue == "View from 15th Floor")
        #expect(image["Thumbnail"]?.objectValue?["Url"] == .string("http://www.example.com/image/481989943"))
        #expect(image["Animated"]?.boolValue == false)
        #expect(image["IDs"]?.arrayValue?.compactMap(\.intValue) == [116, 943, 234, 38793])
        #expect(image.members.map(\.key) == ["Width", "Height", "Title", "Thumbnail", "Animated", "IDs"])
    }

    @Test func rfc8259ArrayExample() throws {
        let text = """
        [
          {
             "precision": "zip",
             "Latitude":  37.7668,
             "Longitude": -122.3959,
             "Address":   "",
             "City":      "SAN FRANCISCO",
             "State":     "CA",
             "Zip":       "94107",
             "Country":   "US"
          },
          {
             "precision": "zip",
             "Latitude":  37.371991,
             "Longitude": -122.026020,
             "Address":   "",
             "City":      "SUNNYVALE",
             "State":     "CA",
             "Zip":       "94085",
             "Country":   "US"
          }
        ]
        """
        let places = try #require(try JSONParser.parse(text).arrayValue)
        #expect(places.count == 2)
        #expect(places[0].objectValue?["Latitude"] == .number("37.7668"))
        #expect(places[1].objectValue?["Longitude"]?.doubleValue == -122.02602)
        #expect(places[1].objectValue?["Longitude"] == .number("-122.026020"))
        #expect(places[0].objectValue?["Address"] == .string(""))
    }

    @Test(arguments: [
        ("\"Hello world!\"", JSON.string("Hello world!")),
        ("42", .number("42")),
        ("true", .bool(true)),
        ("false", .bool(false)),
        ("null", .null),
        (" \t\r\n[ ] \n", .array([])),
        ("{}", .object(JSONObject())),
        ("[1, \"a\", null, [true], {}]", .array([.number("1"), .string("a"), .null, .array([.bool(true)]), .object(JSONObject())])),
    ])
    func scalarsAndSmallTexts(text: String, expected: JSON) throws {
        #expect(try JSONParser.parse(text) == expected)
    }

    @Test func threeEntryPointsAgree() throws {
        let text = #"{"a":[1,{"b":"ü"}]}"#
        let fromString = try JSONParser.parse(text)
        #expect(try JSONParser.parse(Array(text.utf8)) == fromString)
        let fromBuffer = try Array(text.utf8).withUnsafeBytes { try JSONParser.parse($0) }
        #expect(fromBuffer == fromString)
    }

    @Test(arguments: [
        ("0", "0"), ("-0", "-0"), ("10", "10"), ("1E2", "1E2"), ("1e+2", "1e+2"), ("-1.5e-3", "-1.5e-3"),
        ("0.000", "0.000"), ("123456789012345678901234567890", "123456789012345678901234567890"),
    ])
    func numberTextIsKeptAsWritten(text: String, kept: String) throws {
        #expect(try JSONParser.parse(text) == .number(kept))
        #expect(try JSONParser.parse("[\(text)]").serialized == "[\(kept)]")
    }

    @Test func numberAccessors() throws {
        #expect(try JSONParser.parse("10").intValue == 10)
        #expect(try JSONParser.parse("-42").intValue == -42)
        #expect(try JSONParser.parse("1E2").intValue == nil)
        #expect(try JSONParser.parse("1E2").doubleValue == 100)
        #expect(try JSONParser.parse("1.0").intValue == nil)
        #expect(try JSONParser.parse("1.5").doubleValue == 1.5)
        #expect(try JSONParser.parse("9223372036854775807").intValue == Int.max)
        #expect(try JSONParser.parse("9223372036854775808").intValue == nil)
        #expect(try JSONParser.parse("9223372036854775808").doubleValue == 9223372036854775808)
        #expect(try JSONParser.parse("\"10\"").intValue == nil)
        #expect(try JSONParser.parse("true").intValue == nil)
    }

    @Test func otherAccessorsMatchOnlyTheirCase() throws {
        let values: [JSON] = [.null, .bool(true), .number("1"), .string("s"), .array([]), .object(JSONObject())]
        #expect(values.map(\.isNull) == [true, false, false, false, false, false])
        #expect(values.map { $0.boolValue != nil } == [false, true, false, false, false, false])
        #expect(values.map { $0.doubleValue != nil } == [false, false, true, false, false, false])
        #expect(values.map { $0.stringValue != nil } == [false, false, false, true, false, false])
        #expect(values.map { $0.arrayValue != nil } == [false, false, false, false, true, false])
        #expect(values.map { $0.objectValue != nil } == [false, false, false, false, false, true])
    }

    // MARK: - Strings

    @Test func escapesAreDecoded() throws {
        let text = #""q\" b\\ s\/ \b\f\n\r\t A\u0041 e\u00e9 euro\u20AC clef\uD834\uDD1E nul\u0000""#
        #expect(try JSONParser.parse(text) == .string("q\" b\\ s/ \u{8}\u{C}\n\r\t AA eé euro€ clef𝄞 nul\u{0}"))
    }

    @Test func rawUTF8IsKept() throws {
        #expect(try JSONParser.parse("\"héllo €𝄞 \u{7F}\"") == .string("héllo €𝄞 \u{7F}"))
        #expect(try JSONParser.parse([0x22, 0xF4, 0x8F, 0xBF, 0xBF, 0x22]) == .string("\u{10FFFF}"))
    }

    @Test func escapedAndPlainRunsMix() throws {
        #expect(try JSONParser.parse(#"["ab\ncd\tef", "plain", "\\"]"#)
                == .array([.string("ab\ncd\tef"), .string("plain"), .string("\\")]))
    }

    // MARK: - Objects

    @Test func duplicateKeysKeepAllMembersAndTheLastWins() throws {
        let object = try #require(try JSONParser.parse(#"{"a":1,"b":2,"a":3}"#).objectValue)
        #expect(object.members.count == 3)
        #expect(object["a"] == .number("3"))
        #expect(object.member("a")?.raw == 17..<18)
        #expect(object["b"] == .number("2"))
        #expect(object["c"] == nil)
    }

    @Test func keysMatchByteForByte() throws {
        // "é" precomposed and decomposed are equal Swift Strings but different JSON keys.
        let object = try #require(try JSONParser.parse("{\"\u{E9}\":1,\"e\u{301}\":2}").objectValue)
        #expect(object["\u{E9}"] == .number("1"))
        #expect(object["e\u{301}"] == .number("2"))
    }

    @Test func rawRangesPointIntoTheOriginalInput() throws {
        let input = #"{"event":"client-x","data":{"a":[1,2]}}"#
        let object = try #require(try JSONParser.parse(input).objectValue)
        let data = try #require(object.member("data"))
        #expect(slice(input, data.raw) == #"{"a":[1,2]}"#)
        let event = try #require(object.member("event"))
        #expect(slice(input, event.raw) == #""client-x""#)
        let nested = try #require(data.value.objectValue?.member("a"))
        #expect(nested.raw == 32..<37)
        #expect(slice(input, nested.raw) == "[1,2]")
    }

    @Test func rawRangesExcludeWhitespaceAndKeepEscapes() throws {
        let input = " { \"x\" :\t\"a\\u0041\" ,\n \"y\": { \"z\" : -1.5e3 } } "
        let object = try #require(try JSONParser.parse(input).objectValue)
        #expect(slice(input, try #require(object.member("x")).raw) == #""a\u0041""#)
        let y = try #require(object.member("y"))
        #expect(slice(input, y.raw) == #"{ "z" : -1.5e3 }"#)
        #expect(slice(input, try #require(y.value.objectValue?.member("z")).raw) == "-1.5e3")
    }

    @Test func rawRangesCountBytesNotCharacters() throws {
        let input = #"{"ü€":"𝄞","k":[]}"#
        let object = try #require(try JSONParser.parse(input).objectValue)
        #expect(slice(input, try #require(object.member("k")).raw) == "[]")
        #expect(try #require(object.member("k")).raw == 20..<22)
    }

    @Test func membersEqualRegardlessOfRawRange() throws {
        #expect(try JSONParser.parse(#"{"a":1}"#) == JSONParser.parse(#"{ "a" : 1 }"#))
        #expect(try JSONParser.parse(#"{"a":1,"b":2}"#) != JSONParser.parse(#"{"b":2,"a":1}"#))
    }

    // MARK: - Serialization

    @Test(arguments: [
        #"{"event":"pusher:subscribe","data":{"channel":"presence-x","auth":"k:s","channel_data":"{\"user_id\":1}"}}"#,
        #"[1,-0.5,1E2,"tab\tquote\"slash\\",true,false,null,{},[],{"a":{"a":{}}}]"#,
        #""ctl\u0001\u001f""#,
        #"{"a":1,"a":2}"#,
    ])
    func compactTextSerializesToItself(text: String) throws {
        #expect(try JSONParser.parse(text).serialized == text)
    }

    @Test func serializedRoundTrips() throws {
        let text = " {\n \"k\\u00e9y\" : [ 1.0 , \"\\u0000\\/\" , { } ] , \"t\" : \"𝄞\" } "
        let value = try JSONParser.parse(text)
        #expect(value.serialized == "{\"kéy\":[1.0,\"\\u0000/\",{}],\"t\":\"𝄞\"}")
        #expect(try JSONParser.parse(value.serialized) == value)
    }

    // MARK: - Depth

    @Test func nestingUpToMaxDepthIsAccepted() throws {
        let depth = JSONParser.defaultMaxDepth
        let arrays = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        #expect(rejection(arrays) == nil)
        let objects = String(repeating: #"{"a":"#, count: depth - 1) + "{}" + String(repeating: "}", count: depth - 1)
        #expect(rejection(objects) == nil)
    }

    @Test func nestingPastMaxDepthIsRejected() throws {
        let depth = JSONParser.defaultMaxDepth + 1
        let arrays = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        #expect(rejection(arrays) == JSONError(offset: 64, message: "nesting deeper than 64 levels"))
        #expect(throws: JSONError.self) { try JSONParser.parse("[[1]]", maxDepth: 1) }
        #expect(throws: JSONError.self) { try JSONParser.parse("[]", maxDepth: 0) }
        #expect(try JSONParser.parse("7", maxDepth: 0) == .number("7"))
    }

    @Test func hugeNestingFailsWithoutExhaustingTheStack() {
        #expect(rejection(String(repeating: "[", count: 100_000))?.offset == 64)
        #expect(rejection(String(repeating: #"{"a":"#, count: 100_000))?.offset == 64 * 5)
        // A caller asking for no limit still gets an error, not a stack overflow.
        let open = [UInt8](repeating: UInt8(ascii: "["), count: 100_000)
        #expect(throws: JSONError(offset: 100_000, message: "unexpected end of input")) {
            try JSONParser.parse(open, maxDepth: .max)
        }
    }

    // MARK: - Rejections

    @Test(arguments: [
        ("", 0, "unexpected end of input"),
        ("   ", 3, "unexpected end of input"),
        ("\u{C}1", 0, "expected a value"),             // form feed is not JSON whitespace
        ("\u{B}1", 0, "expected a value"),             // nor is vertical tab
        ("\u{A0}1", 0, "expected a value"),            // nor a no-break space
        ("1\u{C}", 1, "unexpected data after the JSON value"),
        ("[1\u{85}]", 2, "expected ',' or ']' after array element"),
    ])
    func onlyFourWhitespaceBytes(text: String, offset: Int, message: String) {
        #expect(rejection(text) == JSONError(offset: offset, message: message))
    }

    @Test(arguments: [
        ("1 2", 2), ("{} {}", 3), ("[]]", 2), ("\"a\"\"b\"", 3), ("null x", 5), ("0\u{0}", 1), ("truex", 4),
    ])
    func anythingAfterTheValueIsRejected(text: String, offset: Int) {
        #expect(rejection(text) == JSONError(offset: offset, message: "unexpected data after the JSON value"))
    }

    @Test(arguments: [
        ("[1,]", 3, "expected a value"),
        ("[,1]", 1, "expected a value"),
        ("[1 2]", 3, "expected ',' or ']' after array element"),
        ("[1", 2, "expected ',' or ']' after array element"),
        ("{\"a\":1,}", 7, "expected a string key"),
        ("{,}", 1, "expected a string key"),
        ("{a:1}", 1, "expected a string key"),
        ("{1:1}", 1, "expected a string key"),
        ("{\"a\" 1}", 5, "expected ':' after object key"),
        ("{\"a\"", 4, "expected ':' after object key"),
        ("{\"a\":}", 5, "expected a value"),
        ("{\"a\":1 \"b\":2}", 7, "expected ',' or '}' after object member"),
        ("{\"a\":1]", 6, "expected ',' or '}' after object member"),
        ("[1}", 2, "expected ',' or ']' after array element"),
        ("]", 0, "expected a value"),
        ("'a'", 0, "expected a value"),
        ("tru", 0, "invalid literal, expected 'true'"),
        ("nul", 0, "invalid literal, expected 'null'"),
        ("False", 0, "expected a value"),
        ("fals e", 0, "invalid literal, expected 'false'"),
        ("undefined", 0, "expected a value"),
    ])
    func structuralErrorsNameWhatWasExpected(text: String, offset: Int, message: String) {
        #expect(rejection(text) == JSONError(offset: offset, message: message))
    }

    @Test(arguments: [
        ("01", 1, "leading zeros are not allowed in numbers"),
        ("-01", 2, "leading zeros are not allowed in numbers"),
        ("00", 1, "leading zeros are not allowed in numbers"),
        ("+1", 0, "expected a value"),
        (".5", 0, "expected a value"),
        ("1.", 2, "expected a digit after '.'"),
        ("1.e5", 2, "expected a digit after '.'"),
        ("-", 1, "expected a digit after '-'"),
        ("-.5", 1, "expected a digit after '-'"),
        ("1e", 2, "expected a digit in the exponent"),
        ("1e+", 3, "expected a digit in the exponent"),
        ("1E-x", 3, "expected a digit in the exponent"),
        ("NaN", 0, "expected a value"),
        ("Infinity", 0, "expected a value"),
        ("-Infinity", 1, "expected a digit after '-'"),
        ("0x10", 1, "unexpected data after the JSON value"),
        ("1.5.2", 3, "unexpected data after the JSON value"),
    ])
    func numbersFollowTheGrammar(text: String, offset: Int, message: String) {
        #expect(rejection(text) == JSONError(offset: offset, message: message))
    }

    @Test func unescapedControlCharactersAreRejected() {
        for byte in UInt8(0)..<0x20 {
            #expect(rejection([0x22, 0x61, byte, 0x22]) == JSONError(offset: 2, message: "unescaped control character in string"))
            // Also after an escape, where strings are decoded on the slow path.
            #expect(rejection([0x22, 0x5C, 0x6E, byte, 0x22]) == JSONError(offset: 3, message: "unescaped control character in string"))
        }
    }

    @Test(arguments: [
        (#""\a""#, 1, "invalid escape sequence"),
        (#""\x41""#, 1, "invalid escape sequence"),
        (#""\'""#, 1, "invalid escape sequence"),
        (#""\u12""#, 5, "expected four hex digits after \\u"),
        (#""\u12G4""#, 5, "expected four hex digits after \\u"),
        (#""\u12"#, 5, "expected four hex digits after \\u"),
        (#""abc"#, 4, "unterminated string"),
        (#""abc\"#, 5, "unterminated string"),
        (#""\n"#, 3, "unterminated string"),
        (#"{"a"#, 3, "unterminated string"),
    ])
    func badEscapesAndUnterminatedStrings(text: String, offset: Int, message: String) {
        #expect(rejection(text) == JSONError(offset: offset, message: message))
    }

    @Test(arguments: [
        (#""\uD834""#, 1),             // high surrogate at the end
        (#""\uD834x""#, 1),            // followed by a plain character
        (#""\uD834\n""#, 1),           // followed by another escape
        (#""\uD834\uD834""#, 1),       // followed by another high surrogate
        (#""\uD834\u0041""#, 1),       // followed by a non-surrogate
        (#""\uDD1E""#, 1),             // low surrogate alone
        (#""ok\uDD1E\uD834""#, 3),     // a pair in the wrong order
    ])
    func loneSurrogatesAreRejected(text: String, offset: Int) {
        #expect(rejection(text) == JSONError(offset: offset, message: "lone surrogate in \\u escape"))
    }

    @Test(arguments: [
        [0x80],                         // continuation byte without a lead
        [0xBF],
        [0xC0, 0x80],                   // overlong NUL
        [0xC1, 0xBF],                   // overlong 0x7F
        [0xE0, 0x80, 0x80],             // overlong three-byte form
        [0xE0, 0x9F, 0xBF],
        [0xF0, 0x80, 0x80, 0x80],       // overlong four-byte form
        [0xF0, 0x8F, 0xBF, 0xBF],
        [0xED, 0xA0, 0x80],             // UTF-16 surrogate D800 encoded in UTF-8
        [0xED, 0xBF, 0xBF],             // DFFF
        [0xF4, 0x90, 0x80, 0x80],       // U+110000
        [0xF5, 0x80, 0x80, 0x80],       // lead bytes that cannot occur
        [0xF8, 0x88, 0x80, 0x80, 0x80],
        [0xFF],
        [0xC3],                         // truncated sequences
        [0xE2, 0x82],
        [0xF0, 0x9D, 0x84],
        [0xE2, 0x28, 0xA1],             // bad continuation bytes
        [0xF0, 0x9D, 0x84, 0x41],
        [0xC3, 0xA9, 0xE9],             // valid é then a Latin-1 é
    ] as [[UInt8]])
    func invalidUTF8IsRejected(bad: [UInt8]) {
        let inString = [0x22, 0x61] + bad + [0x22]
        #expect(rejection(inString)?.message == "invalid UTF-8")
        #expect(rejection(inString)?.offset ?? 0 >= 2)
        // After an escape too.
        #expect(rejection([0x22, 0x5C, 0x74] + bad + [0x22])?.message == "invalid UTF-8")
        // Outside strings no non-ASCII byte is valid at all.
        #expect(rejection(bad) == JSONError(offset: 0, message: "expected a value"))
    }

    @Test func validUTF8BoundariesAreAccepted() throws {
        let samples: [[UInt8]] = [
            [0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF], [0xEE, 0x80, 0x80], [0xEF, 0xBF, 0xBF],
            [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF],
        ]
        for sample in samples {
            let value = try JSONParser.parse([0x22] + sample + [0x22])
            #expect(value.stringValue.map { Array($0.utf8) } == sample)
        }
    }

    @Test func errorDescriptionNamesTheOffset() {
        #expect(rejection(#"{"a" 1}"#)?.description == "expected ':' after object key at byte 5")
    }
}
