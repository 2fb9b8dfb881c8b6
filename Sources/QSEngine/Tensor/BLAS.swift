import CBLAS
import Foundation

/// The vector-unit features that decide which OpenBLAS kernels qs asks for.
package struct CPUFeatures: Sendable, Equatable {
    package var fma = false
    package var avx = false
    package var avx2 = false
    package var avx512f = false
    package var avx512bw = false
    package var avx512dq = false
    package var avx512vl = false
    /// AMX tiles: reported, never used (the tile instructions fault on these machines).
    package var amxTile = false
    /// Whether the OS saves the AVX (YMM) state.
    package var osAVX = false
    /// Whether the OS saves the AVX-512 (opmask and ZMM) state.
    package var osAVX512 = false

    package init(
        fma: Bool = false, avx: Bool = false, avx2: Bool = false, avx512f: Bool = false,
        avx512bw: Bool = false, avx512dq: Bool = false, avx512vl: Bool = false,
        amxTile: Bool = false, osAVX: Bool = false, osAVX512: Bool = false
    ) {
        self.fma = fma
        self.avx = avx
        self.avx2 = avx2
        self.avx512f = avx512f
        self.avx512bw = avx512bw
        self.avx512dq = avx512dq
        self.avx512vl = avx512vl
        self.amxTile = amxTile
        self.osAVX = osAVX
        self.osAVX512 = osAVX512
    }

    /// What CPUID and XCR0 report on this machine.
    package static var current: CPUFeatures {
        let raw = qs_cpu_detect()
        return CPUFeatures(
            fma: raw.fma != 0, avx: raw.avx != 0, avx2: raw.avx2 != 0, avx512f: raw.avx512f != 0,
            avx512bw: raw.avx512bw != 0, avx512dq: raw.avx512dq != 0, avx512vl: raw.avx512vl != 0,
            amxTile: raw.amx_tile != 0, osAVX: raw.os_avx != 0, osAVX512: raw.os_avx512 != 0)
    }
}

/// The OpenBLAS library, opened once with `dlopen` after `OPENBLAS_CORETYPE` is chosen.
///
/// Debian's OpenBLAS 0.3.21 takes these machines for "Prescott" (SSE3) and runs sgemm at
/// 40-80 GFLOP/s on 2 threads at SmolLM2's shapes; told "SkylakeX" it runs them at 200-210
/// GFLOP/s, level with numpy's own OpenBLAS 0.3.31 (scripts/bench/gemm). Its detection happens
/// in a load-time constructor, so the choice must be in the environment before the library is
/// opened, which is why the library is not linked.
package enum BLAS {
    /// The core type OpenBLAS should use for `features`, and why; nil leaves OpenBLAS to its
    /// own detection. Never a core type whose kernels use AMX or bf16 tiles (SapphireRapids,
    /// Cooperlake): AMX faults (SIGILL) on these machines although CPUID reports it.
    package static func coreType(for features: CPUFeatures) -> (name: String, reason: String)? {
        // SkylakeX's kernels use AVX2 and FMA as well, so AVX-512 alone is not enough.
        guard features.avx && features.avx2 && features.fma && features.osAVX else { return nil }
        let avx512 = features.avx512f && features.avx512bw && features.avx512dq && features.avx512vl
        if avx512 && features.osAVX512 {
            return ("SkylakeX", "CPUID: AVX-512 (F, BW, DQ, VL)")
        }
        return ("Haswell", "CPUID: AVX2 and FMA")
    }

    /// The library names tried in order.
    static let libraryNames = ["libopenblas.so.0", "libopenblas.so"]

    /// The opened library's entry points.
    struct Library: @unchecked Sendable {
        // @unchecked: C function pointers into a library that is never closed; OpenBLAS's
        // functions may be called from any thread.
        let sgemm: qs_sgemm_fn
        let sgemv: qs_sgemv_fn
        let ssyrk: qs_ssyrk_fn
        let dpotrf: qs_dpotrf_fn
        let dpotri: qs_dpotri_fn
        let setThreads: qs_set_threads_fn
        let getThreads: qs_get_threads_fn
        let coreName: String
        let chosenBy: String
    }

    /// The library, opened on first use (Swift runs a static initialiser once, thread-safely).
    private static let state: Result<Library, EngineError> = Result { () throws(EngineError) in try open() }

    /// Opens OpenBLAS (once) and sets its thread count from `QS_THREADS` (default: all cores).
    /// Throws when the library is missing, or when `QS_THREADS` is invalid (the library is then
    /// still usable, on all cores).
    package static func load() throws {
        _ = try state.get()
        _ = try ThreadCount.fromEnvironment()
    }

    /// The loaded library. `GEMM` calls this; a program that wants the load error reported
    /// rather than fatal calls `load()` first.
    static var library: Library {
        switch state {
        case .success(let library): return library
        case .failure(let error): fatalError("\(error)")
        }
    }

    /// The core type OpenBLAS runs (`openblas_get_corename`), e.g. "SkylakeX".
    package static var coreName: String { library.coreName }

    /// What chose the core type: "CPUID: AVX-512 (F, BW, DQ, VL)", "CPUID: AVX2 and FMA",
    /// "OPENBLAS_CORETYPE was set", or "OpenBLAS's own detection".
    package static var chosenBy: String { library.chosenBy }

    /// The number of threads OpenBLAS uses.
    package static var threads: Int { Int(library.getThreads()) }

    /// Sets the number of threads OpenBLAS uses, once no product is running.
    package static func setThreads(_ count: Int) {
        precondition(count >= 1 && count <= Int(Int32.max), "BLAS.setThreads: invalid count \(count)")
        threadPoolLock.writing { library.setThreads(Int32(count)) }
    }

    /// Held shared by every product and exclusively by a change of thread count.
    package static let threadPoolLock = ReadWriteLock()

    /// The handle of the first of `names` that `dlopen` opens; the error names each library
    /// tried, why it failed, and the Debian package that provides OpenBLAS.
    static func openLibrary(names: [String]) throws(EngineError) -> UnsafeMutableRawPointer {
        var failures: [String] = []
        for name in names {
            if let handle = qs_blas_open(name) { return handle }
            failures.append(qs_blas_error().map { String(cString: $0) } ?? "\(name): not found")
        }
        throw EngineError(
            path: names.first,
            "cannot open OpenBLAS (install the Debian package libopenblas-dev): "
                + failures.joined(separator: "; "))
    }

    private static func open() throws(EngineError) -> Library {
        let chosenBy: String
        if let preset = getenv("OPENBLAS_CORETYPE"), preset.pointee != 0 {
            chosenBy = "OPENBLAS_CORETYPE was set"
        } else if let choice = coreType(for: .current) {
            setenv("OPENBLAS_CORETYPE", choice.name, 1)
            chosenBy = choice.reason
        } else {
            chosenBy = "OpenBLAS's own detection"
        }

        let handle = try openLibrary(names: libraryNames)
        func symbol<T>(_ name: String, _ fetch: (UnsafeMutableRawPointer) -> T?) throws(EngineError) -> T {
            guard let function = fetch(handle) else {
                throw EngineError(path: libraryNames[0], subject: name, "OpenBLAS lacks this function")
            }
            return function
        }
        let sgemm = try symbol("cblas_sgemm", qs_blas_sgemm)
        let ssyrk = try symbol("cblas_ssyrk", qs_blas_ssyrk)
        let sgemv = try symbol("cblas_sgemv", qs_blas_sgemv)
        let dpotrf = try symbol("dpotrf_", qs_lapack_dpotrf)
        let dpotri = try symbol("dpotri_", qs_lapack_dpotri)
        let setThreads = try symbol("openblas_set_num_threads", qs_blas_set_threads)
        let getThreads = try symbol("openblas_get_num_threads", qs_blas_get_threads)
        let coreName = try symbol("openblas_get_corename", qs_blas_corename)
        setThreads(Int32(clamping: ThreadCount.configured))
        let name = coreName().map { String(cString: $0).trimmingCharacters(in: .whitespaces) }
        return Library(
            sgemm: sgemm, sgemv: sgemv, ssyrk: ssyrk, dpotrf: dpotrf, dpotri: dpotri, setThreads: setThreads, getThreads: getThreads,
            coreName: name ?? "unknown", chosenBy: chosenBy)
    }
}

/// A pthread read-write lock: many readers at once, or one writer.
package final class ReadWriteLock: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>

    package init() {
        lock = .allocate(capacity: 1)
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    package func reading<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    package func writing<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}
