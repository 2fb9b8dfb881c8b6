/// Keys and values of the past tokens of every layer, for generation without recomputation.
package final class KVCache {
    package let layers: Int
    package let width: Int
    package private(set) var capacity: Int
    package private(set) var length = 0
    var keys: [[Float]]
    var values: [[Float]]

    package init(layers: Int, width: Int, capacity: Int) {
        self.layers = layers
        self.width = width
        self.capacity = capacity
        keys = Array(repeating: [Float](repeating: 0, count: capacity * width), count: layers)
        values = keys
    }

    /// Appends the new rows of one layer; the length advances once the last layer has appended.
    func append(layer: Int, k: Activations, v: Activations) {
        precondition(k.cols == width && v.cols == width, "cache width does not match")
        precondition(length + k.rows <= capacity, "cache capacity exceeded")
        let start = length * width
        keys[layer].replaceSubrange(start ..< start + k.data.count, with: k.data)
        values[layer].replaceSubrange(start ..< start + v.data.count, with: v.data)
        if layer == layers - 1 { length += k.rows }
    }
}

/// A model that can be run block by block: embed, each transformer block, then the head.
/// The calibrated compressors run exactly this, one block in memory at a time.
package protocol BlockModel: AnyObject {
    var config: ModelConfig { get }
    var weights: WeightStore { get }
    var names: LayerNames { get }
    /// The hidden states of `tokens` at positions start ..< start + count.
    func embed(_ tokens: [Int], start: Int) throws -> Activations
    /// Runs block `index` on `x` in place; `observer` sees the input of every linear layer.
    func block(_ index: Int, _ x: inout Activations, start: Int, cache: KVCache?, observer: LinearObserver?) throws
}

extension BlockModel {
    /// Applies the linear layer `canonical` (weight and optional bias), showing its input to `observer`.
    func applyLinear(
        _ canonical: String, _ x: Activations, out: Int, observer: LinearObserver?,
        layout: Kernels.WeightLayout = .outIn
    ) throws -> Activations {
        observer?(canonical, x)
        let module = names.module(canonical)
        return Kernels.linear(
            x, weight: try weights.floats(module + ".weight"), bias: try weights.optionalFloats(module + ".bias"),
            outFeatures: out, layout: layout)
    }

    /// Applies the LayerNorm `canonical` (weight and bias).
    func applyLayerNorm(_ canonical: String, _ x: Activations) throws -> Activations {
        let module = names.module(canonical)
        return Kernels.layerNorm(
            x, weight: try weights.floats(module + ".weight"), bias: try weights.floats(module + ".bias"),
            eps: Float(config.normEps))
    }

    /// Applies the RMSNorm `canonical`.
    func applyRMSNorm(_ canonical: String, _ x: Activations) throws -> Activations {
        Kernels.rmsNorm(x, weight: try weights.floats(names.module(canonical) + ".weight"), eps: Float(config.normEps))
    }

    /// The output projection: lm_head when the checkpoint has one, else the tied embedding.
    func projectToVocabulary(_ x: Activations) throws -> Activations {
        let head = weights.contains("lm_head.weight") ? "lm_head.weight" : names.module("embed") + ".weight"
        return Kernels.linear(x, weight: try weights.floats(head), bias: nil, outFeatures: config.vocabSize)
    }
}

/// A causal language model: hidden states to next-token logits.
package protocol CausalLanguageModel: BlockModel {
    /// Logits [rows, vocab] of the final hidden states.
    func logits(_ x: Activations) throws -> Activations
}

extension CausalLanguageModel {
    /// Logits for `tokens`, continuing the cached past when a cache is given. `isCancelled` is
    /// checked between layers (Ctrl-C in the REPL).
    package func forward(
        _ tokens: [Int], cache: KVCache? = nil, observer: LinearObserver? = nil, isCancelled: () -> Bool = { false }
    ) throws -> Activations {
        let start = cache?.length ?? 0
        if let cache, start + tokens.count > cache.capacity {
            throw EngineError("the KV cache holds \(cache.capacity) tokens; \(start + tokens.count) were asked for")
        }
        var x = try embed(tokens, start: start)
        for index in 0 ..< config.numHiddenLayers {
            if isCancelled() { throw EngineError.cancelled }
            try block(index, &x, start: start, cache: cache, observer: observer)
        }
        return try logits(x)
    }

    /// A KV cache for this model.
    package func makeCache(capacity: Int) -> KVCache {
        KVCache(layers: config.numHiddenLayers, width: config.numKeyValueHeads * config.headDim, capacity: capacity)
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

/// Gathers embedding rows for token ids.
func gatherRows(_ table: [Float], width: Int, ids: [Int]) -> Activations {
    var x = Activations(rows: ids.count, cols: width)
    table.withUnsafeBufferPointer { t in
        x.data.withUnsafeMutableBufferPointer { out in
            for (r, id) in ids.enumerated() {
                for c in 0 ..< width { out[r * width + c] = t[id * width + c] }
            }
        }
    }
    return x
}
