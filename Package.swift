// swift-tools-version:6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v5),
]

let package = Package(
    name: "libgrpchelper",
    products: [
        // For Swift hosts.
        .library(name: "GRPCHelperCore", targets: ["GRPCHelperCore"]),
        // libgrpchelper.so: the C ABI declared in include/grpchelper.h.
        .library(name: "grpchelper", type: .dynamic, targets: ["GRPCHelperC"]),
        .executable(name: "echo-server", targets: ["EchoServer"]),
        .executable(name: "echo-client", targets: ["EchoClient"]),
        .executable(name: "interop-server", targets: ["InteropServer"]),
        .executable(name: "interop-client", targets: ["InteropClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .systemLibrary(name: "CNghttp2", pkgConfig: "libnghttp2",
                       providers: [.apt(["libnghttp2-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .target(
            name: "GRPCHelperCore",
            dependencies: [
                "CNghttp2", "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "GRPCHelperC",
            dependencies: ["GRPCHelperCore"],
            swiftSettings: swiftSettings,
            linkerSettings: [.unsafeFlags(["-Xlinker", "-soname=libgrpchelper.so.1"])]),
        .executableTarget(name: "EchoServer", dependencies: ["GRPCHelperCore"],
                          path: "examples/swift/EchoServer", swiftSettings: swiftSettings),
        .executableTarget(name: "EchoClient", dependencies: ["GRPCHelperCore"],
                          path: "examples/swift/EchoClient", swiftSettings: swiftSettings),
        .executableTarget(name: "InteropServer", dependencies: ["GRPCHelperCore"],
                          path: "Sources/InteropServer", swiftSettings: swiftSettings),
        .executableTarget(name: "InteropClient", dependencies: ["GRPCHelperCore"],
                          path: "Sources/InteropClient", swiftSettings: swiftSettings),
        .testTarget(name: "GRPCHelperCoreTests", dependencies: ["GRPCHelperCore"],
                    swiftSettings: swiftSettings),
    ]
)
