import CCurl

/// One libcurl easy handle with the state curl borrows from us for the
/// transfer's life: the request header list, the error buffer and the
/// response-body buffer. Not thread-safe; use it from one thread at a time.
final class CurlEasy {
    /// Response bytes kept beyond this are dropped (the transfer still
    /// completes): a webhook receiver's answer is only looked at for logs.
    static let maxResponseBodyBytes = 64 * 1024

    /// `curl_global_init` must run once before the first handle; a `static let`
    /// initialiser runs exactly once, thread-safely.
    private static let globalInitResult: CURLcode = curl_global_init(Int(CURL_GLOBAL_DEFAULT))

    let handle: UnsafeMutableRawPointer
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer: UnsafeMutablePointer<CChar>
    private(set) var responseBody: [UInt8] = []

    init() throws(CurlError) {
        guard Self.globalInitResult == CURLE_OK else { throw CurlError(Self.globalInitResult) }
        guard let handle = curl_easy_init() else { throw CurlError(CURLE_FAILED_INIT) }
        self.handle = handle
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        // From here on a throw runs deinit, which releases the handle and the buffer.
        try check(bridge_curl_easy_setopt_ptr(handle, CURLOPT_ERRORBUFFER, errorBuffer))
        // Signals cannot be used for DNS timeouts in a multi-threaded process.
        try check(bridge_curl_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
        // Webhook URLs come from configuration: never file://, gopher:// or the like.
        try check(bridge_curl_easy_setopt_ptr(handle, CURLOPT_PROTOCOLS_STR, "http,https"))
        try check(bridge_curl_easy_setopt_write_callback(handle, CURLOPT_WRITEFUNCTION, curlEasyWriteBody))
        try check(bridge_curl_easy_setopt_ptr(handle, CURLOPT_WRITEDATA, Unmanaged.passUnretained(self).toOpaque()))
    }

    deinit {
        // The header list must outlive the handle that points at it.
        curl_easy_cleanup(handle)
        curl_slist_free_all(headerList)
        errorBuffer.deallocate()
    }

    func setURL(_ url: String) throws(CurlError) {
        try check(bridge_curl_easy_setopt_ptr(handle, CURLOPT_URL, url))
    }

    /// Makes the request a POST of exactly these bytes; curl keeps its own copy.
    func setPostBody(_ body: [UInt8]) throws(CurlError) {
        // The size must be set first so that COPYPOSTFIELDS copies that many bytes, NULs included.
        try check(bridge_curl_easy_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)))
        let code = body.withUnsafeBytes { bytes in
            // An empty array may have no storage; curl still needs a valid pointer.
            "".withCString { empty in
                bridge_curl_easy_setopt_ptr(handle, CURLOPT_COPYPOSTFIELDS, bytes.baseAddress ?? UnsafeRawPointer(empty))
            }
        }
        try check(code)
    }

    /// Replaces the request headers. A header with an empty value is sent as
    /// `Name:`, which curl reads as "do not send the header you would add yourself".
    func setHeaders(_ headers: [(String, String)]) throws(CurlError) {
        var list: UnsafeMutablePointer<curl_slist>?
        for (name, value) in headers {
            let line = value.isEmpty ? "\(name):" : "\(name): \(value)"
            guard let extended = curl_slist_append(list, line) else {
                curl_slist_free_all(list)
                throw CurlError(CURLE_OUT_OF_MEMORY)
            }
            list = extended
        }
        do {
            try check(bridge_curl_easy_setopt_ptr(handle, CURLOPT_HTTPHEADER, list))
        } catch {
            curl_slist_free_all(list)
            throw error
        }
        curl_slist_free_all(headerList)
        headerList = list
    }

    /// Bounds the TCP and TLS connect phase.
    func setConnectTimeout(milliseconds: Int) throws(CurlError) {
        try check(bridge_curl_easy_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, milliseconds))
    }

    /// Bounds the whole transfer, connect included.
    func setTimeout(milliseconds: Int) throws(CurlError) {
        try check(bridge_curl_easy_setopt_long(handle, CURLOPT_TIMEOUT_MS, milliseconds))
    }

    /// Runs the transfer on the calling thread and returns the HTTP status.
    /// Any status, 5xx included, is a success here: the caller decides what it means.
    func perform() -> Result<Int, CurlError> {
        responseBody.removeAll(keepingCapacity: true)
        errorBuffer[0] = 0
        let code = curl_easy_perform(handle)
        guard code == CURLE_OK else { return .failure(error(code)) }
        var status = 0
        let infoCode = bridge_curl_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        guard infoCode == CURLE_OK else { return .failure(error(infoCode)) }
        return .success(status)
    }

    fileprivate func appendResponseBody(_ bytes: UnsafeRawBufferPointer) {
        let room = Self.maxResponseBodyBytes - responseBody.count
        if room > 0 { responseBody.append(contentsOf: bytes.prefix(room)) }
    }

    private func check(_ code: CURLcode) throws(CurlError) {
        guard code == CURLE_OK else { throw error(code) }
    }

    private func error(_ code: CURLcode) -> CurlError {
        CurlError(code, detail: String(cString: errorBuffer))
    }
}

/// CURLOPT_WRITEFUNCTION: returning fewer bytes than given would abort the transfer.
private func curlEasyWriteBody(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    let length = size * count
    guard let data, let context else { return length }
    let easy = Unmanaged<CurlEasy>.fromOpaque(context).takeUnretainedValue()
    easy.appendResponseBody(UnsafeRawBufferPointer(start: data, count: length))
    return length
}
