import Redis
import Testing

@Suite struct RedisURLTests {
    @Test func defaults() throws {
        #expect(try RedisURL("redis://localhost") == RedisURL(host: "localhost"))
        #expect(try RedisURL("redis://127.0.0.1/") == RedisURL(host: "127.0.0.1", port: 6379, database: 0))
        #expect(try RedisURL("REDIS://h:1") == RedisURL(host: "h", port: 1))
    }

    @Test func everyPart() throws {
        #expect(try RedisURL("redis://:s3cret@redis.internal:6380/2")
            == RedisURL(host: "redis.internal", port: 6380, password: "s3cret", database: 2))
        #expect(try RedisURL("redis://alice:pw@127.0.0.1/15")
            == RedisURL(host: "127.0.0.1", user: "alice", password: "pw", database: 15))
        #expect(try RedisURL("redis://[::1]:7000/3") == RedisURL(host: "::1", port: 7000, database: 3))
        #expect(try RedisURL("redis://[::1]") == RedisURL(host: "::1"))
    }

    @Test func redissIsTheSameURLOverTLS() throws {
        #expect(try RedisURL("rediss://localhost") == RedisURL(host: "localhost", usesTLS: true))
        #expect(try RedisURL("REDISS://alice:pw@10.0.0.5:6380/2")
            == RedisURL(host: "10.0.0.5", port: 6380, user: "alice", password: "pw", database: 2, usesTLS: true))
        #expect(try RedisURL("rediss://[::1]:7000") == RedisURL(host: "::1", port: 7000, usesTLS: true))
        #expect(try RedisURL("redis://h").usesTLS == false)
        #expect(try RedisURL("rediss://h") != RedisURL("redis://h"))
    }

    @Test func credentialsArePercentDecoded() throws {
        let url = try RedisURL("redis://b%C3%B6b:p%40ss%2Fw%3Ard@h")
        #expect(url.user == "böb" && url.password == "p@ss/w:rd")
        // An unencoded @ in the password still works: the host starts after the last @.
        #expect(try RedisURL("redis://:p@ss@h").password == "p@ss")
        #expect(try RedisURL("redis://:@h") == RedisURL(host: "h"))
    }

    @Test func badURLsSayWhatIsWrong() {
        let cases: [(String, RedisURLError)] = [
            ("localhost:6379", .missingScheme),
            ("redisss://h", .unsupportedScheme("redisss")),
            ("rediss://h h", .invalidHost("h h")),
            ("unix:///tmp/redis.sock", .unsupportedScheme("unix")),
            ("redis://h/0?password=x", .queryNotSupported),
            ("redis://h#x", .fragmentNotSupported),
            ("redis://alice@h", .userWithoutPassword),
            ("redis://alice:@h", .userWithoutPassword),
            ("redis://:%zz@h", .invalidPercentEncoding),
            ("redis://:%ff@h", .invalidPercentEncoding),
            ("redis://:pw%4@h", .invalidPercentEncoding),
            ("redis://", .missingHost),
            ("redis://:pw@", .missingHost),
            ("redis://:6379", .missingHost),
            ("redis://h h", .invalidHost("h h")),
            ("redis://[::1", .invalidHost("[::1")),
            ("redis://[]:1", .invalidHost("[]:1")),
            ("redis://[::1]x", .invalidHost("[::1]x")),
            ("redis://h:0", .invalidPort("0")),
            ("redis://h:65536", .invalidPort("65536")),
            ("redis://h:+1", .invalidPort("+1")),
            ("redis://h:", .invalidPort("")),
            ("redis://h:x", .invalidPort("x")),
            ("redis://h/x", .invalidDatabase("x")),
            ("redis://h/-1", .invalidDatabase("-1")),
            ("redis://h/1/2", .invalidDatabase("1/2")),
            ("redis://h/9999999999", .invalidDatabase("9999999999")),
        ]
        for (text, expected) in cases {
            #expect(throws: expected, "\(text)") { try RedisURL(text) }
        }
    }

    @Test func descriptionHidesThePassword() throws {
        #expect(try RedisURL("redis://:secret@h:1/2").description == "redis://:***@h:1/2")
        #expect(try RedisURL("redis://al%20ice:secret@h").description == "redis://al%20ice:***@h:6379/0")
        #expect(try RedisURL("redis://[::1]").description == "redis://[::1]:6379/0")
        #expect(try RedisURL("rediss://:secret@h").description == "rediss://:***@h:6379/0")
        #expect(!RedisURLError.queryNotSupported.description.isEmpty)
    }
}
