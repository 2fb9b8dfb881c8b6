import QSEngine
import QSLanguage

/// Renders engine reports about checkpoints as text for people.
package enum InspectFormatting {
    /// The summary `qs inspect` and `info` print: format, architecture, configuration, counts.
    package static func summary(_ summary: CheckpointSummary, tensors: [StoredTensor]? = nil) -> String {
        var lines: [String] = []
        lines.append("path:         \(summary.path)")
        lines.append("format:       \(summary.format.rawValue)\(summary.formatVersion.map { " v\($0)" } ?? "")")
        if let name = summary.name { lines.append("name:         \(name)") }
        if let config = summary.config {
            lines.append("architecture: \(config.architecture.rawValue)")
            lines.append("config:       \(configLine(config))")
        } else {
            lines.append("architecture: unknown (no config.json)")
        }
        lines.append("tensors:      \(summary.tensorCount)")
        lines.append("parameters:   \(grouped(summary.parameterCount)) (\(humanCount(summary.parameterCount)))")
        lines.append("size:         \(humanBytes(summary.totalBytes)), \(bitsPerWeight(bytes: summary.totalBytes, elements: summary.parameterCount)) bits/weight")
        lines.append("by dtype:")
        let width = summary.byDType.map { $0.dtype.rawValue.count }.max() ?? 4
        for row in summary.byDType {
            let name = row.dtype.rawValue.padding(toLength: width, withPad: " ", startingAt: 0)
            lines.append("  \(name)  \(pad(String(row.tensors), 4)) tensors  \(pad(humanCount(row.elements), 7)) params  \(pad(humanBytes(row.bytes), 10))")
        }
        if let tensors {
            lines.append("")
            let nameWidth = tensors.map(\.name.count).max() ?? 0
            for tensor in tensors {
                let name = tensor.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                let dtype = tensor.dtype.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0)
                let shape = "[" + tensor.shape.map(String.init).joined(separator: ", ") + "]"
                lines.append("\(name)  \(dtype)  \(shape.padding(toLength: 14, withPad: " ", startingAt: 0))  \(grouped(tensor.byteCount)) B")
            }
        }
        return lines.joined(separator: "\n")
    }

    /// One line with the configuration numbers that matter.
    package static func configLine(_ c: ModelConfig) -> String {
        var parts = [
            "hidden \(c.hiddenSize)", "layers \(c.numHiddenLayers)",
            c.numKeyValueHeads == c.numAttentionHeads
                ? "heads \(c.numAttentionHeads)" : "heads \(c.numAttentionHeads) (kv \(c.numKeyValueHeads))",
            "head_dim \(c.headDim)", "ffn \(c.intermediateSize)", "vocab \(c.vocabSize)",
            "context \(c.maxPositionEmbeddings)",
        ]
        if c.architecture.isCausal && c.architecture != .gpt2 { parts.append("rope_theta \(formatNumber(c.ropeTheta))") }
        parts.append("norm_eps \(formatNumber(c.normEps))")
        if c.tieWordEmbeddings && c.architecture.isCausal { parts.append("tied embeddings") }
        if c.attentionBias { parts.append("qkv bias") }
        return parts.joined(separator: ", ")
    }

    /// 134515008 → "134,515,008".
    package static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return (value < 0 ? "-" : "") + out
    }

    /// 134515008 → "134.5M".
    package static func humanCount(_ value: Int) -> String {
        let v = Double(value)
        if v >= 1e9 { return fixed1(v / 1e9) + "B" }
        if v >= 1e6 { return fixed1(v / 1e6) + "M" }
        if v >= 1e3 { return fixed1(v / 1e3) + "K" }
        return String(value)
    }

    /// 98362432 → "93.8 MiB".
    package static func humanBytes(_ value: Int) -> String {
        let v = Double(value)
        if v >= Double(1 << 30) { return fixed1(v / Double(1 << 30)) + " GiB" }
        if v >= Double(1 << 20) { return fixed1(v / Double(1 << 20)) + " MiB" }
        if v >= Double(1 << 10) { return fixed1(v / Double(1 << 10)) + " KiB" }
        return "\(value) B"
    }

    package static func bitsPerWeight(bytes: Int, elements: Int) -> String {
        elements == 0 ? "0" : fixed2(Double(bytes) * 8 / Double(elements))
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }
}

/// A number with one digit after the point, rounded.
package func fixed1(_ value: Double) -> String {
    let scaled = Int((value * 10).rounded())
    return "\(scaled < 0 ? "-" : "")\(abs(scaled) / 10).\(abs(scaled) % 10)"
}

/// A number with two digits after the point, rounded.
package func fixed2(_ value: Double) -> String {
    let scaled = Int((value * 100).rounded())
    let fraction = abs(scaled) % 100
    return "\(scaled < 0 ? "-" : "")\(abs(scaled) / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}
