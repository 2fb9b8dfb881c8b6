import Foundation
import QSEngine

/// `qs-bench`: micro-benchmarks of qs's kernels, printed for scripts/bench to compare with a peer.
@main
enum QSBench {
    static let usage = """
        usage: qs-bench gemm [--threads N] [--seconds S]
               qs-bench dequant FILE [--repeat N]
          gemm     GFLOP/s of GEMM.sgemm at SmolLM2-135M's layer shapes (512 tokens)
          dequant  best time in seconds to dequantize every tensor of a GGUF to fp32
          --threads N   OpenBLAS threads (default: QS_THREADS, else all cores)
          --seconds S   time spent per shape (default 1)
        """

    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        guard let command = arguments.first else { fail(usage) }
        arguments.removeFirst()
        switch command {
        case "gemm": GEMMBench(arguments: arguments).run()
        case "dequant": DequantBench.run(arguments)
        case "-h", "--help": print(usage)
        default: fail("qs-bench: unknown benchmark '\(command)'\n\(usage)")
        }
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        exit(2)
    }
}

/// One product shape: op(A) is m×k, the weight B is stored n×k (checkpoint layout [out, in]).
struct GEMMShape {
    let m: Int, k: Int, n: Int
    let layer: String
    var flops: Double { 2 * Double(m) * Double(k) * Double(n) }
}

/// Times `GEMM.sgemm` at SmolLM2-135M's shapes: hidden 576, intermediate 1536, vocab 49152.
struct GEMMBench {
    static let shapes = [
        GEMMShape(m: 512, k: 576, n: 576, layer: "attn q/o"),
        GEMMShape(m: 512, k: 576, n: 1536, layer: "mlp gate/up"),
        GEMMShape(m: 512, k: 1536, n: 576, layer: "mlp down"),
        GEMMShape(m: 512, k: 576, n: 49152, layer: "lm head"),
    ]

    var threads: Int?
    var seconds = 1.0

    init(arguments: [String]) {
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            guard let value = rest.popFirst() else { QSBench.fail("qs-bench gemm: \(flag) needs a value") }
            switch flag {
            case "--threads":
                guard let count = Int(value), count >= 1 else {
                    QSBench.fail("qs-bench gemm: --threads expects a whole number from 1 up, got '\(value)'")
                }
                threads = count
            case "--seconds":
                guard let time = Double(value), time > 0 else {
                    QSBench.fail("qs-bench gemm: --seconds expects a positive number, got '\(value)'")
                }
                seconds = time
            default:
                QSBench.fail("qs-bench gemm: unknown option '\(flag)'\n\(QSBench.usage)")
            }
        }
    }

    func run() {
        do {
            try BLAS.load()
        } catch {
            QSBench.fail("qs-bench: \(error)")
        }
        if let threads { BLAS.setThreads(threads) }
        print("qs-bench gemm: OpenBLAS core \(BLAS.coreName) (\(BLAS.chosenBy)), \(BLAS.threads) threads")
        print("C[m×n] = A[m×k] · W[n×k]ᵀ, row-major fp32, runs for \(seconds) s per shape")
        print("shape m×k×n".padding(toLength: 20, withPad: " ", startingAt: 0)
            + "layer".padding(toLength: 14, withPad: " ", startingAt: 0)
            + " best GFLOP/s  median GFLOP/s  runs")
        for shape in Self.shapes {
            let samples = time(shape)
            let name = "\(shape.m)x\(shape.k)x\(shape.n)"
            let best = shape.flops / samples[0] / 1e9
            let median = shape.flops / samples[samples.count / 2] / 1e9
            print(
                name.padding(toLength: 20, withPad: " ", startingAt: 0)
                    + shape.layer.padding(toLength: 14, withPad: " ", startingAt: 0)
                    + String(format: "%12.1f %15.1f %5d", best, median, samples.count))
        }
    }

    /// The seconds each timed call took, fastest first.
    func time(_ shape: GEMMShape) -> [Double] {
        let a = Self.values(shape.m * shape.k, seed: 1)
        let w = Self.values(shape.n * shape.k, seed: 2)
        var c = [Float](repeating: 0, count: shape.m * shape.n)
        let clock = ContinuousClock()
        func once() -> Double {
            let elapsed = clock.measure {
                GEMM.sgemm(transB: true, m: shape.m, n: shape.n, k: shape.k, a: a, b: w, c: &c)
            }
            return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        }
        _ = once()
        var samples: [Double] = []
        var total = 0.0
        while samples.count < 3 || (total < seconds && samples.count < 1000) {
            let sample = once()
            samples.append(sample)
            total += sample
        }
        return samples.sorted()
    }

    /// Reproducible values in [-1, 1).
    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(state >> 40) / Float(1 << 23) - 1
        }
    }
}

/// Dequantizes every tensor of a GGUF to fp32 (what `qs convert --dtype f32` and every first
/// use of a weight do) and prints the best wall time of `--repeat` rounds, in seconds.
enum DequantBench {
    static func run(_ arguments: [String]) {
        guard let path = arguments.first else { QSBench.fail("qs-bench dequant: needs a GGUF file") }
        var repeatCount = 3
        if arguments.count == 3, arguments[1] == "--repeat", let n = Int(arguments[2]), n >= 1 { repeatCount = n }
        do {
            let tensors = try GGUFFile(path: path).storedTensors()
            var best = Double.infinity
            var values = 0
            for _ in 0 ..< repeatCount {
                let start = Date()
                values = 0
                for tensor in tensors { values += try Dequantize.floats(tensor).count }
                best = min(best, Date().timeIntervalSince(start))
            }
            FileHandle.standardError.write(Data("\(values) values\n".utf8))
            print(String(format: "%.4f", best))
        } catch {
            QSBench.fail("qs-bench dequant: \(error)")
        }
    }
}
