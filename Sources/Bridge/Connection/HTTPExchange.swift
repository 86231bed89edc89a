/// The HTTP side of a connection as a state machine: it parses requests, routes each head (for
/// its body limit), holds pipelined input while a deferred answer is awaited so that answers leave
/// in request order, and decides what a deadline or a drain means. It does no I/O: each transition
/// returns what the connection must do, so tests drive it with plain values.
struct HTTPExchange {
    /// What the connection does for the exchange.
    enum Action {
        /// Queue these bytes as they are (a `100 Continue`).
        case send(OutboundBuffer)
        /// A complete request to answer; `route` was found when its head completed.
        case request(HTTPRequest, route: RouteMatch<Endpoint>)
        /// The first bytes of a request arrived: it must complete within the request timeout.
        case startRequestDeadline
        /// The stream can no longer be framed (or held too much): answer with this error, close.
        case reject(status: Int, message: String)
    }

    /// What a deadline means for the exchange.
    enum Expiry {
        /// The deferred answer is overdue: if `responder` can still be claimed, answer 504.
        case answerOverdue(HTTPResponder)
        /// A request started but did not complete in time: 408 and close.
        case reject(status: Int, message: String)
        /// An idle keep-alive connection: close it.
        case closeNow
    }

    private(set) var parser: HTTPRequestParser
    private let limits: HTTPParserLimits
    /// Seconds a request may take to arrive, and a deferred answer to come.
    let requestTimeout: Double
    /// Bytes of a request have arrived and it is not complete yet: the request deadline runs.
    private(set) var requestInProgress = false
    /// Set while draining or after a 504: answer the request in flight with `Connection: close`.
    private(set) var closeAfterResponse = false
    /// The route of the request being read, found once its head is complete.
    private var route: RouteMatch<Endpoint>?
    /// The deferred answer being waited for: until it is queued, nothing more is parsed.
    private(set) var awaited: HTTPResponder?
    /// Input that arrived while waiting, parsed once the answer is queued.
    private var heldInput: [UInt8] = []

    init(limits: HTTPParserLimits, requestTimeout: Double) {
        parser = HTTPRequestParser(limits: limits)
        self.limits = limits
        self.requestTimeout = requestTimeout
    }

    /// Consumes input and returns at most one action; call again with `input[consumed...]` (also
    /// when nothing is left: a request without a body completes on the call after its head) until
    /// the action is nil. After `.request` the caller answers before calling again, so answers
    /// leave in order; after `.reject` the exchange is over.
    mutating func receive(_ input: UnsafeRawBufferPointer, router: Router<Endpoint>) -> (consumed: Int, action: Action?) {
        if awaited != nil { return (input.count, hold(input)) }
        var offset = 0
        while true {
            let step: (consumed: Int, event: HTTPParseEvent?)
            do {
                step = try parser.parse(UnsafeRawBufferPointer(rebasing: input[offset...]))
            } catch {
                return (offset, .reject(status: error.status, message: error.message))
            }
            offset += step.consumed
            switch step.event {
            case nil:
                guard !requestInProgress, !parser.isIdle else { return (offset, nil) }
                requestInProgress = true
                return (offset, .startRequestDeadline)
            case .headComplete:
                if let action = headComplete(router) { return (offset, action) }
            case .requestComplete(let request):
                requestInProgress = false
                let route = route ?? router.match(method: request.method, path: request.path)
                self.route = nil
                return (offset, .request(request, route: route))
            }
        }
    }

    /// Routes the head and sets its body limit; a `100 Continue` when the client waits for one.
    private mutating func headComplete(_ router: Router<Endpoint>) -> Action? {
        guard let head = parser.head else { return nil }
        let route = router.match(method: head.method, path: head.path)
        self.route = route
        var limit = limits.maxBodyBytes
        if case .found(_, _, let routeLimit?) = route { limit = routeLimit }
        do {
            try parser.setBodyLimit(limit)
        } catch {
            return .reject(status: error.status, message: error.message)
        }
        return parser.expectsContinue ? .send(Self.continueResponse) : nil
    }

    static let continueResponse = OutboundBuffer("HTTP/1.1 100 Continue\r\n\r\n")

    /// Keeps input that arrives while a deferred answer is pending, at most what one request may hold.
    private mutating func hold(_ input: UnsafeRawBufferPointer) -> Action? {
        heldInput.append(contentsOf: input)
        guard heldInput.count > limits.maxHeadBytes + limits.maxBodyBytes else { return nil }
        return .reject(status: 413, message: "too much pipelined input while a response is pending")
    }

    // MARK: Answers

    /// Whether the answer to `request` keeps the connection open.
    func keepsAlive(after request: HTTPRequest, serverDraining: Bool) -> Bool {
        request.keepAlive && !serverDraining && !closeAfterResponse
    }

    /// The handler of the last request will answer later through `responder`: parse nothing more
    /// until it does (the caller starts the request deadline for it).
    mutating func await(_ responder: HTTPResponder) {
        awaited = responder
    }

    /// The awaited answer arrived: the caller queues it, then feeds the returned held input.
    mutating func answerArrived() -> [UInt8] {
        awaited = nil
        defer { heldInput = [] }
        return heldInput
    }

    /// The deferred answer was claimed as overdue: the caller answers 504, and that is the last answer.
    mutating func gaveUpWaiting() {
        awaited = nil
        heldInput = []
        closeAfterResponse = true
    }

    // MARK: Time and shutdown

    /// The connection's deadline passed.
    func deadlineReached() -> Expiry {
        if let awaited { return .answerOverdue(awaited) }
        if requestInProgress {
            return .reject(status: 408, message: "request not completed within \(requestTimeout) seconds")
        }
        return .closeNow
    }

    /// SIGTERM: true when the connection is between requests with nothing owed (close it now);
    /// otherwise the request in flight is answered with `Connection: close`.
    mutating func drain(outputEmpty: Bool) -> Bool {
        if parser.isIdle && outputEmpty && awaited == nil { return true }
        closeAfterResponse = true
        return false
    }
}
