/// Byte constants and classes of the HTTP grammar, shared by the parser's facets.
extension HTTPRequestParser {
    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A
    static let sp: UInt8 = 0x20
    static let htab: UInt8 = 0x09
    static let colon: UInt8 = 0x3A
    static let semicolon: UInt8 = 0x3B
    static let comma: UInt8 = 0x2C
    static let slash: UInt8 = 0x2F
    static let asterisk: UInt8 = 0x2A
    static let question: UInt8 = 0x3F
    static let ampersand: UInt8 = 0x26
    static let equalsSign: UInt8 = 0x3D
    static let percent: UInt8 = 0x25
    static let plus: UInt8 = 0x2B
    static let httpScheme = Array("http://".utf8)
    static let httpsScheme = Array("https://".utf8)
    static let contentLengthName = Array("content-length".utf8)
    static let transferEncodingName = Array("transfer-encoding".utf8)
    static let hostName = Array("host".utf8)
    static let expectName = Array("expect".utf8)
    static let chunkedToken = Array("chunked".utf8)
    static let continueToken = Array("100-continue".utf8)

    /// RFC 9110 §5.6.2: tchar.
    static func isTokenChar(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: return true
        default: return false
        }
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    static func isOWS(_ byte: UInt8) -> Bool { byte == sp || byte == htab }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x41...0x46: return byte - 0x41 + 10
        case 0x61...0x66: return byte - 0x61 + 10
        default: return nil
        }
    }

    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
    }

    /// ASCII case-insensitive comparison against a lowercase constant.
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ lower: [UInt8]) -> Bool {
        guard bytes.count == lower.count else { return false }
        for i in 0..<bytes.count where lowercased(bytes[i]) != lower[i] { return false }
        return true
    }

    static func trimmedOWS(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var start = 0
        var end = bytes.count
        while start < end, isOWS(bytes[start]) { start += 1 }
        while end > start, isOWS(bytes[end - 1]) { end -= 1 }
        return UnsafeRawBufferPointer(rebasing: bytes[start..<end])
    }

    /// The non-empty elements of a comma-separated list (RFC 9110 §5.6.1), OWS trimmed.
    static func listElements(_ value: UnsafeRawBufferPointer) -> [UnsafeRawBufferPointer] {
        value.split(separator: comma).map { trimmedOWS(UnsafeRawBufferPointer(rebasing: $0)) }.filter { !$0.isEmpty }
    }
}
