#!/usr/bin/env python3
"""Blocks that the `gguf` package's quantizer (gguf.quants.quantize) writes, as fixtures for
qs's GGUF export: qs must quantize the same float32 inputs to the same bytes.

Writes Tests/QSEngineTests/Fixtures/export/ggml_quants.json:
  {"generator": "gguf <version>, numpy <version>", "shape": [16, 256],
   "inputs": [{"name", "note", "f32": base64 of 4096 little-endian float32}],
   "cases": [{"input": name, "type": "Q8_0", "ggml_type": 8, "block_size": 32, "type_size": 34,
              "blocks": base64 of the bytes gguf.quants.quantize gave for the [16, 256] input}],
   "unsupported": [types whose quantize raised NotImplementedError],
   "unsupported_errors": {type: the error message}}
Each input is 16 rows of 256 values, quantized as one [16, 256] array (row-major, so the blocks
follow the flat input in order). Run once; tests never run it. Needs: gguf, numpy. Run with any
python3: when `import gguf` fails it creates .build/venv-gguf and runs itself there, i.e.
  python3 -m venv .build/venv-gguf && .build/venv-gguf/bin/pip install gguf numpy
  .build/venv-gguf/bin/python scripts/reference/make_ggml_quant_fixtures.py
"""
import base64
import importlib.metadata
import json
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")

try:
    import gguf  # noqa: F401
except ImportError:
    if os.environ.get("QS_GGUF_REEXEC"):
        raise
    venv = os.path.join(ROOT, ".build", "venv-gguf")
    python = os.path.join(venv, "bin", "python")
    if subprocess.run([python, "-c", "import gguf"], capture_output=True).returncode != 0:
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "gguf", "numpy"], check=True)
    os.environ["QS_GGUF_REEXEC"] = "1"
    os.execv(python, [python, os.path.abspath(__file__)] + sys.argv[1:])

import gguf  # noqa: E402
import numpy as np  # noqa: E402
from gguf import GGMLQuantizationType as Q  # noqa: E402

OUT = os.path.join(ROOT, "Tests", "QSEngineTests", "Fixtures", "export", "ggml_quants.json")
LLAMA = os.path.join(ROOT, "Tests", "QSEngineTests", "Fixtures", "arch", "llama", "model.safetensors")
ROWS, COLS = 16, 256
N = ROWS * COLS
TYPES = [Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q4_K, Q.Q6_K, Q.Q2_K, Q.Q3_K, Q.Q5_K]


def f32(x):
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    assert x.size == N, x.size
    return x


def special_blocks(rng):
    """128 blocks of 32 that probe the edge cases of the 32-value formats."""
    blocks = []
    half = np.arange(-15, 16, dtype=np.float32)  # integers, shifted by 0.5 below
    def ties(lo, hi, pin, scale=1.0):
        """Values k + 0.5 in [lo, hi) with one value `pin` fixing the block's scale."""
        b = (rng.integers(lo, hi, 32) + 0.5).astype(np.float32)
        b[rng.integers(0, 32)] = pin
        return b * np.float32(scale)
    patterns = [
        lambda: np.zeros(32),                                    # all zero: d = 0
        lambda: np.full(32, 0.3),                                # one positive constant
        lambda: np.full(32, -0.7),                               # one negative constant
        lambda: -np.abs(rng.normal(0, 0.05, 32)),                # all negative
        lambda: np.abs(rng.normal(0, 0.05, 32)),                 # all positive
        lambda: ties(-127, 127, 127.0),                          # Q8_0: d = 1, x/d = k + .5
        lambda: ties(-127, 127, -127.0, 2.0 ** -6),              # Q8_0: d = 2^-6
        lambda: ties(-8, 7, -8.0),                               # Q4_0: max = -8, d = 1
        lambda: ties(-8, 7, 8.0),                                # Q4_0: max = +8, d = -1
        lambda: ties(-8, 7, -8.0, 0.25),                         # Q4_0: d = 0.25
        lambda: np.concatenate([[0.0, 15.0], ties(0, 15, 7.5)[:30]]),   # Q4_1: min 0, max 15, d = 1
        lambda: np.concatenate([[-3.0, 12.0], ties(-3, 12, 0.5)[:30]]),  # Q4_1: min -3, d = 1
        lambda: ties(-16, 15, -16.0),                            # Q5_0: max = -16, d = 1
        lambda: ties(-16, 15, 16.0, 0.5),                        # Q5_0: max = +8 after scaling
        lambda: np.concatenate([[0.0, 31.0], ties(0, 31, 1.5)[:30]]),   # Q5_1: d = 1
        lambda: np.concatenate([[1.0, -1.0], rng.uniform(-0.5, 0.5, 30)]),  # |max| tie: +1 first
        lambda: np.concatenate([[-1.0, 1.0], rng.uniform(-0.5, 0.5, 30)]),  # |max| tie: -1 first
        lambda: np.eye(1, 32, int(rng.integers(0, 32)))[0] * -0.4,  # one nonzero value
        lambda: np.tile([1.0, -1.0], 16) * 0.01,                 # alternating
        lambda: half[rng.integers(0, 31, 32)] * np.float32(0.5) * np.float32(2.0 ** -4),  # k/32 grid
    ]
    for i in range(N // 32):
        if i < 2 * len(patterns):
            blocks.append(np.asarray(patterns[i % len(patterns)](), dtype=np.float32))
        else:  # multiples of 0.5 at a random power-of-two scale: many exact ties
            scale = np.float32(2.0 ** int(rng.integers(-12, 2)))
            blocks.append((rng.integers(-20, 21, 32) * np.float32(0.5) * scale).astype(np.float32))
    return np.concatenate(blocks)


def llama_weights():
    """layers.0.mlp.gate_proj and up_proj of the tiny llama fixture, [64, 32] each, flattened."""
    raw = open(LLAMA, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = []
    for name in ("model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight"):
        info = header[name]
        assert info["dtype"] == "F32"
        begin, end = info["data_offsets"]
        out.append(np.frombuffer(raw[8 + n + begin:8 + n + end], dtype="<f4"))
    return np.concatenate(out)


def inputs():
    rng = np.random.default_rng(20261201)
    normal = rng.normal(0, 0.02, N)
    yield "normal", "normal(0, 0.02)", normal
    outliers = rng.normal(0, 0.02, N)
    at = rng.choice(N, 24, replace=False)
    outliers[at] = rng.choice([-1.0, 1.0], 24)
    yield "outliers", "normal(0, 0.02) with 24 values set to +-1", outliers
    yield "uniform", "uniform(-1, 1)", rng.uniform(-1, 1, N)
    yield "special", ("blocks of 32: zeros, constants, all-negative, all-positive, exact ties "
                      "(x/d = k + 0.5 for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1), |max| ties, one nonzero, "
                      "alternating; then multiples of 0.5 at random power-of-two scales"), special_blocks(rng)
    tiny = rng.normal(0, 1, N) * np.repeat([1e-6] * 8 + [1e-7] * 4 + [1e-5] * 2 + [1e-8] * 2, COLS)
    yield "tiny", ("normal scaled per row: rows 0-7 by 1e-6, 8-11 by 1e-7, 12-13 by 1e-5, 14-15 by "
                   "1e-8 (fp16 scales subnormal or zero)"), tiny
    yield "llama", ("Fixtures/arch/llama model.layers.0.mlp.gate_proj.weight then up_proj.weight "
                    "([64, 32] each, row-major)"), llama_weights()


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()


def main() -> None:
    version = importlib.metadata.version("gguf")
    doc = {"generator": f"gguf {version} (gguf.quants.quantize), numpy {np.__version__}",
           "shape": [ROWS, COLS], "inputs": [], "cases": [], "unsupported": [], "unsupported_errors": {}}
    data = []
    for name, note, x in inputs():
        x = f32(x)
        assert x.dtype.byteorder in ("=", "<") and np.little_endian
        doc["inputs"].append({"name": name, "note": note, "f32": b64(x)})
        data.append((name, x.reshape(ROWS, COLS)))
    for qtype in TYPES:
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        try:
            gguf.quants.quantize(data[0][1], qtype)
        except NotImplementedError as error:
            doc["unsupported"].append(qtype.name)
            doc["unsupported_errors"][qtype.name] = f"NotImplementedError: {error}"
            continue
        for name, x in data:
            blocks = gguf.quants.quantize(x, qtype)
            assert blocks.dtype == np.uint8 and blocks.size == N // block_size * type_size
            # The package's own dequantizer must read its blocks back to finite values.
            back = gguf.quants.dequantize(blocks, qtype)
            assert back.shape == x.shape and np.isfinite(back).all()
            doc["cases"].append({"input": name, "type": qtype.name, "ggml_type": int(qtype),
                                 "block_size": block_size, "type_size": type_size, "blocks": b64(blocks)})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"{OUT}: {len(doc['cases'])} cases, unsupported {doc['unsupported']}, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
