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
    ],
    targets: [
        .systemLibrary(name: "CSystem", path: "Sources/CSystem"),
        .systemLibrary(name: "CCurl", path: "Sources/CCurl"),
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL"),
        // Digests and JSON string escaping, shared by the broker and the webhook sender.
        .target(name: "Support", dependencies: ["COpenSSL"]),
        .target(name: "Bridge", dependencies: ["CSystem", "COpenSSL", "Support"]),
        .target(name: "Webhooks", dependencies: ["CCurl", "COpenSSL", "Support"]),
        // Static/ (the JS client, the console page) is copied beside the binary as
        // Bridge_BridgeServer.resources and read once at start through Bundle.module.
        .executableTarget(name: "BridgeServer", dependencies: ["Bridge", "Webhooks", "Support"],
                          resources: [.copy("Static")]),
        .testTarget(name: "BridgeTests", dependencies: ["Bridge", "Support"]),
        .testTarget(name: "WebhooksTests", dependencies: ["Webhooks", "Support"]),
    ],
    swiftLanguageModes: [.v6]
)
