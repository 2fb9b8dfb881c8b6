import Foundation

/// How close a compressed encoder's sentence embeddings stay to the original's.
package struct EmbeddingFidelity: Sendable {
    package var text: String
    package var sentences: Int
    package var meanCosine: Double
    package var worstCosine: Double
}

/// Nearest-centroid topic accuracy of sentence embeddings.
package struct ClassificationResult: Sendable {
    package var dataset: String
    package var train: Int
    package var test: Int
    package var accuracy: Double
    /// The original model's accuracy on the same split, when a reference was given.
    package var baseAccuracy: Double?
}

/// Evaluations of encoders (BERT) through their mean-pooled sentence embeddings.
package enum EncoderEvaluation {
    /// Tokens kept per text: all-MiniLM-L6-v2's sentence-transformers max_seq_length.
    package static let maxTokens = 256

    /// Cosine similarity of each sentence's embedding under `model` and under `reference`.
    /// Both run block by block over all sentences. `progress` gets (models done, 2).
    package static func fidelity(
        model: BERTModel, reference: BERTModel, sentences: [[Int]], text: String,
        progress: ((Int, Int) -> Void)? = nil, isCancelled: () -> Bool = { false }
    ) throws -> EmbeddingFidelity {
        guard !sentences.isEmpty else { throw EngineError(subject: text, "has no sentences to embed") }
        let now = try model.sentenceEmbeddings(sentences, isCancelled: isCancelled)
        progress?(1, 2)
        let before = try reference.sentenceEmbeddings(sentences, isCancelled: isCancelled)
        progress?(2, 2)
        let cosines = zip(now, before).map { cosine($0, $1) }
        // A NaN cosine (an embedding that is not finite) makes both figures NaN, never a number.
        let worst = cosines.contains { $0.isNaN } ? .nan : cosines.min() ?? .nan
        return EmbeddingFidelity(
            text: text, sentences: sentences.count, meanCosine: cosines.reduce(0, +) / Double(cosines.count),
            worstCosine: worst)
    }

    /// The first `limit` non-empty lines of a text (trimmed), as the sentences of `eval embed`.
    package static func sentences(of text: String, limit: Int) -> [String] {
        var out: [String] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.count >= 8 { out.append(trimmed) }
            if out.count == limit { break }
        }
        return out
    }

    /// One labelled document of a classification split.
    package struct Document: Sendable {
        package var label: Int
        package var ids: [Int]

        package init(label: Int, ids: [Int]) {
            self.label = label
            self.ids = ids
        }
    }

    /// The fixed split of a topic-folder dataset (bbc-news: `<topic>/*.txt`): topics in byte
    /// order of their folder names; in each, files in byte order of their names; the first
    /// `trainPerTopic` files train, the next `testPerTopic` test.
    package static func split(folder: String, trainPerTopic: Int, testPerTopic: Int) throws
        -> (topics: [String], train: [(Int, String)], test: [(Int, String)])
    {
        let byteOrder: (String, String) -> Bool = { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        let topics = try FileManager.default.contentsOfDirectory(atPath: folder).filter {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent($0), isDirectory: &isDirectory) && isDirectory.boolValue
        }.sorted(by: byteOrder)
        guard topics.count >= 2 else { throw EngineError(path: folder, "needs at least two topic folders; found \(topics.count)") }
        var train: [(Int, String)] = []
        var test: [(Int, String)] = []
        for (label, topic) in topics.enumerated() {
            let topicFolder = (folder as NSString).appendingPathComponent(topic)
            let files = try TextCorpus.files(in: topicFolder, glob: "*.txt")
            guard files.count >= trainPerTopic + testPerTopic else {
                throw EngineError(path: topicFolder, "has \(files.count) files; the split needs \(trainPerTopic + testPerTopic)")
            }
            for path in files.prefix(trainPerTopic) { train.append((label, path)) }
            for path in files.dropFirst(trainPerTopic).prefix(testPerTopic) { test.append((label, path)) }
        }
        return (topics, train, test)
    }

    /// Nearest-centroid accuracy: class centroids of the normalised training embeddings; each
    /// test document takes the class of the most cosine-similar centroid. The embeddings are
    /// computed block by block over all documents.
    package static func nearestCentroidAccuracy(
        model: BERTModel, train: [Document], test: [Document], classes: Int,
        isCancelled: () -> Bool = { false }
    ) throws -> Double {
        let raw = try model.sentenceEmbeddings((train + test).map(\.ids), isCancelled: isCancelled)
        // Embeddings that are not finite have no nearest centroid: the accuracy is NaN.
        if raw.contains(where: { $0.contains { !$0.isFinite } }) { return .nan }
        let embeddings = raw.map(normalized)
        var centroids: [[Double]] = Array(repeating: [], count: classes)
        for (doc, e) in zip(train, embeddings) {
            if centroids[doc.label].isEmpty { centroids[doc.label] = [Double](repeating: 0, count: e.count) }
            for i in e.indices { centroids[doc.label][i] += e[i] }
        }
        var correct = 0
        for (doc, e) in zip(test, embeddings.dropFirst(train.count)) {
            var best = 0
            var bestScore = -Double.infinity
            for (label, centroid) in centroids.enumerated() where !centroid.isEmpty {
                let score = cosine(e, centroid)
                if score > bestScore { bestScore = score; best = label }
            }
            if best == doc.label { correct += 1 }
        }
        return Double(correct) / Double(max(test.count, 1))
    }

    static func normalized(_ v: [Float]) -> [Double] {
        let d = v.map(Double.init)
        let norm = d.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 ? d.map { $0 / norm } : d
    }

    package static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        cosine(a.map(Double.init), b.map(Double.init))
    }

    static func cosine(_ a: [Double], _ b: [Double]) -> Double {
        var dot = 0.0
        var na = 0.0
        var nb = 0.0
        for i in a.indices {
            dot += a[i] * b[i]
            na += a[i] * a[i]
            nb += b[i] * b[i]
        }
        // Undefined (NaN) for a zero or non-finite vector, rather than a number that looks measured.
        guard na > 0, nb > 0, na.isFinite, nb.isFinite else { return .nan }
        return dot / (na.squareRoot() * nb.squareRoot())
    }
}
