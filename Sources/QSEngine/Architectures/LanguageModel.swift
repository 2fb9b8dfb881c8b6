import Foundation

/// Keys and values of the past tokens of every layer, for generation without recomputation.
package final class KVCache {
    package let layers: Int
    /// Each layer's key and value width, set by its first append (a structurally pruned model's
    /// layers may keep different numbers of key/value heads).
    package private(set) var widths: [Int]
    package private(set) var capacity: Int
    package private(set) var length = 0
    var keys: [[Float]]
    var values: [[Float]]

    package init(layers: Int, capacity: Int) {
        self.layers = layers
        self.capacity = capacity
        widths = Array(repeating: 0, count: layers)
        keys = Array(repeating: [], count: layers)
        values = keys
    }

    /// Appends the new rows of one layer; the length advances once the last layer has appended.
    func append(layer: Int, k: Activations, v: Activations) {
        if widths[layer] == 0 {
            widths[layer] = k.cols
            keys[layer] = [Float](repeating: 0, count: capacity * k.cols)
            values[layer] = keys[layer]
        }
        let width = widths[layer]
        precondition(k.cols == width && v.cols == width, "cache width does not match")
        precondition(length + k.rows <= capacity, "cache capacity exceeded")
        let start = length * width
        keys[layer].replaceSubrange(start ..< start + k.data.count, with: k.data)
        values[layer].replaceSubrange(start ..< start + v.data.count, with: v.data)
        if layer == layers - 1 { length += k.rows }
    }
}

/// The state of one forward pass over one sequence, kept out of the model so that a model can
/// run several passes at once (the reference and the compressed model, a forward and a
/// backward): where the sequence starts, its KV cache, who observes the linear inputs, the
/// conversion cache its weights share, an encoder's key mask, and its rotary table.
package final class ForwardPass {
    /// The position of the first token.
    package let start: Int
    package let cache: KVCache?
    package let observer: LinearObserver?
    package let conversions: ConversionCache?
    /// Per key, whether it is attended to (encoders); nil attends to every key.
    package let keyMask: [Bool]?
    private var rotary: Kernels.RotaryTable?

    package init(
        start: Int = 0, cache: KVCache? = nil, observer: LinearObserver? = nil, conversions: ConversionCache? = nil,
        keyMask: [Bool]? = nil
    ) {
        self.start = start
        self.cache = cache
        self.observer = observer
        self.conversions = conversions
        self.keyMask = keyMask
    }

    /// The rotary table of this pass's positions: computed by the first layer, shared by the rest.
    func rotaryTable(rows: Int, headDim: Int, theta: Double) -> Kernels.RotaryTable {
        if let rotary, rotary.rows == rows { return rotary }
        let table = Kernels.RotaryTable(start: start, rows: rows, headDim: headDim, theta: theta)
        rotary = table
        return table
    }
}

/// A model that can be run block by block: embed, each transformer block, then the head.
/// The calibrated compressors run exactly this, one block in memory at a time.
package protocol BlockModel: AnyObject {
    var config: ModelConfig { get }
    var weights: WeightStore { get }
    var names: LayerNames { get }
    /// The hidden states of `tokens` at positions pass.start ..< pass.start + count.
    func embed(_ tokens: [Int], pass: ForwardPass) throws -> Activations
    /// Runs block `index` on `x` in place; `pass.observer` sees the input of every linear layer.
    func block(_ index: Int, _ x: inout Activations, pass: ForwardPass) throws
}

extension BlockModel {
    /// Applies the linear layer `canonical` (weight and optional bias) in its weight's form,
    /// showing its input to the pass's observer.
    func linear(_ canonical: String, _ x: Activations, pass: ForwardPass) throws -> Activations {
        let entry = names.required(canonical)
        // Inputs quantized (simulated) for this layer are what it multiplies, and what is observed.
        let x = weights.activationQuantization(entry.weight)?.apply(x) ?? x
        pass.observer?(canonical, x)
        return try WeightProduct.linear(
            x, try weights.weight(entry.weight), bias: entry.hasBias ? try weights.floats(entry.bias) : nil,
            key: weights.key(entry.weight), conversions: pass.conversions)
    }

    /// Applies the LayerNorm `canonical` (weight and bias).
    func layerNorm(_ canonical: String, _ x: Activations) throws -> Activations {
        let entry = names.required(canonical)
        return Kernels.layerNorm(x, weight: try weights.floats(entry.weight), bias: try weights.floats(entry.bias), eps: Float(config.normEps))
    }

    /// Applies the RMSNorm `canonical`.
    func rmsNorm(_ canonical: String, _ x: Activations) throws -> Activations {
        Kernels.rmsNorm(x, weight: try weights.floats(names.required(canonical).weight), eps: Float(config.normEps))
    }

    /// Rows `ids` of the embedding table `canonical`.
    func lookup(_ canonical: String, _ ids: [Int], pass: ForwardPass) throws -> Activations {
        let name = names.required(canonical).weight
        return try WeightProduct.gatherRows(try weights.weight(name), ids: ids, key: weights.key(name), conversions: pass.conversions)
    }

    /// Scaled dot-product attention of the new rows `q` against `k` and `v`, continuing the
    /// pass's KV cache (at layer `layer`) when it has one.
    func attention(
        _ q: Activations, _ k: Activations, _ v: Activations, layer: Int, causal: Bool, pass: ForwardPass
    ) -> Activations {
        // Heads from the widths (structured pruning may leave a layer fewer than the config's).
        let headDim = config.headDim
        let heads = q.cols / headDim
        let kvHeads = k.cols / headDim
        guard let cache = pass.cache else {
            return k.data.withUnsafeBufferPointer { kp in
                v.data.withUnsafeBufferPointer { vp in
                    Kernels.attention(
                        q: q, k: kp.baseAddress!, v: vp.baseAddress!, keys: k.rows, heads: heads, kvHeads: kvHeads,
                        headDim: headDim, causal: causal, keyMask: pass.keyMask)
                }
            }
        }
        cache.append(layer: layer, k: k, v: v)
        return cache.keys[layer].withUnsafeBufferPointer { kp in
            cache.values[layer].withUnsafeBufferPointer { vp in
                Kernels.attention(
                    q: q, k: kp.baseAddress!, v: vp.baseAddress!, keys: pass.start + q.rows, heads: heads, kvHeads: kvHeads,
                    headDim: headDim, causal: causal, keyMask: pass.keyMask)
            }
        }
    }
}

/// A head's next-token distributions over some rows, summarised (see
/// `CausalLanguageModel.headStatistics`).
package struct HeadStatistics: Sendable {
    /// The rows the head multiplies: the final norm of the hidden states.
    package var normed: Activations
    /// log Σᵢ e^cᵢ per row, in double precision.
    package var logNormalizers: [Double]
    /// The logit of each row's target (0 for a negative target).
    package var targetLogits: [Double]
    /// Σᵢ softmax(c)ᵢ headᵢ per row [rows, hidden], when asked for.
    package var expectedHeadRows: Activations?
}

/// A causal language model: hidden states to next-token logits.
package protocol CausalLanguageModel: BlockModel {
    /// The final normalisation of the hidden states, before the vocabulary projection.
    func finalNorm(_ x: Activations) throws -> Activations
}

extension CausalLanguageModel {
    /// Logits [rows, vocab] of the final hidden states.
    package func logits(_ x: Activations, conversions: ConversionCache? = nil) throws -> Activations {
        let normed = try finalNorm(x)
        let head = try headWeight()
        return try WeightProduct.linear(normed, head.weight, bias: nil, key: head.key, conversions: conversions)
    }

    private func headWeight() throws -> (weight: Weight, key: ConversionCache.Key) {
        guard let name = names.headWeight else { throw EngineError("the model has no vocabulary projection") }
        return (try weights.weight(name), weights.key(name))
    }

    /// −log softmax(logits[r])[targets[r]] for every row whose target is not negative (0 for the
    /// others), in double precision. The vocabulary goes by tiles with a running log-sum-exp,
    /// so the logits (100 MB for 512 rows of a 49k vocabulary) are never held whole.
    package func negativeLogLikelihoods(_ x: Activations, targets: [Int], conversions: ConversionCache? = nil) throws -> [Double] {
        let statistics = try headStatistics(x, targets: targets, conversions: conversions)
        return (0 ..< x.rows).map { r in
            targets[r] < 0 ? 0 : statistics.logNormalizers[r] - statistics.targetLogits[r]
        }
    }

    /// The head's distribution over the vocabulary for each row of final hidden states x,
    /// summarised without keeping the logits: c = head · finalNorm(x), per row log Σᵢ e^cᵢ and
    /// c at the row's target (rows whose target is negative get no target logit, and no
    /// log-sum-exp unless `expectations` asks for every row), and with `expectations`
    /// Σᵢ softmax(c)ᵢ headᵢ, the head row the distribution expects. The vocabulary goes by
    /// tiles (twice with `expectations`: the second pass needs each row's normaliser).
    package func headStatistics(
        _ x: Activations, targets: [Int], expectations: Bool = false, conversions: ConversionCache? = nil
    ) throws -> HeadStatistics {
        precondition(targets.count == x.rows, "one target per row")
        let normed = try finalNorm(x)
        let head = try headWeight()
        let rows = x.rows
        let width = normed.cols
        var maxima = [Float](repeating: -.infinity, count: rows)
        var sums = [Double](repeating: 0, count: rows)
        var targetLogits = [Double](repeating: 0, count: rows)
        guard rows > 0 else {
            return HeadStatistics(normed: normed, logNormalizers: [], targetLogits: [], expectedHeadRows: expectations ? normed : nil)
        }
        let vocabularyTile = max(64, WeightProduct.tileElements / rows)
        var scratch = [Float](repeating: 0, count: rows * min(vocabularyTile, head.weight.outFeatures))
        try normed.data.withUnsafeBufferPointer { a in
            try scratch.withUnsafeMutableBufferPointer { logits in
                try WeightProduct.forEachRowTile(head.weight, key: head.key, conversions: conversions, maxRows: vocabularyTile) { range, tile in
                    let n = range.count
                    GEMM.sgemm(
                        transA: false, transB: true, m: rows, n: n, k: width, alpha: 1, a: a.baseAddress!, lda: width,
                        b: tile, ldb: width, beta: 0, c: logits.baseAddress!, ldc: n)
                    for r in 0 ..< rows where expectations || targets[r] >= 0 {
                        let row = logits.baseAddress! + r * n
                        let tileMax = FastMath.maximum(row, count: n)
                        let tileSum = FastMath.sumExpShifted(row, count: n, shift: tileMax)
                        if tileMax > maxima[r] {
                            sums[r] = sums[r] * Foundation.exp(Double(maxima[r]) - Double(tileMax)) + tileSum
                            maxima[r] = tileMax
                        } else {
                            sums[r] += tileSum * Foundation.exp(Double(tileMax) - Double(maxima[r]))
                        }
                        if range.contains(targets[r]) { targetLogits[r] = Double(row[targets[r] - range.lowerBound]) }
                    }
                }
            }
        }
        let logNormalizers = (0 ..< rows).map { r in
            expectations || targets[r] >= 0 ? Foundation.log(sums[r]) + Double(maxima[r]) : 0
        }
        guard expectations else {
            return HeadStatistics(normed: normed, logNormalizers: logNormalizers, targetLogits: targetLogits, expectedHeadRows: nil)
        }
        // Σᵢ e^(cᵢ − max) headᵢ by tiles, then times e^(max − log Σ e^c): the shift is the
        // row's largest logit, exact in fp32, so no probability loses precision to it.
        var expected = Activations(rows: rows, cols: width)
        try normed.data.withUnsafeBufferPointer { a in
            try scratch.withUnsafeMutableBufferPointer { logits in
                try expected.data.withUnsafeMutableBufferPointer { out in
                    try WeightProduct.forEachRowTile(head.weight, key: head.key, conversions: conversions, maxRows: vocabularyTile) { range, tile in
                        let n = range.count
                        GEMM.sgemm(
                            transA: false, transB: true, m: rows, n: n, k: width, alpha: 1, a: a.baseAddress!, lda: width,
                            b: tile, ldb: width, beta: 0, c: logits.baseAddress!, ldc: n)
                        for r in 0 ..< rows { _ = FastMath.expShifted(logits.baseAddress! + r * n, count: n, shift: maxima[r]) }
                        GEMM.sgemm(
                            transA: false, transB: false, m: rows, n: width, k: n, alpha: 1, a: logits.baseAddress!, lda: n,
                            b: tile, ldb: width, beta: range.lowerBound == 0 ? 0 : 1, c: out.baseAddress!, ldc: width)
                    }
                }
            }
        }
        for r in 0 ..< rows {
            let factor = Float(Foundation.exp(Double(maxima[r]) - logNormalizers[r]))
            for c in 0 ..< width { expected.data[r * width + c] *= factor }
        }
        return HeadStatistics(normed: normed, logNormalizers: logNormalizers, targetLogits: targetLogits, expectedHeadRows: expected)
    }

    /// Logits for `tokens`, continuing the cached past when a cache is given. `isCancelled` is
    /// checked between layers (Ctrl-C in the REPL).
    /// With `lastRowOnly`, only the last position's logits are computed (what generation needs:
    /// the vocabulary projection of a 512-token prompt is otherwise a fifth of its prefill).
    package func forward(
        _ tokens: [Int], cache: KVCache? = nil, observer: LinearObserver? = nil, conversions: ConversionCache? = nil,
        lastRowOnly: Bool = false, isCancelled: () -> Bool = { false }
    ) throws -> Activations {
        let start = cache?.length ?? 0
        if let cache, start + tokens.count > cache.capacity {
            throw EngineError("the KV cache holds \(cache.capacity) tokens; \(start + tokens.count) were asked for")
        }
        let pass = ForwardPass(start: start, cache: cache, observer: observer, conversions: conversions)
        var x = try embed(tokens, pass: pass)
        for index in 0 ..< config.numHiddenLayers {
            if isCancelled() { throw EngineError.cancelled }
            try block(index, &x, pass: pass)
        }
        if lastRowOnly && x.rows > 1 {
            x = Activations(rows: 1, cols: x.cols, data: Array(x.data[(x.rows - 1) * x.cols ..< x.rows * x.cols]))
        }
        return try logits(x, conversions: conversions)
    }

    /// A KV cache for this model.
    package func makeCache(capacity: Int) -> KVCache {
        KVCache(layers: config.numHiddenLayers, capacity: capacity)
    }
}

/// Validation shared by the architectures' token lookups.
func checkTokens(_ tokens: [Int], vocab: Int, start: Int, maxPositions: Int?) throws {
    if let bad = tokens.first(where: { $0 < 0 || $0 >= vocab }) {
        throw EngineError("token id \(bad) is outside the vocabulary (0..<\(vocab))")
    }
    if let maxPositions, start + tokens.count > maxPositions {
        throw EngineError("\(start + tokens.count) positions were asked for; the model allows \(maxPositions)")
    }
}

/// Builds the model object for a checkpoint's architecture.
package enum ModelLoader {
    /// The model of `checkpoint`, computing with its weights as stored; throws when the
    /// configuration and the tensors do not fit each other.
    package static func model(for checkpoint: Checkpoint) throws -> BlockModel {
        let (config, names) = try names(for: checkpoint)
        let weights = WeightStore(checkpoint: checkpoint, layouts: names.layouts)
        return try config.architecture.definition.model(config: config, weights: weights, names: names)
    }

    /// The configuration and layer names of `checkpoint`, checked against its tensors: what
    /// `load` and `inspect` both check.
    package static func names(for checkpoint: Checkpoint) throws -> (ModelConfig, LayerNames) {
        guard let config = checkpoint.config else {
            throw EngineError(path: checkpoint.path, "has no configuration: cannot tell its architecture")
        }
        let table = config.architecture.definition.modules(config)
        return (
            config,
            try LayerNames(
                config: config, table: table, tensors: checkpoint.tensors,
                packed: checkpoint.packedWeights.map { ($0.name, [$0.packed.rows, $0.packed.columns]) }, path: checkpoint.path))
    }
}
