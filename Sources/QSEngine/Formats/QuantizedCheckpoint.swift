import Foundation

extension QuantizedCheckpoint {
    /// The modules a compressed-tensors `sparsity_config` names as pruned, with its structure
    /// ("2:4", or nil for unstructured): their zeros are their masks again when loaded.
    static func prunedModules(config json: StrictJSON?) -> [String: String?] {
        guard let sparsity = json?["quantization_config"]?["sparsity_config"],
            case .array(let targets)? = sparsity["targets"]
        else { return [:] }
        var structure: String?
        if case .string(let text)? = sparsity["sparsity_structure"], text.contains(":") { structure = text }
        var out: [String: String?] = [:]
        for case .string(let module) in targets { out[module] = structure }
        return out
    }
}

/// Reads the quantized layers of a GPTQ or compressed-tensors folder (its config.json's
/// `quantization_config`) into packed weights named `<module>.weight`, so that the model loads
/// as the same packed representation qs quantizes into, with no conversion step.
enum QuantizedCheckpoint {
    /// The tensors left as stored, and the packed weights, of a folder whose config.json says
    /// how it is quantized; tensors unchanged when it says nothing (or the weights are dense).
    static func unpack(
        _ tensors: [StoredTensor], config json: StrictJSON?, configPath: String
    ) throws -> (tensors: [StoredTensor], packed: [(name: String, packed: PackedWeight)]) {
        guard let config = json?["quantization_config"] ?? json?["compression_config"],
            case .string(let method)? = config["quant_method"]
        else { return (tensors, []) }
        func fail(_ key: String, _ message: String) -> EngineError { EngineError(path: configPath, subject: "quantization_config." + key, message) }
        var byName: [String: StoredTensor] = [:]
        for tensor in tensors { byName[tensor.name] = tensor }
        var used: Set<String> = []
        var packed: [(name: String, packed: PackedWeight)] = []
        switch method {
        case "gptq":
            guard case .integer(let bits)? = config["bits"] else { throw fail("bits", "is missing (expected 2, 3, 4 or 8)") }
            var groupSize = -1
            if case .integer(let size)? = config["group_size"] { groupSize = size }
            var symmetric = true
            if case .bool(let sym)? = config["sym"] { symmetric = sym }
            var zeroOffset = 1
            if case .string(let format)? = config["checkpoint_format"] {
                switch format {
                case "gptq": zeroOffset = 1
                case "gptq_v2": zeroOffset = 0
                default: throw fail("checkpoint_format", "'\(format)' is not a GPTQ layout qs reads (gptq, gptq_v2)")
                }
            }
            for tensor in tensors where tensor.name.hasSuffix(".qweight") {
                let module = String(tensor.name.dropLast(".qweight".count))
                func part(_ suffix: String) throws -> StoredTensor {
                    guard let found = byName[module + suffix] else {
                        throw EngineError(path: tensor.file.path, subject: module + suffix, "tensor is missing (a GPTQ layer stores qweight, qzeros, scales and g_idx)")
                    }
                    return found
                }
                let weight = try QuantizedLayouts.gptqWeight(
                    qweight: tensor, qzeros: try part(".qzeros"), scales: try part(".scales"), gIdx: byName[module + ".g_idx"],
                    bits: bits, groupSize: groupSize, symmetric: symmetric, zeroOffset: zeroOffset)
                used.formUnion([".qweight", ".qzeros", ".scales", ".g_idx"].map { module + $0 })
                packed.append((module + ".weight", weight))
            }
        case "compressed-tensors":
            guard case .object(let groups)? = config["config_groups"] else { return (tensors, []) }
            var format = "dense"
            if case .string(let text)? = config["format"] { format = text }
            var schemes: [(targets: [String], scheme: QuantizedLayouts.CompressedScheme, format: String)] = []
            for group in groups {
                guard let weights = group.value["weights"], weights != .null else { continue }
                guard case .integer(let bits)? = weights["num_bits"] else { throw fail("config_groups.\(group.key).weights.num_bits", "is missing") }
                var scheme = QuantizedLayouts.CompressedScheme(bits: bits)
                if case .string(let type)? = weights["type"] { scheme.type = type }
                if case .bool(let sym)? = weights["symmetric"] { scheme.symmetric = sym }
                if case .string(let strategy)? = weights["strategy"] { scheme.strategy = strategy }
                if case .integer(let size)? = weights["group_size"] { scheme.groupSize = size }
                var targets: [String] = []
                if case .array(let items)? = group.value["targets"] { targets = items.compactMap { if case .string(let t) = $0 { t } else { nil } } }
                var groupFormat = format
                if case .string(let text)? = group.value["format"] { groupFormat = text }
                schemes.append((targets, scheme, groupFormat))
            }
            var modules: [String] = []
            for tensor in tensors {
                for suffix in [".weight_packed", ".weight_scale"] where tensor.name.hasSuffix(suffix) {
                    let module = String(tensor.name.dropLast(suffix.count))
                    if !modules.contains(module) { modules.append(module) }
                }
            }
            for module in modules {
                guard let match = schemes.first(where: { $0.targets.contains { target in Self.matches(target, module: module) } }) ?? (schemes.count == 1 ? schemes.first : nil) else {
                    throw EngineError(path: configPath, subject: module, "is quantized, but no config_groups entry targets it")
                }
                guard ["pack-quantized", "int-quantized", "float-quantized", "naive-quantized", "mixed-precision"].contains(match.format) else {
                    throw fail("format", "'\(match.format)' is not a compressed-tensors format qs reads (pack-quantized, int-quantized, float-quantized)")
                }
                let weight = try QuantizedLayouts.compressedWeight(module: module, scheme: match.scheme, format: match.format) { byName[$0] }
                // Static activation scales (FP8 W8A8) are the peer's runtime setting: qs evaluates
                // the weights, so they are read past.
                used.formUnion(["weight_packed", "weight_scale", "weight_zero_point", "weight_g_idx", "weight_shape", "weight", "input_scale", "input_zero_point"].map { module + "." + $0 })
                packed.append((module + ".weight", weight))
            }
        default:
            throw fail("quant_method", "'\(method)' is not a quantization qs reads (gptq, compressed-tensors)")
        }
        return (tensors.filter { !used.contains($0.name) }, packed)
    }

    /// compressed-tensors' target matching: `re:` a regular expression matched from the start of
    /// the module name, a class name (`Linear`: every quantized module here is one), or the name.
    static func matches(_ target: String, module: String) -> Bool {
        if target == "Linear" || target == module { return true }
        guard target.hasPrefix("re:") else { return false }
        guard let regex = try? NSRegularExpression(pattern: String(target.dropFirst(3))) else { return false }
        let range = NSRange(module.startIndex..., in: module)
        return regex.firstMatch(in: module, options: [.anchored], range: range) != nil
    }
}

extension QuantizedLayouts.CompressedScheme {
    init(bits: Int) {
        self.bits = bits
        type = "int"
        symmetric = true
        strategy = "tensor"
        groupSize = nil
        actorder = false
    }
}
