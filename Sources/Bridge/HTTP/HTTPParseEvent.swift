/// What `HTTPRequestParser.parse(_:)` reports.
public enum HTTPParseEvent: Sendable {
    /// The request line and headers are complete; `head` holds them. Set the body limit now.
    case headComplete
    /// The whole request, body de-chunked. The parser is ready for the next request.
    case requestComplete(HTTPRequest)
}
