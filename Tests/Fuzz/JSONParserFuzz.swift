// libFuzzer target for JSONParser, compiled together with the parser's sources:
//
//   swiftc -sanitize=fuzzer,address -parse-as-library -O -wmo \
//     Sources/Support/JSONWriter.swift Sources/Bridge/JSON/JSON.swift Sources/Bridge/JSON/JSONObject.swift \
//     Sources/Bridge/JSON/JSONError.swift Sources/Bridge/JSON/JSONParser.swift \
//     Tests/Fuzz/JSONParserFuzz.swift -o /tmp/fuzz-json
//   SWIFT_BACKTRACE=enable=no /tmp/fuzz-json -max_total_time=60 /tmp/fuzz-json-corpus Tests/Fuzz/corpus/json
//
// The whole input is one JSON text. Parsing must never crash; an error must point inside the
// input; an accepted value must survive `serialized` unchanged, and every object member's raw
// range must cover text that parses to that member's value.

/// libFuzzer's entry point: parses `data` and checks the parser's contract with `precondition`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let value: JSON
    do {
        value = try JSONParser.parse(input)
    } catch {
        precondition(error.offset >= 0 && error.offset <= size, "error offset outside the input")
        precondition(!error.message.isEmpty, "error without a message")
        return 0
    }

    let text = value.serialized
    precondition(!text.utf8.contains(where: { $0 < 0x20 }), "serialized text with a raw control character")
    do {
        let again = try JSONParser.parse(text)
        precondition(again == value, "serialized text parsed to a different value")
        precondition(again.serialized == text, "serializing is not stable")
    } catch {
        preconditionFailure("serialized text was rejected: \(error)")
    }
    checkRawRanges(value, input: input)
    return 0
}

/// Every member's raw range lies inside the input and holds exactly the member's value.
private func checkRawRanges(_ value: JSON, input: UnsafeRawBufferPointer) {
    switch value {
    case .array(let elements):
        for element in elements { checkRawRanges(element, input: input) }
    case .object(let object):
        for member in object.members {
            precondition(member.raw.lowerBound >= 0 && member.raw.upperBound <= input.count, "raw range outside the input")
            let slice = UnsafeRawBufferPointer(rebasing: input[member.raw])
            do {
                let reparsed = try JSONParser.parse(slice)
                precondition(reparsed == member.value, "raw range holds a different value")
            } catch {
                preconditionFailure("raw range holds text that does not parse: \(error)")
            }
            checkRawRanges(member.value, input: input)
        }
    default:
        break
    }
}
