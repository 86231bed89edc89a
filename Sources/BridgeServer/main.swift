import Bridge
import Glibc

// `bridge serve [flags]`: parse the command line, start the transport, wait for a signal.
let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case nil, "-h", "--help", "help":
    print(CLI.usage)
    print(CLI.serveUsage)
case "serve":
    let config: ServerConfig
    do {
        guard let parsed = try CLI.parseServe(Array(arguments.dropFirst()), environment: CLI.environment()) else {
            print(CLI.serveUsage)
            exit(0)
        }
        config = parsed
    } catch {
        CLI.fail(error.message)
    }
    let server = Server(config: config)
    do {
        try server.start()
    } catch {
        Log.error("cannot start: \(error)")
        exit(1)
    }
    server.runUntilSignalled()
    exit(0)
default:
    CLI.fail("unknown command \"\(arguments[0])\" (try `bridge --help`)")
}
