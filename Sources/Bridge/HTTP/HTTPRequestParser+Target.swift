/// The request-target (RFC 9112 §3.2), the HTTP version, and percent-decoding.
extension HTTPRequestParser {
    /// RFC 9112 §2.3: `HTTP/` DIGIT `.` DIGIT. A higher 1.x minor version is served as 1.1 (RFC 9110 §2.5).
    static func parseVersion(_ bytes: UnsafeRawBufferPointer) throws(HTTPParseError) -> HTTPRequest.Version {
        guard bytes.count == 8,
              bytes[0] == 0x48, bytes[1] == 0x54, bytes[2] == 0x54, bytes[3] == 0x50, bytes[4] == 0x2F,
              isDigit(bytes[5]), bytes[6] == 0x2E, isDigit(bytes[7]) else {
            throw .malformed("invalid HTTP version")
        }
        guard bytes[5] == 0x31 else { throw .unsupportedVersion }
        return bytes[7] == 0x30 ? .http1_0 : .http1_1
    }

    /// Splits a request-target (RFC 9112 §3.2) into its raw path and decoded query.
    static func splitTarget(_ target: UnsafeRawBufferPointer, method: String) throws(HTTPParseError) -> (String, [(name: String, value: String)]) {
        var pathStart = 0
        if target[0] == slash {
            pathStart = 0
        } else if target.count == 1, target[0] == asterisk {
            // RFC 9112 §3.2.4: asterisk-form is for a server-wide OPTIONS only.
            guard method == "OPTIONS" else { throw .malformed("asterisk target without OPTIONS") }
            return ("*", [])
        } else if let authorityStart = absoluteFormAuthorityStart(target) {
            // RFC 9112 §3.2.2: absolute-form; the path starts after the authority.
            pathStart = authorityStart
            while pathStart < target.count, target[pathStart] != slash, target[pathStart] != question {
                pathStart += 1
            }
            guard pathStart > authorityStart else { throw .malformed("absolute target without host") }
        } else {
            throw .malformed("invalid request target")
        }
        var queryStart = pathStart
        while queryStart < target.count, target[queryStart] != question { queryStart += 1 }
        let rawPath = UnsafeRawBufferPointer(rebasing: target[pathStart..<queryStart])
        let path = rawPath.isEmpty ? "/" : String(decoding: rawPath, as: UTF8.self)
        guard queryStart < target.count else { return (path, []) }
        return (path, try parseQuery(UnsafeRawBufferPointer(rebasing: target[(queryStart + 1)...])))
    }

    /// The index after `http://` or `https://` (scheme case-insensitive), or nil.
    static func absoluteFormAuthorityStart(_ target: UnsafeRawBufferPointer) -> Int? {
        for scheme in [httpScheme, httpsScheme] where target.count >= scheme.count {
            var matches = true
            for (i, byte) in scheme.enumerated() where lowercased(target[i]) != byte {
                matches = false
                break
            }
            if matches { return scheme.count }
        }
        return nil
    }

    /// `name=value` pairs split on `&`, both percent-decoded with `+` as space (the
    /// application/x-www-form-urlencoded convention every HTTP client uses for queries).
    static func parseQuery(_ bytes: UnsafeRawBufferPointer) throws(HTTPParseError) -> [(name: String, value: String)] {
        var pairs: [(name: String, value: String)] = []
        var start = 0
        while start < bytes.count {
            var end = start
            var equals: Int?
            while end < bytes.count, bytes[end] != ampersand {
                if equals == nil, bytes[end] == equalsSign { equals = end }
                end += 1
            }
            if end > start {
                let nameEnd = equals ?? end
                let valueStart = equals.map { $0 + 1 } ?? end
                guard let name = percentDecoded(bytes[start..<nameEnd], plusAsSpace: true),
                      let value = percentDecoded(bytes[valueStart..<end], plusAsSpace: true) else {
                    throw .malformed("invalid percent-encoding in query")
                }
                pairs.append((name, value))
            }
            start = end + 1
        }
        return pairs
    }

    /// Decodes `%XX` escapes (RFC 3986 §2.1), and `+` as a space when asked. Nil when an escape is
    /// invalid or the result is not UTF-8, so two different inputs never decode to the same text.
    static func percentDecoded<Bytes: Collection<UInt8>>(_ bytes: Bytes, plusAsSpace: Bool) -> String? {
        var escaped = false
        var ascii = true
        for byte in bytes {
            if byte == percent || (plusAsSpace && byte == plus) { escaped = true }
            if byte >= 0x80 { ascii = false }
        }
        guard escaped else { return utf8String(bytes, knownASCII: ascii) }
        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count)
        var iterator = bytes.makeIterator()
        while let byte = iterator.next() {
            if byte == percent {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                decoded.append(high << 4 | low)
                if high >= 8 { ascii = false }
            } else if byte == plus, plusAsSpace {
                decoded.append(sp)
            } else {
                decoded.append(byte)
            }
        }
        return utf8String(decoded, knownASCII: ascii)
    }

    /// The text of `bytes`, or nil when they are not UTF-8. String(decoding:) repairs invalid
    /// sequences, so a result whose bytes differ from the input was invalid.
    static func utf8String<Bytes: Collection<UInt8>>(_ bytes: Bytes, knownASCII: Bool) -> String? {
        let text = String(decoding: bytes, as: UTF8.self)
        return knownASCII || text.utf8.elementsEqual(bytes) ? text : nil
    }
}
