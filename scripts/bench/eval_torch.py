"""Perplexity throughput of transformers (fp32) on a model folder and the Shakespeare texts,
with qs's protocol (first TOKENS ids, no BOS, non-overlapping windows of CTX). Prints tokens/s.

Usage: eval_torch.py MODEL_DIR TEXTS_DIR TOKENS CTX THREADS
"""
import os
import sys
import time

import torch
import transformers

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "reference"))
from qs_text import read_collection  # noqa: E402


def main() -> None:
    folder, texts, tokens, ctx, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    text = read_collection(texts, minimum=tokens * 8)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][:tokens]
    with torch.inference_mode():
        model(torch.tensor([ids[:ctx]]))  # warm-up
        start = time.perf_counter()
        done = 0
        for begin in range(0, len(ids) - 1, ctx):
            window = torch.tensor([ids[begin:begin + ctx]])
            logits = model(window).logits[0].double()
            torch.log_softmax(logits, dim=-1)
            done += window.shape[1]
        elapsed = time.perf_counter() - start
    print(f"{done / elapsed:.1f}")


if __name__ == "__main__":
    main()
