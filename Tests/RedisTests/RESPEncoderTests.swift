import Redis
import Testing

@Suite struct RESPEncoderTests {
    @Test func commandsAreArraysOfBulkStrings() {
        #expect(RESPEncoder.command(["PING"]) == Array("*1\r\n$4\r\nPING\r\n".utf8))
        #expect(RESPEncoder.command(["SET", "k", "héllo"]) == Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\nhéllo\r\n".utf8))
        #expect(RESPEncoder.command(["GET", ""]) == Array("*2\r\n$3\r\nGET\r\n$0\r\n\r\n".utf8))
    }

    @Test func argumentsMixTextBytesAndIntegers() {
        let payload: [UInt8] = [0, 13, 10, 255]
        let key = "presence:room"
        let command = RESPEncoder.command(["PEXPIRE", key[...], 1500, Int64(-3), payload, payload[1...]])
        let expected = Array("*6\r\n$7\r\nPEXPIRE\r\n$13\r\npresence:room\r\n$4\r\n1500\r\n$2\r\n-3\r\n$4\r\n".utf8)
            + payload + Array("\r\n$3\r\n".utf8) + payload[1...] + Array("\r\n".utf8)
        #expect(command == expected)
    }

    @Test func everyValueRoundTrips() throws {
        let values: [RESPValue] = [
            .simpleString("OK"), .error("ERR x"), .integer(-42), .integer(.min), .bulkString([0, 13, 10]),
            .bulkString([]), .null, .array([]),
            .array([.integer(1), .array([.bulkString(Array("a".utf8)), .null]), .simpleString("")]),
        ]
        var bytes: [UInt8] = []
        for value in values { RESPEncoder.appendValue(value, to: &bytes) }
        #expect(try RESPParser.parseAll(bytes) == values)
    }

    @Test func lineBreaksInStatusLinesBecomeSpaces() throws {
        #expect(RESPEncoder.value(.error("a\r\nb")) == Array("-a  b\r\n".utf8))
        #expect(try RESPParser.parseAll(RESPEncoder.value(.simpleString("x\ny"))) == [.simpleString("x y")])
    }

    @Test func commandsParseAsArraysOfBulkStrings() throws {
        let parsed = try RESPParser.parseAll(RESPEncoder.command(["HSET", "h", "f", 7]))
        #expect(parsed == [.array(["HSET", "h", "f", "7"].map { .bulkString(Array($0.utf8)) })])
    }

    @Test func descriptionsAreShortAndReadable() {
        let value = RESPValue.array([.simpleString("OK"), .error("ERR x"), .integer(-5), .null, .bulkString([104, 34, 0, 200])])
        #expect(value.description == #"[+OK, -ERR x, :-5, nil, "h\"\x00\xc8"]"#)
        #expect(RESPValue.bulkString([UInt8](repeating: 97, count: 50)).description == "\"" + String(repeating: "a", count: 40) + "…\"")
        #expect(RESPValue.array((1...10).map { .integer($0) }).description == "[:1, :2, :3, :4, :5, :6, :7, :8, …]")
    }

    @Test func valueAccessors() {
        #expect(RESPValue.bulkString(Array("é".utf8)).string == "é")
        #expect(RESPValue.simpleString("OK").bytes == Array("OK".utf8))
        #expect(RESPValue.integer(3).integer == 3 && RESPValue.integer(3).string == nil)
        #expect(RESPValue.array([.null]).array == [.null] && RESPValue.null.isNull)
    }
}
