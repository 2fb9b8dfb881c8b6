/// GPT-2: learned positions, pre-norm LayerNorm blocks, one fused q/k/v projection, GELU (tanh)
/// MLP. Names, shapes and the in×out layout of its Conv1D linears: `GPT2Family.modules`.
package final class GPT2Model: CausalLanguageModel {
    package let config: ModelConfig
    package let weights: WeightStore
    package let names: LayerNames
    let activation: Kernels.Activation

    init(config: ModelConfig, weights: WeightStore, names: LayerNames) throws {
        self.config = config
        self.weights = weights
        self.names = names
        activation = try Kernels.Activation(config, key: "activation_function", path: weights.checkpoint.path)
    }

    package func embed(_ tokens: [Int], pass: ForwardPass) throws -> Activations {
        try checkTokens(tokens, vocab: config.vocabSize, start: pass.start, maxPositions: config.maxPositionEmbeddings)
        var x = try lookup("embed", tokens, pass: pass)
        Kernels.add(&x, try lookup("pos_embed", Array(pass.start ..< pass.start + tokens.count), pass: pass))
        return x
    }

    package func block(_ index: Int, _ x: inout Activations, pass: ForwardPass) throws {
        let layer = "layer.\(index)."
        let qkv = try linear(layer + "attn.qkv", try layerNorm(layer + "attn_norm", x), pass: pass)
        // q, k and v side by side (fewer heads than the config's after structured pruning).
        let width = qkv.cols / 3
        var q = Activations(rows: x.rows, cols: width)
        var k = q
        var v = q
        for r in 0 ..< x.rows {
            let row = r * 3 * width
            q.data.replaceSubrange(r * width ..< (r + 1) * width, with: qkv.data[row ..< row + width])
            k.data.replaceSubrange(r * width ..< (r + 1) * width, with: qkv.data[row + width ..< row + 2 * width])
            v.data.replaceSubrange(r * width ..< (r + 1) * width, with: qkv.data[row + 2 * width ..< row + 3 * width])
        }
        let attended = attention(q, k, v, layer: index, causal: true, pass: pass)
        Kernels.add(&x, try linear(layer + "attn.o", attended, pass: pass))
        var hidden = try linear(layer + "mlp.up", try layerNorm(layer + "mlp_norm", x), pass: pass)
        Kernels.activate(&hidden, activation)
        Kernels.add(&x, try linear(layer + "mlp.down", hidden, pass: pass))
    }

    package func finalNorm(_ x: Activations) throws -> Activations { try layerNorm("norm", x) }
}
