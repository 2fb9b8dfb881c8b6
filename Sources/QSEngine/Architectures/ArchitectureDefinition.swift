/// An architecture qs can load, named by its transformers `model_type` (`llama`, `qwen2`, ...).
/// Each family declares its names in its own folder (`Architectures/Llama/`, ...); the
/// registry below lists the families.
package struct Architecture: Hashable, Sendable, CustomStringConvertible {
    package let rawValue: String

    init(_ name: String) { rawValue = name }

    /// The architecture of a `model_type`, when qs supports it.
    package init?(rawValue: String) {
        guard ArchitectureRegistry.definition(modelType: rawValue) != nil else { return nil }
        self.rawValue = rawValue
    }

    package var description: String { rawValue }

    /// Every supported architecture, in registry order.
    package static var allCases: [Architecture] { ArchitectureRegistry.definitions.flatMap { $0.architectures } }

    /// The family that implements it.
    package var definition: any ArchitectureDefinition.Type {
        guard let definition = ArchitectureRegistry.definition(modelType: rawValue) else {
            preconditionFailure("no definition for architecture \(rawValue)")
        }
        return definition
    }

    /// Whether the model is a causal language model (as opposed to an encoder).
    package var isCausal: Bool { definition.isCausal }
}

/// What a canonical layer is: compression commands select over (name, kind), and the kernels
/// take a linear weight's layout from here.
package enum LayerKind: Sendable, Equatable {
    /// A linear projection, with how its tensor holds the matrix.
    case linear(WeightLayout)
    /// A normalisation's scale (and shift).
    case norm
    /// A lookup table: token, position or token-type embeddings.
    case embedding
    /// The projection to the vocabulary (its own weight, or the token embedding when tied).
    case head

    /// Whether the layer is a matrix product (a linear layer or the head).
    package var isMatrix: Bool {
        switch self {
        case .linear, .head: true
        case .norm, .embedding: false
        }
    }
}

/// One module of an architecture, as its table declares it.
package struct ModuleSpec: Sendable {
    /// The canonical name (`attn.q` inside a block, `embed` outside).
    package var canonical: String
    /// The checkpoint module name (`self_attn.q_proj` inside a block, `model.embed_tokens` outside).
    package var module: String
    package var kind: LayerKind
    /// The weight's shape as the configuration implies it, with the configuration key behind
    /// each dimension (for errors that say which key disagrees).
    package var weightShape: [Dimension]
    /// The bias's shape when the configuration says the module has one.
    package var biasShape: [Dimension]?
    /// Whether a checkpoint may leave the module out (BERT's token types and pooler).
    package var isOptional: Bool
    /// The module of the same block whose input this one receives unchanged (`attn.k` and
    /// `attn.v` read `attn.q`'s): calibrated methods collect their statistics once for all.
    package var sharesInputWith: String?

    /// A size and the configuration key it comes from.
    package struct Dimension: Sendable, Equatable {
        package var size: Int
        package var key: String

        package init(_ size: Int, _ key: String) {
            self.size = size
            self.key = key
        }
    }

    package init(
        _ canonical: String, _ module: String, _ kind: LayerKind, weight: [Dimension], bias: [Dimension]? = nil,
        optional: Bool = false, sharesInputWith: String? = nil
    ) {
        self.canonical = canonical
        self.module = module
        self.kind = kind
        weightShape = weight
        biasShape = bias
        isOptional = optional
        self.sharesInputWith = sharesInputWith
    }
}

/// The modules of a model with one configuration: outside the blocks, and in each block.
package struct ModuleTable: Sendable {
    /// Modules before the blocks, in forward order.
    package var before: [ModuleSpec]
    /// The checkpoint prefix of block N, `N` standing for the index (`model.layers.N.`).
    package var blockPrefix: String
    /// The modules of every block, in forward order.
    package var block: [ModuleSpec]
    /// Modules after the blocks.
    package var after: [ModuleSpec]
    /// The configuration key of the block count (`num_hidden_layers`, GPT-2's `n_layer`).
    package var layerCountKey = "num_hidden_layers"
    /// Modules outside the optional checkpoint prefix (`lm_head`).
    package var unprefixed: Set<String> = []
    /// Prefixes some checkpoints put before every name (`bert.`, `transformer.`).
    package var optionalPrefixes: [String] = [""]
    /// Name endings of tensors that are buffers rather than weights (`embeddings.position_ids`),
    /// accepted in a checkpoint and not used.
    package var ignoredSuffixes: [String] = []
    /// Where a block can fold per-channel smoothing (AWQ, SmoothQuant), in forward order.
    package var smoothing: [SmoothingMapping] = []
}

/// A place in a block where the input of some linear layers can be divided by per-channel
/// factors s while those layers' input columns are multiplied by s, leaving the block's function
/// unchanged: the layers read their input straight from a normalisation (whose scale, and
/// shift, divide by s) or from the output rows of a linear layer (which divide by s).
package struct SmoothingMapping: Sendable, Equatable {
    package enum Source: Sendable, Equatable {
        /// A norm's weight (and bias) in the block (`attn_norm`).
        case norm(String)
        /// The last output rows of a linear layer in the block, as many as the reading layers
        /// have inputs (`attn.v`; GPT-2's fused q/k/v gives v from its last third, however many
        /// heads structured pruning left), with its bias.
        case linear(String)
    }

    package var source: Source
    /// The block's linear layers that read that input (`attn.q`, `attn.k`, `attn.v`).
    package var layers: [String]

    package init(_ source: Source, _ layers: [String]) {
        self.source = source
        self.layers = layers
    }
}

/// Where an architecture's tensors come from in a GGUF file, and how its metadata reads.
package struct GGUFNaming: Sendable {
    /// GGUF stems outside the blocks and their Hugging Face module names.
    package var topLevel: [(gguf: String, huggingFace: String)]
    /// GGUF stems inside `blk.N.` and their Hugging Face module names inside `blockPrefix`.
    package var block: [(gguf: String, huggingFace: String)]
    /// The Hugging Face prefix of block N (`model.layers.N.`).
    package var blockPrefix: String
    /// The GGUF stems whose rows convert_hf_to_gguf.py permuted for rotary embedding, with the
    /// metadata keys of their head count, the first present one used (`attn_k`: head_count_kv,
    /// else head_count).
    package var permutedStems: [String: [String]]
}

/// Everything qs knows about one family of architectures, in one place: its configuration
/// keys, its module table, its GGUF names and its model. `ArchitectureRegistry` lists them.
package protocol ArchitectureDefinition: Sendable {
    /// The `model_type` names it reads.
    static var architectures: [Architecture] { get }
    /// Whether its models are causal language models.
    static var isCausal: Bool { get }
    /// The transformers class written to `architectures` when a config names none.
    static func className(_ architecture: Architecture) -> String
    /// The prefixes of transformers class names it reads (`Llama` for LlamaForCausalLM).
    static var classPrefixes: [(String, Architecture)] { get }
    /// Reads its keys of config.json; absent keys take transformers' defaults.
    static func configuration(_ reader: inout ConfigReader, _ architecture: Architecture) throws -> ModelConfig
    /// Its keys of config.json for a configuration, as transformers writes them.
    static func configKeys(_ config: ModelConfig) -> [String: StrictJSON]
    /// The modules a model of this configuration has.
    static func modules(_ config: ModelConfig) -> ModuleTable
    /// The GGUF `general.architecture` names it reads.
    static var ggufArchitectures: [String: Architecture] { get }
    /// How the tensors of a GGUF of that architecture are named (nil: not read from GGUF).
    static func ggufNaming(_ ggufArchitecture: String) -> GGUFNaming?
    /// Reads its configuration from GGUF metadata.
    static func configuration(gguf: GGUFFile, _ architecture: Architecture) throws -> ModelConfig
    /// The model computing with `weights`.
    static func model(config: ModelConfig, weights: WeightStore, names: LayerNames) throws -> BlockModel
}

extension ArchitectureDefinition {
    package static var ggufArchitectures: [String: Architecture] { [:] }
    package static func ggufNaming(_ ggufArchitecture: String) -> GGUFNaming? { nil }
    package static func configuration(gguf: GGUFFile, _ architecture: Architecture) throws -> ModelConfig {
        throw EngineError(path: gguf.path, subject: "general.architecture", "architecture '\(architecture)' is not read from GGUF")
    }
}

/// The architecture families, listed once: adding an architecture is its folder and one line here.
package enum ArchitectureRegistry {
    package static let definitions: [any ArchitectureDefinition.Type] = [LlamaFamily.self, GPT2Family.self, BERTFamily.self]

    /// The family that reads a `model_type`.
    package static func definition(modelType: String) -> (any ArchitectureDefinition.Type)? {
        definitions.first { $0.architectures.contains { $0.rawValue == modelType } }
    }

    /// The family and architecture of a GGUF `general.architecture`.
    package static func definition(ggufArchitecture name: String) -> (any ArchitectureDefinition.Type, Architecture)? {
        for definition in definitions {
            if let architecture = definition.ggufArchitectures[name] { return (definition, architecture) }
        }
        return nil
    }

    /// The architecture of a transformers class name such as `Qwen2ForCausalLM` or `BertModel`.
    package static func architecture(className: String) -> Architecture? {
        for definition in definitions {
            for (prefix, architecture) in definition.classPrefixes where className.hasPrefix(prefix) {
                let rest = className.dropFirst(prefix.count)
                if rest == "Model" || rest == "LMHeadModel" || rest.hasPrefix("For") { return architecture }
            }
        }
        return nil
    }

    /// The GGUF architecture names qs reads, sorted.
    package static var ggufNames: [String] { definitions.flatMap { $0.ggufArchitectures.keys }.sorted() }
}
