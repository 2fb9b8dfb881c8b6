import Synchronization

/// Byte-pair encoding: a word starts as one symbol per scalar and adjacent symbols are merged,
/// lowest merge rank first (leftmost on ties), until no listed merge applies.
struct BPEModel: Sendable {
    var vocabulary: TokenVocabulary
    /// The merges in rank order, as token texts.
    var merges: [(String, String)]
    var unknownToken: String?
    var fuseUnknown: Bool
    /// A word that is a whole token is taken as it is, without merging (llama-3).
    var ignoreMerges: Bool
    private var mergeTable: [UInt64: Merge] = [:]
    private var scalarIDs: [UInt32: Int32] = [:]
    private let cache = WordCache()

    /// A merge's rank (lower merges first) and the id of the token it makes.
    struct Merge { var rank: Int32; var id: Int32 }

    /// Why merges cannot be built: a part or the result of a merge is not in the vocabulary.
    enum BuildError: Error { case unknownMergePart(String) }

    init(vocabulary: TokenVocabulary, merges: [(String, String)], unknownToken: String?, fuseUnknown: Bool, ignoreMerges: Bool) throws(BuildError) {
        self.vocabulary = vocabulary
        self.merges = merges
        self.unknownToken = unknownToken
        self.fuseUnknown = fuseUnknown
        self.ignoreMerges = ignoreMerges
        mergeTable.reserveCapacity(merges.count)
        for (rank, (left, right)) in merges.enumerated() {
            guard let leftID = vocabulary[left] else { throw .unknownMergePart(left) }
            guard let rightID = vocabulary[right] else { throw .unknownMergePart(right) }
            guard let mergedID = vocabulary[left + right] else { throw .unknownMergePart(left + right) }
            let key = UInt64(leftID) << 32 | UInt64(rightID)
            if mergeTable[key] == nil { mergeTable[key] = Merge(rank: Int32(rank), id: Int32(mergedID)) }
        }
        for (text, id) in vocabulary.ordered {
            let scalars = text.unicodeScalars
            if scalars.count == 1 { scalarIDs[scalars.first!.value] = Int32(id) }
        }
    }

    var unknownID: Int? { unknownToken.flatMap { vocabulary[$0] } }

    /// The ids of one word.
    func tokenize(_ word: [Unicode.Scalar], into output: inout [Int]) {
        let key = TokenText(word)
        if let cached = cache.lookup(key) {
            output.append(contentsOf: cached)
            return
        }
        let ids = merge(word, key: key)
        cache.store(key, ids)
        output.append(contentsOf: ids)
    }

    private func merge(_ word: [Unicode.Scalar], key: TokenText) -> [Int] {
        if ignoreMerges, let id = vocabulary[key] { return [id] }
        var symbols: [Symbol] = []
        symbols.reserveCapacity(word.count)
        let unknown = unknownID.map(Int32.init)
        for scalar in word {
            if let id = scalarIDs[scalar.value] {
                symbols.append(Symbol(id: id))
            } else if let unknown {
                if fuseUnknown, let last = symbols.last, last.id == unknown { continue }
                symbols.append(Symbol(id: unknown))
            }
        }
        guard symbols.count > 1 else { return symbols.map { Int($0.id) } }
        for index in symbols.indices {
            symbols[index].previous = Int32(index - 1)
            symbols[index].next = index + 1 < symbols.count ? Int32(index + 1) : -1
        }
        var queue = MergeQueue()
        for index in 0..<(symbols.count - 1) {
            if let merge = mergeTable[pairKey(symbols[index].id, symbols[index + 1].id)] {
                queue.push(MergeQueue.Entry(rank: merge.rank, position: Int32(index), id: merge.id))
            }
        }
        while let entry = queue.pop() {
            let position = Int(entry.position)
            let left = symbols[position]
            guard left.alive, left.next >= 0 else { continue }
            let rightIndex = Int(left.next)
            guard let merge = mergeTable[pairKey(left.id, symbols[rightIndex].id)], merge.id == entry.id, merge.rank == entry.rank else { continue }
            let after = symbols[rightIndex].next
            symbols[position].id = entry.id
            symbols[position].next = after
            symbols[rightIndex].alive = false
            if after >= 0 { symbols[Int(after)].previous = Int32(position) }
            let before = left.previous
            if before >= 0, let merge = mergeTable[pairKey(symbols[Int(before)].id, entry.id)] {
                queue.push(MergeQueue.Entry(rank: merge.rank, position: before, id: merge.id))
            }
            if after >= 0, let merge = mergeTable[pairKey(entry.id, symbols[Int(after)].id)] {
                queue.push(MergeQueue.Entry(rank: merge.rank, position: Int32(position), id: merge.id))
            }
        }
        return symbols.compactMap { $0.alive ? Int($0.id) : nil }
    }

    private func pairKey(_ left: Int32, _ right: Int32) -> UInt64 { UInt64(UInt32(left)) << 32 | UInt64(UInt32(right)) }

    /// A symbol of a word being merged, linked to its live neighbours.
    private struct Symbol {
        var id: Int32
        var previous: Int32 = -1
        var next: Int32 = -1
        var alive = true
    }
}

/// A binary min-heap of candidate merges, ordered by rank, then position.
private struct MergeQueue {
    /// A candidate merge of the symbol at `position` with the next one into `id`.
    struct Entry {
        var rank: Int32
        var position: Int32
        var id: Int32
        func precedes(_ other: Entry) -> Bool { rank != other.rank ? rank < other.rank : position < other.position }
    }

    private var heap: [Entry] = []

    mutating func push(_ entry: Entry) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Entry? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var best = parent
                if left < heap.count, heap[left].precedes(heap[best]) { best = left }
                if right < heap.count, heap[right].precedes(heap[best]) { best = right }
                if best == parent { break }
                heap.swapAt(parent, best)
                parent = best
            }
        }
        return top
    }
}

/// The ids of words already encoded, shared by copies of a tokenizer and across threads;
/// bounded, it stops taking words once full (as tokenizers' cache does).
final class WordCache: Sendable {
    private let words = Mutex<[TokenText: [Int]]>([:])
    static let capacity = 10_000

    func lookup(_ word: TokenText) -> [Int]? { words.withLock { $0[word] } }

    func store(_ word: TokenText, _ ids: [Int]) {
        guard word.text.utf8.count < 256 else { return }
        words.withLock { words in
            if words.count < Self.capacity { words[word] = ids }
        }
    }
}
