import Foundation

/// Which of a model's tensors learn, and how, for `finetune` and `tune blocks`.
package struct ParameterSelection: Sendable {
    /// What a tensor does: given its canonical module, whether it is a bias, and whether its
    /// weight is quantized, whether its values learn and whether its grid's scales learn.
    package var choose: @Sendable (_ entry: LayerNames.Entry, _ isBias: Bool, _ isQuantized: Bool) -> (values: Bool, scales: Bool)

    package init(_ choose: @escaping @Sendable (_ entry: LayerNames.Entry, _ isBias: Bool, _ isQuantized: Bool) -> (values: Bool, scales: Bool)) {
        self.choose = choose
    }

    /// Every tensor (quantized layers through their grid).
    package static let all = ParameterSelection { _, _, _ in (true, false) }
    /// The normalisations' scales only.
    package static let norms = ParameterSelection { entry, _, _ in (entry.kind == .norm, false) }
    /// The quantized layers' scales and the norms (learned step size, weights fixed on their codes).
    package static let scales = ParameterSelection { entry, isBias, quantized in
        entry.kind == .norm ? (true, false) : (false, quantized && !isBias)
    }
}

/// How much of the forward pass is kept for the backward.
package enum ActivationMemory: String, Sendable {
    /// Every block's intermediate values are kept (fastest; memory grows with the blocks).
    case keep
    /// Only each block's input is kept; the block runs forward again in the backward pass.
    case recompute
}

/// A model (the llama family, GPT-2 or a BERT encoder) as trainable parameters (fp32 master
/// weights beside the model's forms), with a forward pass that keeps what its backward needs and
/// the backward itself. Sequences in a batch have one length; their rows lie one after another.
package final class TrainingModel {
    package let config: ModelConfig
    package let names: LayerNames
    package let activation: Kernels.Activation
    /// Every tensor the forward pass uses, by checkpoint name.
    package private(set) var parameters: [String: TrainableParameter] = [:]
    /// The parameters in a fixed order (checkpoint order of their modules).
    package private(set) var ordered: [TrainableParameter] = []
    package var memory: ActivationMemory = .keep
    private let headName: String?
    /// The block layout: the llama family's (RMSNorm, rotary positions, gated MLP, separate
    /// q/k/v), GPT-2's (LayerNorm with biases, learned positions, fused q/k/v, GELU MLP) or
    /// BERT's (post-norm blocks, bidirectional attention, embeddings with their own LayerNorm;
    /// no vocabulary projection: an encoder learns to reproduce a teacher's hidden states).
    package enum Family: Sendable { case llama, gpt2, bert }
    package let family: Family

    /// The parameters of `model` in their current forms; `blocks` limits the model to those
    /// blocks' tensors (block-wise tuning), nil takes everything.
    package init(_ model: BlockModel, selection: ParameterSelection, blocks: Set<Int>? = nil) throws {
        if LlamaFamily.architectures.contains(model.config.architecture) {
            family = .llama
        } else if model.config.architecture == .gpt2 {
            family = .gpt2
        } else if model.config.architecture == .bert {
            family = .bert
        } else {
            throw EngineError("training is implemented for the llama family (llama, mistral, qwen2, SmolLM2), gpt2 and bert; \(model.config.architecture.rawValue) is not yet")
        }
        config = model.config
        names = model.names
        activation = try Kernels.Activation(config, key: family == .gpt2 ? "activation_function" : "hidden_act", path: model.weights.checkpoint.path)
        if family == .bert {
            headName = nil
        } else {
            guard let head = names.headWeight else { throw EngineError("the model has no vocabulary projection") }
            headName = head
        }
        for entry in names.entries {
            // BERT's pooler is not on the path to the hidden states an encoder learns from.
            if family == .bert, entry.canonical == "pooler" { continue }
            let block = CalibratedQuantizer.blockIndex(entry.canonical)
            if let blocks { guard let block, blocks.contains(block) else { continue } }
            var tensors = [(entry.weight, false)]
            if entry.hasBias { tensors.append((entry.bias, true)) }
            for (name, isBias) in tensors where model.weights.contains(name) && parameters[name] == nil {
                let weight = try model.weights.weight(name)
                let choice = selection.choose(entry, isBias, weight.isQuantized)
                let parameter = try TrainableParameter(
                    name: name, weight: weight, learnsValues: choice.values, learnsScales: choice.scales,
                    origin: weight.isQuantized ? try model.weights.origin(name) : nil)
                parameters[name] = parameter
                ordered.append(parameter)
            }
        }
    }

    /// The parameters that learn.
    package var trainable: [TrainableParameter] { ordered.filter(\.trainable) }

    func parameter(_ canonical: String, bias: Bool = false) -> TrainableParameter? {
        guard let entry = names.entry(canonical) else { return nil }
        return parameters[bias ? entry.bias : entry.weight]
    }

    func required(_ canonical: String, bias: Bool = false) -> TrainableParameter {
        guard let parameter = parameter(canonical, bias: bias) else { preconditionFailure("no parameter for \(canonical)") }
        return parameter
    }

    // MARK: Blocks

    /// What a block's forward pass keeps for its backward.
    package struct BlockCache {
        var input: Activations
        var normed: Activations
        var q: Activations
        var k: Activations
        var v: Activations
        var attention: Backward.AttentionState
        var attended: Activations
        var middle: Activations
        var normed2: Activations
        var gate: Activations
        var up: Activations
        var hidden: Activations

        /// The cache of a block whose MLP has no gate (GPT-2's and BERT's).
        static func plain(
            input: Activations, normed: Activations, q: Activations, k: Activations, v: Activations, attention: Backward.AttentionState,
            attended: Activations, middle: Activations, normed2: Activations, up: Activations, hidden: Activations
        ) -> BlockCache {
            BlockCache(
                input: input, normed: normed, q: q, k: k, v: v, attention: attention, attended: attended, middle: middle, normed2: normed2,
                gate: Activations(rows: 0, cols: 0), up: up, hidden: hidden)
        }
    }

    private func linear(_ canonical: String, _ x: Activations) -> Activations {
        let weight = required(canonical)
        return Backward.linear(x, weight: weight.effective, out: weight.shape[0], bias: parameter(canonical, bias: true)?.effective)
    }

    /// Runs block `index` on the rows of sequences of `length` tokens, returning its output and,
    /// with `keep`, what its backward needs.
    package func block(_ index: Int, _ x: Activations, length: Int, keep: Bool = true) -> (Activations, BlockCache?) {
        if family == .gpt2 { return gpt2Block(index, x, length: length, keep: keep) }
        if family == .bert { return bertBlock(index, x, length: length, keep: keep) }
        let c = config
        let layer = "layer.\(index)."
        let eps = Float(c.normEps)
        let normed = Kernels.rmsNorm(x, weight: required(layer + "attn_norm").effective, eps: eps)
        var q = linear(layer + "attn.q", normed)
        var k = linear(layer + "attn.k", normed)
        let v = linear(layer + "attn.v", normed)
        let table = Kernels.RotaryTable(start: 0, rows: length, headDim: c.headDim, theta: c.ropeTheta)
        Backward.rotary(&q, heads: q.cols / c.headDim, headDim: c.headDim, length: length, table: table, inverse: false)
        Backward.rotary(&k, heads: k.cols / c.headDim, headDim: c.headDim, length: length, table: table, inverse: false)
        let (attended, state) = Backward.attention(
            q: q, k: k, v: v, heads: q.cols / c.headDim, kvHeads: k.cols / c.headDim, headDim: c.headDim, length: length, causal: true)
        var middle = x
        Kernels.add(&middle, linear(layer + "attn.o", attended))
        let normed2 = Kernels.rmsNorm(middle, weight: required(layer + "mlp_norm").effective, eps: eps)
        let gate = linear(layer + "mlp.gate", normed2)
        let up = linear(layer + "mlp.up", normed2)
        var hidden = gate
        Kernels.gatedActivate(&hidden, up: up, activation)
        var output = middle
        Kernels.add(&output, linear(layer + "mlp.down", hidden))
        guard keep else { return (output, nil) }
        return (
            output,
            BlockCache(
                input: x, normed: normed, q: q, k: k, v: v, attention: state, attended: attended, middle: middle, normed2: normed2,
                gate: gate, up: up, hidden: hidden))
    }

    /// The linear layer's backward: its parameters' gradients added, the input's gradient returned.
    private func linearBackward(_ canonical: String, _ dy: Activations, input: Activations) -> Activations {
        let weight = required(canonical)
        let bias = parameter(canonical, bias: true)
        return withGradient(weight) { wg in
            withGradient(bias) { bg in
                Backward.linear(dy, x: input, weight: weight.effective, weightGrad: wg, biasGrad: bg)!
            }
        }
    }

    /// Runs `body` with a pointer to the parameter's gradient, or nil when it does not learn.
    private func withGradient<R>(_ parameter: TrainableParameter?, _ body: (UnsafeMutablePointer<Float>?) -> R) -> R {
        guard let parameter, parameter.trainable else { return body(nil) }
        return parameter.grad.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    }

    /// Block `index`'s backward from the gradient of its output: adds its parameters' gradients
    /// and returns the gradient of its input.
    package func blockBackward(_ index: Int, _ dy: Activations, cache: BlockCache, length: Int) -> Activations {
        if family == .gpt2 { return gpt2BlockBackward(index, dy, cache: cache, length: length) }
        if family == .bert { return bertBlockBackward(index, dy, cache: cache, length: length) }
        let c = config
        let layer = "layer.\(index)."
        let eps = Float(c.normEps)
        // output = middle + down(hidden)
        let dHidden = linearBackward(layer + "mlp.down", dy, input: cache.hidden)
        let (dGate, dUp) = Backward.gatedActivation(dHidden, gate: cache.gate, up: cache.up, activation)
        var dNormed2 = linearBackward(layer + "mlp.gate", dGate, input: cache.normed2)
        Kernels.add(&dNormed2, linearBackward(layer + "mlp.up", dUp, input: cache.normed2))
        let mlpNorm = required(layer + "mlp_norm")
        var dMiddle = withGradient(mlpNorm) { Backward.rmsNorm(dNormed2, x: cache.middle, weight: mlpNorm.effective, eps: eps, weightGrad: $0) }
        Kernels.add(&dMiddle, dy)
        // middle = input + o(attention(q, k, v))
        let dAttended = linearBackward(layer + "attn.o", dMiddle, input: cache.attended)
        var (dq, dk, dv) = Backward.attention(
            dAttended, q: cache.q, k: cache.k, v: cache.v, state: cache.attention, heads: cache.q.cols / c.headDim,
            kvHeads: cache.k.cols / c.headDim, headDim: c.headDim, length: length)
        let table = Kernels.RotaryTable(start: 0, rows: length, headDim: c.headDim, theta: c.ropeTheta)
        Backward.rotary(&dq, heads: dq.cols / c.headDim, headDim: c.headDim, length: length, table: table, inverse: true)
        Backward.rotary(&dk, heads: dk.cols / c.headDim, headDim: c.headDim, length: length, table: table, inverse: true)
        var dNormed = linearBackward(layer + "attn.q", dq, input: cache.normed)
        Kernels.add(&dNormed, linearBackward(layer + "attn.k", dk, input: cache.normed))
        Kernels.add(&dNormed, linearBackward(layer + "attn.v", dv, input: cache.normed))
        let attnNorm = required(layer + "attn_norm")
        var dx = withGradient(attnNorm) { Backward.rmsNorm(dNormed, x: cache.input, weight: attnNorm.effective, eps: eps, weightGrad: $0) }
        Kernels.add(&dx, dMiddle)
        return dx
    }

    /// The block's normalisation: RMSNorm (llama family) or LayerNorm with its bias (GPT-2).
    private func norm(_ canonical: String, _ x: Activations) -> Activations {
        let weight = required(canonical)
        let eps = Float(config.normEps)
        switch family {
        case .llama: return Kernels.rmsNorm(x, weight: weight.effective, eps: eps)
        case .gpt2, .bert: return Kernels.layerNorm(x, weight: weight.effective, bias: required(canonical, bias: true).effective, eps: eps)
        }
    }

    /// The normalisation's backward: its parameters' gradients added, the input's returned.
    private func normBackward(_ canonical: String, _ dy: Activations, x: Activations) -> Activations {
        let weight = required(canonical)
        let eps = Float(config.normEps)
        switch family {
        case .llama:
            return withGradient(weight) { Backward.rmsNorm(dy, x: x, weight: weight.effective, eps: eps, weightGrad: $0) }
        case .gpt2, .bert:
            let bias = parameter(canonical, bias: true)
            return withGradient(weight) { wg in
                withGradient(bias) { bg in Backward.layerNorm(dy, x: x, weight: weight.effective, eps: eps, weightGrad: wg, biasGrad: bg) }
            }
        }
    }

    /// GPT-2's block: LayerNorm, the fused q/k/v projection split by columns, causal attention
    /// (no rotary positions), the output projection, LayerNorm, and the GELU MLP, each with its
    /// residual. `gate` of the cache stays empty.
    private func gpt2Block(_ index: Int, _ x: Activations, length: Int, keep: Bool) -> (Activations, BlockCache?) {
        let c = config
        let layer = "layer.\(index)."
        let normed = norm(layer + "attn_norm", x)
        let qkv = linear(layer + "attn.qkv", normed)
        let (q, k, v) = Self.split3(qkv)
        let heads = q.cols / c.headDim
        let (attended, state) = Backward.attention(q: q, k: k, v: v, heads: heads, kvHeads: heads, headDim: c.headDim, length: length, causal: true)
        var middle = x
        Kernels.add(&middle, linear(layer + "attn.o", attended))
        let normed2 = norm(layer + "mlp_norm", middle)
        let (up, hidden, down) = plainMLP(layer, normed2)
        var output = middle
        Kernels.add(&output, down)
        guard keep else { return (output, nil) }
        return (
            output,
            BlockCache.plain(
                input: x, normed: normed, q: q, k: k, v: v, attention: state, attended: attended, middle: middle, normed2: normed2,
                up: up, hidden: hidden))
    }

    private func gpt2BlockBackward(_ index: Int, _ dy: Activations, cache: BlockCache, length: Int) -> Activations {
        let c = config
        let layer = "layer.\(index)."
        let dNormed2 = plainMLPBackward(layer, dy, cache: cache, input: cache.normed2)
        var dMiddle = normBackward(layer + "mlp_norm", dNormed2, x: cache.middle)
        Kernels.add(&dMiddle, dy)
        let dAttended = linearBackward(layer + "attn.o", dMiddle, input: cache.attended)
        let heads = cache.q.cols / c.headDim
        let (dq, dk, dv) = Backward.attention(
            dAttended, q: cache.q, k: cache.k, v: cache.v, state: cache.attention, heads: heads, kvHeads: heads, headDim: c.headDim, length: length)
        let dNormed = linearBackward(layer + "attn.qkv", Self.join3(dq, dk, dv), input: cache.normed)
        var dx = normBackward(layer + "attn_norm", dNormed, x: cache.input)
        Kernels.add(&dx, dMiddle)
        return dx
    }

    /// BERT's post-norm block: q, k and v of the input, bidirectional attention, the output
    /// projection plus the input, LayerNorm; the GELU MLP plus its input, LayerNorm. In the cache
    /// `middle` is the attention's sum before its LayerNorm, `normed` that LayerNorm's output,
    /// `normed2` the MLP's sum before the last LayerNorm.
    private func bertBlock(_ index: Int, _ x: Activations, length: Int, keep: Bool) -> (Activations, BlockCache?) {
        let c = config
        let layer = "layer.\(index)."
        let q = linear(layer + "attn.q", x)
        let k = linear(layer + "attn.k", x)
        let v = linear(layer + "attn.v", x)
        let heads = q.cols / c.headDim
        let (attended, state) = Backward.attention(q: q, k: k, v: v, heads: heads, kvHeads: k.cols / c.headDim, headDim: c.headDim, length: length, causal: false)
        var middle = linear(layer + "attn.o", attended)
        Kernels.add(&middle, x)
        let normed = norm(layer + "attn_norm", middle)
        let (up, hidden, down) = plainMLP(layer, normed)
        var sum = down
        Kernels.add(&sum, normed)
        let output = norm(layer + "mlp_norm", sum)
        guard keep else { return (output, nil) }
        return (
            output,
            BlockCache.plain(
                input: x, normed: normed, q: q, k: k, v: v, attention: state, attended: attended, middle: middle, normed2: sum,
                up: up, hidden: hidden))
    }

    private func bertBlockBackward(_ index: Int, _ dy: Activations, cache: BlockCache, length: Int) -> Activations {
        let c = config
        let layer = "layer.\(index)."
        let dSum = normBackward(layer + "mlp_norm", dy, x: cache.normed2)
        var dNormed = plainMLPBackward(layer, dSum, cache: cache, input: cache.normed)
        Kernels.add(&dNormed, dSum)
        let dMiddle = normBackward(layer + "attn_norm", dNormed, x: cache.middle)
        let dAttended = linearBackward(layer + "attn.o", dMiddle, input: cache.attended)
        let (dq, dk, dv) = Backward.attention(
            dAttended, q: cache.q, k: cache.k, v: cache.v, state: cache.attention, heads: cache.q.cols / c.headDim,
            kvHeads: cache.k.cols / c.headDim, headDim: c.headDim, length: length)
        var dx = linearBackward(layer + "attn.q", dq, input: cache.input)
        Kernels.add(&dx, linearBackward(layer + "attn.k", dk, input: cache.input))
        Kernels.add(&dx, linearBackward(layer + "attn.v", dv, input: cache.input))
        Kernels.add(&dx, dMiddle)
        return dx
    }

    /// GPT-2's and BERT's MLP, down(act(up(x))): up's output, the activation, and the result.
    private func plainMLP(_ layer: String, _ x: Activations) -> (up: Activations, hidden: Activations, out: Activations) {
        let up = linear(layer + "mlp.up", x)
        var hidden = up
        Kernels.activate(&hidden, activation)
        return (up, hidden, linear(layer + "mlp.down", hidden))
    }

    /// `plainMLP`'s backward from its result's gradient to its input's (`input` is what up read).
    private func plainMLPBackward(_ layer: String, _ dy: Activations, cache: BlockCache, input: Activations) -> Activations {
        let dHidden = linearBackward(layer + "mlp.down", dy, input: cache.hidden)
        let dUp = Backward.activation(dHidden, x: cache.up, activation)
        return linearBackward(layer + "mlp.up", dUp, input: input)
    }

    /// The three equal column blocks of each row (q, k and v of a fused projection).
    static func split3(_ x: Activations) -> (Activations, Activations, Activations) {
        let width = x.cols / 3
        var parts = (0 ..< 3).map { _ in Activations(rows: x.rows, cols: width) }
        x.data.withUnsafeBufferPointer { source in
            for p in 0 ..< 3 {
                parts[p].data.withUnsafeMutableBufferPointer { out in
                    for r in 0 ..< x.rows {
                        (out.baseAddress! + r * width).update(from: source.baseAddress! + r * x.cols + p * width, count: width)
                    }
                }
            }
        }
        return (parts[0], parts[1], parts[2])
    }

    /// `split3`'s inverse: the rows of three blocks side by side.
    static func join3(_ a: Activations, _ b: Activations, _ c: Activations) -> Activations {
        let width = a.cols
        var joined = Activations(rows: a.rows, cols: 3 * width)
        joined.data.withUnsafeMutableBufferPointer { out in
            for (p, part) in [a, b, c].enumerated() {
                part.data.withUnsafeBufferPointer { source in
                    for r in 0 ..< a.rows {
                        (out.baseAddress! + r * 3 * width + p * width).update(from: source.baseAddress! + r * width, count: width)
                    }
                }
            }
        }
        return joined
    }

    // MARK: The whole model

    /// The token embeddings of a batch of sequences (rows one after another).
    package func embed(_ sequences: [[Int]]) -> Activations {
        let table = required("embed")
        let width = config.hiddenSize
        let ids = sequences.flatMap { $0 }
        var x = Activations(rows: ids.count, cols: width)
        table.effective.withUnsafeBufferPointer { t in
            x.data.withUnsafeMutableBufferPointer { out in
                for (row, id) in ids.enumerated() {
                    (out.baseAddress! + row * width).update(from: t.baseAddress! + id * width, count: width)
                }
            }
        }
        if family != .llama, let length = sequences.first?.count {
            // Learned positions: row r of a sequence adds position r's row.
            required("pos_embed").effective.withUnsafeBufferPointer { p in
                x.data.withUnsafeMutableBufferPointer { out in
                    for row in 0 ..< ids.count {
                        let position = p.baseAddress! + (row % length) * width
                        for i in 0 ..< width { out[row * width + i] += position[i] }
                    }
                }
            }
        }
        if family == .bert, let types = parameter("type_embed") {
            // Every token is of type 0 (one segment), as the evaluations run BERT.
            for row in 0 ..< ids.count { for i in 0 ..< width { x.data[row * width + i] += types.effective[i] } }
        }
        return x
    }

    /// The loss of a batch of sequences of one length, with the gradient of every learning
    /// parameter added to its `grad` (call `finishGradients` before an update).
    /// `teacherLogits` [rows, vocab] is what `.distillation` compares with.
    package func lossAndGradients(
        _ sequences: [[Int]], loss: TrainingLoss, teacherLogits: [Float]? = nil, isCancelled: () -> Bool = { false }
    ) throws -> Double {
        guard let length = sequences.first?.count, length > 0, sequences.allSatisfy({ $0.count == length }) else {
            throw EngineError("a training batch needs sequences of one positive length")
        }
        try checkTokens(sequences.flatMap { $0 }, vocab: config.vocabSize, start: 0, maxPositions: nil)
        if config.maxPositionEmbeddings > 0, length > config.maxPositionEmbeddings {
            throw EngineError("sequences of \(length) tokens are longer than the model allows (\(config.maxPositionEmbeddings))")
        }
        let embedded = embed(sequences)
        // BERT normalises its embeddings before the first block.
        var x = family == .bert ? norm("embed_norm", embedded) : embedded
        var caches: [BlockCache] = []
        var inputs: [Activations] = []
        for index in 0 ..< config.numHiddenLayers {
            if isCancelled() { throw EngineError.cancelled }
            let (output, cache) = block(index, x, length: length, keep: memory == .keep)
            if let cache { caches.append(cache) } else { inputs.append(x) }
            x = output
        }
        var dx: Activations
        let value: Double
        if let headName {
            (value, dx) = try vocabularyLoss(x, head: parameters[headName]!, sequences: sequences, loss: loss, teacherLogits: teacherLogits)
        } else {
            // An encoder: the mean squared error of its last hidden states against the teacher's.
            guard case .distillation = loss else {
                throw EngineError("an encoder has no next-token loss: it learns to reproduce a teacher's hidden states (loss=kd)")
            }
            guard let teacherLogits, teacherLogits.count == x.data.count else {
                throw EngineError("an encoder's distillation needs the teacher's last hidden states for every row")
            }
            (value, dx) = BlockTuner.meanSquaredError(x, Activations(rows: x.rows, cols: x.cols, data: teacherLogits))
        }
        for index in (0 ..< config.numHiddenLayers).reversed() {
            if isCancelled() { throw EngineError.cancelled }
            let cache: BlockCache
            if memory == .keep {
                cache = caches.removeLast()
            } else {
                cache = block(index, inputs.removeLast(), length: length, keep: true).1!
            }
            dx = blockBackward(index, dx, cache: cache, length: length)
        }
        if family == .bert { dx = normBackward("embed_norm", dx, x: embedded) }
        let table = required("embed")
        if table.trainable {
            let ids = sequences.flatMap { $0 }
            table.grad.withUnsafeMutableBufferPointer { Backward.embedding(dx, ids: ids, into: $0.baseAddress!) }
        }
        if family != .llama, let positions = parameter("pos_embed"), positions.trainable {
            let ids = (0 ..< dx.rows).map { $0 % length }
            positions.grad.withUnsafeMutableBufferPointer { Backward.embedding(dx, ids: ids, into: $0.baseAddress!) }
        }
        if family == .bert, let types = parameter("type_embed"), types.trainable {
            types.grad.withUnsafeMutableBufferPointer { Backward.embedding(dx, ids: Array(repeating: 0, count: dx.rows), into: $0.baseAddress!) }
        }
        return value
    }

    /// A language model's loss over the vocabulary from its last hidden states `x`: the final
    /// norm, the head, cross entropy or distillation; returns the loss and the gradient of `x`.
    private func vocabularyLoss(
        _ x: Activations, head: TrainableParameter, sequences: [[Int]], loss: TrainingLoss, teacherLogits: [Float]?
    ) throws -> (Double, Activations) {
        let length = sequences.first?.count ?? 0
        let normed = norm("norm", x)
        let objective: Backward.Objective
        let counted: Int
        var result: (loss: Double, dNormed: Activations)
        switch loss {
        case .crossEntropy:
            var targets: [Int] = []
            for sequence in sequences { targets += Array(sequence.dropFirst()) + [-1] }
            counted = sequences.count * (length - 1)
            objective = .crossEntropy(targets: targets)
            result = withGradient(head) {
                Backward.vocabularyLoss(normed: normed, head: head.effective, vocab: head.shape[0], objective: objective, counted: counted, headGrad: $0)
            }
        case .distillation(let temperature):
            guard let teacherLogits, teacherLogits.count == x.rows * head.shape[0] else {
                throw EngineError("distillation needs the teacher's logits for every row")
            }
            counted = x.rows
            result = teacherLogits.withUnsafeBufferPointer { t in
                withGradient(head) {
                    Backward.vocabularyLoss(
                        normed: normed, head: head.effective, vocab: head.shape[0],
                        objective: .distillation(teacherLogits: t.baseAddress!, temperature: Float(temperature)), counted: counted, headGrad: $0)
                }
            }
        }
        return (result.loss, normBackward("norm", result.dNormed, x: x))
    }

    /// Recomputes every parameter's effective values (after an update).
    package func refresh() { for parameter in ordered where parameter.trainable { parameter.refresh() } }
}

/// What a training step minimises.
package enum TrainingLoss: Sendable, Equatable {
    /// Next-token cross entropy.
    case crossEntropy
    /// KL divergence from the teacher's distribution at a temperature (times T²).
    case distillation(temperature: Double)
}
