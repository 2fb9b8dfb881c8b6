// swift-tools-version:6.0
import PackageDescription

// Layers (see docs/architecture.md): QSLanguage and QSEngine know nothing of each other;
// QSInterpreter joins them; QSREPL adds the line editor; `qs` only parses arguments and wires.
let package = Package(
    name: "qs",
    products: [
        .executable(name: "qs", targets: ["qs"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // OpenBLAS is opened with dlopen so that OPENBLAS_CORETYPE can be chosen before it
        // initialises (see Sources/QSEngine/Tensor/BLAS.swift); the target carries the header only.
        .systemLibrary(name: "CBLAS", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CEditLine", pkgConfig: "libedit", providers: [.apt(["libedit-dev"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // Vector kernels in C (exp, max) with an AVX-512 path chosen at run time.
        .target(name: "CQSKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "QSLanguage"),
        .target(
            name: "QSEngine",
            dependencies: [
                "CBLAS", "CZlib", "CQSKernels",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            resources: [.embedInCode("Registry/registry.json")]
        ),
        .target(name: "QSInterpreter", dependencies: ["QSLanguage", "QSEngine"]),
        .target(name: "QSREPL", dependencies: ["CEditLine", "QSLanguage", "QSInterpreter"]),
        .executableTarget(
            name: "qs",
            dependencies: [
                "QSLanguage", "QSEngine", "QSInterpreter", "QSREPL",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "qs-bench", dependencies: ["QSEngine"]),
        // Fuzz harnesses (safetensors, GGUF, config.json, tokenizer.json, .qs) that drive each input
        // as far as a forward pass; `qs-fuzz` runs them under libFuzzer (scripts/fuzz builds it
        // with -sanitize=fuzzer) or replays inputs, as the suite does with the committed cases.
        .target(name: "QSFuzzing", dependencies: ["QSEngine", "QSInterpreter", "QSLanguage"]),
        .executableTarget(name: "qs-fuzz", dependencies: ["QSFuzzing"]),
        // A REPL with a fake evaluator and completion source, driven in a pseudo-terminal by
        // QSREPLTests until the interpreter can stand in for it.
        .executableTarget(name: "qs-repl-demo", dependencies: ["QSREPL"]),
        // The seeded generator and approximate comparisons every test target uses.
        .target(name: "QSTestSupport", dependencies: ["QSEngine"], path: "Tests/QSTestSupport"),
        .testTarget(name: "QSLanguageTests", dependencies: ["QSLanguage", "QSTestSupport"]),
        .testTarget(name: "QSEngineTests", dependencies: ["QSEngine", "QSTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "QSInterpreterTests", dependencies: ["QSInterpreter", "QSLanguage", "QSEngine", "QSFuzzing", "QSTestSupport"]),
        .testTarget(name: "QSREPLTests", dependencies: ["QSREPL", "QSInterpreter", "QSTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
