/// The llama family: llama, mistral, qwen2 (q/k/v biases) and SmolLM2 (tied embeddings, GQA).
/// Pre-norm blocks: RMSNorm → attention with rotary positions → residual; RMSNorm → gated MLP
/// (down(act(gate(x)) · up(x))) → residual. Names and shapes: `LlamaFamily.modules`.
package final class LlamaModel: CausalLanguageModel {
    package let config: ModelConfig
    package let weights: WeightStore
    package let names: LayerNames
    let activation: Kernels.Activation

    init(config: ModelConfig, weights: WeightStore, names: LayerNames) throws {
        self.config = config
        self.weights = weights
        self.names = names
        activation = try Kernels.Activation(config, key: "hidden_act", path: weights.checkpoint.path)
    }

    package func embed(_ tokens: [Int], pass: ForwardPass) throws -> Activations {
        try checkTokens(tokens, vocab: config.vocabSize, start: pass.start, maxPositions: nil)
        return try lookup("embed", tokens, pass: pass)
    }

    package func block(_ index: Int, _ x: inout Activations, pass: ForwardPass) throws {
        let c = config
        let layer = "layer.\(index)."
        let normed = try rmsNorm(layer + "attn_norm", x)
        var q = try linear(layer + "attn.q", normed, pass: pass)
        var k = try linear(layer + "attn.k", normed, pass: pass)
        let v = try linear(layer + "attn.v", normed, pass: pass)
        let table = pass.rotaryTable(rows: x.rows, headDim: c.headDim, theta: c.ropeTheta)
        Kernels.applyRotary(&q, heads: q.cols / c.headDim, headDim: c.headDim, table: table)
        Kernels.applyRotary(&k, heads: k.cols / c.headDim, headDim: c.headDim, table: table)
        let attended = attention(q, k, v, layer: index, causal: true, pass: pass)
        Kernels.add(&x, try linear(layer + "attn.o", attended, pass: pass))
        let normed2 = try rmsNorm(layer + "mlp_norm", x)
        var gate = try linear(layer + "mlp.gate", normed2, pass: pass)
        let up = try linear(layer + "mlp.up", normed2, pass: pass)
        Kernels.gatedActivate(&gate, up: up, activation)
        Kernels.add(&x, try linear(layer + "mlp.down", gate, pass: pass))
    }

    package func finalNorm(_ x: Activations) throws -> Activations { try rmsNorm("norm", x) }
}
