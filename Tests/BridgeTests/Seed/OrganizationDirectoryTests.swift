import Testing
@testable import Bridge

struct OrganizationDirectoryTests {
    private func directoryWithAnApp() throws -> (OrganizationDirectory, OrganizationApp) {
        var directory = OrganizationDirectory()
        _ = try directory.createOrganization(slug: "acme-inc", name: "Acme", now: 100)
        let app = try directory.createApp(in: "acme-inc", settings: JSONObject(members: [.init("name", .string("chat"))]))
        return (directory, app)
    }

    @Test func newAppsGetNumericIDsAboveEveryOtherAndFreshSecrets() throws {
        var (directory, first) = try directoryWithAnApp()
        #expect(first.config.id == "1001")
        #expect(first.config.organization == "acme-inc")
        #expect(first.config.defaultChannel == "general")
        #expect(first.config.key.count == 20 && first.config.secret.count == 40)
        let second = try directory.createApp(in: "acme-inc", settings: JSONObject(members: [.init("name", .string("jobs"))]),
                                            taken: ["5000", "app-key"])
        #expect(second.config.id == "5001")
        #expect(second.config.key != first.config.key && second.config.secret != first.config.secret)
    }

    @Test func slugsAreChecked() {
        var directory = OrganizationDirectory()
        for bad in ["", "Acme", "-acme", "acme inc", "acme_inc", String(repeating: "a", count: 64)] {
            #expect(throws: OrganizationError.self) { try directory.createOrganization(slug: bad, name: nil, now: 0) }
        }
        #expect(throws: Never.self) { try directory.createOrganization(slug: "a1-b2", name: nil, now: 0) }
    }

    @Test func duplicatesConflictAndUnknownsAreNotFound() throws {
        var (directory, app) = try directoryWithAnApp()
        #expect(kind { try directory.createOrganization(slug: "acme-inc", name: nil, now: 0) } == .conflict)
        #expect(kind { try directory.createApp(in: "globex", settings: JSONObject()) } == .notFound)
        #expect(kind { try directory.deleteApp(app.config.id, in: "globex") } == .notFound)
        #expect(kind { try directory.createApp(in: "acme-inc", settings: JSONObject(members: [.init("secret", .string("x"))])) } == .invalid)
        #expect(kind { try directory.createApp(in: "acme-inc", settings: JSONObject(members: [.init("max_connections", .string("ten"))])) } == .invalid)
        #expect(kind { try directory.createApp(in: "acme-inc", settings: JSONObject()) } == .invalid)
        #expect(directory.app(id: app.config.id) != nil)
    }

    @Test func aRepeatedSettingIsStoredOnceWithItsLastValue() throws {
        var (directory, _) = try directoryWithAnApp()
        let app = try directory.createApp(in: "acme-inc", settings: JSONObject(members: [
            .init("name", .string("x")), .init("max_connections", .number("5")), .init("name", .string("y")),
        ]))
        #expect(app.config.name == "y")
        #expect(app.settings.members.filter { $0.key == "name" }.count == 1)
    }

    @Test func rotationsReplaceSecretsAndBumpTheTokenGeneration() throws {
        var (directory, app) = try directoryWithAnApp()
        let before = try #require(directory.organization("acme-inc"))
        let rotated = try directory.rotateToken("acme-inc")
        #expect(rotated.secretToken != before.secretToken && rotated.tokenGeneration == before.tokenGeneration + 1)
        #expect(directory.organization(secretToken: before.secretToken) == nil)
        #expect(directory.organization(secretToken: rotated.secretToken)?.slug == "acme-inc")
        let newSecret = try directory.rotateSecret(app.config.id).config.secret
        #expect(newSecret != app.config.secret && directory.app(id: app.config.id)?.config.secret == newSecret)
    }

    /// Issue 13: a JWT named only a slug and a generation, and both came back when an
    /// organization was deleted and created again; the epoch and the shared counter do not.
    @Test func aRecreatedOrganizationHasAnotherEpochAndALaterGeneration() throws {
        var directory = OrganizationDirectory()
        let first = try directory.createOrganization(slug: "acme-inc", name: nil, now: 1)
        let rotated = try directory.rotateToken("acme-inc")
        _ = try directory.deleteOrganization("acme-inc")
        let second = try directory.createOrganization(slug: "acme-inc", name: nil, now: 2)
        #expect(first.epoch.count == 32 && second.epoch.count == 32 && second.epoch != first.epoch)
        #expect(first.tokenGeneration == 1 && rotated.tokenGeneration == 2 && second.tokenGeneration == 3)
        let other = try directory.createOrganization(slug: "globex", name: nil, now: 3)
        #expect(other.tokenGeneration == 4 && other.epoch != second.epoch)
    }

    /// Issue 13: ids were max+1, so deleting the newest app handed its id to the next one.
    @Test func appIDsAreNeverReusedEvenAcrossTheFile() throws {
        var (directory, first) = try directoryWithAnApp()
        let name = JSONObject(members: [.init("name", .string("jobs"))])
        let second = try directory.createApp(in: "acme-inc", settings: name)
        #expect(second.config.id == "1002")
        _ = try directory.deleteApp(second.config.id)
        _ = try directory.deleteApp(first.config.id)
        var reread = try OrganizationDirectory.decode(directory.encoded())
        #expect(reread.lastAppID == 1002 && !reread.upgradedOnLoad)
        #expect(try reread.createApp(in: "acme-inc", settings: name).config.id == "1003")
        // Above the config file's ids too, and still above them once that app is gone from the file.
        let aboveConfig = try reread.createApp(in: "acme-inc", settings: name, taken: ["5000"])
        #expect(aboveConfig.config.id == "5001")
        _ = try reread.deleteApp(aboveConfig.config.id)
        #expect(try reread.createApp(in: "acme-inc", settings: name).config.id == "5002")
    }

    @Test func aFileFromBeforeEpochsGetsThemAndCountersAtItsHighestValues() throws {
        let text = #"{"version":1,"organizations":[{"slug":"a","name":"a","secret_token":"t","token_generation":4,"created_at":0,"#
            + #""applications":[{"id":"1007","key":"k1","secret":"s1","name":"chat"}]},"#
            + #"{"slug":"b","name":"b","secret_token":"u","token_generation":2,"created_at":0,"applications":[]}]}"#
        var directory = try OrganizationDirectory.decode(Array(text.utf8))
        #expect(directory.upgradedOnLoad)
        let epochs = directory.organizations.map(\.epoch)
        #expect(epochs.allSatisfy { $0.count == 32 } && Set(epochs).count == 2)
        #expect(directory.lastTokenGeneration == 4 && directory.lastAppID == 1007)
        #expect(try directory.rotateToken("b").tokenGeneration == 5)
        #expect(try directory.createApp(in: "b", settings: JSONObject(members: [.init("name", .string("x"))])).config.id == "1008")
        let rewritten = try OrganizationDirectory.decode(directory.encoded())
        #expect(!rewritten.upgradedOnLoad && rewritten.organizations.map(\.epoch) == epochs)
    }

    /// Counters at the top of Int (a hand-edited file) refuse the next id or generation instead of trapping.
    @Test func exhaustedCountersAreRefusedNotOverflowed() throws {
        let text = #"{"version":1,"last_token_generation":9223372036854775807,"last_app_id":9223372036854775807,"organizations":["#
            + #"{"slug":"a","epoch":"e","name":"a","secret_token":"t","token_generation":1,"created_at":0,"applications":[]}]}"#
        var directory = try OrganizationDirectory.decode(Array(text.utf8))
        #expect(kind { try directory.rotateToken("a") } == .storage)
        #expect(kind { try directory.createOrganization(slug: "b", name: nil, now: 0) } == .storage)
        #expect(kind { try directory.createApp(in: "a", settings: JSONObject(members: [.init("name", .string("x"))])) } == .invalid)
        #expect(directory.organizations.count == 1 && directory.organization("a")?.tokenGeneration == 1)
        var fresh = OrganizationDirectory()
        _ = try fresh.createOrganization(slug: "a", name: nil, now: 0)
        #expect(kind { try fresh.createApp(in: "a", settings: JSONObject(members: [.init("name", .string("x"))]),
                                           taken: ["9223372036854775807"]) } == .invalid)
    }

    @Test func theFileFormatRoundTrips() throws {
        var (directory, _) = try directoryWithAnApp()
        _ = try directory.rotateToken("acme-inc")
        let decoded = try OrganizationDirectory.decode(directory.encoded())
        #expect(decoded.encoded() == directory.encoded())
        #expect(decoded.organization("acme-inc")?.tokenGeneration == 2)
        #expect(decoded.appConfigs == directory.appConfigs)
    }

    @Test(arguments: [
        "", "not json", "[]", #"{"version":2,"organizations":[]}"#, #"{"version":1}"#,
        #"{"version":1,"organizations":[{"slug":"a"}]}"#,
        #"{"version":1,"organizations":[{"slug":"a","name":"a","secret_token":"t","token_generation":1,"created_at":0,"applications":[{"id":"1"}]}]}"#,
        #"{"version":1,"organizations":[{"slug":"a","epoch":"","name":"a","secret_token":"t","token_generation":1,"created_at":0,"applications":[]}]}"#,
        #"{"version":1,"organizations":[{"slug":"a","epoch":7,"name":"a","secret_token":"t","token_generation":1,"created_at":0,"applications":[]}]}"#,
        #"{"version":1,"last_app_id":-1,"organizations":[]}"#, #"{"version":1,"last_token_generation":"3","organizations":[]}"#,
        #"{"version":1,"last_app_id":1e3,"organizations":[]}"#,
    ])
    func aDamagedFileIsAnErrorNeverAnEmptyDirectory(text: String) {
        #expect(kind { try OrganizationDirectory.decode(Array(text.utf8)) } == .storage)
    }

    private func kind<T>(_ body: () throws -> T) -> OrganizationError.Kind? {
        do { _ = try body(); return nil } catch { return (error as? OrganizationError)?.kind }
    }
}
