import RedisServerSupport
import Testing

/// One redis-server for a whole suite: started before its first test, killed after its last.
/// Tests read it from `RedisServerTrait.current`.
struct RedisServerTrait: SuiteTrait, TestScoping {
    @TaskLocal static var current: RedisServerProcess?

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let server = try RedisServerProcess()
        defer { server.kill() }
        try await Self.$current.withValue(server) { try await function() }
    }

    static var server: RedisServerProcess {
        get throws {
            guard let current else { throw TestFailure("the suite has no .redisServer trait") }
            return current
        }
    }
}

extension Trait where Self == RedisServerTrait {
    /// A redis-server for the suite.
    static var redisServer: Self { RedisServerTrait() }
}
