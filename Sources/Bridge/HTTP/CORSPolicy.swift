/// Cross-origin rules for browsers calling the API from another origin (Fetch standard, CORS protocol).
struct CORSPolicy: Sendable {
    let allowedOrigins: [String]
    private var allowsAny: Bool { allowedOrigins.contains("*") }

    func allows(_ origin: String) -> Bool {
        allowsAny || allowedOrigins.contains(origin)
    }

    /// A preflight is an OPTIONS request carrying `Access-Control-Request-Method`.
    static func isPreflight(_ request: HTTPRequest) -> Bool {
        request.method == "OPTIONS" && request.headers["Access-Control-Request-Method"] != nil
    }

    func preflightResponse(for request: HTTPRequest) -> HTTPResponse {
        guard let origin = request.headers["Origin"], allows(origin) else {
            return .error(403, "origin not allowed")
        }
        var response = HTTPResponse(status: 204)
        response.headers.add("Access-Control-Allow-Origin", origin)
        response.headers.add("Vary", "Origin")
        response.headers.add("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
        let requested = request.headers["Access-Control-Request-Headers"] ?? "Authorization, Content-Type"
        response.headers.add("Access-Control-Allow-Headers", requested)
        response.headers.add("Access-Control-Max-Age", "600")
        return response
    }

    /// Adds the allow-origin header to an actual (non-preflight) response.
    func decorate(_ response: inout HTTPResponse, for request: HTTPRequest) {
        guard response.headers["Access-Control-Allow-Origin"] == nil else { return }  // a preflight answer has it
        guard let origin = request.headers["Origin"], allows(origin) else { return }
        response.headers.add("Access-Control-Allow-Origin", origin)
        response.headers.add("Vary", "Origin")
    }
}
