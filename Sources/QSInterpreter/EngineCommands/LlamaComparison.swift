import Foundation
import QSEngine

/// `bench compare=FILE.gguf`: the same measurement (the same prompt tokens, greedy decoding,
/// prefill and decode tokens/s from llama.cpp's own counters, peak memory) run by llama.cpp's
/// library through llama-cpp-python, in a child Python process.
enum LlamaComparison {
    struct Figures {
        var prefill: Double
        var decode: Double
        var peakMB: Double
    }

    /// The Python that has llama_cpp, as an executable and the arguments before a program:
    /// QS_LLAMA_PYTHON, else .build/venv-llama/bin/python below the working folder (what
    /// scripts/bench/decode sets up), else python3 on PATH.
    static func python() throws -> (executable: String, prefix: [String]) {
        var candidates: [(String, [String])] = []
        if let chosen = ProcessInfo.processInfo.environment["QS_LLAMA_PYTHON"], !chosen.isEmpty { candidates.append((chosen, [])) }
        candidates.append((FileManager.default.currentDirectoryPath + "/.build/venv-llama/bin/python", []))
        candidates.append(("/usr/bin/env", ["python3"]))
        for (executable, prefix) in candidates
        where FileManager.default.isExecutableFile(atPath: executable)
            && (try? run(executable, prefix + ["-c", "import llama_cpp, numpy"]).status) == 0 {
            return (executable, prefix)
        }
        throw CommandError.invalidArgument(
            "compare", "needs llama-cpp-python (with numpy): set QS_LLAMA_PYTHON to a Python that has it, or run scripts/bench/decode once to set up .build/venv-llama")
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Standard error is read on another thread while standard output is read here, so that
        // neither pipe can fill and stall the child.
        let box = ErrorBox()
        let reader = Thread { box.data = err.fileHandleForReading.readDataToEndOfFile(); box.done.signal() }
        reader.start()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        box.done.wait()
        let error = box.data
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: error, as: UTF8.self))
    }

    private final class ErrorBox: @unchecked Sendable {
        var data = Data()
        let done = DispatchSemaphore(value: 0)
    }

    static func measure(file: String, prompt: [Int], gen: Int, threads: Int) throws -> Figures {
        let python = try python()
        let ids = FileManager.default.temporaryDirectory.appendingPathComponent("qs-compare-\(UUID().uuidString).txt")
        try prompt.map(String.init).joined(separator: "\n").write(to: ids, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: ids) }
        let result = try run(python.executable, python.prefix + ["-c", script, file, ids.path, String(gen), String(threads)])
        guard result.status == 0, let line = result.output.split(separator: "\n").last,
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Double],
            let prefill = object["prefill_tok_s"], let decode = object["decode_tok_s"], let peak = object["peak_mb"]
        else {
            let tail = result.error.split(separator: "\n").suffix(3).joined(separator: " | ")
            throw CommandError.failed("llama.cpp could not run \(file): \(tail.isEmpty ? "no result" : tail)")
        }
        return Figures(prefill: prefill, decode: decode, peakMB: peak)
    }

    /// The child's program: the prompt ids in one batch, then greedy tokens one at a time.
    static let script = """
        import ctypes, json, resource, sys
        import llama_cpp, numpy as np
        path, ids, gen, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        prompt = [int(t) for t in open(ids).read().split()]
        llm = llama_cpp.Llama(model_path=path, n_ctx=len(prompt) + gen + 8, n_batch=len(prompt), n_ubatch=len(prompt),
                              n_threads=threads, n_threads_batch=threads, verbose=False)
        def last():
            p = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
            return int(np.argmax(np.ctypeslib.as_array(p, shape=(llm.n_vocab(),))))
        llama_cpp.llama_perf_context_reset(llm.ctx)
        llm.eval(prompt)
        token = last()
        for _ in range(gen - 1):
            llm.eval([token])
            token = last()
        d = llama_cpp.llama_perf_context(llm.ctx)
        print(json.dumps({"prefill_tok_s": d.n_p_eval / (d.t_p_eval_ms / 1000) if d.t_p_eval_ms > 0 else 0.0,
                          "decode_tok_s": d.n_eval / (d.t_eval_ms / 1000) if d.t_eval_ms > 0 else 0.0,
                          "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        """
}
