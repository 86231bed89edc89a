import Support

/// A bad app definition, as one line naming the field, e.g.
/// `apps[1].max_connections must be an integer ≥ -1, got "ten"`.
public struct AppConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

extension AppConfig {
    /// Parses one app object; `path` prefixes field names in errors (e.g. "apps[0]").
    public init(json: JSON, path: String) throws(AppConfigError) {
        guard let object = json.objectValue else {
            throw AppConfigError("\(path) must be an object, got \(json.preview)")
        }
        // The identity comes first: it is required, and "name" defaults to the id.
        let id = try AppField.required("id", in: object, path: path).id()
        let key = try AppField.required("key", in: object, path: path).key()
        let secret = try AppField.required("secret", in: object, path: path).secret()
        self.init(id: id, key: key, secret: secret)

        // Members in order, so with a duplicated key the last one wins, as in the parsed object.
        for member in object.members {
            let field = AppField(name: "\(path).\(member.key)", value: member.value)
            switch member.key {
            case "id", "key", "secret": break
            case "name": name = try field.nonEmptyString()
            case "enabled": enabled = try field.bool()
            case "enable_client_messages": enableClientMessages = try field.bool()
            case "enable_subscription_count": enableSubscriptionCount = try field.bool()
            case "enable_user_authentication": enableUserAuthentication = try field.bool()
            case "user_authentication_timeout": userAuthenticationTimeout = Double(try field.integer(atLeast: 1)) / 1000
            case "activity_timeout": activityTimeout = try field.integer(atLeast: 1, atMost: 3600)
            case "max_connections": maxConnections = try field.limitOrUnlimited()
            case "max_client_events_per_sec": maxClientEventsPerSecond = try field.integer(atLeast: 0)
            case "max_subscriptions_per_sec": maxSubscriptionsPerSecond = try field.integer(atLeast: 1)
            case "max_cache_channels": maxCacheChannels = try field.integer(atLeast: 0)
            case "max_backend_events_per_sec": maxBackendEventsPerSecond = try field.limitOrUnlimited()
            case "max_event_payload_in_kb": maxEventPayloadKB = try field.kilobytes()
            case "max_event_name_length": maxEventNameLength = try field.integer(atLeast: 1)
            case "max_channel_name_length": maxChannelNameLength = try field.integer(atLeast: 1)
            case "max_event_channels_at_once": maxEventChannelsAtOnce = try field.integer(atLeast: 1)
            case "max_event_batch_size": maxEventBatchSize = try field.integer(atLeast: 1)
            case "max_presence_members_per_channel": maxPresenceMembersPerChannel = try field.integer(atLeast: 1)
            case "max_presence_member_size_in_kb": maxPresenceMemberSizeKB = try field.kilobytes()
            case "cache_ttl": cacheTTL = try field.integer(atLeast: 1, atMost: AppConfig.maxCacheTTL)
            case "allowed_origins": allowedOrigins = try field.origins()
            case "webhooks": webhooks = try field.webhooks()
            case "default_channel": defaultChannel = try field.channelName()
            default: throw AppConfigError("\(path): unknown key \(JSONWriter.quoted(member.key))")
            }
        }
    }

    /// Parses the "apps" array: at least one app; ids and keys unique across apps (error names both indices).
    public static func parseApps(_ json: JSON, path: String = "apps") throws(AppConfigError) -> [AppConfig] {
        guard let elements = json.arrayValue else {
            throw AppConfigError("\(path) must be an array of app objects, got \(json.preview)")
        }
        guard !elements.isEmpty else { throw AppConfigError("\(path) must list at least one app") }
        var apps: [AppConfig] = []
        var indexOfID: [String: Int] = [:]
        var indexOfKey: [String: Int] = [:]
        for (index, element) in elements.enumerated() {
            let app = try AppConfig(json: element, path: "\(path)[\(index)]")
            if let first = indexOfID.updateValue(index, forKey: app.id) {
                throw AppConfigError("\(path)[\(index)].id \"\(app.id)\" is already used by \(path)[\(first)]")
            }
            if let first = indexOfKey.updateValue(index, forKey: app.key) {
                throw AppConfigError("\(path)[\(index)].key \"\(app.key)\" is already used by \(path)[\(first)]")
            }
            apps.append(app)
        }
        return apps
    }
}

/// One value of an app object, read into a typed setting or rejected with a message naming it.
private struct AppField {
    /// The field's full path, e.g. "apps[0].max_connections".
    let name: String
    let value: JSON

    static func required(_ key: String, in object: JSONObject, path: String) throws(AppConfigError) -> AppField {
        guard let value = object[key] else { throw AppConfigError("\(path).\(key) is required") }
        return AppField(name: "\(path).\(key)", value: value)
    }

    /// "<field> must be <requirement>, got <the value>".
    private func invalid(_ requirement: String) -> AppConfigError {
        AppConfigError("\(name) must be \(requirement), got \(value.preview)")
    }

    func bool() throws(AppConfigError) -> Bool {
        guard let flag = value.boolValue else { throw invalid("true or false") }
        return flag
    }

    func integer(atLeast minimum: Int, atMost maximum: Int = .max) throws(AppConfigError) -> Int {
        guard let number = value.integralValue, number >= minimum, number <= maximum else {
            throw invalid(maximum == .max ? "an integer ≥ \(minimum)" : "an integer from \(minimum) to \(maximum)")
        }
        return number
    }

    /// A limit where -1 or null means "no limit".
    func limitOrUnlimited() throws(AppConfigError) -> Int? {
        if value.isNull { return nil }
        let limit = try integer(atLeast: -1)
        return limit == -1 ? nil : limit
    }

    /// A size in KiB: fractions allowed, at least one byte, at most 1 GiB.
    func kilobytes() throws(AppConfigError) -> Double {
        guard let size = value.doubleValue, size * 1024 >= 1, size <= 1_048_576 else {
            throw invalid("a number of kilobytes from 0.001 to 1048576")
        }
        return size
    }

    func nonEmptyString() throws(AppConfigError) -> String {
        guard let text = value.stringValue, !text.isEmpty else { throw invalid("a non-empty string") }
        return text
    }

    /// An id is used in URLs (/apps/{id}/events) and log lines, hence the narrow alphabet.
    func id() throws(AppConfigError) -> String {
        let text = value.stringValue ?? value.integralValue.map(String.init)
        guard let text, (1...64).contains(text.utf8.count), text.utf8.allSatisfy({ isIDByte($0) }) else {
            throw invalid("a string or integer of 1 to 64 characters from A-Z a-z 0-9 _ -")
        }
        return text
    }

    /// A key travels in the WebSocket URL and before the ':' of auth signatures, so it must not hold one.
    func key() throws(AppConfigError) -> String {
        guard let text = value.stringValue, !text.isEmpty,
              text.utf8.allSatisfy({ isIDByte($0) || $0 == UInt8(ascii: ".") }) else {
            throw invalid("a non-empty string of A-Z a-z 0-9 _ - . characters")
        }
        return text
    }

    /// Like the other fields, but never echoes the value: a mistyped secret is still a secret.
    func secret() throws(AppConfigError) -> String {
        guard let text = value.stringValue, !text.isEmpty else {
            throw AppConfigError("\(name) must be a non-empty string, got \(value.kind)")
        }
        return text
    }

    func channelName() throws(AppConfigError) -> String {
        guard let text = value.stringValue, ChannelName(text, maxLength: 164) != nil else {
            throw invalid("a valid channel name")
        }
        return text
    }

    func origins() throws(AppConfigError) -> [String] {
        guard let elements = value.arrayValue else { throw invalid("an array of origins") }
        var origins: [String] = []
        for (index, element) in elements.enumerated() {
            origins.append(try AppField(name: "\(name)[\(index)]", value: element).nonEmptyString())
        }
        return origins
    }

    func webhooks() throws(AppConfigError) -> [JSON] {
        guard let elements = value.arrayValue else { throw invalid("an array of webhook objects") }
        for (index, element) in elements.enumerated() {
            let path = "\(name)[\(index)]"
            guard let webhook = element.objectValue else {
                throw AppField(name: path, value: element).invalid("an object")
            }
            try AppField.required("url", in: webhook, path: path).url()
        }
        return elements
    }

    func url() throws(AppConfigError) {
        let text = value.stringValue ?? ""
        let lowercased = text.lowercased()
        let scheme = ["http://", "https://"].first { lowercased.hasPrefix($0) }
        guard let scheme, text.utf8.count > scheme.utf8.count else {
            throw invalid("a string starting with http:// or https://")
        }
    }

    private func isIDByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}

extension JSON {
    /// A number with an integral value that fits in Int, however it is written ("30000", "3e4", "30000.0").
    fileprivate var integralValue: Int? {
        intValue ?? doubleValue.flatMap { Int(exactly: $0) }
    }

    /// The value as it would appear in the config file, cut short so an error stays one readable line.
    fileprivate var preview: String {
        let text = serialized
        return text.count <= 60 ? text : text.prefix(57) + "…"
    }

    /// What sort of value this is, for messages that must not show the value itself.
    fileprivate var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string(let text): text.isEmpty ? "an empty string" : "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
