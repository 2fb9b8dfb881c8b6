/// The llama family: llama, mistral, qwen2 (q/k/v biases) and SmolLM2 (tied embeddings, GQA).
/// Pre-norm blocks: RMSNorm → attention with rotary positions → residual; RMSNorm → gated MLP
/// (down(act(gate(x)) · up(x))) → residual.
package final class LlamaModel: CausalLanguageModel {
    package let config: ModelConfig
    package let weights: WeightStore
    package let names: LayerNames
    let activation: Kernels.Activation

    package init(config: ModelConfig, weights: WeightStore) throws {
        self.config = config
        self.weights = weights
        names = LayerNames(config: config, tensorNames: Set(weights.checkpoint.tensors.map(\.name)))
        guard let activation = Kernels.Activation(name: config.hiddenAct) else {
            throw EngineError(path: weights.checkpoint.path, "hidden_act '\(config.hiddenAct)' is not supported")
        }
        self.activation = activation
    }

    package func embed(_ tokens: [Int], start: Int) throws -> Activations {
        try checkTokens(tokens, vocab: config.vocabSize, start: start, maxPositions: nil)
        return gatherRows(try weights.floats(names.module("embed") + ".weight"), width: config.hiddenSize, ids: tokens)
    }

    package func block(_ index: Int, _ x: inout Activations, start: Int, cache: KVCache?, observer: LinearObserver?) throws {
        let c = config
        let layer = "layer.\(index)."
        let normed = try applyRMSNorm(layer + "attn_norm", x)
        var q = try applyLinear(layer + "attn.q", normed, out: c.numAttentionHeads * c.headDim, observer: observer)
        var k = try applyLinear(layer + "attn.k", normed, out: c.numKeyValueHeads * c.headDim, observer: observer)
        let v = try applyLinear(layer + "attn.v", normed, out: c.numKeyValueHeads * c.headDim, observer: observer)
        let table = rotaryTable(start: start, rows: x.rows)
        Kernels.applyRotary(&q, heads: c.numAttentionHeads, headDim: c.headDim, table: table)
        Kernels.applyRotary(&k, heads: c.numKeyValueHeads, headDim: c.headDim, table: table)
        let attended: Activations
        if let cache {
            cache.append(layer: index, k: k, v: v)
            let keys = start + x.rows
            attended = cache.keys[index].withUnsafeBufferPointer { kp in
                cache.values[index].withUnsafeBufferPointer { vp in
                    Kernels.attention(
                        q: q, k: kp.baseAddress!, v: vp.baseAddress!, keys: keys, heads: c.numAttentionHeads,
                        kvHeads: c.numKeyValueHeads, headDim: c.headDim, causal: true)
                }
            }
        } else {
            attended = k.data.withUnsafeBufferPointer { kp in
                v.data.withUnsafeBufferPointer { vp in
                    Kernels.attention(
                        q: q, k: kp.baseAddress!, v: vp.baseAddress!, keys: x.rows, heads: c.numAttentionHeads,
                        kvHeads: c.numKeyValueHeads, headDim: c.headDim, causal: true)
                }
            }
        }
        Kernels.add(&x, try applyLinear(layer + "attn.o", attended, out: c.hiddenSize, observer: observer))
        let normed2 = try applyRMSNorm(layer + "mlp_norm", x)
        var gate = try applyLinear(layer + "mlp.gate", normed2, out: c.intermediateSize, observer: observer)
        let up = try applyLinear(layer + "mlp.up", normed2, out: c.intermediateSize, observer: observer)
        Kernels.gatedActivate(&gate, up: up, activation)
        Kernels.add(&x, try applyLinear(layer + "mlp.down", gate, out: c.hiddenSize, observer: observer))
    }

    /// The rotary table of the last positions asked for: every layer of a forward pass uses the same.
    private var lastRotaryTable: Kernels.RotaryTable?

    func rotaryTable(start: Int, rows: Int) -> Kernels.RotaryTable {
        if let table = lastRotaryTable, table.start == start, table.rows == rows { return table }
        let table = Kernels.RotaryTable(start: start, rows: rows, headDim: config.headDim, theta: config.ropeTheta)
        lastRotaryTable = table
        return table
    }

    package func logits(_ x: Activations) throws -> Activations {
        try projectToVocabulary(try applyRMSNorm("norm", x))
    }
}
