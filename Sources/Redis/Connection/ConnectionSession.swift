/// The side of a connection that owns the commands and makes sense of the replies: the
/// client's reply matching or the subscriber's subscriptions. `ConnectionLoop` calls it on
/// the connection thread only, so it needs no lock for its own state.
protocol ConnectionSession: AnyObject {
    /// `close()` was called: the loop ends the connection and returns.
    var isClosing: Bool { get }
    /// An attempt to connect begins (at start, or after a backoff pause).
    func attemptStarted()
    /// AUTH and SELECT succeeded: append what must be sent before anything else.
    func becameReady(_ output: inout OutputBuffer)
    /// While ready: move commands queued by other threads into `output`.
    func takeQueued(into output: inout OutputBuffer)
    /// `output` now holds this many unsent bytes (for the bound on what is held unsent).
    func unsentBytesChanged(_ count: Int)
    /// A reply; throwing drops the connection with that reason.
    func received(_ value: RESPValue) throws(RedisDisconnectReason)
    /// The connection, or the attempt to make one, ended: fail or forget what is pending.
    func ended(_ reason: RedisDisconnectReason)
}
