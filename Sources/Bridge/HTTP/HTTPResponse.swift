import Support

/// An HTTP/1.1 response: status, headers and body, serialised in one go.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A response with `jsonText` as its body and `Content-Type: application/json`.
    public static func json(_ status: Int, _ jsonText: String) -> HTTPResponse {
        HTTPResponse(status: status, headers: HTTPHeaders([("Content-Type", "application/json")]), body: Array(jsonText.utf8))
    }

    /// A response with what `json` wrote as its body and `Content-Type: application/json`.
    public static func json(_ status: Int, _ json: JSONWriter) -> HTTPResponse {
        HTTPResponse(status: status, headers: HTTPHeaders([("Content-Type", "application/json")]), body: json.bytes)
    }

    /// `{"error":"<message>"}`.
    public static func error(_ status: Int, _ message: String) -> HTTPResponse {
        json(status, JSONWriter.object(reservingCapacity: 16 + message.utf8.count) { $0.field("error", message) })
    }

    /// The reason phrase for `status` (RFC 9110 §15), empty for codes not in the table:
    /// the status line allows an empty reason (RFC 9112 §4).
    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 101: return "Switching Protocols"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 301: return "Moved Permanently"
        case 304: return "Not Modified"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 415: return "Unsupported Media Type"
        case 417: return "Expectation Failed"
        case 422: return "Unprocessable Content"
        case 426: return "Upgrade Required"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return ""
        }
    }

    /// The response on the wire.
    ///
    /// `Date`, `Content-Length` and `Connection` belong to the serialiser: fields of those names in
    /// `headers` are dropped. `Content-Length` is the body's length (also for HEAD, whose body is then
    /// left out, RFC 9110 §9.3.2) and is not sent with 1xx, 204 or 304 (RFC 9110 §8.6), which carry
    /// no body. A 1xx response is only the status line and `headers`, so a 101 keeps its own
    /// `Connection: Upgrade` and an interim 100 says nothing about the connection.
    /// CR, LF and NUL in header names or values become spaces so a value cannot split the head.
    public func serialized(date: String, keepAlive: Bool, headOnly: Bool = false) -> [UInt8] {
        let informational = status >= 100 && status < 200
        let bodyless = informational || status == 204 || status == 304
        var out: [UInt8] = []
        out.reserveCapacity(128 + headers.count * 32 + (bodyless || headOnly ? 0 : body.count))
        out += Self.statusLinePrefix
        out += String(status).utf8
        out.append(0x20)
        out += Self.reasonPhrase(status).utf8
        out += Self.crlf
        for (name, value) in headers {
            if !informational, Self.isOwnedField(name) { continue }
            Self.appendSanitized(name, to: &out)
            out += [0x3A, 0x20]
            Self.appendSanitized(value, to: &out)
            out += Self.crlf
        }
        if !informational {
            out += "Date: ".utf8
            Self.appendSanitized(date, to: &out)
            out += Self.crlf
            if !bodyless {
                out += "Content-Length: ".utf8
                out += String(body.count).utf8
                out += Self.crlf
            }
            out += keepAlive ? Self.keepAliveLine : Self.closeLine
        }
        out += Self.crlf
        if !bodyless, !headOnly { out += body }
        return out
    }

    /// `Sun, 06 Nov 1994 08:49:37 GMT`: the IMF-fixdate form of RFC 9110 §5.6.7, in UTC.
    public static func httpDate(epochSeconds: Int) -> String {
        let days = epochSeconds >= 0 ? epochSeconds / 86_400 : (epochSeconds - 86_399) / 86_400
        let secondOfDay = epochSeconds - days * 86_400
        // 1970-01-01 was a Thursday.
        let weekday = ((days % 7) + 7 + 4) % 7
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        var text = weekdayNames[weekday] + ", " + twoDigits(day) + " " + monthNames[month - 1] + " "
        text += fourDigits(year) + " " + twoDigits(secondOfDay / 3600) + ":"
        text += twoDigits(secondOfDay / 60 % 60) + ":" + twoDigits(secondOfDay % 60) + " GMT"
        return text
    }

    /// Gregorian year, month (1–12) and day for a count of days since 1970-01-01. Every 400
    /// Gregorian years hold exactly 146 097 days, so at most 400 years and 12 months are walked.
    private static func civilDate(daysSinceEpoch: Int) -> (year: Int, month: Int, day: Int) {
        let cycles = daysSinceEpoch >= 0 ? daysSinceEpoch / 146_097 : (daysSinceEpoch - 146_096) / 146_097
        var days = daysSinceEpoch - cycles * 146_097
        var year = 1970 + cycles * 400
        while days >= daysInYear(year) {
            days -= daysInYear(year)
            year += 1
        }
        var month = 1
        while days >= daysInMonth(month, year: year) {
            days -= daysInMonth(month, year: year)
            month += 1
        }
        return (year, month, days + 1)
    }

    private static func isLeapYear(_ year: Int) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    private static func daysInYear(_ year: Int) -> Int { isLeapYear(year) ? 366 : 365 }

    private static func daysInMonth(_ month: Int, year: Int) -> Int {
        switch month {
        case 2: return isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    private static let weekdayNames = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    private static let statusLinePrefix = Array("HTTP/1.1 ".utf8)
    private static let crlf: [UInt8] = [0x0D, 0x0A]
    private static let keepAliveLine = Array("Connection: keep-alive\r\n".utf8)
    private static let closeLine = Array("Connection: close\r\n".utf8)

    private static func twoDigits(_ n: Int) -> String { n < 10 ? "0" + String(n) : String(n) }

    private static func fourDigits(_ n: Int) -> String {
        let digits = String(n)
        return n >= 0 && digits.count < 4 ? String(repeating: "0", count: 4 - digits.count) + digits : digits
    }

    private static func isOwnedField(_ name: String) -> Bool {
        name.caseInsensitiveEquals("Date") || name.caseInsensitiveEquals("Content-Length")
            || name.caseInsensitiveEquals("Connection")
    }

    private static func appendSanitized(_ text: String, to out: inout [UInt8]) {
        for byte in text.utf8 {
            out.append(byte == 0x0D || byte == 0x0A || byte == 0x00 ? 0x20 : byte)
        }
    }
}
