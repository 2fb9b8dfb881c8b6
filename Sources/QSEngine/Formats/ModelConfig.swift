/// A model's configuration, typed, whether it came from config.json or GGUF metadata.
/// Field names follow transformers' config.json keys.
package struct ModelConfig: Sendable, Equatable {
    /// The largest size any dimension, count or id of a configuration may have (2^31 − 1):
    /// products of two sizes then fit an Int, and no real model comes near it.
    package static let maxSize = Int(Int32.max)

    package var architecture: Architecture
    package var vocabSize: Int
    package var hiddenSize: Int
    package var intermediateSize: Int
    package var numHiddenLayers: Int
    package var numAttentionHeads: Int
    package var numKeyValueHeads: Int
    package var headDim: Int
    package var maxPositionEmbeddings: Int
    /// RMSNorm epsilon (llama family) or LayerNorm epsilon (gpt2, bert).
    package var normEps: Double
    package var ropeTheta: Double
    package var tieWordEmbeddings: Bool
    /// The attention projections carry biases (qwen2: q, k and v; llama's attention_bias: all four).
    package var attentionBias: Bool
    /// The MLP projections carry biases (llama's mlp_bias).
    package var mlpBias = false
    package var hiddenAct: String
    /// BERT token type vocabulary (0 elsewhere).
    package var typeVocabSize: Int
    package var bosTokenId: Int?
    package var eosTokenId: Int?
    /// Further end-of-sequence ids after `eosTokenId` (config.json may list several).
    package var extraEosTokenIds: [Int] = []
    /// The dtype config.json records (`torch_dtype`: "float32", "float16", "bfloat16").
    package var torchDType: String?
    /// config.json keys qs does not interpret (pad_token_id, sliding_window, architectures, ...),
    /// kept so that a saved config carries them, and where an exporter adds `quantization_config`.
    package var extraConfigKeys: [String: StrictJSON] = [:]

    package init(
        architecture: Architecture, vocabSize: Int, hiddenSize: Int, intermediateSize: Int,
        numHiddenLayers: Int, numAttentionHeads: Int, numKeyValueHeads: Int? = nil, headDim: Int? = nil,
        maxPositionEmbeddings: Int, normEps: Double, ropeTheta: Double = 10000,
        tieWordEmbeddings: Bool = false, attentionBias: Bool = false, hiddenAct: String = "silu",
        typeVocabSize: Int = 0, bosTokenId: Int? = nil, eosTokenId: Int? = nil
    ) {
        self.architecture = architecture
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads ?? numAttentionHeads
        self.headDim = headDim ?? (numAttentionHeads > 0 ? hiddenSize / numAttentionHeads : 0)
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.normEps = normEps
        self.ropeTheta = ropeTheta
        self.tieWordEmbeddings = tieWordEmbeddings
        self.attentionBias = attentionBias
        self.hiddenAct = hiddenAct
        self.typeVocabSize = typeVocabSize
        self.bosTokenId = bosTokenId
        self.eosTokenId = eosTokenId
    }
}
