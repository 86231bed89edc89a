// libFuzzer target for the WebSocket decoder. Build and run:
//   swiftc -sanitize=fuzzer,address -parse-as-library -O \
//     Sources/Bridge/WebSocket/{Opcode,CloseCode,WebSocketLimits,WebSocketError,WebSocketMessage,FrameParser,UTF8Validator,WebSocketDecoder}.swift \
//     Tests/Fuzz/FrameParserFuzz.swift -o /tmp/fuzz-frame
//   /tmp/fuzz-frame -max_total_time=60 Tests/Fuzz/corpus/frame
//
// Every input is decoded three ways (whole, split in two at a point taken from the
// first byte, and byte by byte when short); all must agree on the messages and the
// error, and every message must obey the protocol's rules.

private struct Outcome: Equatable {
    var messages: [WebSocketMessage] = []
    var error: WebSocketError?
}

private func check(_ message: WebSocketMessage, limits: WebSocketLimits) {
    switch message {
    case .text(let bytes):
        precondition(bytes.count <= limits.maxMessageBytes, "text over the message limit")
        precondition(String(validating: bytes, as: UTF8.self) != nil, "text that is not UTF-8")
    case .binary(let bytes):
        precondition(bytes.count <= limits.maxMessageBytes, "binary over the message limit")
    case .ping(let bytes), .pong(let bytes):
        precondition(bytes.count <= 125 && bytes.count <= limits.maxFrameBytes, "control payload too long")
    case .close(let code, let reason):
        precondition(reason.count <= 123, "close reason too long")
        precondition(code != nil || reason.isEmpty, "close reason without a code")
        precondition(code?.isValidOnWire ?? true, "close code not valid on the wire")
        precondition(String(validating: reason, as: UTF8.self) != nil, "close reason that is not UTF-8")
    }
}

/// Feeds `input` in pieces ending at `cuts` (ascending, the last one is input.count).
private func run(_ input: UnsafeRawBufferPointer, cuts: [Int], limits: WebSocketLimits) -> Outcome {
    var decoder = WebSocketDecoder(limits: limits)
    var outcome = Outcome()
    var start = 0
    for end in cuts {
        var offset = start
        var calls = 0
        while offset < end {
            calls += 1
            precondition(calls <= end - start + 1, "decoder made no progress")
            do {
                let (consumed, message) = try decoder.parse(UnsafeRawBufferPointer(rebasing: input[offset..<end]))
                precondition(consumed >= 0 && consumed <= end - offset, "consumed out of range")
                offset += consumed
                guard let message else {
                    precondition(offset == end, "returned without a message before the input ended")
                    continue
                }
                precondition(consumed > 0, "a message out of no bytes")
                check(message, limits: limits)
                switch message {
                case .text, .binary:
                    precondition(decoder.isIdle, "buffers held after a data message")
                default:
                    break
                }
                outcome.messages.append(message)
            } catch {
                outcome.error = error
                return outcome
            }
        }
        start = end
    }
    return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func frameParserFuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let limits: WebSocketLimits
    switch input[size - 1] & 3 {
    case 2: limits = WebSocketLimits(maxFrameBytes: 64, maxMessageBytes: 200)
    case 3: limits = WebSocketLimits(maxFrameBytes: 300, maxMessageBytes: 100)
    default: limits = WebSocketLimits()
    }
    let whole = run(input, cuts: [size], limits: limits)
    let split = Int(input[0]) * size / 256
    precondition(run(input, cuts: [split, size], limits: limits) == whole, "split decode differs")
    if size <= 4096 {
        precondition(run(input, cuts: Array(1...size), limits: limits) == whole, "byte-at-a-time decode differs")
    }
    return 0
}
