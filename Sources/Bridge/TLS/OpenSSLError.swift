import Support

/// What OpenSSL reported, read from (and so cleared off) the thread's error queue: the queue is
/// shared by every connection of a loop, so a failure must take its entries with it.
public struct OpenSSLError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ context: String) {
        let queued = OpenSSLErrorQueue.drain()
        description = queued.isEmpty ? context : "\(context): \(queued.joined(separator: "; "))"
    }
}
