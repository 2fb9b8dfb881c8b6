"""llama.cpp's prefill and decode speed on a GGUF file, through llama-cpp-python.

Usage: decode_llama.py MODEL.gguf TEXT_FILE PROMPT GEN THREADS [REPEAT]

The prompt is the first PROMPT tokens of TEXT_FILE in the model's own tokenizer (the text qs's
bench reads). The prompt is decoded in one batch, then GEN tokens one at a
time, each the greedy choice (argmax of the last logits). Times come from llama.cpp's own
counters (llama_perf_context: prompt-eval and eval milliseconds), best of REPEAT (3) each.
Prints one JSON line: prefill_tok_s, decode_tok_s, peak_mb (the process's peak resident set).
"""
import ctypes
import json
import resource
import sys

import llama_cpp
import numpy as np


def last_argmax(llm) -> int:
    logits = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    return int(np.argmax(np.ctypeslib.as_array(logits, shape=(llm.n_vocab(),))))


def main() -> None:
    path, text_file, count, gen, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    repeat = int(sys.argv[6]) if len(sys.argv) > 6 else 3
    llm = llama_cpp.Llama(
        model_path=path, n_ctx=count + gen + 8, n_batch=count, n_ubatch=count,
        n_threads=threads, n_threads_batch=threads, verbose=False, logits_all=False)
    text = open(text_file, encoding="utf-8", errors="replace").read()
    prompt = llm.tokenize(text.encode(), add_bos=False, special=False)[:count]
    if len(prompt) < count:
        sys.exit(f"{text_file} has only {len(prompt)} tokens")
    best_prefill = best_decode = 0.0
    for _ in range(repeat):
        llm.reset()
        llama_cpp.llama_perf_context_reset(llm.ctx)
        llm.eval(prompt)
        token = last_argmax(llm)
        for _ in range(gen - 1):
            llm.eval([token])
            token = last_argmax(llm)
        data = llama_cpp.llama_perf_context(llm.ctx)
        prefill = data.n_p_eval / (data.t_p_eval_ms / 1000) if data.t_p_eval_ms > 0 else 0.0
        decode = data.n_eval / (data.t_eval_ms / 1000) if data.t_eval_ms > 0 else 0.0
        best_prefill = max(best_prefill, prefill)
        best_decode = max(best_decode, decode)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"prefill_tok_s": round(best_prefill, 1), "decode_tok_s": round(best_decode, 1), "peak_mb": round(peak)}))


if __name__ == "__main__":
    main()
