#!/usr/bin/env python3
"""Blocks that llama.cpp's own quantizer writes for the K-quants (which the `gguf` package cannot
quantize), as fixtures for qs's GGUF export: qs must quantize the same float32 inputs to the same
bytes.

How: build a tiny llama-architecture GGUF, all tensors F32 (hidden 256, intermediate 512, 1 block,
4 heads of 64, 4 kv heads, byte-level "gpt2" vocab of 256, context 64), quantize it with
`llama_cpp.llama_model_quantize` to ftype 14 (Q4_K_S), 16 (Q5_K_S) and 18 (Q6_K), no imatrix
(so llama.cpp runs its reference quantizers quantize_row_q4_K_ref / q5_K_ref / q6_K_ref, and
the *_0 ones for tensors its mixes put there), and read the outputs back with gguf.GGUFReader.

Writes Tests/QSEngineTests/Fixtures/export/kquants.json:
  {"generator": "llama.cpp via llama-cpp-python <version>, gguf <version>",
   "model": {the F32 model's hyperparameters},
   "rows": {row index: what that row of every 2-D weight is},
   "inputs": [{"name": tensor name, "shape": [ROWS, cols] (outermost first),
               "tensor_shape": [rows, cols] of the whole tensor in the model,
               "f32": base64 of the first ROWS rows, little-endian float32, in GGUF row order}],
   "cases": [{"input": name, "ftype": 14|16|18, "ftype_name", "type": "Q4_K"|..., "ggml_type",
              "block_size", "type_size", "blocks": base64 of the first ROWS rows' blocks}],
   "other": [{"input", "ftype", "type"}: 2-D weights quantized to a type outside KEEP],
   "types": {ftype: {tensor name: ggml type name}} for every tensor (1-D norms included)}
Only the first ROWS rows of each tensor are kept (the whole model's inputs and blocks would be
about 7 MB of JSON). That loses nothing: every row is a whole number of 256-value super-blocks,
and without an imatrix llama.cpp quantizes each block from its own values only, so the first
ROWS rows' blocks are exactly the first ROWS * row_bytes bytes of the tensor. The script checks
this by re-quantizing each kept slice alone with ggml_quantize_chunk (libggml-base, imatrix NULL)
and comparing bytes. llama.cpp does not permute anything at quantize time: the inputs are the
rows exactly as written into the F32 GGUF.

Run once; tests never run it. Needs: llama-cpp-python (built for this CPU), gguf, numpy. Run with
any python3: when `import llama_cpp` or `import gguf` fails it uses .build/venv-llama (or
$QS_LLAMA_VENV), building llama-cpp-python there first if needed with scripts/llama-venv (for
the CPU flags this machine reports, never GGML_NATIVE: that enables AMX, which faults on these
machines), i.e.
  scripts/llama-venv && .build/venv-llama/bin/pip install gguf==0.19.0
  .build/venv-llama/bin/python scripts/reference/make_kquant_fixtures.py
The scratch GGUFs go to .build/kquant/ (not committed).
"""
import base64
import ctypes
import importlib.metadata
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
GGUF_VERSION = "0.19.0"


def ensure_environment():
    try:
        import gguf  # noqa: F401
        import llama_cpp  # noqa: F401
        return
    except ImportError:
        if os.environ.get("QS_LLAMA_REEXEC"):
            raise
    venv = os.environ.get("QS_LLAMA_VENV") or os.path.join(ROOT, ".build", "venv-llama")
    python = os.path.join(venv, "bin", "python")
    pip = os.path.join(venv, "bin", "pip")

    def works(module):
        return os.path.exists(python) and subprocess.run(
            [python, "-c", f"import {module}"], capture_output=True).returncode == 0

    if not works("llama_cpp") and "QS_LLAMA_VENV" not in os.environ:
        subprocess.run([os.path.join(ROOT, "scripts", "llama-venv")], check=True, stdout=subprocess.DEVNULL)
    if not works("gguf"):
        subprocess.run([pip, "install", "-q", f"gguf=={GGUF_VERSION}", "numpy"], check=True)
    os.environ["QS_LLAMA_REEXEC"] = "1"
    os.execv(python, [python, os.path.abspath(__file__)] + sys.argv[1:])


ensure_environment()

import gguf  # noqa: E402
import llama_cpp  # noqa: E402
import numpy as np  # noqa: E402
from gguf import GGMLQuantizationType as Q  # noqa: E402

OUT = os.path.join(ROOT, "Tests", "QSEngineTests", "Fixtures", "export", "kquants.json")
SCRATCH = os.path.join(ROOT, ".build", "kquant")
HIDDEN, INTERMEDIATE, N_HEAD, N_HEAD_KV, HEAD_DIM, VOCAB, CONTEXT = 256, 512, 4, 4, 64, 256, 64
RMS_EPS, ROPE_BASE = 1e-5, 10000.0
FTYPES = {14: "Q4_K_S", 16: "Q5_K_S", 18: "Q6_K"}
KEEP = {Q.Q4_K, Q.Q5_K, Q.Q6_K, Q.Q8_0, Q.Q5_0, Q.Q4_0}
ROWS = 64  # rows of each 2-D weight kept in the fixture (all special rows, then normal ones)

SPECIAL_ROWS = {
    0: "all zeros",
    1: "normal(0, 0.02) with 8 outliers of +-uniform(0.5, 4)",
    2: "the constant 0.05",
    3: "normal(0, 1) * 1e-6 (tiny: fp16 super-block scales subnormal)",
    4: "the constant -0.03",
    5: "|normal(0, 0.02)| (all positive)",
    6: "-|normal(0, 0.02)| (all negative)",
    7: "normal(0, 1) with each 32-value sub-block scaled by 10^-(k % 8 / 2), k the sub-block index",
    8: "normal(0, 0.02) with the first sub-block (32 values) of every super-block zero",
    9: "normal(0, 1) * 1e-8 (fp16 scales underflow to zero)",
    10: "one nonzero value (-0.4), the rest zero",
    11: "integers in [-32, 32) times 2^-7 (exact grid values, many ties)",
    12: "normal(0, 0.02) + 0.1 (offset: large min for Q4_K/Q5_K)",
    13: "uniform(-1, 1)",
}


def byte_tokens():
    """GPT-2's byte-to-unicode mapping: token i is the printable stand-in of byte i."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def weight(rng, rows, cols):
    w = rng.normal(0, 0.02, (rows, cols))
    w[0] = 0.0
    at = rng.choice(cols, 8, replace=False)
    w[1, at] = rng.choice([-1.0, 1.0], 8) * rng.uniform(0.5, 4.0, 8)
    w[2] = 0.05
    w[3] = rng.normal(0, 1, cols) * 1e-6
    w[4] = -0.03
    w[5] = np.abs(w[5])
    w[6] = -np.abs(w[6])
    w[7] = rng.normal(0, 1, cols) * np.repeat(10.0 ** -(np.arange(cols // 32) % 8 / 2), 32)
    w[8].reshape(-1, 256)[:, :32] = 0.0
    w[9] = rng.normal(0, 1, cols) * 1e-8
    w[10] = 0.0
    w[10, rng.integers(0, cols)] = -0.4
    w[11] = rng.integers(-32, 32, cols) * 2.0 ** -7
    w[12] += 0.1
    w[13] = rng.uniform(-1, 1, cols)
    return w.astype(np.float32)


def tensors():
    """(name, float32 array in GGUF row order: numpy [rows, cols] is ggml ne = [cols, rows])."""
    rng = np.random.default_rng(0)
    norm = lambda: (1.0 + rng.normal(0, 0.1, HIDDEN)).astype(np.float32)  # noqa: E731
    yield "token_embd.weight", weight(rng, VOCAB, HIDDEN)
    yield "blk.0.attn_norm.weight", norm()
    yield "blk.0.attn_q.weight", weight(rng, N_HEAD * HEAD_DIM, HIDDEN)
    yield "blk.0.attn_k.weight", weight(rng, N_HEAD_KV * HEAD_DIM, HIDDEN)
    yield "blk.0.attn_v.weight", weight(rng, N_HEAD_KV * HEAD_DIM, HIDDEN)
    yield "blk.0.attn_output.weight", weight(rng, HIDDEN, N_HEAD * HEAD_DIM)
    yield "blk.0.ffn_norm.weight", norm()
    yield "blk.0.ffn_gate.weight", weight(rng, INTERMEDIATE, HIDDEN)
    yield "blk.0.ffn_up.weight", weight(rng, INTERMEDIATE, HIDDEN)
    yield "blk.0.ffn_down.weight", weight(rng, HIDDEN, INTERMEDIATE)
    yield "output_norm.weight", norm()
    yield "output.weight", weight(rng, VOCAB, HIDDEN)


def write_f32_model(path, data):
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("qs-kquant-fixture")
    w.add_context_length(CONTEXT)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(1)
    w.add_feed_forward_length(INTERMEDIATE)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_layer_norm_rms_eps(RMS_EPS)
    w.add_rope_freq_base(ROPE_BASE)
    w.add_vocab_size(VOCAB)
    w.add_file_type(0)  # LLAMA_FTYPE_ALL_F32
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(byte_tokens())
    w.add_token_types([1] * VOCAB)  # NORMAL
    # The loader requires the merges key and the writer drops an empty array: one merge, whose
    # result is not in the vocab (the tokenizer falls back to the byte tokens).
    w.add_token_merges(["Ġ Ġ"])
    w.add_bos_token_id(ord("\n"))
    w.add_eos_token_id(ord("\n"))
    for name, x in data:
        w.add_tensor(name, x)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def quantize(src, dst, ftype):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = 1
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize({ftype}) returned {rc}")


def ggml_base():
    lib_dir = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
    lib = ctypes.CDLL(os.path.join(lib_dir, "libggml-base.so"))
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    return lib


def requantize(lib, qtype, x):
    """ggml_quantize_chunk on x alone (imatrix NULL): what llama_model_quantize runs per tensor."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    rows, cols = x.shape
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    out = np.zeros(rows * cols // block_size * type_size, dtype=np.uint8)
    n = lib.ggml_quantize_chunk(int(qtype), x.ctypes.data, out.ctypes.data, 0, rows, cols, None)
    assert n == out.size, (n, out.size)
    return out.tobytes()


def check_loads(path):
    """llama.cpp loads the file and runs it: finite logits for a few tokens."""
    model = llama_cpp.Llama(model_path=path, n_ctx=CONTEXT, n_batch=CONTEXT, n_threads=1,
                            n_threads_batch=1, verbose=False)
    tokens = model.tokenize(b"hello, world", add_bos=False)
    assert tokens == list(b"hello, world"), tokens
    model.eval(tokens)
    logits = np.asarray(model.scores[model.n_tokens - 1])
    assert logits.shape == (VOCAB,) and np.isfinite(logits).all()
    model.close()


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else np.ascontiguousarray(data).tobytes()).decode()


def main() -> None:
    assert np.little_endian
    llama_version = importlib.metadata.version("llama_cpp_python")
    gguf_version = importlib.metadata.version("gguf")
    os.makedirs(SCRATCH, exist_ok=True)
    data = list(tensors())
    inputs = {name: x for name, x in data}
    f32_path = os.path.join(SCRATCH, "model-f32.gguf")
    write_f32_model(f32_path, data)
    # What the reader sees in the F32 file is exactly what we wrote.
    for t in gguf.GGUFReader(f32_path).tensors:
        assert t.tensor_type == Q.F32
        assert np.asarray(t.data).tobytes() == inputs[t.name].tobytes(), t.name
    check_loads(f32_path)

    doc = {"generator": f"llama.cpp via llama-cpp-python {llama_version}, gguf {gguf_version}",
           "model": {"architecture": "llama", "hidden": HIDDEN, "intermediate": INTERMEDIATE, "blocks": 1,
                     "heads": N_HEAD, "kv_heads": N_HEAD_KV, "head_dim": HEAD_DIM, "vocab": VOCAB,
                     "context": CONTEXT, "rms_eps": RMS_EPS, "rope_base": ROPE_BASE, "weights_seed": 0,
                     "quantize": "llama_model_quantize, default params, nthread 1, no imatrix"},
           "rows": {str(k): v for k, v in SPECIAL_ROWS.items()}
           | {f"{len(SPECIAL_ROWS)}-": "normal(0, 0.02)"},
           "inputs": [], "cases": [], "other": [], "types": {}}
    for name, x in data:
        if x.ndim == 2:
            doc["inputs"].append({"name": name, "shape": [ROWS, x.shape[1]], "tensor_shape": list(x.shape),
                                  "f32": b64(x[:ROWS])})

    lib = ggml_base()
    for ftype, ftype_name in FTYPES.items():
        out_path = os.path.join(SCRATCH, f"model-{ftype_name}.gguf")
        quantize(f32_path, out_path, ftype)
        check_loads(out_path)
        doc["types"][str(ftype)] = types = {}
        print(f"ftype {ftype} ({ftype_name}):")
        for t in gguf.GGUFReader(out_path).tensors:
            qtype = Q(t.tensor_type)
            types[t.name] = qtype.name
            x = inputs[t.name]
            raw = np.asarray(t.data)
            assert raw.nbytes == t.n_bytes
            back = gguf.quants.dequantize(raw, qtype).reshape(x.shape)
            assert np.isfinite(back).all(), t.name
            err = np.abs(back.astype(np.float64) - x)
            rel = err.max() / np.abs(x).max()
            normal = err[len(SPECIAL_ROWS):].max() if x.ndim == 2 else err.max()
            print(f"  {t.name:26s} {qtype.name:5s} max |err| {err.max():.3e} (relative to max|x| {rel:.3e}), "
                  f"normal rows {normal:.3e}")
            assert rel < 0.1, (t.name, rel)
            if x.ndim != 2:
                continue
            if qtype not in KEEP:
                doc["other"].append({"input": t.name, "ftype": ftype, "type": qtype.name})
                continue
            block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
            row_bytes = x.shape[1] // block_size * type_size
            blocks = raw.tobytes()[:ROWS * row_bytes]
            # Row-local: the kept rows quantized alone give the same bytes as inside the tensor.
            assert requantize(lib, qtype, x[:ROWS]) == blocks, (t.name, ftype)
            assert requantize(lib, qtype, x) == raw.tobytes(), (t.name, ftype)
            doc["cases"].append({"input": t.name, "ftype": ftype, "ftype_name": ftype_name, "type": qtype.name,
                                 "ggml_type": int(qtype), "block_size": block_size, "type_size": type_size,
                                 "blocks": b64(blocks)})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"{OUT}: {len(doc['inputs'])} inputs, {len(doc['cases'])} cases, other {doc['other']}, "
          f"{os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
