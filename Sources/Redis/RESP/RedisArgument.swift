/// Something that can be one argument of a Redis command: text, bytes or an integer.
/// Lets a command mix them: `["HSET", key, field, payloadBytes]`, `["PEXPIRE", key, 1500]`.
public protocol RedisArgument: Sendable {
    /// Calls `body` with the bytes Redis receives for this argument.
    func withRedisBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result
}

extension String: RedisArgument {
    public func withRedisBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        var text = self
        return try text.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    }
}

extension Substring: RedisArgument {
    public func withRedisBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        var text = self
        return try text.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    }
}

extension Array: RedisArgument where Element == UInt8 {
    public func withRedisBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try withUnsafeBytes(body)
    }
}

extension ArraySlice: RedisArgument where Element == UInt8 {
    public func withRedisBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try withUnsafeBytes(body)
    }
}

extension Int: RedisArgument {
    public func withRedisBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try String(self).withRedisBytes(body)
    }
}

extension Int64: RedisArgument {
    public func withRedisBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try String(self).withRedisBytes(body)
    }
}
