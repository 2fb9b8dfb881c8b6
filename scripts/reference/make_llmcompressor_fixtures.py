#!/usr/bin/env python3
"""Checkpoints that llm-compressor writes (compressed-tensors folders), with the weights the peer
dequantizes them to, as fixtures for qs's compressed-tensors reader and writer.

Base model: the tiny random llama of Tests/QSEngineTests/Fixtures/arch/llama. Calibration: 16
samples of 32 random token ids (seeded), handed to oneshot as a pre-tokenized dataset. The
model has no tokenizer and oneshot insists on a processor when given a dataset, so an
in-memory word-level tokenizer over the 96 ids is passed; it is never used to tokenize.

Writes, for each case, Tests/QSEngineTests/Fixtures/export/llmc/<case>/:
- config.json, model.safetensors, recipe.yaml: what model.save_pretrained(dir,
  save_compressed=True) wrote after oneshot (generation_config.json dropped);
- expected.safetensors: every nn.Linear weight (lm_head included, unquantized) as float32,
  by HF name, as the peer dequantizes the saved folder: transformers'
  AutoModelForCausalLM.from_pretrained(folder, quantization_config=
  CompressedTensorsConfig(dequantize=True)), which runs compressed-tensors' decompress_model.
  The script checks that these equal the in-memory model's quantized weights right after
  oneshot (compressed-tensors' forward_quantize of each weight, which is what the model computes
  with), and that a plain numpy decoding of the saved tensors (the layout the README describes)
  gives them too.
and Tests/QSEngineTests/Fixtures/export/llmc/README.md: versions, one linear's tensors per case,
each quantization_config, and the cases skipped with their reasons.

Run once; tests never run it. Needs llm-compressor (torch, transformers, compressed-tensors,
datasets, safetensors). Run with any python3: when `import llmcompressor` fails it creates
.build/venv-llmc (CPU torch) and runs itself there:
  python3 -m venv .build/venv-llmc
  .build/venv-llmc/bin/pip install --index-url https://download.pytorch.org/whl/cpu torch  # or a local CPU wheel
  .build/venv-llmc/bin/pip install llmcompressor==0.14.0.1
  .build/venv-llmc/bin/python scripts/reference/make_llmcompressor_fixtures.py
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
VENV = os.path.join(ROOT, ".build", "venv-llmc")

try:
    import llmcompressor  # noqa: F401
except ImportError:
    python = os.path.join(VENV, "bin", "python")
    if os.environ.get("QS_LLMC_REEXEC"):
        raise
    if subprocess.run([python, "-c", "import llmcompressor"], capture_output=True).returncode != 0:
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        pip = [os.path.join(VENV, "bin", "pip"), "install", "-q"]
        wheels = sorted(w for w in (os.listdir("/opt/wheels") if os.path.isdir("/opt/wheels") else [])
                        if w.startswith("torch-") and "+cpu" in w)
        if wheels:
            subprocess.run(pip + [os.path.join("/opt/wheels", wheels[0])], check=True)
        elif subprocess.run(pip + ["--index-url", "https://download.pytorch.org/whl/cpu", "torch"]).returncode != 0:
            subprocess.run(pip + ["torch"], check=True)  # the CPU index unreachable: the default build
        subprocess.run(pip + ["llmcompressor==0.14.0.1"], check=True)
    os.environ["QS_LLMC_REEXEC"] = "1"
    os.execv(python, [python, os.path.abspath(__file__)] + sys.argv[1:])

import importlib.metadata  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from datasets import Dataset  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from tokenizers import Tokenizer, models  # noqa: E402
from transformers import CompressedTensorsConfig  # noqa: E402

from compressed_tensors.quantization.lifecycle.forward import forward_quantize  # noqa: E402
from llmcompressor import oneshot  # noqa: E402
from llmcompressor.modifiers.gptq import GPTQModifier  # noqa: E402
from llmcompressor.modifiers.pruning import SparseGPTModifier  # noqa: E402
from llmcompressor.modifiers.quantization import QuantizationModifier  # noqa: E402

BASE = os.path.join(ROOT, "Tests", "QSEngineTests", "Fixtures", "arch", "llama")
OUT = os.path.join(ROOT, "Tests", "QSEngineTests", "Fixtures", "export", "llmc")
SAMPLES, SEQLEN, VOCAB = 16, 32, 96
KEEP = ("config.json", "model.safetensors", "recipe.yaml")
SHOWN = ("model.layers.0.self_attn.q_proj", "model.layers.0.mlp.down_proj")


def int_weights(bits, strategy, symmetric=True, group_size=None, actorder=None):
    w = {"num_bits": bits, "type": "int", "symmetric": symmetric, "strategy": strategy}
    if group_size is not None:
        w["group_size"] = group_size
    if actorder is not None:
        w["actorder"] = actorder
    return w


def gptq(groups, **kw):
    return GPTQModifier(ignore=["lm_head"], config_groups=groups, **kw)


W4G16 = {"group_0": {"targets": ["Linear"], "weights": int_weights(4, "group", group_size=16)}}


def case_recipes():
    """(case, [(description, recipe factory)...]): the first recipe that runs is kept."""
    yield "w4a16_g16_sym", [("GPTQModifier int4 symmetric group 16, ignore lm_head (actorder default)",
                             lambda: gptq(W4G16))]
    yield "w4a16_g16_asym", [("GPTQModifier int4 asymmetric group 16, ignore lm_head",
                              lambda: gptq({"group_0": {"targets": ["Linear"], "weights": int_weights(
                                  4, "group", symmetric=False, group_size=16)}}))]
    yield "w8a16_channel", [("GPTQModifier int8 symmetric per channel, ignore lm_head",
                             lambda: gptq({"group_0": {"targets": ["Linear"], "weights": int_weights(8, "channel")}}))]
    yield "w4_actorder", [
        ('GPTQModifier int4 sym group 16, actorder="group"',
         lambda: gptq({"group_0": {"targets": ["Linear"], "weights": int_weights(4, "group", group_size=16)}},
                      actorder="group")),
        ('GPTQModifier int4 sym group 16, actorder="weight"',
         lambda: gptq({"group_0": {"targets": ["Linear"], "weights": int_weights(4, "group", group_size=16)}},
                      actorder="weight"))]
    yield "mixed", [
        ("GPTQModifier, group_0 re:.*self_attn.* int8 channel, group_1 re:.*mlp.* int4 sym group 16",
         lambda: gptq({"group_0": {"targets": ["re:.*self_attn.*"], "weights": int_weights(8, "channel")},
                       "group_1": {"targets": ["re:.*mlp.*"], "weights": int_weights(4, "group", group_size=16)}})),
        (r"GPTQModifier, group_0 re:.*self_attn\.[qkvo]_proj$ int8 channel, group_1 re:.*mlp\..*_proj$ int4 g16",
         lambda: gptq({"group_0": {"targets": [r"re:.*self_attn\.[qkvo]_proj$"], "weights": int_weights(8, "channel")},
                       "group_1": {"targets": [r"re:.*mlp\..*_proj$"],
                                   "weights": int_weights(4, "group", group_size=16)}}))]
    yield "fp8", [('QuantizationModifier(scheme="FP8", targets=Linear, ignore lm_head): fp8 e4m3 weights per '
                   'tensor, static per-tensor fp8 input activations',
                   lambda: QuantizationModifier(targets="Linear", scheme="FP8", ignore=["lm_head"]))]
    yield "fp8_dynamic", [('QuantizationModifier(scheme="FP8_DYNAMIC", targets=Linear, ignore lm_head): fp8 e4m3 '
                           'weights per channel, dynamic per-token input activations',
                           lambda: QuantizationModifier(targets="Linear", scheme="FP8_DYNAMIC", ignore=["lm_head"]))]
    # SparseGPT names a target module "<name>." (trailing dot) when matching `ignore`, so
    # ignore=["lm_head"] does not spare lm_head in llm-compressor 0.14.0.1; "re:.*lm_head" does.
    yield "sparse_2of4_w4", [('SparseGPTModifier(sparsity=0.5, mask_structure="2:4", ignore re:.*lm_head) then '
                              'GPTQModifier int4 sym g16',
                              lambda: [SparseGPTModifier(sparsity=0.5, mask_structure="2:4", targets=["Linear"],
                                                         ignore=["re:.*lm_head"]), gptq(W4G16)])]
    yield "sparse_2of4_w4_rtn", [('SparseGPTModifier(sparsity=0.5, mask_structure="2:4", ignore re:.*lm_head) then '
                                  'QuantizationModifier int4 sym g16 (round to nearest, keeps the zeros)',
                                  lambda: [SparseGPTModifier(sparsity=0.5, mask_structure="2:4", targets=["Linear"],
                                                             ignore=["re:.*lm_head"]),
                                           QuantizationModifier(config_groups=W4G16, ignore=["lm_head"])])]
    yield "sparse_50_dense", [("SparseGPTModifier(sparsity=0.5, unstructured, ignore re:.*lm_head), no quantization",
                               lambda: SparseGPTModifier(sparsity=0.5, mask_structure="0:0", targets=["Linear"],
                                                         ignore=["re:.*lm_head"]))]


def calibration():
    g = torch.Generator().manual_seed(20261201)
    ids = torch.randint(0, VOCAB, (SAMPLES, SEQLEN), generator=g).tolist()
    return Dataset.from_dict({"input_ids": ids, "attention_mask": [[1] * SEQLEN for _ in ids]})


def processor():
    tk = Tokenizer(models.WordLevel({f"t{i}": i for i in range(VOCAB)}, unk_token="t0"))
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="t0", pad_token="t0")


def quantized_weights(model):
    """Every Linear weight as the model computes with it (fake-quantized where quantized)."""
    out = {}
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.Linear):
                w = m.weight.data
                scheme = getattr(m, "quantization_scheme", None)
                if scheme is not None and scheme.weights is not None:
                    w = forward_quantize(m, w, "weight", scheme.weights)
                out[name + ".weight"] = w.detach().to(torch.float32).clone()
    return out


def read_tensors(path):
    with safe_open(path, "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def unpack_dense(words, bits, count):
    """numpy: values packed densely into int32 words along the last axis, value i at bit i*bits."""
    words = np.ascontiguousarray(words.astype(np.int32)).view(np.uint32)
    bitpos = np.arange(count) * bits
    w, off = bitpos // 32, bitpos % 32
    lo = (words[..., w].astype(np.uint64) >> off.astype(np.uint64))
    hi = np.where(off + bits > 32, words[..., np.minimum(w + 1, words.shape[-1] - 1)].astype(np.uint64)
                  << (32 - off).astype(np.uint64), 0)
    return ((lo | hi) & ((1 << bits) - 1)).astype(np.int64) - (1 << (bits - 1))


def numpy_decode(tensors, prefix, weights_args, in_features):
    """The README's description of the saved layout, as numpy; None where no rule applies."""
    t = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    scale = t["weight_scale"].to(torch.float64).numpy()
    if "weight_packed" in t:
        bits = weights_args["num_bits"]
        shape = [int(s) for s in t["weight_shape"]]
        q = unpack_dense(t["weight_packed"].numpy(), bits, shape[1])
        if "weight_zero_point" in t:  # packed along dim 0: transpose, unpack the rows, back
            zp = unpack_dense(t["weight_zero_point"].numpy().T, bits, shape[0]).T
        else:
            zp = np.zeros_like(scale)
    elif "weight" in t and t["weight"].dtype in (torch.int8, torch.float8_e4m3fn):
        q = t["weight"].to(torch.float64).numpy()
        zp = t["weight_zero_point"].to(torch.float64).numpy() if "weight_zero_point" in t else np.zeros_like(scale)
    else:
        return None
    group = in_features // scale.shape[1] if scale.ndim == 2 else in_features
    scale_full = np.repeat(scale.reshape(scale.shape[0] if scale.ndim else 1, -1), group, axis=1)
    zp_full = np.repeat(np.asarray(zp, dtype=np.float64).reshape(scale_full.shape[0], -1), group, axis=1)
    w = (q - zp_full) * scale_full
    return w.astype(np.float32)


def describe(tensors, prefix):
    return [(k, str(v.dtype).replace("torch.", ""), list(v.shape)) for k, v in sorted(tensors.items())
            if k.startswith(prefix + ".")]


def run_case(name, recipe, folder, data, tok):
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_pretrained(BASE, dtype=torch.float32)
    oneshot(model=model, processor=tok, dataset=data, recipe=recipe, num_calibration_samples=SAMPLES,
            max_seq_length=SEQLEN, shuffle_calibration_samples=False)
    in_memory = quantized_weights(model)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, save_compressed=True)
        written = sorted(os.listdir(tmp))
        if os.path.exists(folder):
            shutil.rmtree(folder)
        os.makedirs(folder)
        for f in KEEP:
            if os.path.exists(os.path.join(tmp, f)):
                shutil.copy(os.path.join(tmp, f), os.path.join(folder, f))
    del model
    config = json.load(open(os.path.join(folder, "config.json")))
    qconfig = config.get("quantization_config")
    kwargs = {"quantization_config": CompressedTensorsConfig(dequantize=True)} if qconfig else {}
    loaded = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kwargs)
    expected = {n + ".weight": m.weight.detach().to(torch.float32).contiguous().clone()
                for n, m in loaded.named_modules() if isinstance(m, torch.nn.Linear)}
    assert expected.keys() == in_memory.keys(), (expected.keys(), in_memory.keys())
    diff = max((expected[k] - in_memory[k]).abs().max().item() for k in expected)
    assert diff == 0.0, f"{name}: peer's dequantized weights differ from the in-memory model by {diff}"
    save_file(expected, os.path.join(folder, "expected.safetensors"))

    saved = read_tensors(os.path.join(folder, "model.safetensors"))
    numpy_checked = []
    groups = (qconfig or {}).get("config_groups", {})
    for key, w in expected.items():
        prefix = key[:-len(".weight")]
        group = next((g for g in groups.values() if _targets(g["targets"], prefix)), None)
        if group is None or prefix + ".weight_scale" not in saved:
            assert torch.equal(saved[key].to(torch.float32), w), f"{name}: {key} stored dense but differs"
            continue
        decoded = numpy_decode(saved, prefix, group["weights"], w.shape[1])
        if decoded is not None:
            # (q - z) * scale is exact in float64 and rounded once to float32: bit for bit what the
            # peer's float32 (q - z) * scale gives.
            err = float(np.abs(decoded - w.numpy()).max())
            assert np.array_equal(decoded, w.numpy()), f"{name}: numpy decode of {prefix} off by {err}"
            numpy_checked.append(prefix)
    zeros = {k: float((v == 0).double().mean()) for k, v in expected.items() if not k.startswith("lm_head")}
    lm_head_zeros = float((expected["lm_head.weight"] == 0).double().mean())
    # groups of 4 consecutive input columns that hold fewer than 2 zeros (2:4 violations)
    two_four = [sum(int(((v.reshape(v.shape[0], -1, 4) == 0).sum(-1) < 2).sum()) for k, v in expected.items()
                    if not k.startswith("lm_head")),
                sum(v.numel() // 4 for k, v in expected.items() if not k.startswith("lm_head"))]
    return {"written": written, "qconfig": qconfig, "saved": saved, "numpy_checked": numpy_checked,
            "zeros": zeros, "two_four": two_four,
            "lm_head_zeros": lm_head_zeros}


def _targets(targets, prefix):
    import re
    for t in targets:
        if t.startswith("re:") and re.match(t[3:], prefix):
            return True
        if t == "Linear":
            return True
    return False


def main() -> None:
    torch.set_num_threads(1)
    data, tok = calibration(), processor()
    versions = {p: importlib.metadata.version(p) for p in ("llmcompressor", "compressed-tensors", "transformers",
                                                           "torch", "datasets")}
    results, skipped = [], []
    for name, attempts in case_recipes():
        folder = os.path.join(OUT, name)
        tried = []
        for desc, make in attempts:
            try:
                r = run_case(name, make(), folder, data, tok)
            except Exception as error:  # a recipe llm-compressor refuses or that fails on CPU
                msg = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
                tried.append((desc, msg))
                print(f"{name}: {desc}: {msg}", file=sys.stderr)
                traceback.print_exc()
                if os.path.exists(folder):
                    shutil.rmtree(folder)
                continue
            r.update(name=name, recipe=desc, refused=tried)
            results.append(r)
            break
        else:
            skipped.append((name, tried))
    write_readme(results, skipped, versions)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"{OUT}: {len(results)} cases, skipped {[s[0] for s in skipped]}, {total} bytes")


def write_readme(results, skipped, versions):
    v = ", ".join(f"{k} {x}" for k, x in versions.items())
    lines = [
        "# llm-compressor checkpoints of the tiny llama",
        "",
        "Written by `scripts/reference/make_llmcompressor_fixtures.py` (do not edit: rerun it) with " + v + ".",
        "Base: `Fixtures/arch/llama` (float32, hidden 32, intermediate 64, 2 layers, 4 heads, 2 kv heads, "
        f"vocab 96). Calibration: {SAMPLES} x {SEQLEN} random token ids (seeded). Each folder holds what "
        "`model.save_pretrained(dir, save_compressed=True)` wrote (config.json, model.safetensors, "
        "recipe.yaml; generation_config.json dropped) and `expected.safetensors`: every Linear weight "
        "(lm_head too) in float32 as transformers + compressed-tensors dequantize the folder "
        "(`from_pretrained(dir, quantization_config=CompressedTensorsConfig(dequantize=True))`). The script "
        "checks that they equal the in-memory model's quantized weights after oneshot, and that a numpy "
        "decoding by the rules below reproduces them.",
        "",
        "## Layout (as these versions write it)",
        "",
        "- Non-quantized tensors (embeddings, norms, lm_head, and every weight of a dense/sparse-only "
        "checkpoint) are stored as in the base model, float32.",
        "- `pack-quantized` (int weights, no activation quantization): `<m>.weight_packed` int32 "
        "[out, ceil(in*bits/32)]: each row's values packed densely, value i at bit i*bits of the row's "
        "little-endian bit string (words lowest bit first; for 4 bits: column 8k+j in word k at bit 4j; "
        "a value may straddle two words when 32 % bits != 0), stored offset-binary q + 2^(bits-1). "
        "`<m>.weight_shape` int64 [2] = [out, in]. `<m>.weight_scale` [out, in/group] (group) or [out, 1] "
        "(channel), the model's dtype (float32 here). Asymmetric: `<m>.weight_zero_point` int32 "
        "[ceil(out*bits/32), in/group]: the zero points z (signed, same range as q: [-8, 7] for 4 bits), "
        "stored offset-binary z + 2^(bits-1) like q and packed densely along dim 0 (for 4 bits: "
        "zero point [8k+j, c] in word [k, c] at bit 4j). W = (q - z) * scale with q = stored - 2^(bits-1); "
        "z = 0 when symmetric (no zero-point tensor is written). 8-bit int weights (no activation "
        "quantization) are packed the same way, 4 per word.",
        "- `float-quantized` (fp8 weights with fp8 activations): `<m>.weight` float8_e4m3fn [out, in], "
        "`<m>.weight_scale` float32 ([1] per tensor or [out, 1] per channel); W = float(weight) * scale. "
        "Static activation scales come as `<m>.input_scale`.",
        "- No `g_idx` is written by these versions: actorder \"group\" has been removed (see the "
        "w4_actorder row); \"static\" (the default) and \"weight\" only change the order in which GPTQ "
        "quantizes columns, and the groups stay contiguous runs of `group_size` input columns.",
        "- `sparsity_config` is always `{}`: compressed-tensors 0.19 no longer writes sparse formats "
        "(`ModelCompressor.update_config`: \"sparsity is removed for now\"); pruned weights are saved "
        "with their zeros, dense or quantized.",
        "",
        "## Cases",
        "",
        "| case | recipe | format | config_groups | `model.layers.0.self_attn.q_proj` tensors | notes |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        q = r["qconfig"] or {}
        groups = "; ".join(
            f"{g}: {','.join(c['targets'])} → "
            + (f"{c['weights']['type']}{c['weights']['num_bits']} {c['weights']['strategy']}"
               + (f" g{c['weights']['group_size']}" if c["weights"].get("group_size") else "")
               + (" sym" if c["weights"]["symmetric"] else " asym")
               + (f" actorder={c['weights'].get('actorder')}" if c["weights"].get("actorder") else "")
               if c.get("weights") else "no weights")
            + (f", input {c['input_activations']['type']}{c['input_activations']['num_bits']} "
               f"{c['input_activations']['strategy']}{' dynamic' if c['input_activations']['dynamic'] else ''}"
               if c.get("input_activations") else "")
            for g, c in q.get("config_groups", {}).items()) or "none"
        tensors = "<br>".join(f"`{k.split('.')[-1]}` {d} {s}" for k, d, s in describe(r["saved"], SHOWN[0]))
        notes = []
        for desc, msg in r["refused"]:
            notes.append(f"first tried {desc}: refused, `{msg}`")
        mean_zero = sum(r["zeros"].values()) / len(r["zeros"])
        if "sparse" in r["name"]:
            notes.append(f"fraction of zeros in the layer linears {mean_zero:.3f} on average; groups of 4 input "
                         f"columns with fewer than 2 zeros: {r['two_four'][0]} of {r['two_four'][1]}; "
                         f"lm_head zeros {r['lm_head_zeros']:.3f}")
        notes.append("numpy decode checked" if r["numpy_checked"] else "stored dense")
        fmt = q.get("format", "none (no quantization_config)") if q else "none (no quantization_config)"
        lines.append(f"| {r['name']} | {r['recipe']} | {fmt} | {groups} | {tensors} | {'; '.join(notes)} |")
    for name, tried in skipped:
        why = "; ".join(f"{d}: `{m}`" for d, m in tried)
        lines.append(f"| {name} | skipped | | | | {why} |")
    lines += ["", "## Per case: the tensors of two linears, and quantization_config", ""]
    for r in results:
        lines += [f"### {r['name']}", "", f"Recipe: {r['recipe']}. Files written by save_pretrained: "
                  + ", ".join(r["written"]) + ".", ""]
        for prefix in SHOWN:
            lines += [f"`{prefix}`:", ""] + [f"- `{k}` {d} {s}" for k, d, s in describe(r["saved"], prefix)] + [""]
        lines += ["```json", json.dumps(r["qconfig"], indent=1, sort_keys=True) if r["qconfig"] else "null",
                  "```", ""]
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")


if __name__ == "__main__":
    main()
