"""Check 4 of scripts/check-export: llama.cpp (llama-cpp-python) runs the GGUF files qs
exported.

Usage: check_export_llama.py IDS_JSON TEXT CTX THREADS F32_GGUF QS_Q8_GGUF QS_Q4_GGUF WORK

IDS_JSON: the token ids to score (the Hugging Face tokenizer's, as qs's protocol takes them).
Perplexity follows qs's protocol on those ids: non-overlapping windows of CTX, each evaluated
from an empty context with all logits kept (Llama(..., logits_all=True), eval, scores), every
token but a window's first scored. llama.cpp's own Q4_0 is made from the f32 file by
llama_model_quantize (ftype 2) into WORK.

- qs's Q8_0 within 0.5% of llama.cpp's perplexity of the f32 file;
- qs's Q4_0 within 1% of llama.cpp's own Q4_0 of the same weights.
Also prints whether llama.cpp's tokenizer, read from qs's tokenizer.ggml.* metadata, gives the
same ids as the Hugging Face tokenizer (informational). Exits 1 on FAIL.
"""
import ctypes
import json
import math
import os
import sys

import llama_cpp
import numpy as np


def open_model(path, ctx, threads):
    return llama_cpp.Llama(model_path=path, n_ctx=ctx, n_batch=ctx, n_ubatch=ctx, n_threads=threads,
                           n_threads_batch=threads, logits_all=True, verbose=False)


def perplexity(llm, ids, ctx):
    nll, scored = 0.0, 0
    for begin in range(0, len(ids) - 1, ctx):
        window = ids[begin:begin + ctx]
        llm.reset()
        llm.eval(window)
        logits = llm.scores[:len(window) - 1]  # float32, a view of llama-cpp-python's buffer
        top = logits.max(axis=1, keepdims=True)
        # exp in float32 (each term to 1e-7 relative), summed in float64
        logz = top[:, 0].astype(np.float64) + np.log(np.exp(logits - top).sum(axis=1, dtype=np.float64))
        targets = np.asarray(window[1:])
        nll -= float(np.sum(logits[np.arange(len(targets)), targets].astype(np.float64) - logz))
        scored += len(targets)
    return math.exp(nll / scored), scored


def quantize(src, dst, ftype):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize({src}, ftype {ftype}) returned {rc}")


def main():
    ids_json, text, ctx, threads, f32, q8, q4, work = sys.argv[1:9]
    ctx, threads = int(ctx), int(threads)
    ids = json.load(open(ids_json))
    print(f"  llama-cpp-python {llama_cpp.__version__}; {len(ids)} tokens, ctx {ctx}, {threads} threads")
    llama_q4 = os.path.join(work, "llama-q4_0.gguf")
    quantize(f32, llama_q4, 2)
    ppl = {}
    for label, path in [("f32 (qs export)", f32), ("Q8_0 (qs)", q8), ("Q4_0 (qs)", q4), ("Q4_0 (llama.cpp)", llama_q4)]:
        try:
            llm = open_model(path, ctx, threads)
        except Exception as error:  # llama.cpp refused the file; its log went to stderr
            print(f"FAIL 4 llama.cpp does not load {label} {path}: {error}")
            sys.exit(1)
        if label.startswith("f32"):
            own = llm.tokenize(open(text, encoding="utf-8").read().encode("utf-8"), add_bos=False, special=False)
            own = own[:len(ids)]
            same = own == ids
            first = next((i for i, (a, b) in enumerate(zip(own, ids)) if a != b), None)
            print(f"  llama.cpp's tokenizer from qs's GGUF metadata: "
                  + ("same ids as the Hugging Face tokenizer" if same else
                     f"ids differ from the Hugging Face tokenizer from position {first}"))
        ppl[label], scored = perplexity(llm, ids, ctx)
        print(f"  llama.cpp ppl {label:18} {ppl[label]:.4f}  ({scored} tokens scored, {os.path.getsize(path) / 1e6:.1f} MB)")
        del llm
    r8 = ppl["Q8_0 (qs)"] / ppl["f32 (qs export)"] - 1
    r4 = ppl["Q4_0 (qs)"] / ppl["Q4_0 (llama.cpp)"] - 1
    ok8, ok4 = abs(r8) <= 0.005, abs(r4) <= 0.01
    print(f"{'PASS' if ok8 else 'FAIL'} 4 llama.cpp runs qs's Q8_0: ppl {ppl['Q8_0 (qs)']:.4f} vs f32 {ppl['f32 (qs export)']:.4f}, "
          f"{100 * r8:+.4f}% (limit 0.5%)")
    print(f"{'PASS' if ok4 else 'FAIL'} 4 llama.cpp runs qs's Q4_0: ppl {ppl['Q4_0 (qs)']:.4f} vs llama.cpp's own Q4_0 "
          f"{ppl['Q4_0 (llama.cpp)']:.4f}, {100 * r4:+.4f}% (limit 1%)")
    sys.exit(0 if ok8 and ok4 else 1)


if __name__ == "__main__":
    main()
