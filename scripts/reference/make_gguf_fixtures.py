#!/usr/bin/env python3
"""Makes the GGUF fixtures under Tests/QSEngineTests/Fixtures/gguf/ (tests never run this).

    pip install gguf numpy
    python3 scripts/reference/make_gguf_fixtures.py [--smollm2 PATH_TO_SmolLM2-135M-Instruct.Q4_1.gguf]

Outputs:
- dequant.json with dequant_<type>.in / dequant_<type>.out: random but valid blocks of each
  type (finite fp16 scales) and the float32 values gguf.quants.dequantize gives for them.
- tiny_llama.gguf (written by gguf.GGUFWriter): every metadata value type, nested arrays, and
  a one-layer llama with tensors of several types; tiny_llama.json: the values the reader
  must give for it, in Hugging Face names and order (q/k rotary permutation undone).
- smollm2_samples.json (only with --smollm2): samples of real SmolLM2 tensors, dequantized
  by the gguf package and un-permuted as transformers' GGUF loader does.
"""

import argparse
import json
import os

import gguf
import numpy as np
from gguf import GGMLQuantizationType as Q

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "QSEngineTests", "Fixtures", "gguf")
rng = np.random.default_rng(20261129)

# (qs dtype name, ggml type, blocks, byte offsets of the fp16 fields in a block)
QUANT_TYPES = [
    ("q4_0", Q.Q4_0, 16, [0]),
    ("q4_1", Q.Q4_1, 16, [0, 2]),
    ("q5_0", Q.Q5_0, 16, [0]),
    ("q5_1", Q.Q5_1, 16, [0, 2]),
    ("q8_0", Q.Q8_0, 16, [0]),
    ("q2_K", Q.Q2_K, 4, [80, 82]),
    ("q3_K", Q.Q3_K, 4, [108]),
    ("q4_K", Q.Q4_K, 4, [0, 2]),
    ("q5_K", Q.Q5_K, 4, [0, 2]),
    ("q6_K", Q.Q6_K, 4, [208]),
]


def finite_halves(n):
    """fp16 bit patterns: half of them typical weight scales, half any finite pattern
    (subnormals, -0, the largest values included)."""
    typical = (rng.standard_normal(n) * 0.02).astype(np.float16).view(np.uint16)
    anything = rng.integers(0, 1 << 16, n, dtype=np.uint16)
    anything = np.where((anything & 0x7C00) == 0x7C00, anything & 0x83FF, anything).astype(np.uint16)
    chosen = np.where(rng.random(n) < 0.5, typical, anything).astype(np.uint16)
    chosen[:4] = [0x0001, 0x8000, 0x7BFF, 0x03FF][: min(4, n)]
    return chosen


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def dequant_fixtures():
    manifest = []
    for name, qtype, blocks, half_offsets in QUANT_TYPES:
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        raw = rng.integers(0, 256, (blocks, type_size), dtype=np.uint8)
        for offset in half_offsets:
            raw[:, offset : offset + 2] = finite_halves(blocks).view(np.uint8).reshape(blocks, 2)
        values = gguf.quants.dequantize(raw.reshape(-1), qtype).astype(np.float32)
        assert values.size == blocks * block_size and np.all(np.isfinite(values))
        manifest.append({"dtype": name, "count": int(values.size)})
        write(f"dequant_{name}.in", raw.tobytes())
        write(f"dequant_{name}.out", values.astype("<f4").tobytes())

    count = 512
    plain = {
        "f32": np.concatenate([rng.standard_normal(count - 4), [0.0, -0.0, 1e-45, 3.4e38]]).astype("<f4").view(np.uint8),
        "f16": finite_halves(count).astype("<u2").view(np.uint8),
        "bf16": (rng.integers(0, 1 << 16, count, dtype=np.uint16) & 0xBFFF).astype("<u2").view(np.uint8),
    }
    ggml = {"f32": Q.F32, "f16": Q.F16, "bf16": Q.BF16}
    for name, raw in plain.items():
        values = gguf.quants.dequantize(raw, ggml[name]).astype(np.float32)
        assert values.size == count
        manifest.append({"dtype": name, "count": count})
        write(f"dequant_{name}.in", raw.tobytes())
        write(f"dequant_{name}.out", values.astype("<f4").tobytes())

    with open(os.path.join(OUT, "dequant.json"), "w") as f:
        json.dump(manifest, f, indent=1)


def permute(weights, heads):
    """convert_hf_to_gguf.py LlamaModel.permute: rows (heads, 2, dim/2) -> (heads, dim/2, 2)."""
    return weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def reverse_permute(weights, heads):
    """transformers' GGUF loader (reverse_permute_weights): rows (heads, dim/2, 2) -> (heads, 2, dim/2)."""
    dim = weights.shape[0] // heads // 2
    return weights.reshape(heads, dim, 2, *weights.shape[1:]).swapaxes(2, 1).reshape(weights.shape)


def summary(values, count_samples):
    flat = values.reshape(-1).astype(np.float32)
    n = flat.size
    strided = sorted({k * n // count_samples for k in range(count_samples)})
    weights = (np.arange(n, dtype=np.float64) % 251) + 1
    return {
        "first": [float(v) for v in flat[:count_samples]],
        "strided_indices": strided,
        "strided": [float(flat[i]) for i in strided],
        "sum": float(np.sum(flat.astype(np.float64))),
        "weighted_sum": float(np.sum(flat.astype(np.float64) * weights)),
    }


def hf_values(reader_tensor, heads, kv_heads):
    values = gguf.quants.dequantize(reader_tensor.data, reader_tensor.tensor_type).astype(np.float32)
    name = reader_tensor.name
    if ".attn_q." in name:
        values = reverse_permute(values, heads)
    elif ".attn_k." in name:
        values = reverse_permute(values, kv_heads)
    return values


def tiny_gguf():
    path = os.path.join(OUT, "tiny_llama.gguf")
    vocab, hidden, ffn, heads, kv_heads = 64, 32, 256, 4, 2
    w = gguf.GGUFWriter(path, "llama")
    w.add_custom_alignment(64)
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.1)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "h\u00e9llo w\u00f6rld \u2713")
    w.add_uint64("test.u64", 2**63 + 5)
    w.add_int64("test.i64", -(2**62))
    w.add_float64("test.f64", 3.141592653589793)
    w.add_array("test.array.strings", ["a", "bc", ""])
    w.add_array("test.array.i32", [1, -2, 3])
    w.add_key_value("test.array.u64", [1, 2**64 - 1], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.UINT64)
    w.add_key_value("test.array.u8", [0, 255], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.UINT8)
    w.add_array("test.array.f32", [0.5, -1.25])
    w.add_array("test.array.bool", [True, False])
    w.add_array("test.array.nested", [[1, 2], [3]])
    w.add_array("test.array.nested_strings", [["x"], ["y", "z"]])
    w.add_context_length(128)
    w.add_embedding_length(hidden)
    w.add_block_count(1)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_tokenizer_model("gpt2")
    w.add_token_list([f"t{i}" for i in range(vocab)])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)

    def normal(*shape):
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    def quantized(name, values, qtype):
        w.add_tensor(name, gguf.quants.quantize(values, qtype), raw_dtype=qtype)

    def raw_blocks(name, rows, cols, qtype, half_offsets):
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        blocks = rows * cols // block_size
        raw = rng.integers(0, 256, (blocks, type_size), dtype=np.uint8)
        for offset in half_offsets:
            raw[:, offset : offset + 2] = (rng.standard_normal((blocks, 1)) * 0.002).astype(np.float16).view(np.uint8)
        w.add_tensor(name, raw.reshape(rows, cols // block_size * type_size), raw_dtype=qtype)

    quantized("token_embd.weight", normal(vocab, hidden), Q.Q8_0)
    w.add_tensor("blk.0.attn_norm.weight", 1 + normal(hidden))
    w.add_tensor("blk.0.attn_q.weight", permute(normal(hidden, hidden), heads).astype(np.float16))
    quantized("blk.0.attn_k.weight", permute(normal(kv_heads * 8, hidden), kv_heads), Q.Q4_0)
    quantized("blk.0.attn_v.weight", normal(kv_heads * 8, hidden), Q.BF16)
    quantized("blk.0.attn_output.weight", normal(hidden, hidden), Q.Q5_1)
    w.add_tensor("blk.0.ffn_norm.weight", 1 + normal(hidden))
    quantized("blk.0.ffn_gate.weight", normal(ffn, hidden), Q.Q4_1)
    quantized("blk.0.ffn_up.weight", normal(ffn, hidden), Q.Q5_0)
    raw_blocks("blk.0.ffn_down.weight", hidden, ffn, Q.Q4_K, [0, 2])
    w.add_tensor("output_norm.weight", 1 + normal(hidden))
    raw_blocks("output.weight", vocab, 256, Q.Q6_K, [208])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    reader = gguf.GGUFReader(path)
    tensors = []
    for t in reader.tensors:
        values = hf_values(t, heads, kv_heads)
        tensors.append({"gguf_name": t.name, "ggml_type": t.tensor_type.name, "hf_shape": list(values.shape), **summary(values, 16)})
    with open(os.path.join(OUT, "tiny_llama.json"), "w") as f:
        json.dump({"tensors": tensors}, f, indent=1)


SMOLLM2_TENSORS = {
    "token_embd.weight": "model.embed_tokens.weight",
    "blk.0.attn_q.weight": "model.layers.0.self_attn.q_proj.weight",
    "blk.0.attn_k.weight": "model.layers.0.self_attn.k_proj.weight",
    "blk.0.attn_norm.weight": "model.layers.0.input_layernorm.weight",
    "blk.17.attn_q.weight": "model.layers.17.self_attn.q_proj.weight",
    "blk.29.attn_k.weight": "model.layers.29.self_attn.k_proj.weight",
    "blk.5.ffn_down.weight": "model.layers.5.mlp.down_proj.weight",
    "output_norm.weight": "model.norm.weight",
}


def smollm2_samples(path):
    reader = gguf.GGUFReader(path)
    field = reader.fields
    heads = int(field["llama.attention.head_count"].contents())
    kv_heads = int(field["llama.attention.head_count_kv"].contents())
    samples = []
    for t in reader.tensors:
        if t.name not in SMOLLM2_TENSORS:
            continue
        values = hf_values(t, heads, kv_heads)
        samples.append({
            "hf_name": SMOLLM2_TENSORS[t.name], "gguf_name": t.name, "ggml_type": t.tensor_type.name,
            "hf_shape": list(values.shape), **summary(values, 64),
        })
    with open(os.path.join(OUT, "smollm2_samples.json"), "w") as f:
        json.dump({"file": os.path.basename(path), "file_size": os.path.getsize(path), "tensors": samples}, f, indent=1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--smollm2", help="path of SmolLM2-135M-Instruct.Q4_1.gguf")
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    dequant_fixtures()
    tiny_gguf()
    if args.smollm2:
        smollm2_samples(args.smollm2)


if __name__ == "__main__":
    main()
