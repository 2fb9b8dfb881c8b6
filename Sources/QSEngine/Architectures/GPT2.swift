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

    func conv(_ canonical: String, _ x: Activations, out: Int, observer: LinearObserver?) throws -> Activations {
        observer?(canonical, x)
        let module = names.module(canonical)
        return Kernels.conv1D(
            x, weight: try weights.floats(module + ".weight"), bias: try weights.optionalFloats(module + ".bias"),
            outFeatures: out)
    }

    func norm(_ canonical: String, _ x: Activations) throws -> Activations {
        let module = names.module(canonical)
        return Kernels.layerNorm(
            x, weight: try weights.floats(module + ".weight"), bias: try weights.floats(module + ".bias"),
            eps: Float(config.normEps))
    }

    package func block(_ index: Int, _ x: inout Activations, start: Int, cache: KVCache?, observer: LinearObserver?) throws {
        let c = config
        let layer = "layer.\(index)."
        let width = c.hiddenSize
        let qkv = try conv(layer + "attn.qkv", try norm(layer + "attn_norm", x), out: 3 * width, observer: observer)
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
        Kernels.add(&x, try conv(layer + "attn.o", attended, out: width, observer: observer))
        var hidden = try conv(layer + "mlp.up", try norm(layer + "mlp_norm", x), out: c.intermediateSize, observer: observer)
        Kernels.activate(&hidden, activation)
        Kernels.add(&x, try conv(layer + "mlp.down", hidden, out: width, observer: observer))
    }

    package func logits(_ x: Activations) throws -> Activations {
        let normed = try norm("norm", x)
        let head = weights.contains("lm_head.weight") ? "lm_head.weight" : names.module("embed") + ".weight"
        return Kernels.linear(normed, weight: try weights.floats(head), bias: nil, outFeatures: config.vocabSize)
    }
}
