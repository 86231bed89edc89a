// swift-tools-version:6.0
import PackageDescription

// No package dependencies, by design: Foundation, Dispatch, Glibc, Synchronization,
// and the C libraries libcurl and OpenSSL through the system-library targets below.
let package = Package(
    name: "Bridge",
    products: [
        .executable(name: "bridge", targets: ["BridgeServer"]),
        .library(name: "Bridge", targets: ["Bridge"]),
        .library(name: "Webhooks", targets: ["Webhooks"]),
        .library(name: "Redis", targets: ["Redis"]),
    ],
    targets: [
        .systemLibrary(name: "CSystem", path: "Sources/CSystem"),
        .systemLibrary(name: "CCurl", path: "Sources/CCurl"),
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL"),
        // Digests, the JSON writer and a FIFO queue, shared by the broker, the webhook sender
        // and the Redis client.
        .target(name: "Support", dependencies: ["COpenSSL"]),
        .target(name: "Bridge", dependencies: ["CSystem", "COpenSSL", "Support"]),
        .target(name: "Webhooks", dependencies: ["CCurl", "COpenSSL", "Support"]),
        // The Redis client (RESP, pipelining, reconnects, pub/sub). The broker core does not
        // import it: RedisCluster adapts it to the core's ClusterAdapter seam.
        .target(name: "Redis", dependencies: ["CSystem", "Support"]),
        .target(name: "RedisCluster", dependencies: ["Bridge", "Redis", "Support"]),
        // Static/ (the JS client, the console page) is copied beside the binary as
        // Bridge_BridgeServer.resources and read once at start through Bundle.module.
        .executableTarget(name: "BridgeServer", dependencies: ["Bridge", "Webhooks", "Support", "Redis", "RedisCluster"],
                          resources: [.copy("Static")]),
        .testTarget(name: "BridgeTests", dependencies: ["Bridge", "Support"]),
        .testTarget(name: "WebhooksTests", dependencies: ["Webhooks", "Support"]),
        // A real redis-server per test or suite, for the two Redis test targets.
        .target(name: "RedisServerSupport", dependencies: ["Redis"], path: "Tests/RedisServerSupport"),
        .testTarget(name: "RedisTests", dependencies: ["Redis", "RedisServerSupport"]),
        // The cluster adapter against real redis-server processes (several adapters = several nodes).
        .testTarget(name: "RedisClusterTests", dependencies: ["RedisCluster", "Redis", "Bridge", "RedisServerSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
