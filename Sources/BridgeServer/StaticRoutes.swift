import Bridge
import Foundation

/// The browser-facing files of `Sources/BridgeServer/Static` (the JS client, the console page),
/// read from the resource bundle once at start and served from memory.
enum StaticRoutes {
    private struct Entry {
        let path: String
        let file: String
        let contentType: String
        let cache: StaticAsset.CachePolicy
    }

    private static let entries = [
        Entry(path: "/js/pusher.js", file: "pusher.js", contentType: "application/javascript; charset=utf-8",
              cache: .maxAge(300)),
        // The page must pick up a new version at once; its ETag keeps revalidation cheap.
        Entry(path: "/console", file: "console.html", contentType: "text/html; charset=utf-8", cache: .noCache),
    ]

    /// Adds a GET route (HEAD follows it) per file; call before `server.start()`. A file missing
    /// from the bundle fails the start. A missing bundle stops the process inside `Bundle.module`,
    /// whose message names the places it looked.
    static func register(on server: Server) throws(StaticRoutesError) {
        guard let directory = Bundle.module.url(forResource: "Static", withExtension: nil) else {
            throw StaticRoutesError(message: "no Static directory in the resource bundle at \(Bundle.module.bundlePath)")
        }
        for entry in entries {
            let file = directory.appendingPathComponent(entry.file)
            guard let bytes = FileManager.default.contents(atPath: file.path) else {
                throw StaticRoutesError(message: "cannot read the static file \(file.path)")
            }
            let asset = StaticAsset(bytes: Array(bytes), contentType: entry.contentType, cache: entry.cache)
            server.route("GET", entry.path, .http { request, _ in asset.response(to: request) })
        }
    }
}

struct StaticRoutesError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
