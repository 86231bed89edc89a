import Foundation
import Redis

/// How this node finds the others: alone, or through Redis.
struct ClusterOptions {
    enum Adapter: String { case local, redis }
    var adapter = Adapter.local
    var redisURL = "redis://127.0.0.1:6379/0"
    /// For a `rediss://` URL: CA certificates trusted besides the system's store.
    var redisCAFile: String?
    /// Namespaces every key and channel, so two clusters can share one Redis.
    var redisPrefix = "bridge"
    /// A node that has not renewed its lease for this long is taken for dead: the others remove its clients.
    var leaseSeconds = 15

    /// Refuses at start what could only fail later, on every connection attempt: a CA file for a
    /// plain-text URL, or one that cannot be read or holds no certificate.
    func check() throws(CLIError) {
        guard let redisCAFile else { return }
        guard (try? RedisURL(redisURL))?.usesTLS == true else {
            throw CLIError(message: "--redis-ca-file needs a rediss:// --redis-url")
        }
        guard let contents = FileManager.default.contents(atPath: redisCAFile) else {
            throw CLIError(message: "--redis-ca-file: cannot read \(redisCAFile)")
        }
        guard String(decoding: contents, as: UTF8.self).contains("-----BEGIN CERTIFICATE-----") else {
            throw CLIError(message: "--redis-ca-file: \(redisCAFile) holds no PEM certificate")
        }
    }
}
