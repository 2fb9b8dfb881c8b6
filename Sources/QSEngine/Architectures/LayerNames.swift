/// Canonical layer names, the same across architectures (`layer.3.attn.q`, `layer.3.mlp.down`,
/// `embed`, `head`), and the table that maps them to each architecture's module names.
/// A canonical name names a module; its tensors are the module name plus `.weight`/`.bias`.
package struct LayerNames: Sendable {
    /// One module: its canonical name and its checkpoint module name.
    package struct Entry: Sendable, Equatable {
        package var canonical: String
        package var module: String
        package var weight: String { module + ".weight" }
        package var bias: String { module + ".bias" }
    }

    /// Every module of the model, in forward order.
    package let entries: [Entry]
    private let byCanonical: [String: Entry]

    /// The per-layer table of an architecture: canonical suffix → module suffix. `N` in the
    /// prefix templates below stands for the layer index.
    static func layerTable(_ architecture: Architecture) -> (prefix: String, modules: [(String, String)]) {
        switch architecture {
        case .llama, .mistral, .qwen2:
            return ("model.layers.N.", [
                ("attn_norm", "input_layernorm"), ("attn.q", "self_attn.q_proj"), ("attn.k", "self_attn.k_proj"),
                ("attn.v", "self_attn.v_proj"), ("attn.o", "self_attn.o_proj"), ("mlp_norm", "post_attention_layernorm"),
                ("mlp.gate", "mlp.gate_proj"), ("mlp.up", "mlp.up_proj"), ("mlp.down", "mlp.down_proj"),
            ])
        case .gpt2:
            return ("h.N.", [
                ("attn_norm", "ln_1"), ("attn.qkv", "attn.c_attn"), ("attn.o", "attn.c_proj"),
                ("mlp_norm", "ln_2"), ("mlp.up", "mlp.c_fc"), ("mlp.down", "mlp.c_proj"),
            ])
        case .bert:
            return ("encoder.layer.N.", [
                ("attn.q", "attention.self.query"), ("attn.k", "attention.self.key"),
                ("attn.v", "attention.self.value"), ("attn.o", "attention.output.dense"),
                ("attn_norm", "attention.output.LayerNorm"), ("mlp.up", "intermediate.dense"),
                ("mlp.down", "output.dense"), ("mlp_norm", "output.LayerNorm"),
            ])
        }
    }

    /// Modules outside the layers: (canonical, module), before and after the layers.
    static func outerTable(_ architecture: Architecture) -> (before: [(String, String)], after: [(String, String)]) {
        switch architecture {
        case .llama, .mistral, .qwen2:
            return ([("embed", "model.embed_tokens")], [("norm", "model.norm"), ("head", "lm_head")])
        case .gpt2:
            return ([("embed", "wte"), ("pos_embed", "wpe")], [("norm", "ln_f"), ("head", "lm_head")])
        case .bert:
            return (
                [("embed", "embeddings.word_embeddings"), ("pos_embed", "embeddings.position_embeddings"),
                 ("type_embed", "embeddings.token_type_embeddings"), ("embed_norm", "embeddings.LayerNorm")],
                [("pooler", "pooler.dense")]
            )
        }
    }

    /// The names of a model with this configuration whose checkpoint has these tensor names.
    /// A prefix some checkpoints put before every name (`bert.`, `transformer.`) is detected.
    package init(config: ModelConfig, tensorNames: Set<String>) {
        let architecture = config.architecture
        let optionalPrefixes = ["", "bert.", "transformer.", "model."]
        let probe = Self.outerTable(architecture).before[0].1 + ".weight"
        let prefix = optionalPrefixes.first { tensorNames.contains($0 + probe) } ?? ""
        var entries: [Entry] = []
        let outer = Self.outerTable(architecture)
        let layers = Self.layerTable(architecture)
        for (canonical, module) in outer.before { entries.append(Entry(canonical: canonical, module: prefix + module)) }
        for index in 0 ..< config.numHiddenLayers {
            let layerPrefix = layers.prefix.replacingOccurrences(of: "N", with: String(index))
            for (canonical, module) in layers.modules {
                entries.append(Entry(canonical: "layer.\(index).\(canonical)", module: prefix + layerPrefix + module))
            }
        }
        for (canonical, module) in outer.after {
            // lm_head sits outside the base model's prefix.
            let full = module == "lm_head" ? module : prefix + module
            entries.append(Entry(canonical: canonical, module: full))
        }
        self.entries = entries.filter { tensorNames.contains($0.weight) || $0.canonical == "head" }
        var map: [String: Entry] = [:]
        for entry in self.entries { map[entry.canonical] = entry }
        byCanonical = map
    }

    /// The entry for a canonical name.
    package func entry(_ canonical: String) -> Entry? { byCanonical[canonical] }

    /// The module of a canonical name; a programmer error when the table lacks it.
    package func module(_ canonical: String) -> String {
        guard let entry = byCanonical[canonical] else { preconditionFailure("no module named \(canonical)") }
        return entry.module
    }

    /// The canonical name of a checkpoint tensor name (`model.layers.3.self_attn.q_proj.weight`
    /// → `layer.3.attn.q`), if it belongs to a known module.
    package func canonical(forTensor name: String) -> String? {
        for entry in entries where name == entry.weight || name == entry.bias { return entry.canonical }
        return nil
    }
}
