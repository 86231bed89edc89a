import CCurl

/// A libcurl easy handle set up once for webhook POSTs and reused for attempt
/// after attempt through the dispatcher's multi handle (connections live in
/// the multi handle's cache, so reuse does not depend on which handle runs).
/// It owns what curl borrows for a transfer: header list, error buffer and the
/// response-body snippet. Dispatcher thread only.
final class TransferHandle {
    /// The response body is only looked at for the error text of a failed attempt.
    static let maxBodySnippetBytes = 256

    /// `curl_global_init` must run before the first `curl_multi_init` or `curl_easy_init`.
    /// It is reference-counted and, in this libcurl, thread-safe; a `static let` runs it once.
    static let globalInitResult: CURLcode = curl_global_init(Int(CURL_GLOBAL_DEFAULT))

    let handle: UnsafeMutableRawPointer
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer: UnsafeMutablePointer<CChar>
    fileprivate var bodySnippet: [UInt8] = []
    /// libcurl's built-in CA bundle (nil when it has none), put back when a target without a CA
    /// file of its own follows one with it on this handle.
    private let defaultCAFile: String?
    /// The TLS setting the handle holds now (nil: unknown, after a failed change); the handle
    /// serves targets of every setting.
    private var tls: WebhookTLS? = .systemTrust

    init(connectTimeoutMs: Int, requestTimeoutMs: Int) throws(CurlError) {
        guard Self.globalInitResult == CURLE_OK else { throw CurlError(Self.globalInitResult) }
        guard let handle = curl_easy_init() else { throw CurlError(CURLE_FAILED_INIT) }
        self.handle = handle
        var caFile: UnsafeMutablePointer<CChar>?
        let caInfo = bridge_curl_easy_getinfo_string(handle, CURLINFO_CAINFO, &caFile)
        defaultCAFile = caInfo == CURLE_OK ? caFile.map { String(cString: $0) } : nil
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        // From here on a throw runs deinit, which releases the handle and the buffer.
        try check(bridge_curl_easy_setopt_ptr(handle, CURLOPT_ERRORBUFFER, errorBuffer))
        // Signals cannot be used for DNS timeouts in a multi-threaded process.
        try check(bridge_curl_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
        // Webhook URLs come from configuration: never file://, gopher:// or the like.
        try check(bridge_curl_easy_setopt_ptr(handle, CURLOPT_PROTOCOLS_STR, "http,https"))
        // A 3xx is a final answer: the receiver's configuration is wrong, and following
        // it would re-POST the signed body somewhere nobody configured.
        try check(bridge_curl_easy_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0))
        try check(bridge_curl_easy_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, max(1, connectTimeoutMs)))
        try check(bridge_curl_easy_setopt_long(handle, CURLOPT_TIMEOUT_MS, max(1, requestTimeoutMs)))
        try check(bridge_curl_easy_setopt_write_callback(handle, CURLOPT_WRITEFUNCTION, transferHandleWriteBody))
        try check(bridge_curl_easy_setopt_ptr(handle, CURLOPT_WRITEDATA, Unmanaged.passUnretained(self).toOpaque()))
        // curl's defaults, said out loud: the certificate and the host name are verified unless a
        // target's `"tls_verify": false` asks otherwise (`apply(_:)`).
        try check(bridge_curl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1))
        try check(bridge_curl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2))
    }

    deinit {
        // The header list must outlive the handle that points at it.
        curl_easy_cleanup(handle)
        curl_slist_free_all(headerList)
        errorBuffer.deallocate()
    }

    /// Sets up the next attempt: a POST of exactly `body` to `url` with these header lines,
    /// the receiver's certificate checked as `tls` says.
    func prepare(url: String, headerLines: [String], body: [UInt8], tls: WebhookTLS) throws(CurlError) {
        bodySnippet.removeAll(keepingCapacity: true)
        errorBuffer[0] = 0
        try apply(tls)
        try check(bridge_curl_easy_setopt_ptr(handle, CURLOPT_URL, url))
        try setHeaderLines(headerLines)
        // The size first, so that COPYPOSTFIELDS copies that many bytes, NULs included.
        try check(bridge_curl_easy_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)))
        let code = body.withUnsafeBytes { bytes in
            // An empty array may have no storage; curl still needs a valid pointer.
            "".withCString { empty in
                bridge_curl_easy_setopt_ptr(handle, CURLOPT_COPYPOSTFIELDS, bytes.baseAddress ?? UnsafeRawPointer(empty))
            }
        }
        try check(code)
    }

    /// Every setting of every case is set, so none is left over from the previous target. curl
    /// reuses a cached connection only for a transfer with the same TLS settings, so a connection
    /// opened without verification never carries a verified target's webhook.
    private func apply(_ tls: WebhookTLS) throws(CurlError) {
        guard tls != self.tls else { return }
        // Unknown until every option is set: a throw part-way leaves the handle to be set again.
        self.tls = nil
        let verify: Int = tls == .unverified ? 0 : 1
        let caFile: String? = if case .extraCA(let file) = tls { file } else { defaultCAFile }
        try check(bridge_curl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, verify))
        try check(bridge_curl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, verify * 2))
        try check(bridge_curl_easy_setopt_ptr(handle, CURLOPT_CAINFO, caFile))
        self.tls = tls
    }

    /// What the finished transfer came to, given the code curl reported for it.
    func result(of code: CURLcode) -> AttemptResult {
        guard code == CURLE_OK else { return .transportFailed(error(code)) }
        var status = 0
        let infoCode = bridge_curl_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        guard infoCode == CURLE_OK else { return .transportFailed(error(infoCode)) }
        return .answered(status: status, retryAfter: responseHeader("Retry-After"),
                         bodySnippet: String(decoding: bodySnippet, as: UTF8.self))
    }

    func error(_ code: CURLcode) -> CurlError {
        CurlError(code, detail: String(cString: errorBuffer))
    }

    /// The first response header called `name` (case-insensitive) of the last request.
    private func responseHeader(_ name: String) -> String? {
        var header: UnsafeMutablePointer<curl_header>?
        guard curl_easy_header(handle, name, 0, UInt32(CURLH_HEADER), -1, &header) == CURLHE_OK,
              let value = header?.pointee.value else { return nil }
        return String(cString: value)
    }

    private func setHeaderLines(_ lines: [String]) throws(CurlError) {
        var list: UnsafeMutablePointer<curl_slist>?
        for line in lines {
            guard let extended = curl_slist_append(list, line) else {
                curl_slist_free_all(list)
                throw CurlError(CURLE_OUT_OF_MEMORY)
            }
            list = extended
        }
        let code = bridge_curl_easy_setopt_ptr(handle, CURLOPT_HTTPHEADER, list)
        guard code == CURLE_OK else {
            curl_slist_free_all(list)
            throw error(code)
        }
        curl_slist_free_all(headerList)
        headerList = list
    }

    private func check(_ code: CURLcode) throws(CurlError) {
        guard code == CURLE_OK else { throw error(code) }
    }
}

/// CURLOPT_WRITEFUNCTION: keeps the start of the body; returning fewer bytes
/// than given would abort the transfer, so the rest is consumed and dropped.
private func transferHandleWriteBody(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int,
                                     _ context: UnsafeMutableRawPointer?) -> Int {
    let length = size * count
    guard let data, let context else { return length }
    let transfer = Unmanaged<TransferHandle>.fromOpaque(context).takeUnretainedValue()
    let room = TransferHandle.maxBodySnippetBytes - transfer.bodySnippet.count
    if room > 0 {
        transfer.bodySnippet.append(contentsOf: UnsafeRawBufferPointer(start: data, count: min(length, room)))
    }
    return length
}
