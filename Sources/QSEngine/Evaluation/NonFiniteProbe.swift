/// Where NaN or infinite values first appear in a model, so that a result of NaN can say why:
/// the first weight (in forward order) that holds one, or else the first place a forward pass
/// produces one.
package enum NonFiniteProbe {
    /// A sentence naming the first non-finite weight or activation, or nil when a forward pass
    /// of `tokens` stays finite throughout.
    package static func locate(_ model: BlockModel, tokens: [Int]) throws -> String? {
        for entry in model.names.entries {
            for (name, part) in [(entry.weight, "weight"), (entry.bias, "bias")] where model.weights.contains(name) {
                let values = try model.weights.floats(name)
                if let index = values.firstIndex(where: { !$0.isFinite }) {
                    return "the \(part) of \(entry.canonical) (\(name)) holds \(values[index]) at element \(index)"
                }
            }
        }
        guard !tokens.isEmpty else { return nil }
        var found: String?
        let pass = ForwardPass(observer: { name, input in
            if found == nil, input.data.contains(where: { !$0.isFinite }) { found = "the input of \(name) is not finite" }
        })
        var x = try model.embed(tokens, pass: pass)
        if x.data.contains(where: { !$0.isFinite }) { return "the embeddings of the tokens are not finite" }
        for index in 0 ..< model.config.numHiddenLayers {
            try model.block(index, &x, pass: pass)
            if let found { return "activations first become non-finite in block \(index): \(found)" }
            if x.data.contains(where: { !$0.isFinite }) { return "the output of block \(index) is the first that is not finite" }
        }
        if let causal = model as? CausalLanguageModel, try causal.logits(x).data.contains(where: { !$0.isFinite }) {
            return "the logits are the first values that are not finite"
        }
        return nil
    }
}
