// swift-tools-version:6.0
import PackageDescription

// No package dependencies, by design: Foundation, Dispatch, Glibc, Synchronization,
// and the C libraries libcurl and OpenSSL through the system-library targets below.
// Dependencies point one way, down: BridgeServer → RedisCluster → Bridge, Webhooks, Redis →
// System, Support → the C shims. Webhooks and Redis never import Bridge.
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
        // The one system layer under the broker, the webhook sender and the Redis client: syscall
        // wrappers (EINTR retry, errno captured in SystemError, IOResult for non-blocking I/O),
        // the eventfd WakeSignal, MonotonicClock and DurableFile (atomic small-file writes).
        .target(name: "System", dependencies: ["CSystem"]),
        .target(name: "Bridge", dependencies: ["CSystem", "COpenSSL", "Support", "System"]),
        .target(name: "Webhooks", dependencies: ["CCurl", "COpenSSL", "Support", "System"]),
        // The Redis client (RESP, pipelining, reconnects, pub/sub, TLS for rediss:// through
        // libssl). The broker core does not import it: RedisCluster adapts it to the core's
        // ClusterAdapter seam.
        .target(name: "Redis", dependencies: ["COpenSSL", "Support", "System"]),
        .target(name: "RedisCluster", dependencies: ["Bridge", "Redis", "Support", "System"]),
        // Static/ (the JS client, the console page) is copied beside the binary as
        // Bridge_BridgeServer.resources and read once at start through Bundle.module.
        .executableTarget(name: "BridgeServer", dependencies: ["Bridge", "Webhooks", "Support", "System", "Redis", "RedisCluster"],
                          resources: [.copy("Static")]),
        .testTarget(name: "SystemTests", dependencies: ["System"]),
        .testTarget(name: "BridgeTests", dependencies: ["Bridge", "Support", "System", "COpenSSL"]),
        .testTarget(name: "WebhooksTests", dependencies: ["Webhooks", "Support", "System"]),
        // A real redis-server per test or suite, for the two Redis test targets.
        .target(name: "RedisServerSupport", dependencies: ["Redis", "System"], path: "Tests/RedisServerSupport"),
        .testTarget(name: "RedisTests", dependencies: ["Redis", "RedisServerSupport"]),
        // The cluster adapter against real redis-server processes (several adapters = several nodes).
        .testTarget(name: "RedisClusterTests", dependencies: ["RedisCluster", "Redis", "Bridge", "System", "RedisServerSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
