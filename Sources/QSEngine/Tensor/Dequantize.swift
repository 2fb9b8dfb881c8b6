import Dispatch
import Foundation

/// Conversion of stored tensors (plain or GGUF block-quantized) to fp32, bit for bit as the
/// `gguf` Python package's `gguf.quants.dequantize` computes it: every value is one IEEE
/// single-precision multiply (and add or subtract, never fused) of the same operands.
package enum Dequantize {
    /// Elements a parallel chunk gets at least; below this, threads cost more than they save.
    static let minimumChunkElements = 1 << 16
    static let processorCount = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// The tensor's values as fp32, in the order of `shape`, with the rotary row permutation
    /// of GGUF llama q/k projections undone when `rotaryPermutationHeads` is set.
    package static func floats(_ tensor: StoredTensor) throws -> [Float] {
        let layout = try RowLayout(tensor)
        if layout.count == 0 { return [] }
        return try [Float](unsafeUninitializedCapacity: layout.count) { buffer, initialized in
            try rows(tensor, 0 ..< layout.rows, layout: layout, into: buffer.baseAddress!)
            initialized = layout.count
        }
    }

    /// Writes rows `range` of a stored tensor (its first dimension; for a 1-D tensor, elements)
    /// as fp32 into `destination`, `range.count × rowLength` values, undoing the rotary row
    /// permutation when there is one. Throws when the rows are not whole blocks of the dtype.
    package static func rows(_ tensor: StoredTensor, _ range: Range<Int>, into destination: UnsafeMutablePointer<Float>) throws {
        try rows(tensor, range, layout: try RowLayout(tensor), into: destination)
    }

    /// How a stored tensor splits into rows, checked against its bytes and the file.
    struct RowLayout {
        var count: Int
        var rows: Int
        var rowLength: Int

        init(_ tensor: StoredTensor) throws {
            let dtype = tensor.dtype
            func fail(_ message: String) -> EngineError {
                EngineError(path: tensor.file.path, subject: tensor.name, message)
            }
            guard let count = elementCount(tensor.shape) else {
                throw fail("shape \(tensor.shape) has no valid element count")
            }
            guard let expectedBytes = dtype.byteCount(elements: count) else {
                throw fail("\(count) elements are not a whole number of \(dtype.rawValue) blocks of \(dtype.blockSize)")
            }
            guard tensor.byteCount == expectedBytes else {
                throw fail("holds \(tensor.byteCount) bytes, but \(tensor.shape) \(dtype.rawValue) needs \(expectedBytes)")
            }
            guard tensor.file.slice(offset: tensor.offset, length: expectedBytes) != nil else {
                throw fail("data of \(expectedBytes) bytes at offset \(tensor.offset) lies outside the file (\(tensor.file.count) bytes)")
            }
            self.count = count
            rows = count == 0 ? 0 : max(1, tensor.shape.first ?? 1)
            rowLength = rows == 0 ? 0 : count / rows
            if let heads = tensor.rotaryPermutationHeads, !splitsIntoRotaryPairs(rows: rows, heads: heads) {
                throw fail("\(rows) rows do not split into \(heads) heads of rotary pairs")
            }
        }

        /// Whether a row is a whole number of blocks, so rows convert one range at a time.
        func rowsAreWholeBlocks(_ dtype: DType) -> Bool { rowLength % dtype.blockSize == 0 }
    }

    private static func rows(
        _ tensor: StoredTensor, _ range: Range<Int>, layout: RowLayout, into destination: UnsafeMutablePointer<Float>
    ) throws {
        precondition(range.lowerBound >= 0 && range.upperBound <= layout.rows, "Dequantize.rows: \(range) outside 0..<\(layout.rows)")
        guard !range.isEmpty else { return }
        let dtype = tensor.dtype
        try tensor.withBytes { source in
            if range == 0 ..< layout.rows && tensor.rotaryPermutationHeads == nil {
                dequantize(dtype, from: source, count: layout.count, into: destination)
                return
            }
            guard layout.rowsAreWholeBlocks(dtype) else {
                throw EngineError(
                    path: tensor.file.path, subject: tensor.name,
                    "rows of \(layout.rowLength) elements are not whole \(dtype.rawValue) blocks of \(dtype.blockSize)")
            }
            let rowBlocks = layout.rowLength / dtype.blockSize
            let rowBytes = rowBlocks * dtype.bytesPerBlock
            let heads = tensor.rotaryPermutationHeads
            let headRows = heads.map { layout.rows / $0 } ?? 1
            let halfRows = headRows / 2
            let pointers = PointerPair(source: source.baseAddress!, destination: destination)
            let rowsPerChunk = max(1, minimumChunkElements / max(layout.rowLength, 1))
            parallelRanges(total: range.count, minimumPerChunk: rowsPerChunk) { chunk in
                for offset in chunk {
                    let row = range.lowerBound + offset
                    var storedRow = row
                    if heads != nil {
                        // Within each head of `headRows` rows, Hugging Face row `half * headRows/2 + i`
                        // is GGUF row `2 * i + half` (convert_hf_to_gguf.py reshapes to (heads, 2,
                        // dim/2, ...) and swaps axes 1 and 2).
                        let head = row / headRows
                        let within = row % headRows
                        storedRow = head * headRows + 2 * (within % halfRows) + within / halfRows
                    }
                    dequantizeBlocks(
                        dtype, from: pointers.source + storedRow * rowBytes, blocks: rowBlocks,
                        into: pointers.destination + offset * layout.rowLength)
                }
            }
        }
    }

    /// Whether `rows` split into `heads` heads of an even number of rows each (without
    /// overflowing on a head count read from a file).
    package static func splitsIntoRotaryPairs(rows: Int, heads: Int) -> Bool {
        heads > 0 && rows > 0 && rows % 2 == 0 && heads <= rows / 2 && (rows / 2) % heads == 0
    }

    /// Converts `count` elements of `dtype` at the start of `source` to fp32 in `destination`,
    /// in parallel over block ranges. `count` must be whole blocks and `source` must hold them
    /// (a programmer error otherwise: callers check sizes against the file first).
    package static func dequantize(
        _ dtype: DType, from source: UnsafeRawBufferPointer, count: Int, into destination: UnsafeMutablePointer<Float>
    ) {
        guard count > 0 else { return }
        let byteCount = dtype.byteCount(elements: count)
        precondition(byteCount != nil && source.count >= byteCount!, "dequantize: source too small for \(count) \(dtype)")
        let pointers = PointerPair(source: source.baseAddress!, destination: destination)
        let blocks = count / dtype.blockSize
        let blocksPerChunk = max(1, minimumChunkElements / dtype.blockSize)
        parallelRanges(total: blocks, minimumPerChunk: blocksPerChunk) { range in
            dequantizeBlocks(
                dtype, from: pointers.source + range.lowerBound * dtype.bytesPerBlock, blocks: range.count,
                into: pointers.destination + range.lowerBound * dtype.blockSize)
        }
    }

    /// Runs `body` over a split of `0 ..< total` into ranges of at least `minimumPerChunk`,
    /// concurrently when there is more than one.
    static func parallelRanges(total: Int, minimumPerChunk: Int, _ body: @Sendable (Range<Int>) -> Void) {
        let processors = Self.processorCount
        let chunks = min(total / max(minimumPerChunk, 1), processors * 4)
        guard chunks > 1 else {
            body(0 ..< total)
            return
        }
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            body(total * chunk / chunks ..< total * (chunk + 1) / chunks)
        }
    }
}

/// The source and destination of a conversion, handed to worker threads that write disjoint
/// ranges of the destination.
struct PointerPair: @unchecked Sendable {
    let source: UnsafeRawPointer
    let destination: UnsafeMutablePointer<Float>
}
