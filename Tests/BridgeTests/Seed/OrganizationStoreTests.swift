import Glibc
import System
import Testing
@testable import Bridge

struct OrganizationStoreTests {
    private func temporaryDirectory() -> String {
        var template = Array("/tmp/bridge-store-XXXXXX".utf8CString)
        return String(cString: mkdtemp(&template))
    }

    @Test func changesArePersistedAndSeenByASecondStore() throws {
        let directory = temporaryDirectory()
        let server = try OrganizationStore(dataDir: directory)
        let cli = try OrganizationStore(dataDir: directory)
        #expect(try server.reloadIfChanged() == false)

        let created = try cli.update { directory throws(OrganizationError) in
            try directory.createOrganization(slug: "acme-inc", name: nil, now: 1)
        }
        #expect(server.directory.organization("acme-inc") == nil)
        #expect(try server.reloadIfChanged() == true)
        #expect(server.directory.organization("acme-inc")?.secretToken == created.secretToken)
        #expect(try server.reloadIfChanged() == false)

        // The server's own change starts from the CLI's, so neither loses the other's.
        _ = try server.update { directory throws(OrganizationError) in try directory.createOrganization(slug: "globex", name: nil, now: 2) }
        _ = try cli.update { directory throws(OrganizationError) in try directory.createApp(in: "globex", settings: JSONObject(members: [.init("name", .string("chat"))])) }
        let reopened = try OrganizationStore(dataDir: directory)
        #expect(reopened.directory.organizations.map(\.slug) == ["acme-inc", "globex"])
        #expect(reopened.directory.appConfigs.count == 1)
    }

    /// An organizations.json from before epochs is written back when a store opens it, so the
    /// server and the CLI see the same epochs (each read of the old file would draw others).
    @Test func aFileFromBeforeEpochsIsWrittenBackWhenOpened() throws {
        let directory = temporaryDirectory()
        let old = #"{"version":1,"organizations":[{"slug":"acme-inc","name":"Acme","secret_token":"t","token_generation":3,"#
            + #""created_at":5,"applications":[]}]}"#
        try DurableFile.write(directory + "/organizations.json", Array(old.utf8))
        let server = try OrganizationStore(dataDir: directory)
        let epoch = try #require(server.directory.organization("acme-inc")?.epoch)
        let cli = try OrganizationStore(dataDir: directory)
        #expect(cli.directory.organization("acme-inc")?.epoch == epoch)
        #expect(cli.directory.organization("acme-inc")?.tokenGeneration == 3 && !cli.directory.upgradedOnLoad)
        #expect(try server.reloadIfChanged() == false)
        let written = try #require(try DurableFile.read(directory + "/organizations.json"))
        #expect(String(decoding: written, as: UTF8.self).contains(#""epoch":"\#(epoch)""#))
    }

    @Test func aRefusedChangeWritesNothing() throws {
        let directory = temporaryDirectory()
        let store = try OrganizationStore(dataDir: directory)
        #expect(throws: OrganizationError.self) {
            try store.update { directory throws(OrganizationError) in try directory.deleteOrganization("nobody") }
        }
        #expect(try DurableFile.read(store.path) == nil)
    }

    @Test func aCorruptFileStopsTheStartAndIsLeftAsItIs() throws {
        let directory = temporaryDirectory()
        let path = directory + "/organizations.json"
        let garbage = Array(#"{"version":1,"organizations":[{"slug":"#.utf8)
        try DurableFile.write(path, garbage)
        #expect(throws: OrganizationError.self) { try OrganizationStore(dataDir: directory) }
        #expect(try DurableFile.read(path) == garbage)
    }

    @Test func aFileDamagedWhileRunningIsReportedOnceAndTheOldContentKept() throws {
        let directory = temporaryDirectory()
        let store = try OrganizationStore(dataDir: directory)
        _ = try store.update { directory throws(OrganizationError) in try directory.createOrganization(slug: "acme-inc", name: nil, now: 1) }
        try DurableFile.write(store.path, Array("oops".utf8))
        #expect(throws: OrganizationError.self) { try store.reloadIfChanged() }
        #expect(try store.reloadIfChanged() == false)
        #expect(store.directory.organization("acme-inc") != nil)
    }
}
