import Bridge
import Foundation

/// `bridge orgs …` and `bridge apps …`: manage organizations and their apps in the data
/// directory's store. A running server sees the change within a second.
enum OrganizationCommands {
    static let usage = """
        usage:
          bridge orgs create SLUG [--name NAME]
          bridge orgs list
          bridge orgs delete SLUG
          bridge orgs rotate-token SLUG
          bridge apps create --org SLUG --name NAME [--default-channel CHANNEL] [--webhook URL] [--settings JSON]
          bridge apps list [--org SLUG]
          bridge apps delete ID
          bridge apps rotate-secret ID
        --settings takes app settings as in the config file's "apps" entries, e.g.
        '{"enable_client_messages":false}'; --webhook URL adds a webhook target with every event type.
        every command takes --data-dir DIR (default $BRIDGE_DATA_DIR or ./data) and --json
        (print the organization or app as JSON instead of a summary)
        """

    /// The command's words and its `--name value` flags.
    private struct Invocation {
        var words: [String] = []
        var flags: [String: String] = [:]
        var json = false

        static let valued: Set<String> = ["data-dir", "name", "org", "default-channel", "webhook", "settings"]

        /// "orgs" or "apps", for messages.
        let noun: String

        init(_ noun: String, _ arguments: [String]) throws(CLIError) {
            self.noun = noun
            var index = 0
            while index < arguments.count {
                let argument = arguments[index]
                index += 1
                guard argument.hasPrefix("--") else { words.append(argument); continue }
                let name = String(argument.dropFirst(2))
                if name == "json" { json = true; continue }
                guard Self.valued.contains(name) else { throw CLIError(message: "unknown option \(argument) (see `bridge \(noun)`)") }
                guard index < arguments.count, !arguments[index].hasPrefix("--") else {
                    throw CLIError(message: "\(argument) needs a value")
                }
                flags[name] = arguments[index]
                index += 1
            }
        }

        func word(_ position: Int, _ what: String) throws(CLIError) -> String {
            guard position < words.count else { throw CLIError(message: "missing \(what) (see `bridge \(noun)`)") }
            return words[position]
        }
    }

    /// Runs `bridge orgs|apps ARGS`; returns the exit status (1 when the store refused the change).
    static func run(_ noun: String, _ arguments: [String]) -> Int32 {
        do throws(CLIError) {
            if arguments.isEmpty || arguments.contains("--help") || arguments.contains("-h") {
                print(usage)
                return arguments.isEmpty ? 2 : 0
            }
            let invocation = try Invocation(noun, arguments)
            let dataDir = invocation.flags["data-dir"] ?? ProcessInfo.processInfo.environment["BRIDGE_DATA_DIR"] ?? "./data"
            let store: OrganizationStore
            do { store = try OrganizationStore(dataDir: dataDir) } catch { return failed(error.message) }
            do throws(OrganizationError) {
                let output = try noun == "orgs" ? organizations(invocation, store) : apps(invocation, store)
                print(invocation.json ? output.json.serialized : output.summary)
                return 0
            } catch {
                return failed(error.message, status: error.kind == .invalid ? 2 : 1)
            }
        } catch {
            CLI.fail(error.message)
        }
    }

    private struct Output {
        let json: JSON
        let summary: String
    }

    private static func organizations(_ invocation: Invocation, _ store: OrganizationStore) throws(OrganizationError) -> Output {
        let verb = try words(invocation, 0, "command (create, list, delete or rotate-token)")
        switch verb {
        case "list":
            let all = store.directory.organizations
            let lines = all.map { "\($0.slug)  \($0.name)  apps=\($0.apps.count)" }
            return Output(json: .object(JSONObject(members: [.init(key: "organizations", value: .array(all.map(\.json)), raw: 0..<0)])),
                          summary: lines.isEmpty ? "no organizations (create one: bridge orgs create SLUG)" : lines.joined(separator: "\n"))
        case "create":
            let slug = try words(invocation, 1, "organization slug")
            let created = try store.update { directory throws(OrganizationError) in
                try directory.createOrganization(slug: slug, name: invocation.flags["name"], now: Int(Date().timeIntervalSince1970))
            }
            return Output(json: created.json, summary: """
                organization \(created.slug) created
                  secret token: \(created.secretToken)   (keep it on your backend: it buys JWTs at POST /api/sessions)
                next: bridge apps create --org \(created.slug) --name NAME
                """)
        case "delete":
            let deleted = try store.update { directory throws(OrganizationError) in try directory.deleteOrganization(try words(invocation, 1, "organization slug")) }
            return Output(json: deleted.json, summary: "organization \(deleted.slug) deleted with its \(deleted.apps.count) apps")
        case "rotate-token":
            let rotated = try store.update { directory throws(OrganizationError) in try directory.rotateToken(try words(invocation, 1, "organization slug")) }
            return Output(json: rotated.json, summary: "organization \(rotated.slug): new secret token \(rotated.secretToken) (JWTs issued before no longer work)")
        default:
            throw OrganizationError(.invalid, "unknown orgs command \"\(verb)\" (see `bridge orgs`)")
        }
    }

    private static func apps(_ invocation: Invocation, _ store: OrganizationStore) throws(OrganizationError) -> Output {
        let verb = try words(invocation, 0, "command (create, list, delete or rotate-secret)")
        switch verb {
        case "list":
            if let org = invocation.flags["org"], store.directory.organization(org) == nil {
                throw OrganizationError(.notFound, "organization \(org) does not exist")
            }
            let organizations = store.directory.organizations.filter { invocation.flags["org"] == nil || $0.slug == invocation.flags["org"] }
            let apps = organizations.flatMap(\.apps)
            let lines = apps.map { "\($0.config.id)  \($0.config.organization ?? "")  \($0.config.name)  key=\($0.config.key)" }
            return Output(json: .object(JSONObject(members: [.init(key: "applications", value: .array(apps.map(\.json)), raw: 0..<0)])),
                          summary: lines.isEmpty ? "no applications" : lines.joined(separator: "\n"))
        case "create":
            guard let org = invocation.flags["org"] else { throw OrganizationError(.invalid, "--org SLUG is required") }
            var members: [JSONObject.Member] = []
            if let text = invocation.flags["settings"] {
                guard let settings = (try? JSONParser.parse(Array(text.utf8)))?.objectValue else {
                    throw OrganizationError(.invalid, "--settings must be a JSON object")
                }
                members = settings.members
            }
            if let url = invocation.flags["webhook"] {
                let target = JSON.object(JSONObject(members: [.init(key: "url", value: .string(url), raw: 0..<0)]))
                members.append(.init(key: "webhooks", value: .array([target]), raw: 0..<0))
            }
            if let name = invocation.flags["name"] { members.append(.init(key: "name", value: .string(name), raw: 0..<0)) }
            if let channel = invocation.flags["default-channel"] {
                members.append(.init(key: "default_channel", value: .string(channel), raw: 0..<0))
            }
            let app = try store.update { directory throws(OrganizationError) in
                try directory.createApp(in: org, settings: JSONObject(members: members), validate: WebhookSettings.problem(in:))
            }
            let config = app.config
            return Output(json: app.json, summary: """
                application \(config.name) created in \(org)
                  id: \(config.id)   key: \(config.key)   secret: \(config.secret)
                in the browser: new PusherLite("\(config.key)", {host: "HOST:6001", jwt: JWT, uniqueUserId: "…"})
                publish: POST /api/organizations/\(org)/applications/\(config.key)/event/EVENT with Authorization: Bearer JWT
                """)
        case "delete":
            let deleted = try store.update { directory throws(OrganizationError) in try directory.deleteApp(try words(invocation, 1, "application id")) }
            return Output(json: deleted.json, summary: "application \(deleted.config.id) (\(deleted.config.name)) deleted")
        case "rotate-secret":
            let rotated = try store.update { directory throws(OrganizationError) in try directory.rotateSecret(try words(invocation, 1, "application id")) }
            return Output(json: rotated.json, summary: "application \(rotated.config.id): new secret \(rotated.config.secret)")
        default:
            throw OrganizationError(.invalid, "unknown apps command \"\(verb)\" (see `bridge apps`)")
        }
    }

    /// A positional word; a missing one is a usage error.
    private static func words(_ invocation: Invocation, _ position: Int, _ what: String) throws(OrganizationError) -> String {
        do { return try invocation.word(position, what) } catch { throw OrganizationError(.invalid, error.message) }
    }

    private static func failed(_ message: String, status: Int32 = 1) -> Int32 {
        FileHandle.standardError.write(Data("bridge: \(message)\n".utf8))
        return status
    }
}
