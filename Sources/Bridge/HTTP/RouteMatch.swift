/// The outcome of `Router.match(method:path:)`.
public enum RouteMatch<Handler> {
    /// A route fits: its handler, the decoded path parameters, and its body limit (nil: default).
    case found(Handler, params: [String: String], maxBodyBytes: Int?)
    /// Routes fit the path but none the method; `allowed` is for the 405's `Allow` header (RFC 9110 §15.5.6).
    case methodNotAllowed(allowed: [String])
    case notFound
}

extension RouteMatch: Sendable where Handler: Sendable {}
extension RouteMatch: Equatable where Handler: Equatable {}
