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
    ])
    func aDamagedFileIsAnErrorNeverAnEmptyDirectory(text: String) {
        #expect(kind { try OrganizationDirectory.decode(Array(text.utf8)) } == .storage)
    }

    private func kind<T>(_ body: () throws -> T) -> OrganizationError.Kind? {
        do { _ = try body(); return nil } catch { return (error as? OrganizationError)?.kind }
    }
}
