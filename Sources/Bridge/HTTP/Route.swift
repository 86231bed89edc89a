/// One registered route: a method, a path pattern split into segments, and its handler.
public struct Route<Handler> {
    /// One path segment of a pattern: matched literally, or captured under a name.
    public enum Segment: Equatable, Sendable {
        case literal(String)
        case parameter(String)
    }

    public let method: String
    public let pattern: String
    public let segments: [Segment]
    /// The body limit for this route, or nil for the parser's default.
    public let maxBodyBytes: Int?
    public let handler: Handler

    /// `pattern` is a path such as `/apps/:app_id/events`: segments are literal or `:name`.
    /// A malformed pattern is a programming error and stops the process.
    public init(method: String, pattern: String, maxBodyBytes: Int?, handler: Handler) {
        precondition(pattern.hasPrefix("/"), "route pattern must start with /: \(pattern)")
        var names: Set<String> = []
        segments = pattern.utf8.dropFirst().split(separator: 0x2F, omittingEmptySubsequences: false).map { raw in
            let text = String(Substring(raw))
            guard text.hasPrefix(":") else { return .literal(text) }
            let name = String(text.dropFirst())
            precondition(!name.isEmpty && names.insert(name).inserted, "bad parameter in route pattern: \(pattern)")
            return .parameter(name)
        }
        self.method = method
        self.pattern = pattern
        self.maxBodyBytes = maxBodyBytes
        self.handler = handler
    }

    /// The captured parameters when `path` (already split and percent-decoded) fits the pattern.
    func parameters(for path: [String]) -> [String: String]? {
        guard path.count == segments.count else { return nil }
        var params: [String: String] = [:]
        for (segment, part) in zip(segments, path) {
            switch segment {
            case .literal(let text):
                guard text == part else { return nil }
            case .parameter(let name):
                guard !part.isEmpty else { return nil }
                params[name] = part
            }
        }
        return params
    }
}

extension Route: Sendable where Handler: Sendable {}
