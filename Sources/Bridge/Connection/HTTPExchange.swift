/// The HTTP side of a connection: the request parser and the request-deadline bookkeeping.
/// Boxed so that an upgraded WebSocket connection drops it entirely.
final class HTTPExchange {
    var parser: HTTPRequestParser
    /// Bytes of a request have arrived and it is not complete yet: the request deadline runs.
    var requestInProgress = false
    /// Set while draining: answer the request in flight with `Connection: close`.
    var closeAfterResponse = false
    /// The route of the request being read, found once its head is complete.
    var route: RouteMatch<Endpoint>?
    /// The deferred answer being waited for: until it is queued, nothing more is parsed, so that
    /// answers leave in request order.
    var deferred: HTTPResponder?
    /// Input that arrived while waiting, parsed once the answer is queued.
    var heldInput: [UInt8] = []

    init(limits: HTTPParserLimits) {
        parser = HTTPRequestParser(limits: limits)
    }
}
