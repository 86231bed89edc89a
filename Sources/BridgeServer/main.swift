import Bridge
import Glibc

// `bridge serve [flags]`: parse the command line, start the broker, wait for signals.
let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case nil, "-h", "--help", "help":
    print(CLI.usage)
    print(CLI.serveUsage)
case "serve":
    let serveArguments = Array(arguments.dropFirst())
    let settings: ServeSettings
    do {
        guard let parsed = try CLI.parseServe(serveArguments, environment: CLI.environment()) else {
            print(CLI.serveUsage)
            exit(0)
        }
        settings = parsed
    } catch {
        CLI.fail(error.message)
    }
    let server = Server(config: settings.server)
    let broker = Broker(server: server, apps: settings.apps)
    do {
        try server.start()
    } catch {
        Log.error("cannot start: \(error)")
        exit(1)
    }
    broker.start()
    for app in settings.apps {
        let secret = app == AppConfig.defaultApp ? " secret=\(app.secret)" : ""
        Log.info("app \(app.id) (\(app.name)): key=\(app.key)\(secret)\(app.enabled ? "" : " disabled")")
    }
    server.onReload = {
        // The same sources as at start: flags, environment, the config file as it is now.
        do throws(CLIError) {
            guard let reloaded = try CLI.parseServe(serveArguments, environment: CLI.environment()) else { return }
            broker.reload(reloaded.apps)
        } catch {
            Log.error("reload failed, keeping the current config: \(error.message)")
        }
    }
    server.runUntilSignalled()
    exit(0)
default:
    CLI.fail("unknown command \"\(arguments[0])\" (try `bridge --help`)")
}
