/// One parsed HTTP/1.x request. The parser fills it; handlers read it.
public struct HTTPRequest: Sendable {
    public enum Version: Sendable, Equatable {
        case http1_0
        case http1_1
    }

    /// The method token as sent (methods are case-sensitive, RFC 9110 §9.1).
    public var method: String
    /// The raw request-target, e.g. `/apps/1/events?auth_key=k`.
    public var target: String
    /// The path part of the target, still percent-encoded (routing splits on `/` first).
    public var path: String
    /// Query parameters in order, names and values percent-decoded (`+` as space).
    public var query: [(name: String, value: String)]
    public var version: Version
    public var headers: HTTPHeaders
    /// The de-chunked body; empty when none was sent.
    public var body: [UInt8]

    public init(method: String, target: String, path: String, query: [(name: String, value: String)] = [],
                version: Version = .http1_1, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.body = body
    }

    /// The first value of a query parameter.
    public func queryValue(_ name: String) -> String? {
        query.first { $0.name == name }?.value
    }

    /// Whether the connection may serve another request after this one (RFC 9112 §9.3).
    public var keepAlive: Bool {
        switch version {
        case .http1_1: return !headers.hasToken("close", in: "Connection")
        case .http1_0: return headers.hasToken("keep-alive", in: "Connection")
        }
    }
}

extension HTTPRequest {
    /// The body as `application/x-www-form-urlencoded` fields in order (jQuery's default
    /// encoding); nil when a name or value does not percent-decode to UTF-8.
    public var formFields: [(name: String, value: String)]? {
        var fields: [(name: String, value: String)] = []
        for pair in body.split(separator: UInt8(ascii: "&")) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = HTTPRequestParser.percentDecoded(parts[0], plusAsSpace: true),
                  let value = HTTPRequestParser.percentDecoded(parts.count > 1 ? parts[1] : [], plusAsSpace: true) else {
                return nil
            }
            fields.append((name, value))
        }
        return fields
    }

    /// The credentials of an `Authorization: Bearer …` header.
    public var bearerToken: String? {
        guard let value = headers["Authorization"] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].drop { $0 == " " }
        return token.isEmpty ? nil : String(token)
    }

    public var hasJSONBody: Bool {
        (headers["Content-Type"] ?? "").lowercased().hasPrefix("application/json")
    }
}
