/// GPT-2: learned positions, pre-norm LayerNorm blocks, one fused q/k/v projection, GELU (tanh)
/// MLP. Its linear layers are Conv1D modules whose weights are stored [in, out].
package final class GPT2Model: CausalLanguageModel {
    package let config: ModelConfig
    package let weights: WeightStore
    package let names: LayerNames
    let activation: Kernels.Activation

    package init(config: ModelConfig, weights: WeightStore) throws {
        self.config = config
        self.weights = weights
        names = LayerNames(config: config, tensorNames: Set(weights.checkpoint.tensors.map(\.name)))
        activation = Kernels.Activation(name: config.hiddenAct) ?? .geluTanh
    }

    package func embed(_ tokens: [Int], start: Int) throws -> Activations {
        try checkTokens(tokens, vocab: config.vocabSize, start: start, maxPositions: config.maxPositionEmbeddings)
        var x = gatherRows(try weights.floats(names.module("embed") + ".weight"), width: config.hiddenSize, ids: tokens)
        let positions = gatherRows(
            try weights.floats(names.module("pos_embed") + ".weight"), width: config.hiddenSize,
            ids: Array(start ..< start + tokens.count))
        Kernels.add(&x, positions)
        return x
    }

    package func block(_ index: Int, _ x: inout Activations, start: Int, cache: KVCache?, observer: LinearObserver?) throws {
        let c = config
        let layer = "layer.\(index)."
        let width = c.hiddenSize
        let qkv = try applyLinear(layer + "attn.qkv", try applyLayerNorm(layer + "attn_norm", x), out: 3 * width, observer: observer, layout: .inOut)
        var q = Activations(rows: x.rows, cols: width)
        var k = q
        var v = q
        for r in 0 ..< x.rows {
            let row = r * 3 * width
            q.data.replaceSubrange(r * width ..< (r + 1) * width, with: qkv.data[row ..< row + width])
            k.data.replaceSubrange(r * width ..< (r + 1) * width, with: qkv.data[row + width ..< row + 2 * width])
            v.data.replaceSubrange(r * width ..< (r + 1) * width, with: qkv.data[row + 2 * width ..< row + 3 * width])
        }
        let attended: Activations
        if let cache {
            cache.append(layer: index, k: k, v: v)
            attended = cache.keys[index].withUnsafeBufferPointer { kp in
                cache.values[index].withUnsafeBufferPointer { vp in
                    Kernels.attention(
                        q: q, k: kp.baseAddress!, v: vp.baseAddress!, keys: start + x.rows,
                        heads: c.numAttentionHeads, kvHeads: c.numAttentionHeads, headDim: c.headDim, causal: true)
                }
            }
        } else {
            attended = k.data.withUnsafeBufferPointer { kp in
                v.data.withUnsafeBufferPointer { vp in
                    Kernels.attention(
                        q: q, k: kp.baseAddress!, v: vp.baseAddress!, keys: x.rows, heads: c.numAttentionHeads,
                        kvHeads: c.numAttentionHeads, headDim: c.headDim, causal: true)
                }
            }
        }
        Kernels.add(&x, try applyLinear(layer + "attn.o", attended, out: width, observer: observer, layout: .inOut))
        var hidden = try applyLinear(layer + "mlp.up", try applyLayerNorm(layer + "mlp_norm", x), out: c.intermediateSize, observer: observer, layout: .inOut)
        Kernels.activate(&hidden, activation)
        Kernels.add(&x, try applyLinear(layer + "mlp.down", hidden, out: width, observer: observer, layout: .inOut))
    }

    package func logits(_ x: Activations) throws -> Activations {
        try projectToVocabulary(try applyLayerNorm("norm", x))
    }
}
