// libFuzzer target for HTTPRequestParser, compiled together with the parser's sources:
//
//   swiftc -sanitize=fuzzer,address -parse-as-library -O -wmo \
//     Sources/Bridge/HTTP/HTTPHeaders.swift Sources/Bridge/HTTP/HTTPRequest.swift \
//     Sources/Bridge/HTTP/HTTPParserLimits.swift Sources/Bridge/HTTP/HTTPParseError.swift \
//     Sources/Bridge/HTTP/HTTPParseEvent.swift Sources/Bridge/HTTP/HTTPRequestParser.swift \
//     Sources/Bridge/HTTP/HTTPRequestParser+Target.swift Sources/Bridge/HTTP/HTTPRequestParser+Bytes.swift \
//     Tests/Fuzz/HTTPParserFuzz.swift -o /tmp/fuzz-http
//   SWIFT_BACKTRACE=enable=no /tmp/fuzz-http -max_total_time=60 /tmp/fuzz-http-corpus Tests/Fuzz/corpus/http
//
// libFuzzer writes new inputs into the first directory, so a scratch one comes first to keep the
// seeds few. Swift's backtracer hangs under ASan on a crash; SWIFT_BACKTRACE=enable=no avoids it.
//
// The whole input is the stream. Its first byte also picks the split point and its last byte the
// limits (a stream ending in LF gets the defaults). Each input is parsed whole and in two pieces,
// and both must agree.

/// libFuzzer's entry point: parses `data` and checks the parser's contract with `precondition`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let settings = input[size - 1]
    let limits = settings & 0x80 == 0
        ? HTTPParserLimits()
        : HTTPParserLimits(maxHeadBytes: 256, maxHeaderCount: 6, maxBodyBytes: 64, maxChunkLineBytes: 16)
    let bodyLimit: Int? = [nil, 0, 7, 1 << 20][Int(settings >> 5) & 3]
    let splitAt = Int(input[0]) * size / 256

    let whole = FuzzRun(limits: limits, bodyLimit: bodyLimit)
    whole.feed(input)
    let halves = FuzzRun(limits: limits, bodyLimit: bodyLimit)
    halves.feed(UnsafeRawBufferPointer(rebasing: input[..<splitAt]))
    halves.feed(UnsafeRawBufferPointer(rebasing: input[splitAt...]))

    precondition(whole.requests == halves.requests, "splitting the input changed the requests")
    precondition(whole.error == halves.error, "splitting the input changed the error")
    return 0
}

/// One parser fed piece by piece the way the server feeds it, with the contract checked on every call.
private final class FuzzRun {
    struct Summary: Equatable {
        var method: String
        var target: String
        var path: String
        var query: [String]
        var headers: [String]
        var body: [UInt8]
    }

    private var parser: HTTPRequestParser
    private let bodyLimit: Int?
    private var sawHead = false
    private var declaredLength: Int?
    private let defaultBodyLimit: Int
    private var effectiveLimit: Int
    private(set) var requests: [Summary] = []
    private(set) var error: HTTPParseError?

    init(limits: HTTPParserLimits, bodyLimit: Int?) {
        parser = HTTPRequestParser(limits: limits)
        self.bodyLimit = bodyLimit
        defaultBodyLimit = limits.maxBodyBytes
        effectiveLimit = limits.maxBodyBytes
    }

    func feed(_ piece: UnsafeRawBufferPointer) {
        guard error == nil else { return }
        var offset = 0
        var previousEventConsumedNothing = false
        // Every call consumes a byte or reports an event, and events alternate, so this bounds the loop.
        for _ in 0...(2 * piece.count + 2) {
            let rest = UnsafeRawBufferPointer(rebasing: piece[offset...])
            let consumed: Int
            let event: HTTPParseEvent?
            do {
                (consumed, event) = try parser.parse(rest)
            } catch {
                self.error = error
                checkSticky(error)
                return
            }
            precondition(consumed >= 0 && consumed <= rest.count, "consumed more than given")
            if event != nil, consumed == 0 {
                precondition(!previousEventConsumedNothing, "two events without progress")
            }
            previousEventConsumedNothing = event != nil && consumed == 0
            offset += consumed
            switch event {
            case nil:
                precondition(consumed == rest.count, "no event but input left over")
                return
            case .headComplete:
                precondition(!sawHead, "two heads without a request")
                precondition(consumed > 0, "a head without bytes")
                let head = parser.head
                precondition(head != nil && head!.body.isEmpty, "no head after .headComplete")
                precondition(!parser.isIdle, "idle with a head pending")
                sawHead = true
                declaredLength = head!.headers["content-length"]
                    .flatMap { $0.split(separator: ",").first }
                    .flatMap { Int($0.trimmingSpaces()) }
                effectiveLimit = defaultBodyLimit
                if let bodyLimit {
                    do {
                        try parser.setBodyLimit(bodyLimit)
                    } catch {
                        precondition(error == .bodyTooLarge, "setBodyLimit threw something else")
                        precondition((declaredLength ?? 0) > bodyLimit, "setBodyLimit rejected a fitting length")
                        self.error = error
                        checkSticky(error)
                        return
                    }
                    effectiveLimit = bodyLimit
                }
            case .requestComplete(let request):
                precondition(sawHead, "a request without a head")
                precondition(parser.isIdle && parser.head == nil, "not reset after a request")
                precondition(request.body.count <= effectiveLimit, "body over its limit")
                if let declaredLength { precondition(request.body.count == declaredLength, "body length differs from Content-Length") }
                precondition(request.path.hasPrefix("/") || request.path == "*", "path without a slash")
                precondition(!request.method.isEmpty, "empty method")
                sawHead = false
                requests.append(Summary(method: request.method, target: request.target, path: request.path,
                                        query: request.query.map { $0.name + "=" + $0.value },
                                        headers: request.headers.map { $0.name + ":" + $0.value }, body: request.body))
            }
        }
        preconditionFailure("the parser stopped making progress")
    }

    /// A failed parser stays failed with the same error.
    private func checkSticky(_ error: HTTPParseError) {
        let again = [UInt8]("GET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8)
        let outcome = again.withUnsafeBytes { bytes in
            Result { () throws(HTTPParseError) in try parser.parse(bytes) }
        }
        guard case .failure(let repeated) = outcome else { preconditionFailure("a failed parser accepted more input") }
        precondition(repeated == error, "a failed parser changed its error")
    }
}
