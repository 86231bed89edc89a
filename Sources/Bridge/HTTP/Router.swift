/// Maps a method and a path to a handler. Patterns are paths whose segments are literal or
/// `:name` parameters (`/apps/:app_id/channels/:channel_name`).
///
/// - Segments are compared after percent-decoding (RFC 3986 §6.2.2.2), so `/apps/%31` fits
///   `/apps/:app_id` with `app_id` = `1`; a path that does not decode is not found. Splitting on
///   `/` comes first, so `%2F` stays inside its segment.
/// - A parameter never matches an empty segment.
/// - Trailing slashes are significant: `/apps/1/` does not fit `/apps/:app_id`. Exact matches only:
///   one URL per resource, and no redirect logic in the router.
/// - The first registered route that fits wins; `HEAD` falls back to a `GET` route (RFC 9110 §9.3.2).
public struct Router<Handler> {
    public private(set) var routes: [Route<Handler>] = []

    public init() {}

    public mutating func add(_ method: String, _ pattern: String, maxBodyBytes: Int? = nil, _ handler: Handler) {
        routes.append(Route(method: method, pattern: pattern, maxBodyBytes: maxBodyBytes, handler: handler))
    }

    public func match(method: String, path: String) -> RouteMatch<Handler> {
        guard path.hasPrefix("/") else { return .notFound }
        var parts: [String] = []
        for raw in path.utf8.dropFirst().split(separator: 0x2F, omittingEmptySubsequences: false) {
            guard let part = HTTPRequestParser.percentDecoded(raw, plusAsSpace: false) else { return .notFound }
            parts.append(part)
        }
        var fallback: RouteMatch<Handler>?
        var allowed: [String] = []
        for route in routes {
            guard let params = route.parameters(for: parts) else { continue }
            if route.method == method {
                return .found(route.handler, params: params, maxBodyBytes: route.maxBodyBytes)
            }
            if method == "HEAD", route.method == "GET", fallback == nil {
                fallback = .found(route.handler, params: params, maxBodyBytes: route.maxBodyBytes)
            }
            if !allowed.contains(route.method) { allowed.append(route.method) }
        }
        if let fallback { return fallback }
        if allowed.isEmpty { return .notFound }
        if allowed.contains("GET"), !allowed.contains("HEAD") { allowed.append("HEAD") }
        return .methodNotAllowed(allowed: allowed)
    }
}

extension Router: Sendable where Handler: Sendable {}
