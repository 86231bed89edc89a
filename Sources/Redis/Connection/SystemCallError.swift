import Glibc

/// A failed system call and its errno, as text for `RedisDisconnectReason`.
struct SystemCallError: Error, CustomStringConvertible {
    let call: String
    let errno: Int32

    init(_ call: String, errno: Int32 = Glibc.errno) {
        self.call = call
        self.errno = errno
    }

    var description: String { "\(call): \(String(cString: strerror(errno)))" }
}
