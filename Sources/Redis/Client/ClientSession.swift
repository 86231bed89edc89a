import Support

/// The client's side of its connection: hands queued commands to the socket and matches
/// replies to their completions in order (Redis answers each connection's commands FIFO).
final class ClientSession: ConnectionSession {
    private let inbox: CommandInbox
    /// Completions of the commands handed to the connection, oldest first.
    private var awaiting = FIFO<RedisCompletion>()

    init(inbox: CommandInbox) {
        self.inbox = inbox
    }

    var isClosing: Bool { inbox.isClosed }

    func attemptStarted() {
        inbox.accept()
    }

    func becameReady(_ output: inout OutputBuffer) {}

    func takeQueued(into output: inout OutputBuffer) {
        for command in inbox.takeAll() {
            output.append(command.bytes)
            awaiting.append(command.completion)
        }
    }

    func unsentBytesChanged(_ count: Int) {
        inbox.setUnsentBytes(count)
    }

    func received(_ value: RESPValue) throws(RedisDisconnectReason) {
        guard let completion = awaiting.popFirst() else {
            throw .unexpectedReply("\(value)".prefix(80) + " with no command waiting")
        }
        if case .error(let message) = value {
            completion(.failure(.server(message)))
        } else {
            completion(.success(value))
        }
    }

    /// Commands handed to the connection may have run: `.disconnected`. Commands still
    /// queued never left the process: `.notConnected`, safe to send again.
    func ended(_ reason: RedisDisconnectReason) {
        for completion in awaiting.removeAll() {
            completion(.failure(.disconnected(reason)))
        }
        let neverSent: RedisError = reason == .closedByClient ? .closed : .notConnected(reason)
        for command in inbox.refuse(reason) {
            command.completion(.failure(neverSent))
        }
    }
}
