import Testing
@testable import Bridge

@Suite struct RouterTests {
    private var router: Router<String> {
        var router = Router<String>()
        router.add("POST", "/apps/:app_id/events", maxBodyBytes: 10_240, "events")
        router.add("GET", "/apps/:app_id/channels", "channels")
        router.add("GET", "/apps/:app_id/channels/:channel_name", "channel")
        router.add("GET", "/apps/:app_id/channels/:channel_name/users", "users")
        router.add("DELETE", "/apps/:app_id/channels/:channel_name", "delete-channel")
        router.add("GET", "/health", "health")
        router.add("HEAD", "/health", "health-head")
        router.add("GET", "/", "root")
        router.add("GET", "/static/special", "special")
        router.add("GET", "/static/:name", "static")
        return router
    }

    @Test func findsRoutesWithParameters() {
        #expect(router.match(method: "POST", path: "/apps/1/events") == .found("events", params: ["app_id": "1"], maxBodyBytes: 10_240))
        #expect(router.match(method: "GET", path: "/apps/7/channels/presence-room/users")
            == .found("users", params: ["app_id": "7", "channel_name": "presence-room"], maxBodyBytes: nil))
        #expect(router.match(method: "GET", path: "/") == .found("root", params: [:], maxBodyBytes: nil))
    }

    @Test func parametersArePercentDecoded() {
        #expect(router.match(method: "GET", path: "/apps/1/channels/a%20b%2Fc+d%E2%9C%93")
            == .found("channel", params: ["app_id": "1", "channel_name": "a b/c+d✓"], maxBodyBytes: nil))
        #expect(router.match(method: "GET", path: "/%61pps/%31/channels") == .found("channels", params: ["app_id": "1"], maxBodyBytes: nil))
    }

    @Test(arguments: ["/apps/1/channels/%", "/apps/1/channels/%zz", "/apps/1/channels/%FF", "/apps/%G/channels"])
    func undecodablePathsAreNotFound(path: String) {
        #expect(router.match(method: "GET", path: path) == .notFound)
    }

    @Test func methodNotAllowedListsTheAllowedMethods() {
        #expect(router.match(method: "PUT", path: "/apps/1/channels/c") == .methodNotAllowed(allowed: ["GET", "DELETE", "HEAD"]))
        #expect(router.match(method: "GET", path: "/apps/1/events") == .methodNotAllowed(allowed: ["POST"]))
        #expect(router.match(method: "post", path: "/apps/1/events") == .methodNotAllowed(allowed: ["POST"]))
        #expect(router.match(method: "DELETE", path: "/health") == .methodNotAllowed(allowed: ["GET", "HEAD"]))
    }

    @Test func headFallsBackToGet() {
        #expect(router.match(method: "HEAD", path: "/apps/1/channels") == .found("channels", params: ["app_id": "1"], maxBodyBytes: nil))
        #expect(router.match(method: "HEAD", path: "/health") == .found("health-head", params: [:], maxBodyBytes: nil))
        #expect(router.match(method: "HEAD", path: "/apps/1/events") == .methodNotAllowed(allowed: ["POST"]))
    }

    @Test(arguments: ["/apps/1/channels/", "/health/", "/apps/1/events/", "//", "/apps//channels", "/nope", "", "*", "apps/1/events"])
    func onlyExactPathsMatch(path: String) {
        #expect(router.match(method: "GET", path: path) == .notFound || router.match(method: "POST", path: path) == .notFound)
        #expect(router.match(method: "GET", path: path) == .notFound)
    }

    @Test func firstRegisteredRouteWins() {
        #expect(router.match(method: "GET", path: "/static/special") == .found("special", params: [:], maxBodyBytes: nil))
        #expect(router.match(method: "GET", path: "/static/other") == .found("static", params: ["name": "other"], maxBodyBytes: nil))
    }

    @Test func routesKeepTheirPatternSegments() {
        let route = Route(method: "GET", pattern: "/a/:b/", maxBodyBytes: nil, handler: 0)
        #expect(route.segments == [.literal("a"), .parameter("b"), .literal("")])
        #expect(Route(method: "GET", pattern: "/", maxBodyBytes: nil, handler: 0).segments == [.literal("")])
    }
}
