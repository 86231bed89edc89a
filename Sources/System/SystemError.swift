import Glibc

/// A failed system call: which call, on which path when there is one, and its errno. Peers cause
/// many of these (ECONNRESET, EPIPE); the loops treat them as "close that connection", never as a
/// reason to stop.
public struct SystemError: Error, CustomStringConvertible, Sendable, Equatable {
    public let call: String
    /// The file or directory the call was about, for calls that take one.
    public let path: String?
    public let errno: Int32

    /// Captures `errno` at the point of the call unless given: build the error before anything
    /// else (a `close`, a log line) can overwrite it.
    public init(_ call: String, path: String? = nil, errno: Int32 = Glibc.errno) {
        self.call = call
        self.path = path
        self.errno = errno
    }

    /// errno's text, as strerror(3) gives it.
    public var message: String { String(cString: strerror(errno)) }

    public var description: String {
        let subject = path.map { "\(call) \($0)" } ?? call
        return "\(subject) failed: \(message) (errno \(errno))"
    }
}
