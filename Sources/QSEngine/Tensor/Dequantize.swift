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
        if count == 0 { return [] }
        let source = tensor.bytes
        guard source.count == expectedBytes else {
            throw fail("data of \(expectedBytes) bytes at offset \(tensor.offset) lies outside the file (\(tensor.file.count) bytes)")
        }
        guard let heads = tensor.rotaryPermutationHeads else {
            return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                if let destination = buffer.baseAddress { dequantize(dtype, from: source, count: count, into: destination) }
                initialized = count
            }
        }
        let rows = tensor.shape.first ?? 1
        guard splitsIntoRotaryPairs(rows: rows, heads: heads) else {
            throw fail("\(rows) rows do not split into \(heads) heads of rotary pairs")
        }
        let rowLength = count / rows
        guard rowLength % dtype.blockSize == 0 else {
            throw fail("rows of \(rowLength) elements are not whole \(dtype.rawValue) blocks of \(dtype.blockSize)")
        }
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let destination = buffer.baseAddress {
                unpermuteRotaryRows(
                    dtype, from: source, rows: rows, rowLength: rowLength, heads: heads, into: destination)
            }
            initialized = count
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

    /// Writes Hugging Face row r of a permuted q/k projection from GGUF row p(r): within each
    /// head of `dim` rows, HF row `half * dim/2 + i` is GGUF row `2 * i + half`
    /// (convert_hf_to_gguf.py reshapes to (heads, 2, dim/2, ...) and swaps axes 1 and 2).
    static func unpermuteRotaryRows(
        _ dtype: DType, from source: UnsafeRawBufferPointer, rows: Int, rowLength: Int, heads: Int,
        into destination: UnsafeMutablePointer<Float>
    ) {
        guard let base = source.baseAddress else { return }
        let pointers = PointerPair(source: base, destination: destination)
        let headRows = rows / heads
        let halfRows = headRows / 2
        let rowBlocks = rowLength / dtype.blockSize
        let rowBytes = rowBlocks * dtype.bytesPerBlock
        let rowsPerChunk = max(1, minimumChunkElements / max(rowLength, 1))
        parallelRanges(total: rows, minimumPerChunk: rowsPerChunk) { range in
            for row in range {
                let head = row / headRows
                let within = row % headRows
                let half = within / halfRows
                let pair = within % halfRows
                let storedRow = head * headRows + 2 * pair + half
                dequantizeBlocks(
                    dtype, from: pointers.source + storedRow * rowBytes, blocks: rowBlocks,
                    into: pointers.destination + row * rowLength)
            }
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
