import Foundation
import QSFuzzing

// Under libFuzzer (built with -sanitize=fuzzer -D QS_LIBFUZZER by scripts/fuzz), libFuzzer owns
// `main` and calls the entry point below with each input; QS_FUZZ_TARGET names the target.
// Otherwise this is a replay tool: `qs-fuzz TARGET FILE...` runs each file through the target
// (a crash found by the fuzzer, or a corpus), and `qs-fuzz seed DIR` writes the seed corpora.

#if QS_LIBFUZZER
nonisolated(unsafe) var harness: FuzzHarness?
nonisolated(unsafe) var target = FuzzTarget.safetensors

typealias Arguments = UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>

/// libFuzzer's driver (libclang_rt.fuzzer): runs the fuzzing loop with its command-line flags.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: Arguments, _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// SwiftPM names an executable's entry point after its product and points `main` at it; here
/// it hands over to libFuzzer's driver.
@_cdecl("qs_fuzz_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    guard let name = ProcessInfo.processInfo.environment["QS_FUZZ_TARGET"], let chosen = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(Data("qs-fuzz: set QS_FUZZ_TARGET to one of \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
        return 2
    }
    target = chosen
    harness = try? FuzzHarness()
    var count = argc
    var arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return runFuzzerDriver(&count, &arguments) { data, size in
        let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
        harness?.run(target, bytes)
        return 0
    }
}
#else
@main
struct QSFuzzReplay {
    static func main() throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "seed", arguments.count == 2 {
            try FuzzSeeds.write(to: arguments[1])
            return
        }
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name), arguments.count > 1 else {
            FileHandle.standardError.write(Data("usage: qs-fuzz TARGET FILE... | qs-fuzz seed DIR\n  targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
            exit(2)
        }
        let harness = try FuzzHarness()
        for path in arguments.dropFirst() {
            let stage = harness.run(target, [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
            print("\(stage)\t\(path)")
        }
        print("\(arguments.count - 1) input\(arguments.count == 2 ? "" : "s") ran through \(target.rawValue)")
    }
}
#endif
