/// BERT encoders (all-MiniLM-L6-v2 among them): word + position + token-type embeddings with
/// LayerNorm, post-norm blocks (attention → residual → LayerNorm; GELU MLP → residual →
/// LayerNorm), and mean pooling over the attention mask for sentence embeddings, as
/// sentence-transformers computes them. Names and shapes: `BERTFamily.modules`.
package final class BERTModel: BlockModel {
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
        try checkTokens(tokens, vocab: config.vocabSize, start: pass.start, maxPositions: config.maxPositionEmbeddings)
        var x = try lookup("embed", tokens, pass: pass)
        Kernels.add(&x, try lookup("pos_embed", Array(pass.start ..< pass.start + tokens.count), pass: pass))
        if names.entry("type_embed") != nil {
            Kernels.add(&x, try lookup("type_embed", Array(repeating: 0, count: tokens.count), pass: pass))
        }
        return try layerNorm("embed_norm", x)
    }

    package func block(_ index: Int, _ x: inout Activations, pass: ForwardPass) throws {
        let layer = "layer.\(index)."
        let q = try linear(layer + "attn.q", x, pass: pass)
        let k = try linear(layer + "attn.k", x, pass: pass)
        let v = try linear(layer + "attn.v", x, pass: pass)
        let attended = attention(q, k, v, layer: index, causal: false, pass: pass)
        var h = try linear(layer + "attn.o", attended, pass: pass)
        Kernels.add(&h, x)
        x = try layerNorm(layer + "attn_norm", h)
        var inner = try linear(layer + "mlp.up", x, pass: pass)
        Kernels.activate(&inner, activation)
        var out = try linear(layer + "mlp.down", inner, pass: pass)
        Kernels.add(&out, x)
        x = try layerNorm(layer + "mlp_norm", out)
    }

    /// The last hidden states of one sequence.
    package func encode(_ tokens: [Int]) throws -> Activations {
        let pass = ForwardPass()
        var x = try embed(tokens, pass: pass)
        for index in 0 ..< config.numHiddenLayers {
            try block(index, &x, pass: pass)
        }
        return x
    }

    /// The sentence embedding of one sequence: the mean of its last hidden states.
    package func sentenceEmbedding(_ tokens: [Int]) throws -> [Float] {
        Self.meanPool(try encode(tokens))
    }

    /// The sentence embeddings of many sequences, computed block by block (each block's
    /// weights converted once for all of them).
    package func sentenceEmbeddings(_ sequences: [[Int]], isCancelled: () -> Bool = { false }) throws -> [[Float]] {
        try BlockRunner(model: self).runAll(sequences, isCancelled: isCancelled).map(Self.meanPool)
    }

    /// The mean of the rows: sentence-transformers' mean pooling of one unpadded sequence.
    package static func meanPool(_ x: Activations) -> [Float] {
        var mean = [Float](repeating: 0, count: x.cols)
        for r in 0 ..< x.rows { for c in 0 ..< x.cols { mean[c] += x.data[r * x.cols + c] } }
        let scale = 1 / Float(max(x.rows, 1))
        return mean.map { $0 * scale }
    }
}
