// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "restm",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "restm", targets: ["restm"]),
        .library(name: "RestmCore", targets: ["RestmCore"]),
        .library(name: "RestmStore", targets: ["RestmStore"]),
        .library(name: "RestmNode", targets: ["RestmNode"]),
        .library(name: "RestmHTTP", targets: ["RestmHTTP"]),
        .library(name: "RestmClient", targets: ["RestmClient"]),
        .library(name: "RestmCollections", targets: ["RestmCollections"]),
        .library(name: "RestmTasks", targets: ["RestmTasks"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
    ],
    targets: [
        // The system SQLite (Debian: libsqlite3-dev), used directly through its C API.
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        // Pure engine: timestamps, the shard state machine, transaction rules. No I/O.
        .target(name: "RestmCore", swiftSettings: swiftSettings),
        // Durable stores: SQLite (default), in-memory (tests).
        .target(name: "RestmStore", dependencies: ["RestmCore", "CSQLite"], swiftSettings: swiftSettings),
        // A node: shards, coordinator, group-commit writer, timeouts, lifecycle.
        .target(
            name: "RestmNode",
            dependencies: [
                "RestmCore", "RestmStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // HTTP API (API.md) over Hummingbird.
        .target(
            name: "RestmHTTP",
            dependencies: [
                "RestmCore", "RestmNode", "RestmTasks",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ],
            swiftSettings: swiftSettings
        ),
        // The client: `Transaction` over HTTP or an embedded node, `atomically`, retry/orElse.
        .target(
            name: "RestmClient",
            dependencies: [
                "RestmCore", "RestmNode",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Transactional collections, written once against `Transaction`.
        .target(name: "RestmCollections", dependencies: ["RestmCore"], swiftSettings: swiftSettings),
        // Tasks stored in the memory, workers with claim leases, the sort demo.
        .target(
            name: "RestmTasks",
            dependencies: [
                "RestmCore", "RestmNode", "RestmClient", "RestmCollections",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "RestmTestSupport",
            dependencies: ["RestmCore", "RestmStore", "RestmNode"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "restm",
            dependencies: [
                "RestmCore", "RestmNode", "RestmHTTP", "RestmStore", "RestmClient", "RestmTasks",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "RestmCoreTests", dependencies: ["RestmCore", "RestmTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "RestmStoreTests", dependencies: ["RestmStore", "RestmTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "RestmNodeTests", dependencies: ["RestmNode", "RestmStore", "RestmTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "RestmCollectionsTests",
            dependencies: ["RestmCollections", "RestmClient", "RestmNode", "RestmStore", "RestmTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RestmTasksTests",
            dependencies: ["RestmTasks", "RestmCollections", "RestmClient", "RestmNode", "RestmStore", "RestmTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RestmClientTests",
            dependencies: ["RestmClient", "RestmCollections", "RestmNode", "RestmStore", "RestmHTTP", "RestmTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RestmHTTPTests",
            dependencies: [
                "RestmHTTP", "RestmNode", "RestmStore", "RestmTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
