import Glibc

/// A failed system call: which call and its errno. Peers cause many of these (ECONNRESET, EPIPE);
/// the loop treats them as "close that connection", never as a reason to stop.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let errno: Int32

    public init(_ call: String, errno: Int32 = Glibc.errno) {
        self.call = call
        self.errno = errno
    }

    public var description: String {
        "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}
