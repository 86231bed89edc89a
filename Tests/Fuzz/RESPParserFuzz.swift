// libFuzzer target for the RESP parser. Build and run (scripts/fuzz.sh does both):
//   swiftc -sanitize=fuzzer,address -parse-as-library -O \
//     Sources/Redis/RESP/{RESPValue,RESPParserLimits,RESPParseError,RESPParser,RedisArgument,RESPEncoder}.swift \
//     Tests/Fuzz/RESPParserFuzz.swift -o /tmp/fuzz-resp
//   /tmp/fuzz-resp -max_total_time=60 Tests/Fuzz/corpus/resp
//
// Every input is parsed three ways (whole, split in two at a point taken from the first
// byte, and byte by byte when short); all must agree on the replies and the error. Every
// reply must respect the limits, and must come back unchanged when encoded and parsed again.

private struct Outcome: Equatable {
    var values: [RESPValue] = []
    var error: RESPParseError?
}

/// Checks a reply against the limits; returns its nesting depth.
@discardableResult
private func check(_ value: RESPValue, limits: RESPParserLimits) -> Int {
    switch value {
    case .bulkString(let bytes):
        precondition(bytes.count <= limits.maxBulkLength, "bulk string over the limit")
        return 0
    case .simpleString(let text), .error(let text):
        precondition(!text.utf8.contains(13) && !text.utf8.contains(10), "line break inside a status line")
        return 0
    case .array(let elements):
        precondition(elements.count <= limits.maxArrayLength, "array over the limit")
        let depth = 1 + (elements.map { check($0, limits: limits) }.max() ?? 0)
        precondition(depth <= limits.maxDepth, "nesting over the limit")
        return depth
    case .integer, .null:
        return 0
    }
}

/// Feeds `input` in pieces ending at `cuts` (ascending, the last one is input.count).
private func run(_ input: UnsafeRawBufferPointer, cuts: [Int], limits: RESPParserLimits) -> Outcome {
    var parser = RESPParser(limits: limits)
    var outcome = Outcome()
    var start = 0
    for end in cuts {
        var offset = start
        while offset < end {
            do {
                let (consumed, value) = try parser.parse(UnsafeRawBufferPointer(rebasing: input[offset..<end]))
                precondition(consumed >= 0 && consumed <= end - offset, "consumed out of range")
                offset += consumed
                guard let value else {
                    precondition(offset == end, "returned without a reply before the input ended")
                    continue
                }
                precondition(consumed > 0, "a reply out of no bytes")
                precondition(parser.isIdle, "state held after a reply")
                check(value, limits: limits)
                outcome.values.append(value)
            } catch {
                outcome.error = error
                return outcome
            }
        }
        start = end
    }
    return outcome
}

private let unlimited = RESPParserLimits(maxBulkLength: .max, maxArrayLength: .max, maxDepth: .max,
                                         maxLineLength: .max, maxReplyBytes: .max)

@_cdecl("LLVMFuzzerTestOneInput")
public func respParserFuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let limits: RESPParserLimits
    switch input[size - 1] & 3 {
    case 1: limits = RESPParserLimits(maxBulkLength: 8, maxArrayLength: 3, maxDepth: 2, maxLineLength: 6, maxReplyBytes: 40)
    case 2: limits = RESPParserLimits(maxBulkLength: 100, maxArrayLength: 100, maxDepth: 4, maxLineLength: 20, maxReplyBytes: 300)
    default: limits = RESPParserLimits()
    }
    let whole = run(input, cuts: [size], limits: limits)
    let split = Int(input[0]) * size / 256
    precondition(run(input, cuts: [split, size], limits: limits) == whole, "split parse differs")
    if size <= 4096 {
        precondition(run(input, cuts: Array(1...size), limits: limits) == whole, "byte-at-a-time parse differs")
    }
    for value in whole.values {
        let again = RESPEncoder.value(value).withUnsafeBytes { run($0, cuts: [$0.count], limits: unlimited) }
        precondition(again == Outcome(values: [value]), "encode then parse differs")
    }
    return 0
}
