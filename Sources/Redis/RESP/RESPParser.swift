/// An incremental RESP2 parser: bytes in, whole replies out.
///
/// It keeps every partial line, bulk payload and array itself, so the caller hands it
/// each read's bytes once, split anywhere, and keeps nothing; input cut at every byte
/// boundary gives the same replies and the same error as the whole. Work is linear in
/// the input: a line or payload is never rescanned. Limits are checked when a header
/// or byte is read, before anything is reserved for it, and nothing is reserved more
/// than `reserveAhead` ahead of the bytes that actually arrived.
public struct RESPParser: Sendable {
    /// Largest capacity reserved for bytes or elements that have not arrived yet.
    static let reserveAhead = 64 * 1024

    private enum LineKind: Sendable {
        case simpleString, error, integer, bulkLength, arrayLength
    }

    private enum State: Sendable {
        /// Expecting the type byte of the next value.
        case start
        case line(LineKind)
        /// A line's CR was read; LF must follow.
        case lineFeed(LineKind)
        case bulkPayload(remaining: Int)
        /// The payload is complete; CR and then LF must follow.
        case bulkCarriageReturn
        case bulkLineFeed
    }

    /// An array whose elements are still arriving.
    private struct OpenArray: Sendable {
        let length: Int
        var elements: [RESPValue]
    }

    public let limits: RESPParserLimits
    private var state = State.start
    private var line: [UInt8] = []
    private var bulk: [UInt8] = []
    private var openArrays: [OpenArray] = []
    /// Bytes of the current top-level reply read so far (bulk payloads counted at their header).
    private var replyBytes = 0
    /// Set by the first error; the stream cannot be resynchronised after it.
    private var failure: RESPParseError?

    public init(limits: RESPParserLimits = RESPParserLimits()) {
        self.limits = limits
    }

    /// True between replies: no partial reply is held.
    public var isIdle: Bool {
        if case .start = state { return openArrays.isEmpty }
        return false
    }

    /// Bytes reserved for partial lines, payloads and arrays, for tests of the memory bounds.
    var reservedBytes: Int {
        line.capacity + bulk.capacity + openArrays.reduce(0) { $0 + $1.elements.capacity * MemoryLayout<RESPValue>.stride }
    }

    /// Consumes bytes and returns at most one complete reply; call again with
    /// `input[consumed...]` until all input is consumed. It stops right after a reply, so
    /// `consumed` may be less than `input.count`; without a reply it consumes all of `input`.
    ///
    /// After an error the connection must be closed: every later call throws the same error.
    public mutating func parse(_ input: UnsafeRawBufferPointer) throws(RESPParseError) -> (consumed: Int, value: RESPValue?) {
        if let failure { throw failure }
        do {
            var index = 0
            while index < input.count {
                if case .bulkPayload(let remaining) = state {
                    let take = min(remaining, input.count - index)
                    bulk.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[index..<(index + take)]))
                    index += take
                    state = take == remaining ? .bulkCarriageReturn : .bulkPayload(remaining: remaining - take)
                    continue
                }
                let byte = input[index]
                index += 1
                if let value = try step(byte) {
                    return (index, value)
                }
            }
            return (index, nil)
        } catch {
            failure = error
            throw error
        }
    }

    /// Parses a buffer that holds whole replies only, for tests and tools.
    public static func parseAll(_ bytes: [UInt8], limits: RESPParserLimits = RESPParserLimits()) throws(RESPParseError) -> [RESPValue] {
        var parser = RESPParser(limits: limits)
        var values: [RESPValue] = []
        var offset = 0
        while offset < bytes.count {
            let step = bytes.withUnsafeBytes { buffer in
                Result { () throws(RESPParseError) in try parser.parse(UnsafeRawBufferPointer(rebasing: buffer[offset...])) }
            }
            let (consumed, value) = try step.get()
            offset += consumed
            if let value { values.append(value) }
        }
        return values
    }

    /// Reads one byte outside a bulk payload; returns a reply when this byte completed one.
    private mutating func step(_ byte: UInt8) throws(RESPParseError) -> RESPValue? {
        replyBytes += 1
        guard replyBytes <= limits.maxReplyBytes else { throw .replyTooLarge(limit: limits.maxReplyBytes) }
        switch state {
        case .start:
            state = .line(try Self.lineKind(forType: byte))
            return nil
        case .line(let kind):
            switch byte {
            case UInt8(ascii: "\r"):
                state = .lineFeed(kind)
            case UInt8(ascii: "\n"):
                throw .lineFeedWithoutCarriageReturn
            default:
                guard line.count < limits.maxLineLength else { throw .lineTooLong(limit: limits.maxLineLength) }
                line.append(byte)
            }
            return nil
        case .lineFeed(let kind):
            guard byte == UInt8(ascii: "\n") else { throw .carriageReturnWithoutLineFeed(followedBy: byte) }
            defer { line.removeAll(keepingCapacity: line.count <= 64) }
            return try finishLine(kind)
        case .bulkPayload:
            preconditionFailure("bulk payloads are copied by parse(_:)")
        case .bulkCarriageReturn:
            guard byte == UInt8(ascii: "\r") else { throw .bulkStringNotTerminated(found: byte) }
            state = .bulkLineFeed
            return nil
        case .bulkLineFeed:
            guard byte == UInt8(ascii: "\n") else { throw .bulkStringNotTerminated(found: byte) }
            let payload = bulk
            bulk = []
            return complete(.bulkString(payload))
        }
    }

    private static func lineKind(forType byte: UInt8) throws(RESPParseError) -> LineKind {
        switch byte {
        case UInt8(ascii: "+"): .simpleString
        case UInt8(ascii: "-"): .error
        case UInt8(ascii: ":"): .integer
        case UInt8(ascii: "$"): .bulkLength
        case UInt8(ascii: "*"): .arrayLength
        default: throw .unknownType(byte)
        }
    }

    private mutating func finishLine(_ kind: LineKind) throws(RESPParseError) -> RESPValue? {
        switch kind {
        case .simpleString:
            return complete(.simpleString(String(decoding: line, as: UTF8.self)))
        case .error:
            return complete(.error(String(decoding: line, as: UTF8.self)))
        case .integer:
            guard let value = Self.decimal(line) else { throw .invalidInteger(RESPParseError.quote(line)) }
            return complete(.integer(value))
        case .bulkLength:
            let length = try length()
            if length == -1 { return complete(.null) }
            guard length <= limits.maxBulkLength else { throw .bulkTooLong(length: length, limit: limits.maxBulkLength) }
            // The payload counts towards the reply now, so the bound holds before it arrives
            // (its CRLF is counted byte by byte, like every line).
            replyBytes += Int(length)
            guard replyBytes <= limits.maxReplyBytes else { throw .replyTooLarge(limit: limits.maxReplyBytes) }
            bulk.reserveCapacity(min(Int(length), Self.reserveAhead))
            state = length == 0 ? .bulkCarriageReturn : .bulkPayload(remaining: Int(length))
            return nil
        case .arrayLength:
            let length = try length()
            if length == -1 { return complete(.null) }
            guard length <= limits.maxArrayLength else { throw .arrayTooLong(length: length, limit: limits.maxArrayLength) }
            guard openArrays.count < limits.maxDepth else { throw .nestingTooDeep(limit: limits.maxDepth) }
            if length == 0 { return complete(.array([])) }
            var elements: [RESPValue] = []
            elements.reserveCapacity(min(Int(length), Self.reserveAhead / 16))
            openArrays.append(OpenArray(length: Int(length), elements: elements))
            state = .start
            return nil
        }
    }

    /// A bulk or array length: -1 (null) or more.
    private func length() throws(RESPParseError) -> Int64 {
        guard let value = Self.decimal(line), value >= -1 else { throw .invalidLength(RESPParseError.quote(line)) }
        return value
    }

    /// Adds a finished value to the innermost open array, closing every array it fills;
    /// returns the top-level reply once there is one.
    private mutating func complete(_ value: RESPValue) -> RESPValue? {
        state = .start
        var value = value
        while !openArrays.isEmpty {
            let last = openArrays.count - 1
            openArrays[last].elements.append(value)
            guard openArrays[last].elements.count == openArrays[last].length else { return nil }
            value = .array(openArrays.removeLast().elements)
        }
        replyBytes = 0
        return value
    }

    /// `-?[0-9]+` as an Int64; nil for anything else, including overflow and a lone "-".
    static func decimal(_ text: [UInt8]) -> Int64? {
        var digits = text[...]
        let negative = digits.first == UInt8(ascii: "-")
        if negative { digits = digits.dropFirst() }
        guard !digits.isEmpty else { return nil }
        var value: Int64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            let digit = Int64(byte - UInt8(ascii: "0"))
            // Accumulate negatively so that Int64.min parses too.
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = shifted.subtractingReportingOverflow(digit)
            guard !overflow1 && !overflow2 else { return nil }
            value = next
        }
        if negative { return value }
        return value == .min ? nil : -value
    }
}
