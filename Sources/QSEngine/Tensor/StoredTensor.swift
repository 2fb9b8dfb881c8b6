/// A tensor as a checkpoint stores it: its bytes stay in the memory-mapped file, in the stored
/// dtype, until `floats()` converts them for a kernel.
package struct StoredTensor: Sendable {
    /// The checkpoint name (for a GGUF, the Hugging Face name it maps to).
    package var name: String
    /// The name inside the file it came from (differs from `name` for GGUF tensors).
    package var storedName: String
    package var dtype: DType
    /// Outermost dimension first, as PyTorch and safetensors order it ([out, in] for a linear weight).
    package var shape: [Int]
    package var file: MappedFile
    /// Byte offset of the data in `file`.
    package var offset: Int
    package var byteCount: Int
    /// Set for llama-family q/k projections read from a GGUF: their rows are stored permuted
    /// for rotary embedding, in groups of this many heads; `floats()` undoes the permutation.
    package var rotaryPermutationHeads: Int?

    package init(
        name: String, storedName: String? = nil, dtype: DType, shape: [Int], file: MappedFile,
        offset: Int, byteCount: Int, rotaryPermutationHeads: Int? = nil
    ) {
        self.name = name
        self.storedName = storedName ?? name
        self.dtype = dtype
        self.shape = shape
        self.file = file
        self.offset = offset
        self.byteCount = byteCount
        self.rotaryPermutationHeads = rotaryPermutationHeads
    }

    /// The number of elements.
    package var count: Int { shape.reduce(1, *) }

    /// The stored bytes (validated to lie inside the file when the tensor was read).
    package var bytes: UnsafeRawBufferPointer {
        file.slice(offset: offset, length: byteCount) ?? UnsafeRawBufferPointer(start: nil, count: 0)
    }

    /// Runs `body` on the stored bytes while keeping the mapping alive. Prefer it to `bytes`
    /// where nothing else holds the tensor: an optimised build may release the tensor, and
    /// unmap its file, right after `bytes` is read.
    package func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(file) { try body(bytes) }
    }
}
