@testable import Redis
import Testing

/// Feeds `bytes` in pieces ending at `cuts` (ascending, last = count) and collects replies
/// and the first error.
private func parse(_ bytes: [UInt8], cuts: [Int], limits: RESPParserLimits = RESPParserLimits()) -> (values: [RESPValue], error: RESPParseError?) {
    var parser = RESPParser(limits: limits)
    var values: [RESPValue] = []
    var start = 0
    for end in cuts {
        var offset = start
        while offset < end {
            do throws(RESPParseError) {
                let (consumed, value) = try parser.feed(bytes[offset..<end])
                offset += consumed
                if let value { values.append(value) }
            } catch {
                return (values, error)
            }
        }
        start = end
    }
    return (values, nil)
}

/// The outcome of parsing `text` whole, after checking that every split in two and
/// byte-at-a-time feeding give the very same outcome.
private func parseEverySplit(_ text: String, limits: RESPParserLimits = RESPParserLimits()) -> (values: [RESPValue], error: RESPParseError?) {
    let bytes = Array(text.utf8)
    let whole = parse(bytes, cuts: [bytes.count], limits: limits)
    for split in 0...bytes.count {
        let two = parse(bytes, cuts: [split, bytes.count], limits: limits)
        #expect(two.values == whole.values && two.error == whole.error, "split at \(split) of \(text.debugDescription)")
    }
    if !bytes.isEmpty {
        let single = parse(bytes, cuts: Array(1...bytes.count), limits: limits)
        #expect(single.values == whole.values && single.error == whole.error, "byte at a time of \(text.debugDescription)")
    }
    return whole
}

private func values(_ text: String) -> [RESPValue] {
    let outcome = parseEverySplit(text)
    #expect(outcome.error == nil, "unexpected error for \(text.debugDescription)")
    return outcome.values
}

private func error(_ text: String, limits: RESPParserLimits = RESPParserLimits()) -> RESPParseError? {
    parseEverySplit(text, limits: limits).error
}

@Suite struct RESPParserTests {
    @Test func simpleStringsAndErrors() {
        #expect(values("+OK\r\n") == [.simpleString("OK")])
        #expect(values("+\r\n") == [.simpleString("")])
        #expect(values("-ERR unknown command 'FOO'\r\n") == [.error("ERR unknown command 'FOO'")])
        #expect(values("-WRONGTYPE Operation against a key\r\n") == [.error("WRONGTYPE Operation against a key")])
    }

    @Test func integers() {
        #expect(values(":0\r\n:42\r\n:-1\r\n") == [.integer(0), .integer(42), .integer(-1)])
        #expect(values(":9223372036854775807\r\n:-9223372036854775808\r\n") == [.integer(.max), .integer(.min)])
    }

    @Test func bulkStrings() {
        #expect(values("$5\r\nhello\r\n") == [.bulkString(Array("hello".utf8))])
        #expect(values("$0\r\n\r\n") == [.bulkString([])])
        #expect(values("$-1\r\n") == [.null])
        // Binary-safe: CR, LF and NUL inside the payload are data.
        #expect(values("$6\r\na\r\n\0\rb\r\n") == [.bulkString([97, 13, 10, 0, 13, 98])])
    }

    @Test func arrays() {
        #expect(values("*0\r\n") == [.array([])])
        #expect(values("*-1\r\n") == [.null])
        #expect(values("*3\r\n:1\r\n$3\r\nfoo\r\n+bar\r\n") == [.array([.integer(1), .bulkString(Array("foo".utf8)), .simpleString("bar")])])
        #expect(values("*2\r\n*1\r\n:1\r\n*2\r\n$-1\r\n-ERR x\r\n") == [.array([.array([.integer(1)]), .array([.null, .error("ERR x")])])])
        #expect(values("*1\r\n*0\r\n:5\r\n") == [.array([.array([])]), .integer(5)])
    }

    @Test func pipelinedRepliesComeOutOneAtATime() throws {
        var parser = RESPParser()
        let bytes = Array("+OK\r\n:1\r\n$1\r\nx\r\n".utf8)
        var offsets: [Int] = []
        var offset = 0
        while offset < bytes.count {
            let (consumed, value) = try parser.feed(bytes[offset...])
            #expect(value != nil)
            offset += consumed
            offsets.append(offset)
        }
        #expect(offsets == [5, 9, 16])
        #expect(parser.isIdle)
    }

    @Test func partialInputIsHeldNotLost() throws {
        var parser = RESPParser()
        let first = try parser.feed("*2\r\n$5\r\nhel")
        #expect(first.consumed == 11 && first.value == nil && !parser.isIdle)
        let second = try parser.feed("lo\r\n:7\r\n")
        #expect(second.consumed == 8 && second.value == .array([.bulkString(Array("hello".utf8)), .integer(7)]))
        #expect(parser.isIdle)
    }

    @Test func unknownTypeBytes() {
        #expect(error("?\r\n") == .unknownType(UInt8(ascii: "?")))
        // RESP3 types are not spoken.
        #expect(error("%1\r\n+a\r\n+b\r\n") == .unknownType(UInt8(ascii: "%")))
        #expect(error("_\r\n") == .unknownType(UInt8(ascii: "_")))
        #expect(error("+OK\r\nhello") == .unknownType(UInt8(ascii: "h")))
        #expect(error("*1\r\n\r\n") == .unknownType(13))
    }

    @Test func badLineEndings() {
        #expect(error("+OK\n") == .lineFeedWithoutCarriageReturn)
        #expect(error("+OK\rX\n") == .carriageReturnWithoutLineFeed(followedBy: UInt8(ascii: "X")))
        #expect(error(":1\r\r\n") == .carriageReturnWithoutLineFeed(followedBy: 13))
        #expect(error("$3\r\nabcd\r\n") == .bulkStringNotTerminated(found: UInt8(ascii: "d")))
        #expect(error("$3\r\nabc\rX") == .bulkStringNotTerminated(found: UInt8(ascii: "X")))
        #expect(error("$3\r\nabc\n") == .bulkStringNotTerminated(found: 10))
    }

    @Test func badIntegersAndLengths() {
        for text in ["", "-", "+1", "1a", " 1", "1.5", "9223372036854775808", "-9223372036854775809"] {
            #expect(error(":\(text)\r\n") == .invalidInteger(text), "integer \(text)")
        }
        for text in ["", "-", "x", "-2", "1 ", "99999999999999999999"] {
            #expect(error("$\(text)\r\n") == .invalidLength(text), "bulk length \(text)")
            #expect(error("*\(text)\r\n") == .invalidLength(text), "array length \(text)")
        }
        let long = String(repeating: "7", count: 100)
        #expect(error(":\(long)\r\n") == .invalidInteger(String(long.prefix(40))))
    }

    @Test func lineLimit() {
        let limits = RESPParserLimits(maxLineLength: 4)
        #expect(parseEverySplit("+abcd\r\n", limits: limits).values == [.simpleString("abcd")])
        #expect(error("+abcde\r\n", limits: limits) == .lineTooLong(limit: 4))
        #expect(error("-abcdefgh", limits: limits) == .lineTooLong(limit: 4))
        #expect(error(":12345\r\n", limits: limits) == .lineTooLong(limit: 4))
    }

    @Test func bulkLimitIsCheckedAtTheHeader() {
        let limits = RESPParserLimits(maxBulkLength: 3)
        #expect(parseEverySplit("$3\r\nabc\r\n", limits: limits).values == [.bulkString(Array("abc".utf8))])
        #expect(error("$4\r\n", limits: limits) == .bulkTooLong(length: 4, limit: 3))
        #expect(error("$9223372036854775807\r\n") == .bulkTooLong(length: .max, limit: RESPParserLimits().maxBulkLength))
    }

    @Test func arrayLimitIsCheckedAtTheHeader() {
        let limits = RESPParserLimits(maxArrayLength: 2)
        #expect(parseEverySplit("*2\r\n:1\r\n:2\r\n", limits: limits).values == [.array([.integer(1), .integer(2)])])
        #expect(error("*3\r\n", limits: limits) == .arrayTooLong(length: 3, limit: 2))
        #expect(error("*1\r\n*3\r\n", limits: limits) == .arrayTooLong(length: 3, limit: 2))
    }

    @Test func nestingLimit() {
        let limits = RESPParserLimits(maxDepth: 2)
        #expect(parseEverySplit("*1\r\n*1\r\n:1\r\n", limits: limits).values == [.array([.array([.integer(1)])])])
        #expect(error("*1\r\n*1\r\n*0\r\n", limits: limits) == .nestingTooDeep(limit: 2))
        #expect(error("*1\r\n*1\r\n*1\r\n", limits: limits) == .nestingTooDeep(limit: 2))
        #expect(parseEverySplit("*0\r\n", limits: RESPParserLimits(maxDepth: 0)).error == .nestingTooDeep(limit: 0))
        // Null arrays carry no nesting.
        #expect(parseEverySplit("*1\r\n*1\r\n*-1\r\n", limits: limits).values == [.array([.array([.null])])])
    }

    @Test func replyLimitCountsEveryByteOfOneReply() {
        // "*2\r\n$3\r\nabc\r\n:1\r\n" is 17 bytes.
        let reply = "*2\r\n$3\r\nabc\r\n:1\r\n"
        #expect(parseEverySplit(reply + reply, limits: RESPParserLimits(maxReplyBytes: 17)).values.count == 2)
        #expect(error(reply, limits: RESPParserLimits(maxReplyBytes: 16)) == .replyTooLarge(limit: 16))
        // The bulk payload is counted at its header, before it arrives.
        #expect(error("*2\r\n$30\r\n", limits: RESPParserLimits(maxReplyBytes: 20)) == .replyTooLarge(limit: 20))
    }

    @Test func hugeDeclaredSizesReserveLittle() throws {
        var parser = RESPParser()
        _ = try parser.feed("*1000000\r\n$30000000\r\nab")
        #expect(!parser.isIdle)
        #expect(parser.reservedBytes <= 3 * RESPParser.reserveAhead)
    }

    @Test func errorsAreSticky() {
        var parser = RESPParser()
        for input in ["!x", "+OK\r\n"] {
            #expect(throws: RESPParseError.unknownType(UInt8(ascii: "!"))) { try parser.feed(input) }
        }
    }

    @Test func errorDescriptionsNameTheProblem() {
        #expect(RESPParseError.unknownType(0x25).description.contains("0x25 '%'"))
        #expect(RESPParseError.unknownType(0).description.contains("0x00"))
        #expect(RESPParseError.bulkTooLong(length: 10, limit: 3).description == "bulk string of 10 bytes is over the limit of 3")
        #expect(RESPParseError.invalidLength("x").description.contains("\"x\""))
    }

    @Test func decimal() {
        #expect(RESPParser.decimal(Array("0".utf8)) == 0)
        #expect(RESPParser.decimal(Array("-0".utf8)) == 0)
        #expect(RESPParser.decimal(Array("007".utf8)) == 7)
        #expect(RESPParser.decimal(Array("-".utf8)) == nil)
        #expect(RESPParser.decimal([]) == nil)
    }
}
