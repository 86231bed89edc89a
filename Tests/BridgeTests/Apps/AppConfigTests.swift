import Bridge
import Testing

/// Parses one app object given as JSON text, under the path "apps[0]".
private func app(_ text: String) throws -> AppConfig {
    try AppConfig(json: JSONParser.parse(text), path: "apps[0]")
}

/// The error message for an app object given as JSON text, or nil when it was accepted.
private func appError(_ text: String) throws -> String? {
    let json = try JSONParser.parse(text)
    do {
        _ = try AppConfig(json: json, path: "apps[0]")
        return nil
    } catch {
        return error.message
    }
}

/// The error message for an "apps" array given as JSON text, or nil when it was accepted.
private func appsError(_ text: String) throws -> String? {
    let json = try JSONParser.parse(text)
    do {
        _ = try AppConfig.parseApps(json)
        return nil
    } catch {
        return error.message
    }
}

/// A minimal valid app object with `extra` members added (e.g. `"enabled":false`).
private func minimal(_ extra: String = "") -> String {
    #"{"id":"a1","key":"key-1","secret":"s3cret""# + (extra.isEmpty ? "" : "," + extra) + "}"
}

@Suite struct AppConfigTests {
    // MARK: - Defaults

    @Test func initializerDefaults() {
        let config = AppConfig(id: "7", key: "k", secret: "s")
        #expect(config.name == "7")
        #expect(config.enabled)
        #expect(config.enableClientMessages)
        #expect(!config.enableSubscriptionCount)
        #expect(!config.enableUserAuthentication)
        #expect(config.userAuthenticationTimeout == 30)
        #expect(config.activityTimeout == 120)
        #expect(config.maxConnections == nil)
        #expect(config.maxClientEventsPerSecond == 10)
        #expect(config.maxBackendEventsPerSecond == nil)
        #expect(config.maxEventPayloadKB == 10)
        #expect(config.maxEventPayloadBytes == 10_240)
        #expect(config.maxEventNameLength == 200)
        #expect(config.maxChannelNameLength == 164)
        #expect(config.maxEventChannelsAtOnce == 100)
        #expect(config.maxEventBatchSize == 10)
        #expect(config.maxPresenceMembersPerChannel == 100)
        #expect(config.maxPresenceMemberSizeKB == 1)
        #expect(config.maxPresenceMemberSizeBytes == 1024)
        #expect(config.cacheTTL == 1800)
        #expect(config.allowedOrigins == ["*"])
        #expect(config.webhooks.isEmpty)
    }

    @Test func defaultApp() {
        let app = AppConfig.defaultApp
        #expect(app.id == "1")
        #expect(app.key == "app-key")
        #expect(app.secret == "app-secret")
        #expect(app.name == "default")
        #expect(app.enabled && app.maxConnections == nil)
    }

    @Test func minimalObjectGetsTheDefaults() throws {
        #expect(try app(minimal()) == AppConfig(id: "a1", key: "key-1", secret: "s3cret"))
    }

    @Test func byteSizesClampInsteadOfTrapping() {
        var config = AppConfig(id: "1", key: "k", secret: "s")
        config.maxEventPayloadKB = 0.5
        #expect(config.maxEventPayloadBytes == 512)
        config.maxEventPayloadKB = .infinity
        #expect(config.maxEventPayloadBytes == .max)
        config.maxPresenceMemberSizeKB = .nan
        #expect(config.maxPresenceMemberSizeBytes == 0)
    }

    // MARK: - Every field

    @Test func everyFieldIsRead() throws {
        let config = try app("""
        {
          "id": "app_1-x", "key": "Key.2-b_c", "secret": "shh", "name": "Shop",
          "enabled": false,
          "enable_client_messages": false,
          "enable_subscription_count": true,
          "enable_user_authentication": true,
          "user_authentication_timeout": 2500,
          "activity_timeout": 30,
          "max_connections": 5000,
          "max_client_events_per_sec": 0,
          "max_backend_events_per_sec": 250,
          "max_event_payload_in_kb": 0.5,
          "max_event_name_length": 50,
          "max_channel_name_length": 64,
          "max_event_channels_at_once": 3,
          "max_event_batch_size": 5,
          "max_presence_members_per_channel": 20,
          "max_presence_member_size_in_kb": 2,
          "cache_ttl": 60,
          "allowed_origins": ["https://shop.example", "http://localhost:3000"],
          "webhooks": [{"url": "https://shop.example/hooks", "event_types": ["channel_occupied"]}]
        }
        """)
        #expect(config.id == "app_1-x")
        #expect(config.key == "Key.2-b_c")
        #expect(config.secret == "shh")
        #expect(config.name == "Shop")
        #expect(!config.enabled)
        #expect(!config.enableClientMessages)
        #expect(config.enableSubscriptionCount)
        #expect(config.enableUserAuthentication)
        #expect(config.userAuthenticationTimeout == 2.5)
        #expect(config.activityTimeout == 30)
        #expect(config.maxConnections == 5000)
        #expect(config.maxClientEventsPerSecond == 0)
        #expect(config.maxBackendEventsPerSecond == 250)
        #expect(config.maxEventPayloadKB == 0.5)
        #expect(config.maxEventPayloadBytes == 512)
        #expect(config.maxEventNameLength == 50)
        #expect(config.maxChannelNameLength == 64)
        #expect(config.maxEventChannelsAtOnce == 3)
        #expect(config.maxEventBatchSize == 5)
        #expect(config.maxPresenceMembersPerChannel == 20)
        #expect(config.maxPresenceMemberSizeKB == 2)
        #expect(config.maxPresenceMemberSizeBytes == 2048)
        #expect(config.cacheTTL == 60)
        #expect(config.allowedOrigins == ["https://shop.example", "http://localhost:3000"])
        #expect(config.webhooks.count == 1)
        #expect(config.webhooks.first?.objectValue?["url"] == .string("https://shop.example/hooks"))
        #expect(config.webhooks.first?.objectValue?["event_types"] == .array([.string("channel_occupied")]))
    }

    @Test func integerIDBecomesText() throws {
        #expect(try app(#"{"id":12345,"key":"k","secret":"s"}"#).id == "12345")
        #expect(try app(#"{"id":12345,"key":"k","secret":"s"}"#).name == "12345")
    }

    @Test func unlimitedLimits() throws {
        let minusOne = try app(minimal(#""max_connections":-1,"max_backend_events_per_sec":-1"#))
        #expect(minusOne.maxConnections == nil && minusOne.maxBackendEventsPerSecond == nil)
        let null = try app(minimal(#""max_connections":null,"max_backend_events_per_sec":null"#))
        #expect(null.maxConnections == nil && null.maxBackendEventsPerSecond == nil)
        let zero = try app(minimal(#""max_connections":0,"max_backend_events_per_sec":0"#))
        #expect(zero.maxConnections == 0 && zero.maxBackendEventsPerSecond == 0)
    }

    @Test func integralNumbersInAnySpelling() throws {
        #expect(try app(minimal(#""activity_timeout":6e1"#)).activityTimeout == 60)
        #expect(try app(minimal(#""cache_ttl":90.0"#)).cacheTTL == 90)
        #expect(try app(minimal(#""user_authentication_timeout":3e4"#)).userAuthenticationTimeout == 30)
    }

    @Test func boundariesAreInclusive() throws {
        #expect(try app(minimal(#""activity_timeout":1"#)).activityTimeout == 1)
        #expect(try app(minimal(#""activity_timeout":3600"#)).activityTimeout == 3600)
        #expect(try app(minimal(#""max_event_payload_in_kb":0.001"#)).maxEventPayloadBytes == 1)
        #expect(try app(minimal(#""max_event_payload_in_kb":1048576"#)).maxEventPayloadBytes == 1 << 30)
        #expect(try app(minimal(#""allowed_origins":[]"#)).allowedOrigins == [])
        #expect(try app(minimal(#""webhooks":[]"#)).webhooks == [])
    }

    @Test func laterDuplicateKeyWins() throws {
        #expect(try app(minimal(#""activity_timeout":5,"activity_timeout":6"#)).activityTimeout == 6)
    }

    // MARK: - Errors

    @Test func unknownKeyIsNamed() throws {
        #expect(try appError(minimal(#""max_conections":5"#)) == #"apps[0]: unknown key "max_conections""#)
        #expect(try appError(minimal(#""maxConnections":5"#)) == #"apps[0]: unknown key "maxConnections""#)
        #expect(try appError(minimal("\"bad\\nkey\":1")) == #"apps[0]: unknown key "bad\nkey""#)
    }

    @Test(arguments: ["id", "key", "secret"])
    func requiredFields(field: String) throws {
        let members = ["id": #""id":"a""#, "key": #""key":"k""#, "secret": #""secret":"s""#]
        let text = "{" + members.filter { $0.key != field }.values.sorted().joined(separator: ",") + "}"
        #expect(try appError(text) == "apps[0].\(field) is required")
    }

    @Test(arguments: [
        (#""a b""#, #""a b""#), (#""""#, #""""#), ("1.5", "1.5"), ("true", "true"), ("null", "null"),
        (#""ünï""#, #""ünï""#), (#""a:b""#, #""a:b""#), ("[1]", "[1]"),
        ("\"" + String(repeating: "x", count: 65) + "\"", "\"" + String(repeating: "x", count: 56) + "…"),
    ])
    func badIDs(json: String, shown: String) throws {
        let text = #"{"id":\#(json),"key":"k","secret":"s"}"#
        #expect(try appError(text) == "apps[0].id must be a string or integer of 1 to 64 characters from A-Z a-z 0-9 _ -, got \(shown)")
    }

    @Test func idOfExactly64CharactersIsAccepted() throws {
        let id = String(repeating: "x", count: 64)
        #expect(try app(#"{"id":"\#(id)","key":"k","secret":"s"}"#).id == id)
    }

    @Test(arguments: [#""""#, #""app:key""#, #""a b""#, #""k/1""#, "5", "null"])
    func badKeys(json: String) throws {
        let text = #"{"id":"a","key":\#(json),"secret":"s"}"#
        #expect(try appError(text) == "apps[0].key must be a non-empty string of A-Z a-z 0-9 _ - . characters, got \(json)")
    }

    @Test(arguments: [(#""""#, "an empty string"), ("12345", "a number"), ("null", "null"), ("[\"s\"]", "an array")])
    func badSecretsAreNotEchoed(json: String, kind: String) throws {
        let text = #"{"id":"a","key":"k","secret":\#(json)}"#
        #expect(try appError(text) == "apps[0].secret must be a non-empty string, got \(kind)")
    }

    @Test(arguments: ["enabled", "enable_client_messages", "enable_subscription_count", "enable_user_authentication"])
    func booleansMustBeJSONBooleans(field: String) throws {
        #expect(try appError(minimal(#""\#(field)":"true""#)) == #"apps[0].\#(field) must be true or false, got "true""#)
        #expect(try appError(minimal(#""\#(field)":1"#)) == "apps[0].\(field) must be true or false, got 1")
        #expect(try appError(minimal(#""\#(field)":null"#)) == "apps[0].\(field) must be true or false, got null")
    }

    @Test(arguments: [
        ("user_authentication_timeout", 1),
        ("max_client_events_per_sec", 0),
        ("max_event_name_length", 1),
        ("max_channel_name_length", 1),
        ("max_event_channels_at_once", 1),
        ("max_event_batch_size", 1),
        ("max_presence_members_per_channel", 1),
        ("max_subscriptions_per_sec", 1),
        ("max_cache_channels", 0),
    ])
    func integerFieldsCheckTypeAndMinimum(field: String, minimum: Int) throws {
        let requirement = "apps[0].\(field) must be an integer ≥ \(minimum), got"
        #expect(try appError(minimal(#""\#(field)":\#(minimum - 1)"#)) == "\(requirement) \(minimum - 1)")
        #expect(try appError(minimal(#""\#(field)":"ten""#)) == #"\#(requirement) "ten""#)
        #expect(try appError(minimal(#""\#(field)":2.5"#)) == "\(requirement) 2.5")
        #expect(try appError(minimal(#""\#(field)":true"#)) == "\(requirement) true")
        #expect(try appError(minimal(#""\#(field)":null"#)) == "\(requirement) null")
        #expect(try appError(minimal(#""\#(field)":1e400"#)) == "\(requirement) 1e400")
        #expect(try appError(minimal(#""\#(field)":\#(minimum)"#)) == nil)
    }

    @Test func cacheTTLRange() throws {
        let requirement = "apps[0].cache_ttl must be an integer from 1 to 31536000, got"
        #expect(try appError(minimal(#""cache_ttl":0"#)) == "\(requirement) 0")
        #expect(try appError(minimal(#""cache_ttl":31536001"#)) == "\(requirement) 31536001")
        #expect(try appError(minimal(#""cache_ttl":9223372036854775807"#)) == "\(requirement) 9223372036854775807")
        #expect(try appError(minimal(#""cache_ttl":31536000"#)) == nil)
    }

    @Test func activityTimeoutRange() throws {
        let requirement = "apps[0].activity_timeout must be an integer from 1 to 3600, got"
        #expect(try appError(minimal(#""activity_timeout":0"#)) == "\(requirement) 0")
        #expect(try appError(minimal(#""activity_timeout":3601"#)) == "\(requirement) 3601")
        #expect(try appError(minimal(#""activity_timeout":"120""#)) == #"\#(requirement) "120""#)
    }

    @Test(arguments: ["max_connections", "max_backend_events_per_sec"])
    func unlimitedFieldsCheckTypeAndMinimum(field: String) throws {
        #expect(try appError(minimal(#""\#(field)":"ten""#)) == #"apps[0].\#(field) must be an integer ≥ -1, got "ten""#)
        #expect(try appError(minimal(#""\#(field)":-2"#)) == "apps[0].\(field) must be an integer ≥ -1, got -2")
        #expect(try appError(minimal(#""\#(field)":1.5"#)) == "apps[0].\(field) must be an integer ≥ -1, got 1.5")
    }

    @Test(arguments: ["max_event_payload_in_kb", "max_presence_member_size_in_kb"])
    func kilobyteFieldsCheckTypeAndRange(field: String) throws {
        let requirement = "apps[0].\(field) must be a number of kilobytes from 0.001 to 1048576, got"
        for bad in ["0", "-1", "0.0005", "1048577", "1e400", #""10""#, "null", "false"] {
            #expect(try appError(minimal(#""\#(field)":\#(bad)"#)) == "\(requirement) \(bad)")
        }
    }

    @Test func nameMustBeANonEmptyString() throws {
        #expect(try appError(minimal(#""name":"""#)) == #"apps[0].name must be a non-empty string, got """#)
        #expect(try appError(minimal(#""name":7"#)) == "apps[0].name must be a non-empty string, got 7")
    }

    @Test func allowedOriginsMustBeStrings() throws {
        #expect(try appError(minimal(#""allowed_origins":"*""#)) == #"apps[0].allowed_origins must be an array of origins, got "*""#)
        #expect(try appError(minimal(#""allowed_origins":["*",5]"#)) == "apps[0].allowed_origins[1] must be a non-empty string, got 5")
        #expect(try appError(minimal(#""allowed_origins":[""]"#)) == #"apps[0].allowed_origins[0] must be a non-empty string, got """#)
    }

    @Test func webhooksMustBeObjectsWithAnHTTPURL() throws {
        #expect(try appError(minimal(#""webhooks":{"url":"http://x"}"#))
                == #"apps[0].webhooks must be an array of webhook objects, got {"url":"http://x"}"#)
        #expect(try appError(minimal(#""webhooks":[{"url":"http://x"},"http://y"]"#))
                == #"apps[0].webhooks[1] must be an object, got "http://y""#)
        #expect(try appError(minimal(#""webhooks":[{"lambda":"fn"}]"#)) == "apps[0].webhooks[0].url is required")
        let requirement = "apps[0].webhooks[0].url must be a string starting with http:// or https://, got"
        for bad in [#""ftp://x""#, #""x.example/hook""#, #""https://""#, "5", "null"] {
            #expect(try appError(minimal(#""webhooks":[{"url":\#(bad)}]"#)) == "\(requirement) \(bad)")
        }
        #expect(try app(minimal(#""webhooks":[{"url":"HTTPS://X.example"}]"#)).webhooks.count == 1)
    }

    @Test func appMustBeAnObject() throws {
        #expect(try appError("[1]") == "apps[0] must be an object, got [1]")
    }

    @Test func errorsAreOneLine() throws {
        let message = try #require(try appError(minimal("\"name\":[\"a\\nb\"], \"\\u2028\":1")))
        #expect(!message.contains("\n"))
        let description = try #require(try appsError("{}"))
        #expect(!description.contains("\n"))
    }

    // MARK: - The apps array

    @Test func parsesEveryApp() throws {
        let apps = try AppConfig.parseApps(JSONParser.parse("""
        [{"id":"1","key":"k1","secret":"s1"},{"id":2,"key":"k2","secret":"s2","name":"two"}]
        """))
        #expect(apps.map(\.id) == ["1", "2"])
        #expect(apps.map(\.name) == ["1", "two"])
    }

    @Test func appsArrayErrors() throws {
        #expect(try appsError("{}") == "apps must be an array of app objects, got {}")
        #expect(try appsError("[]") == "apps must list at least one app")
        #expect(try appsError(#"[{"id":"1","key":"k","secret":"s"},7]"#) == "apps[1] must be an object, got 7")
        #expect(try appsError(#"[{"id":"1","key":"k","secret":"s"},{"id":"1","key":"q","secret":"s"}]"#)
                == #"apps[1].id "1" is already used by apps[0]"#)
        #expect(try appsError(#"[{"id":"1","key":"k","secret":"s"},{"id":1,"key":"q","secret":"s"}]"#)
                == #"apps[1].id "1" is already used by apps[0]"#)
        #expect(try appsError(#"[{"id":"1","key":"k","secret":"s"},{"id":"2","key":"x","secret":"s"},{"id":"3","key":"k","secret":"t"}]"#)
                == #"apps[2].key "k" is already used by apps[0]"#)
        #expect(try appsError(#"[{"id":"1","key":"k","secret":"s","x":1}]"#) == #"apps[0]: unknown key "x""#)
    }

    @Test func pathPrefixesEveryMessage() throws {
        let json = try JSONParser.parse(#"[{"id":"1","key":"k","secret":"s","cache_ttl":0}]"#)
        #expect(throws: AppConfigError("config.apps[0].cache_ttl must be an integer from 1 to 31536000, got 0")) {
            try AppConfig.parseApps(json, path: "config.apps")
        }
        #expect(AppConfigError("m").description == "m")
    }
}
