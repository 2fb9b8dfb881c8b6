import Synchronization
import Dispatch
import Foundation

/// How many threads qs computes with: `QS_THREADS` when set, else every core the process may use.
/// OpenBLAS and `parallelFor` both follow it.
package enum ThreadCount {
    /// The environment variable that sets the count.
    package static let variable = "QS_THREADS"

    /// The cores this process may use.
    package static var cores: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// The count `value` asks for (a whole number from 1 up), or `cores` when `value` is nil or
    /// empty. Throws when it is anything else.
    package static func parse(_ value: String?, cores: Int) throws(EngineError) -> Int {
        guard let value, !value.isEmpty else { return cores }
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard let count = Int(trimmed), count >= 1 else {
            throw EngineError(subject: variable, "expected a whole number of threads from 1 up, got '\(value)'")
        }
        return count
    }

    /// The count the environment asks for; throws when `QS_THREADS` is not a valid count.
    package static func fromEnvironment() throws(EngineError) -> Int {
        try parse(ProcessInfo.processInfo.environment[variable], cores: cores)
    }

    /// The count the environment asked for at first use, or every core when `QS_THREADS` is
    /// invalid (the error is reported by `BLAS.load()`). Read once: it is a default for every
    /// parallel loop, and reading the environment allocates.
    package static var configured: Int {
        let chosen = override.load(ordering: .relaxed)
        return chosen > 0 ? chosen : fromEnvironmentOnce
    }

    private static let fromEnvironmentOnce: Int = (try? fromEnvironment()) ?? cores
    private static let override = Atomic<Int>(0)

    /// Uses `count` threads from now on, for qs's own loops and for OpenBLAS; 0 goes back to
    /// QS_THREADS or all cores.
    package static func set(_ count: Int) {
        override.store(max(0, count), ordering: .relaxed)
        if (try? BLAS.load()) != nil { BLAS.setThreads(configured) }
    }
}

/// Runs `body` over `0..<count` split into at most `chunks` contiguous ranges, in parallel on
/// `DispatchQueue.concurrentPerform`. Each range is handed to exactly one call; calls run
/// concurrently, so `body` must only write what its own range owns. With one chunk (or a
/// count of one) it runs on the calling thread.
package func parallelFor(
    _ count: Int, chunks: Int = ThreadCount.configured, _ body: (Range<Int>) -> Void
) {
    precondition(count >= 0, "parallelFor: negative count \(count)")
    precondition(chunks >= 1, "parallelFor: chunks must be at least 1, got \(chunks)")
    guard count > 0 else { return }
    let parts = min(chunks, count)
    if parts == 1 {
        body(0..<count)
        return
    }
    let base = count / parts
    let extra = count % parts
    withoutActuallyEscaping(body) { body in
        let shared = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let start = part * base + min(part, extra)
            let end = start + base + (part < extra ? 1 : 0)
            shared.value(start..<end)
        }
    }
}

/// Carries the body of `parallelFor` into `concurrentPerform`, which wants a Sendable closure.
/// The ranges handed out are disjoint and the call returns only when all are done; keeping the
/// writes of each call to its own range is the caller's contract, as with any parallel loop.
private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
