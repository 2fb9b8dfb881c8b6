/// Runs a model block by block over a batch of sequences: every sequence through block 0, then
/// every output through block 1, and so on, with only the current block's weights in use and
/// each block's outputs kept as the next block's inputs. The passes share one bounded
/// conversion cache, so each block's weights are converted once for the whole batch. The
/// observer sees the input of every linear layer (for X^T X, per-channel norms, ...): GPTQ,
/// AWQ, Wanda and SparseGPT build on this.
package struct BlockRunner {
    /// Called with the block index, the canonical name of a linear layer, and its input for one sequence.
    package typealias Observer = (_ block: Int, _ canonicalName: String, _ input: Activations) -> Void

    package let model: BlockModel
    /// The fp32 copies of the weights the passes share.
    package let conversions: ConversionCache
    /// Whether sequences run side by side, one per thread, each product single-threaded
    /// (calibration's many windows of a few hundred tokens keep every core busier that way than
    /// OpenBLAS's threads inside each small product do). The observer must then be thread-safe.
    package let parallelSequences: Bool

    package init(
        model: BlockModel, conversions: ConversionCache = ConversionCache(budgetBytes: ConversionCache.evaluationBudget),
        parallelSequences: Bool = false
    ) {
        self.model = model
        self.conversions = conversions
        self.parallelSequences = parallelSequences
    }

    /// Calls `body` for each index below `count`: in order on this thread, or spread over the
    /// configured threads with OpenBLAS single-threaded meanwhile. The first error stops the rest.
    func forEachSequence(_ count: Int, _ body: (Int) throws -> Void) throws {
        let workers = parallelSequences ? min(ThreadCount.configured, count) : 1
        guard workers > 1 else {
            for i in 0 ..< count { try body(i) }
            return
        }
        let failure = FirstError()
        BLAS.setThreads(1)
        defer { BLAS.setThreads(ThreadCount.configured) }
        parallelFor(count, chunks: workers) { range in
            for i in range {
                if failure.error != nil { return }
                do { try body(i) } catch {
                    failure.record(error)
                    return
                }
            }
        }
        if let error = failure.error { throw error }
    }

    /// The embedded sequences: the input of block 0.
    package func embed(_ sequences: [[Int]]) throws -> [Activations] {
        try sequences.map { try model.embed($0, pass: ForwardPass(conversions: conversions)) }
    }

    /// Runs block `index` over every sequence in place.
    package func run(block index: Int, _ states: inout [Activations], observer: Observer? = nil) throws {
        let linearObserver: LinearObserver? = observer.map { observe in { name, input in observe(index, name, input) } }
        try states.withUnsafeMutableBufferPointer { buffer in
            let shared = SharedStates(buffer)
            try forEachSequence(shared.count) { i in
                try model.block(index, &shared[i], pass: ForwardPass(observer: linearObserver, conversions: conversions))
            }
        }
    }

    /// Runs every block; `afterBlock` may change the block's weights once it has been observed
    /// (the calibrated compressors quantize or prune there) before the outputs are recomputed.
    /// The observing pass runs one sequence at a time on a copy, so it holds one sequence's
    /// states beyond the batch's; blocks `observes` declines are run once, unobserved.
    /// `blockInputs` sees an observed block's inputs just before `afterBlock` runs. When
    /// `afterBlock` leaves the block computing what it did (smoothing, statistics), say so with
    /// `preservesFunction`: the observing pass's outputs are kept and nothing is run twice.
    /// With `stopAfter`, blocks after it are not run (the states returned are not the model's
    /// output). `progress` gets (blocks done, blocks).
    package func runAll(
        _ sequences: [[Int]], observer: Observer? = nil, afterBlock: ((Int) throws -> Void)? = nil,
        observes: (Int) -> Bool = { _ in true }, stopAfter: Int? = nil, progress: ((Int, Int) -> Void)? = nil,
        isCancelled: () -> Bool = { false }, blockInputs: ((Int, [Activations]) throws -> Void)? = nil,
        preservesFunction: Bool = false
    ) throws -> [Activations] {
        var states = try embed(sequences)
        let blocks = model.config.numHiddenLayers
        for index in 0 ..< blocks {
            // Work that ends at a block (a compressor whose last layer is there) stops before
            // its outputs are recomputed: nobody reads them.
            if let stopAfter, index > stopAfter { break }
            if isCancelled() { throw EngineError.cancelled }
            if let afterBlock, observes(index) {
                let linearObserver: LinearObserver? = observer.map { observe in { name, input in observe(index, name, input) } }
                let inputs = blockInputs == nil ? [] : states
                try states.withUnsafeMutableBufferPointer { buffer in
                    let shared = SharedStates(buffer)
                    try forEachSequence(shared.count) { i in
                        if isCancelled() { throw EngineError.cancelled }
                        if preservesFunction {
                            try model.block(index, &shared[i], pass: ForwardPass(observer: linearObserver, conversions: conversions))
                        } else {
                            var copy = shared[i]
                            try model.block(index, &copy, pass: ForwardPass(observer: linearObserver, conversions: conversions))
                        }
                    }
                }
                try blockInputs?(index, inputs)
                try afterBlock(index)
                if index != stopAfter && !preservesFunction { try run(block: index, &states) }
            } else {
                try run(block: index, &states, observer: observes(index) ? observer : nil)
            }
            progress?(index + 1, blocks)
        }
        return states
    }

    /// The final hidden states of many sequences, run block by block in groups of about
    /// `tokensPerGroup` tokens, so that the states held stay bounded however long the text.
    /// Calls `body` with each group's first index and its states, in order; `progress` gets
    /// (sequences done, sequences) as blocks complete, counting a group's sequences in
    /// proportion to its blocks done.
    package func forEachGroup(
        _ sequences: [[Int]], tokensPerGroup: Int = 32768, progress: ((Double) -> Void)? = nil,
        isCancelled: () -> Bool = { false }, _ body: (_ first: Int, _ states: [Activations]) throws -> Void
    ) throws {
        var first = 0
        while first < sequences.count {
            var last = first
            var tokens = 0
            while last < sequences.count, last == first || tokens + sequences[last].count <= tokensPerGroup {
                tokens += sequences[last].count
                last += 1
            }
            let done = first
            let size = last - first
            let states = try runAll(
                Array(sequences[first ..< last]),
                progress: { blocks, total in progress?((Double(done) + Double(size) * Double(blocks) / Double(total + 1)) / Double(sequences.count)) },
                isCancelled: isCancelled)
            try body(first, states)
            progress?(Double(last) / Double(sequences.count))
            first = last
        }
    }
}

/// The states of a batch, handed to worker threads that each own their sequences' elements.
struct SharedStates: @unchecked Sendable {
    let base: UnsafeMutablePointer<Activations>
    let count: Int

    init(_ buffer: UnsafeMutableBufferPointer<Activations>) {
        base = buffer.baseAddress ?? UnsafeMutablePointer(bitPattern: MemoryLayout<Activations>.alignment)!
        count = buffer.count
    }

    subscript(i: Int) -> Activations {
        get { base[i] }
        nonmutating _modify { yield &base[i] }
    }
}
