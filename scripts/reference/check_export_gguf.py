"""Check 1 of scripts/check-export: the `gguf` package reads a GGUF file qs exported and
dequantizes every tensor to qs's values.

Usage: check_export_gguf.py LABEL GGUF_FILE QS_DENSE_FOLDER SOURCE_FOLDER

- QS_DENSE_FOLDER: the same file loaded back by qs and saved dense in f32 (`load FILE`,
  `save DIR dtype=f32`): qs's values of the exported state, in Hugging Face layout (q and k rows
  not permuted).
- SOURCE_FOLDER: the fp32 Hugging Face folder the file was exported from.

For every tensor of the file: the gguf package's dequantization must equal qs's value bit for
bit (q and k rows of qs's folder permuted as convert_hf_to_gguf.py permutes them). Also
compared, and reported without deciding the check: the file's bytes against what the gguf
package's reference quantizer (gguf.quants.quantize, which rounds as llama.cpp's
quantize_row_*_ref do) makes of the source tensor in the same type (f32 tensors: the source
itself). Prints per-type counts, one PASS or FAIL line (and a NOTE line when blocks differ from
the reference quantizer); exits 1 on FAIL.
"""
import json
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader
from gguf.quants import dequantize, quantize
from safetensors.numpy import load_file

BLOCK_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
TOP_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}


def hf_name(gguf_name):
    if gguf_name in TOP_NAMES:
        return TOP_NAMES[gguf_name]
    blk, layer, kind, suffix = gguf_name.split(".")
    assert blk == "blk", gguf_name
    return f"model.layers.{layer}.{BLOCK_NAMES[kind]}.{suffix}"


def rope_permute(w, heads):
    """The row order of q and k in a GGUF file (convert_hf_to_gguf.py's LlamaModel.permute):
    within each head, the two halves of the rotary pairs are interleaved."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def load_folder(folder):
    tensors = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".safetensors"):
            tensors.update(load_file(os.path.join(folder, name)))
    return tensors


def main():
    label, path, dense_folder, source_folder = sys.argv[1:5]
    config = json.load(open(os.path.join(source_folder, "config.json")))
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads", heads)
    qs_values = load_folder(dense_folder)
    source = load_folder(source_folder)
    reader = GGUFReader(path)
    per_type = {}
    problems = []
    quantizer_notes = []
    worst = 0.0
    for t in reader.tensors:
        kind = t.tensor_type.name
        stats = per_type.setdefault(kind, [0, 0, 0])
        stats[0] += 1
        shape = tuple(int(d) for d in reversed(t.shape))  # GGUF lists ne0 (the row length) first
        values = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        name = hf_name(t.name)
        heads_here = heads if ".attn_q." in t.name else kv_heads if ".attn_k." in t.name else None

        def gguf_layout(w):
            w = w.astype(np.float32)
            return rope_permute(w, heads_here) if heads_here and w.ndim == 2 else w

        if name not in qs_values:
            problems.append(f"{t.name}: {name} missing from qs's folder")
            continue
        ours = gguf_layout(qs_values[name])
        if ours.shape != values.shape:
            problems.append(f"{t.name}: shape {values.shape} in the file, {ours.shape} in qs's folder")
            continue
        if np.array_equal(ours.view(np.uint32), values.view(np.uint32)):
            stats[1] += 1
        else:
            diff = float(np.max(np.abs(ours - values)))
            worst = max(worst, diff)
            problems.append(f"{t.name}: gguf's dequantization differs from qs's values (max |diff| {diff:.3g})")
        src = gguf_layout(source[name])
        if t.tensor_type == GGMLQuantizationType.F32:
            reference = src.reshape(-1).view(np.uint8)
        else:
            reference = quantize(src, t.tensor_type).reshape(-1)
        written = np.asarray(t.data).reshape(-1).view(np.uint8)
        if written.size == reference.size and np.array_equal(written, reference):
            stats[2] += 1
        else:
            blocks = "?"
            size, _ = {GGMLQuantizationType.Q8_0: (34, 32), GGMLQuantizationType.Q4_0: (18, 32)}.get(t.tensor_type, (0, 0))
            if size and written.size == reference.size:
                blocks = int(np.sum(np.any(written.reshape(-1, size) != reference.reshape(-1, size), axis=1)))
            quantizer_notes.append((t.name, blocks, written.size // size if size else "?"))
    missing = sorted(set(qs_values) - {hf_name(t.name) for t in reader.tensors} - {"lm_head.weight"})
    if missing:
        problems.append(f"in qs's folder, not in the file: {', '.join(missing[:5])}")
    print(f"  {label}: {len(reader.tensors)} tensors read by gguf {reader.fields['general.architecture'].contents()!s} file")
    for kind, (count, same, ref) in sorted(per_type.items()):
        print(f"    {kind:5} {count:4} tensors: dequantized == qs's values {same}/{count}, "
              f"bytes == gguf.quants.quantize(source) {ref}/{count}")
    for line in problems[:12]:
        print(f"    {line}")
    if len(problems) > 12:
        print(f"    ... {len(problems) - 12} more")
    ok = not problems
    total = len(reader.tensors)
    same = sum(s[1] for s in per_type.values())
    ref = sum(s[2] for s in per_type.values())
    print(f"{'PASS' if ok else 'FAIL'} 1 gguf reads qs's {label}: {same}/{total} tensors dequantize to qs's values bit for bit "
          f"(max |diff| {worst:.3g})")
    if quantizer_notes:
        counted = [(b, n) for _, b, n in quantizer_notes if isinstance(b, int)]
        blocks = sum(b for b, _ in counted)
        examples = ", ".join(f"{name} {b}/{n}" for name, b, n in quantizer_notes[:3])
        print(f"NOTE 1 {label}: {ref}/{total} tensors byte-identical to the gguf package's quantizer of the source; "
              f"{total - ref} differ in {blocks} of their {sum(n for _, n in counted)} blocks (e.g. {examples})")
    else:
        print(f"  {label}: {ref}/{total} tensors byte-identical to the gguf package's quantizer of the source")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
