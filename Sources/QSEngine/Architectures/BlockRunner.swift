/// Runs a model block by block over a batch of sequences: every sequence through block 0, then
/// every output through block 1, and so on, with only the current block's weights in use and
/// each block's outputs kept as the next block's inputs. The observer sees the input of every
/// linear layer (for X^T X, per-channel norms, ...): GPTQ, AWQ, Wanda and SparseGPT build on this.
package struct BlockRunner {
    /// Called with the block index, the canonical name of a linear layer, and its input for one sequence.
    package typealias Observer = (_ block: Int, _ canonicalName: String, _ input: Activations) -> Void

    package let model: BlockModel

    package init(model: BlockModel) { self.model = model }

    /// The embedded sequences: the input of block 0.
    package func embed(_ sequences: [[Int]]) throws -> [Activations] {
        try sequences.map { try model.embed($0, start: 0) }
    }

    /// Runs block `index` over every sequence in place.
    package func run(block index: Int, _ states: inout [Activations], observer: Observer? = nil) throws {
        let linearObserver: LinearObserver? = observer.map { observe in { name, input in observe(index, name, input) } }
        for i in states.indices {
            try model.block(index, &states[i], start: 0, cache: nil, observer: linearObserver)
        }
    }

    /// Runs every block; `afterBlock` may change the block's weights once it has been observed
    /// (the calibrated compressors quantize or prune there) before the outputs are recomputed.
    package func runAll(
        _ sequences: [[Int]], observer: Observer? = nil, afterBlock: ((Int) throws -> Void)? = nil,
        isCancelled: () -> Bool = { false }
    ) throws -> [Activations] {
        var states = try embed(sequences)
        for index in 0 ..< model.config.numHiddenLayers {
            if isCancelled() { throw EngineError.cancelled }
            if let afterBlock {
                var observed = states
                try run(block: index, &observed, observer: observer)
                try afterBlock(index)
                try run(block: index, &states)
            } else {
                try run(block: index, &states, observer: observer)
            }
        }
        return states
    }

    /// The final hidden states of many sequences, run block by block in groups of about
    /// `tokensPerGroup` tokens, so that the states held stay bounded however long the text.
    /// Calls `body` with each group's first index and its states, in order.
    package func forEachGroup(
        _ sequences: [[Int]], tokensPerGroup: Int = 32768, isCancelled: () -> Bool = { false },
        _ body: (_ first: Int, _ states: [Activations]) throws -> Void
    ) throws {
        var first = 0
        while first < sequences.count {
            var last = first
            var tokens = 0
            while last < sequences.count, last == first || tokens + sequences[last].count <= tokensPerGroup {
                tokens += sequences[last].count
                last += 1
            }
            try body(first, try runAll(Array(sequences[first ..< last]), isCancelled: isCancelled))
            first = last
        }
    }
}
