/// Why a JSON text was rejected, and where.
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Byte offset where parsing failed (the input's length when it ended too soon).
    public let offset: Int
    /// What was wrong, e.g. "expected ':' after object key".
    public let message: String

    public init(offset: Int, message: String) {
        self.offset = offset
        self.message = message
    }

    public var description: String { "\(message) at byte \(offset)" }
}
