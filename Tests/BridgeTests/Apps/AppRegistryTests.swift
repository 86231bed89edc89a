import Testing
@testable import Bridge

/// Issue 13: a reload kept the App of an id (its hub, its live connections) even when the id
/// now named another app, so the old app's clients received the new one's events.
struct AppRegistryTests {
    private func config(_ id: String, key: String, secret: String = "secret", organization: String? = nil,
                        name: String? = nil) -> AppConfig {
        var config = AppConfig(id: id, key: key, secret: secret)
        config.organization = organization
        if let name { config.name = name }
        return config
    }

    private func registry(_ apps: [AppConfig]) -> AppRegistry {
        AppRegistry(apps: apps, group: LoopGroup(maxConnections: 10), loopCount: 1, outlets: HubOutlets())
    }

    @Test func otherSettingsKeepTheApp() throws {
        let apps = registry([config("1001", key: "k1", organization: "a")])
        let before = try #require(apps.app(id: "1001"))
        let (removed, disabled) = apps.reload([config("1001", key: "k1", organization: "a", name: "renamed")])
        #expect(removed.isEmpty && disabled.isEmpty)
        #expect(apps.app(id: "1001") === before && before.config.name == "renamed")
    }

    @Test(arguments: [("k2", "secret", "a"), ("k1", "rotated", "a"), ("k1", "secret", "b")])
    func anotherKeySecretOrOrganizationIsAnotherApp(key: String, secret: String, organization: String) throws {
        let apps = registry([config("1001", key: "k1", organization: "a")])
        let before = try #require(apps.app(id: "1001"))
        let (removed, disabled) = apps.reload([config("1001", key: key, secret: secret, organization: organization)])
        #expect(removed.count == 1 && removed.first === before && disabled.isEmpty)
        let after = try #require(apps.app(id: "1001"))
        #expect(after !== before && after.hub !== before.hub)
        #expect(apps.app(key: key) === after)
        if key != "k1" { #expect(apps.app(key: "k1") == nil) }
    }
}
