import Foundation

/// Block-wise reconstruction (`tune blocks`), as EfficientQAT's Block-AP and OmniQuant do it:
/// one block at a time, the compressed model's block learns to give the original block's
/// outputs. Its inputs are the compressed model's own states (the blocks before it already
/// tuned), its targets the original model's states at the same block, on the calibration
/// windows; the loss is the mean squared error. Quantized layers learn through their grid
/// (straight-through estimator) or by their scales only, as the selection says.
package enum BlockTuner {
    /// What tuning did to one block.
    package struct BlockResult: Sendable {
        package var block: Int
        /// The mean squared error of the block's outputs on the first 16 windows before and after tuning.
        package var before: Double
        package var after: Double
        package var parameters: Int
    }

    /// Tunes every block of `student` against `teacher` (the model as loaded) on `windows`
    /// (one length), `options.steps` steps per block on random batches of `batch` windows.
    /// The tuned weights are written into the student's weight store block by block.
    package static func run(
        student: BlockModel, teacher: BlockModel, windows: [[Int]], selection: ParameterSelection, options: TrainingOptions,
        batch: Int, seed: UInt64, memory: ActivationMemory = .keep, progress: ((Int, Int, Int, Double) -> Void)? = nil,
        isCancelled: () -> Bool = { false }
    ) throws -> [BlockResult] {
        guard let length = windows.first?.count, windows.allSatisfy({ $0.count == length }) else {
            throw EngineError("block tuning needs calibration windows of one length")
        }
        Memory.keepFreedMemory()
        let studentRunner = BlockRunner(model: student)
        let teacherRunner = BlockRunner(model: teacher)
        var studentStates = try studentRunner.embed(windows)
        var teacherStates = try teacherRunner.embed(windows)
        var random = SeededGenerator(seed: seed)
        var results: [BlockResult] = []
        let blocks = student.config.numHiddenLayers
        for index in 0 ..< blocks {
            if isCancelled() { throw EngineError.cancelled }
            try teacherRunner.run(block: index, &teacherStates)
            let model = try TrainingModel(student, selection: selection, blocks: [index])
            model.memory = memory
            let parameters = model.trainable
            // The error before and after is measured on up to `measured` windows (all of them
            // would cost as much as the tuning steps).
            let measured = min(windows.count, 16)
            let before = error(model, index, Array(studentStates.prefix(measured)), Array(teacherStates.prefix(measured)), length: length)
            if !parameters.isEmpty {
                let optimizer = Optimizer(options: options)
                for step in 0 ..< options.steps {
                    if isCancelled() { throw EngineError.cancelled }
                    var picked: [Int] = []
                    for _ in 0 ..< min(batch, windows.count) { picked.append(Int.random(in: 0 ..< windows.count, using: &random)) }
                    let x = concatenate(picked.map { studentStates[$0] })
                    let target = concatenate(picked.map { teacherStates[$0] })
                    for p in parameters { p.zeroGrad() }
                    let (output, cache) = model.block(index, x, length: length)
                    let (loss, gradient) = meanSquaredError(output, target)
                    _ = model.blockBackward(index, gradient, cache: cache!, length: length)
                    for p in parameters { p.finishGradient() }
                    optimizer.update(parameters, rate: options.rate(at: step))
                    progress?(index, step + 1, options.steps, loss)
                }
            }
            let after = parameters.isEmpty ? before : error(model, index, Array(studentStates.prefix(measured)), Array(teacherStates.prefix(measured)), length: length)
            // A block that tuning made worse keeps its weights.
            if after < before {
                try Finetuner.commit(model, to: student.weights)
                // The next block's inputs from the trained values (what was just committed).
                var first = 0
                while first < studentStates.count {
                    let last = min(studentStates.count, first + 8)
                    let output = model.block(index, concatenate(Array(studentStates[first ..< last])), length: length, keep: false).0
                    let width = output.cols
                    for i in first ..< last {
                        let offset = (i - first) * length * width
                        studentStates[i] = Activations(rows: length, cols: width, data: Array(output.data[offset ..< offset + length * width]))
                    }
                    first = last
                }
            } else {
                try studentRunner.run(block: index, &studentStates)
            }
            results.append(BlockResult(block: index, before: before, after: min(before, after), parameters: parameters.reduce(0) { $0 + $1.count }))
        }
        return results
    }

    /// The mean squared error of the block's outputs against the targets over every window.
    static func error(_ model: TrainingModel, _ index: Int, _ inputs: [Activations], _ targets: [Activations], length: Int) -> Double {
        var total = 0.0
        var count = 0
        let chunk = 8
        var first = 0
        while first < inputs.count {
            let last = min(inputs.count, first + chunk)
            let (output, _) = model.block(index, concatenate(Array(inputs[first ..< last])), length: length, keep: false)
            let target = concatenate(Array(targets[first ..< last]))
            for i in 0 ..< output.data.count {
                let d = Double(output.data[i] - target.data[i])
                total += d * d
            }
            count += output.data.count
            first = last
        }
        return count == 0 ? 0 : total / Double(count)
    }

    static func concatenate(_ states: [Activations]) -> Activations {
        guard let first = states.first else { return Activations(rows: 0, cols: 0) }
        var data: [Float] = []
        data.reserveCapacity(states.count * first.data.count)
        for state in states { data += state.data }
        return Activations(rows: states.reduce(0) { $0 + $1.rows }, cols: first.cols, data: data)
    }

    /// mean((y − t)²) and its gradient 2(y − t)/n.
    static func meanSquaredError(_ output: Activations, _ target: Activations) -> (Double, Activations) {
        var gradient = Activations(rows: output.rows, cols: output.cols)
        let n = Float(output.data.count)
        var total = 0.0
        for i in 0 ..< output.data.count {
            let d = output.data[i] - target.data[i]
            total += Double(d * d)
            gradient.data[i] = 2 * d / n
        }
        return (total / Double(n), gradient)
    }
}
