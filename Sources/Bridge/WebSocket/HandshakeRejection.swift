/// Why an upgrade request was refused: the HTTP response to send instead of 101.
public struct HandshakeRejection: Error, Sendable {
    public var status: Int
    /// A short plain-text explanation for the response body.
    public var message: String
    /// Headers the response must carry, e.g. `Sec-WebSocket-Version: 13` with 426.
    public var headers: [(String, String)]

    public init(status: Int, message: String, headers: [(String, String)] = []) {
        self.status = status
        self.message = message
        self.headers = headers
    }
}
