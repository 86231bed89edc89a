import Support

/// A file served from memory: compressed and fingerprinted once, at start, then answered with
/// content negotiation (gzip or identity) and conditional requests (ETag, 304).
public struct StaticAsset: Sendable {
    /// The `Cache-Control` value of every response.
    public struct CachePolicy: Sendable, Equatable {
        public let headerValue: String

        /// Caches may keep the asset for `seconds`, then revalidate it with its ETag.
        public static func maxAge(_ seconds: Int) -> CachePolicy {
            CachePolicy(headerValue: "public, max-age=\(seconds)")
        }

        /// Caches must revalidate before every use (a page that must pick up a new version at once).
        public static let noCache = CachePolicy(headerValue: "no-cache")
    }

    /// One encoding of the content, with a strong ETag of its own: a gzip body is a different
    /// representation from the identity one (RFC 9110 §8.8.3.3).
    struct Representation: Sendable {
        let body: [UInt8]
        let etag: String
        /// The `Content-Encoding` value, nil for identity.
        let contentEncoding: String?
    }

    public let contentType: String
    public let cache: CachePolicy
    let identity: Representation
    /// Only kept when it is smaller than the identity body.
    let gzip: Representation?

    public init(bytes: [UInt8], contentType: String, cache: CachePolicy = .maxAge(300)) {
        self.contentType = contentType
        self.cache = cache
        let fingerprint = Digest.hex(Digest.sha1(bytes))
        identity = Representation(body: bytes, etag: "\"\(fingerprint)\"", contentEncoding: nil)
        let compressed = Gzip.compress(bytes)
        gzip = compressed.count < bytes.count
            ? Representation(body: compressed, etag: "\"\(fingerprint)-gzip\"", contentEncoding: "gzip")
            : nil
    }

    /// The response to a GET or HEAD (the serialiser leaves a HEAD's body out and keeps its length).
    public func response(to request: HTTPRequest) -> HTTPResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            var refusal = HTTPResponse.error(405, "method \(request.method) not allowed here")
            refusal.headers.add("Allow", "GET, HEAD")
            return refusal
        }
        let chosen = representation(for: request.headers)
        var headers = HTTPHeaders([("Cache-Control", cache.headerValue), ("ETag", chosen.etag)])
        if gzip != nil { headers.add("Vary", "Accept-Encoding") }
        if EntityTags.anyMatches(request.headers.values("If-None-Match"), chosen.etag) {
            return HTTPResponse(status: 304, headers: headers)
        }
        headers.add("Content-Type", contentType)
        headers.add("X-Content-Type-Options", "nosniff")
        if let encoding = chosen.contentEncoding { headers.add("Content-Encoding", encoding) }
        return HTTPResponse(status: 200, headers: headers, body: chosen.body)
    }

    /// gzip when there is a gzip body and the client accepts gzip, unless it ranks identity higher;
    /// identity otherwise, even when the client refused it (RFC 9110 §12.5.3 lets us). Identity
    /// left unmentioned is acceptable but not preferred, so a request without the field, or whose
    /// field leaves gzip out, gets identity.
    func representation(for headers: HTTPHeaders) -> Representation {
        guard let gzip else { return identity }
        let accepted = AcceptEncoding(headers.values("Accept-Encoding"))
        let gzipQuality = accepted.quality(of: "gzip") ?? 0
        let identityQuality = accepted.quality(of: "identity") ?? 0
        return gzipQuality > 0 && gzipQuality >= identityQuality ? gzip : identity
    }
}

/// The `Accept-Encoding` fields of a request (RFC 9110 §12.5.3): codings with their q-values.
struct AcceptEncoding {
    private var qualities: [String: Double] = [:]

    init(_ fieldValues: [String]) {
        for member in fieldValues.flatMap({ $0.split(separator: ",") }) {
            let parts = member.split(separator: ";")
            guard let name = parts.first?.trimmingSpaces().lowercased(), !name.isEmpty else { continue }
            var quality: Double? = 1
            for parameter in parts.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingSpaces() }
                guard pair.count == 2, pair[0].caseInsensitiveEquals("q") else { continue }
                quality = Self.qvalue(pair[1])
            }
            // A member with a malformed q-value says nothing.
            guard let quality else { continue }
            // "x-gzip" is gzip's old alias (RFC 9110 §8.4.1.3).
            qualities[name == "x-gzip" ? "gzip" : name] = quality
        }
    }

    /// How much the client wants `coding`: its own entry, else `*`'s, else nil (not mentioned).
    func quality(of coding: String) -> Double? {
        qualities[coding] ?? qualities["*"]
    }

    /// `0`, `0.5`, `1.000` …: digits and a dot only, between 0 and 1 (RFC 9110 §12.4.2).
    private static func qvalue(_ text: Substring) -> Double? {
        guard text.allSatisfy({ $0 == "." || ("0"..."9").contains($0) }),
              let value = Double(text), value <= 1 else { return nil }
        return value
    }
}

/// Entity-tag comparison for `If-None-Match` (RFC 9110 §13.1.2): weak comparison, `*` matches.
enum EntityTags {
    /// `etag` is strong (ours always are), so weak comparison only drops the `W/` of the request's tags.
    static func anyMatches(_ fieldValues: [String], _ etag: String) -> Bool {
        let wanted = Substring(etag)
        for value in fieldValues {
            // `*` stands alone: the field is either `*` or a list of tags.
            if Substring(value).trimmingSpaces() == "*" { return true }
            if tags(in: value).contains(wanted) { return true }
        }
        return false
    }

    /// The quoted tags of a list such as `W/"a", "b"`, without their `W/`; parsing stops at the
    /// first malformed member. Tags may contain commas, so the list is scanned, not split.
    static func tags(in value: String) -> [Substring] {
        var rest = Substring(value)
        var found: [Substring] = []
        while true {
            rest = rest.drop { $0 == " " || $0 == "\t" || $0 == "," }
            if rest.hasPrefix("W/") { rest = rest.dropFirst(2) }
            guard rest.first == "\"", let close = rest.dropFirst().firstIndex(of: "\"") else { return found }
            found.append(rest[rest.startIndex...close])
            rest = rest[rest.index(after: close)...]
        }
    }
}
