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

    func linear(_ canonical: String, _ x: Activations, out: Int, observer: LinearObserver?) throws -> Activations {
        observer?(canonical, x)
        let entry = names.module(canonical)
        return Kernels.linear(
            x, weight: try weights.floats(entry + ".weight"), bias: try weights.optionalFloats(entry + ".bias"),
            outFeatures: out)
    }

    package func block(_ index: Int, _ x: inout Activations, start: Int, cache: KVCache?, observer: LinearObserver?) throws {
        let c = config
        let layer = "layer.\(index)."
        let eps = Float(c.normEps)
        let normed = Kernels.rmsNorm(x, weight: try weights.floats(names.module(layer + "attn_norm") + ".weight"), eps: eps)
        var q = try linear(layer + "attn.q", normed, out: c.numAttentionHeads * c.headDim, observer: observer)
        var k = try linear(layer + "attn.k", normed, out: c.numKeyValueHeads * c.headDim, observer: observer)
        let v = try linear(layer + "attn.v", normed, out: c.numKeyValueHeads * c.headDim, observer: observer)
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
        Kernels.add(&x, try linear(layer + "attn.o", attended, out: c.hiddenSize, observer: observer))
        let normed2 = Kernels.rmsNorm(x, weight: try weights.floats(names.module(layer + "mlp_norm") + ".weight"), eps: eps)
        var gate = try linear(layer + "mlp.gate", normed2, out: c.intermediateSize, observer: observer)
        let up = try linear(layer + "mlp.up", normed2, out: c.intermediateSize, observer: observer)
        Kernels.gatedActivate(&gate, up: up, activation)
        Kernels.add(&x, try linear(layer + "mlp.down", gate, out: c.hiddenSize, observer: observer))
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
        let normed = Kernels.rmsNorm(x, weight: try weights.floats(names.module("norm") + ".weight"), eps: Float(config.normEps))
        let head = weights.contains("lm_head.weight") ? "lm_head.weight" : names.module("embed") + ".weight"
        return Kernels.linear(normed, weight: try weights.floats(head), bias: nil, outFeatures: config.vocabSize)
    }
}
