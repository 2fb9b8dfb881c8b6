/// BERT encoders (all-MiniLM-L6-v2 among them): word + position + token-type embeddings with
/// LayerNorm, post-norm blocks (attention → residual → LayerNorm; GELU MLP → residual →
/// LayerNorm), and mean pooling over the attention mask for sentence embeddings, as
/// sentence-transformers computes them.
package final class BERTModel: BlockModel {
    package let config: ModelConfig
    package let weights: WeightStore
    package let names: LayerNames
    let activation: Kernels.Activation
    /// The key mask of the sequence being encoded (true = a real token).
    var keyMask: [Bool]?

    package init(config: ModelConfig, weights: WeightStore) throws {
        self.config = config
        self.weights = weights
        names = LayerNames(config: config, tensorNames: Set(weights.checkpoint.tensors.map(\.name)))
        activation = Kernels.Activation(name: config.hiddenAct) ?? .gelu
    }

    package func embed(_ tokens: [Int], start: Int) throws -> Activations {
        try checkTokens(tokens, vocab: config.vocabSize, start: start, maxPositions: config.maxPositionEmbeddings)
        let width = config.hiddenSize
        var x = gatherRows(try weights.floats(names.module("embed") + ".weight"), width: width, ids: tokens)
        Kernels.add(&x, gatherRows(try weights.floats(names.module("pos_embed") + ".weight"), width: width, ids: Array(start ..< start + tokens.count)))
        if names.entry("type_embed") != nil {
            Kernels.add(&x, gatherRows(try weights.floats(names.module("type_embed") + ".weight"), width: width, ids: Array(repeating: 0, count: tokens.count)))
        }
        return try applyLayerNorm("embed_norm", x)
    }

    package func block(_ index: Int, _ x: inout Activations, start: Int, cache: KVCache?, observer: LinearObserver?) throws {
        let c = config
        let layer = "layer.\(index)."
        let q = try applyLinear(layer + "attn.q", x, out: c.hiddenSize, observer: observer)
        let k = try applyLinear(layer + "attn.k", x, out: c.hiddenSize, observer: observer)
        let v = try applyLinear(layer + "attn.v", x, out: c.hiddenSize, observer: observer)
        let attended = k.data.withUnsafeBufferPointer { kp in
            v.data.withUnsafeBufferPointer { vp in
                Kernels.attention(
                    q: q, k: kp.baseAddress!, v: vp.baseAddress!, keys: x.rows, heads: c.numAttentionHeads,
                    kvHeads: c.numAttentionHeads, headDim: c.headDim, causal: false, keyMask: keyMask)
            }
        }
        var h = try applyLinear(layer + "attn.o", attended, out: c.hiddenSize, observer: observer)
        Kernels.add(&h, x)
        x = try applyLayerNorm(layer + "attn_norm", h)
        var inner = try applyLinear(layer + "mlp.up", x, out: c.intermediateSize, observer: observer)
        Kernels.activate(&inner, activation)
        var out = try applyLinear(layer + "mlp.down", inner, out: c.hiddenSize, observer: observer)
        Kernels.add(&out, x)
        x = try applyLayerNorm(layer + "mlp_norm", out)
    }

    /// The last hidden states of one sequence.
    package func encode(_ tokens: [Int]) throws -> Activations {
        keyMask = nil
        var x = try embed(tokens, start: 0)
        for index in 0 ..< config.numHiddenLayers {
            try block(index, &x, start: 0, cache: nil, observer: nil)
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
        keyMask = nil
        return try BlockRunner(model: self).runAll(sequences, isCancelled: isCancelled).map(Self.meanPool)
    }

    /// The mean of the rows: sentence-transformers' mean pooling of one unpadded sequence.
    package static func meanPool(_ x: Activations) -> [Float] {
        var mean = [Float](repeating: 0, count: x.cols)
        for r in 0 ..< x.rows { for c in 0 ..< x.cols { mean[c] += x.data[r * x.cols + c] } }
        let scale = 1 / Float(max(x.rows, 1))
        return mean.map { $0 * scale }
    }
}

/// Builds the model object for a checkpoint's architecture.
package enum ModelLoader {
    /// The model of `checkpoint`, computing with `weights`.
    package static func model(for checkpoint: Checkpoint, weights: WeightStore? = nil) throws -> BlockModel {
        guard let config = checkpoint.config else {
            throw EngineError(path: checkpoint.path, "has no configuration: cannot tell its architecture")
        }
        let store = weights ?? WeightStore(checkpoint: checkpoint)
        switch config.architecture {
        case .llama, .mistral, .qwen2: return try LlamaModel(config: config, weights: store)
        case .gpt2: return try GPT2Model(config: config, weights: store)
        case .bert: return try BERTModel(config: config, weights: store)
        }
    }
}
