@testable import Redis

extension RESPParser {
    /// `parse` over an array's bytes (a typed-throws closure through `withUnsafeBytes`
    /// is not possible, so the error travels as a Result).
    mutating func feed(_ bytes: ArraySlice<UInt8>) throws(RESPParseError) -> (consumed: Int, value: RESPValue?) {
        let step = bytes.withUnsafeBytes { buffer in
            Result { () throws(RESPParseError) in try self.parse(buffer) }
        }
        return try step.get()
    }

    mutating func feed(_ text: String) throws(RESPParseError) -> (consumed: Int, value: RESPValue?) {
        try feed(Array(text.utf8)[...])
    }
}
