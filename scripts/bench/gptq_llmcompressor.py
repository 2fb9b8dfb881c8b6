"""llm-compressor's GPTQModifier on CPU, as scripts/bench/gptq runs it beside qs: the same model
folder, the same calibration windows (token starts that qs drew, applied to the same
tokenizer's ids), the same scheme, then perplexity with qs's protocol. Prints one JSON line:
quantize seconds, peak resident MB, perplexity.

Usage: gptq_llmcompressor.py MODEL_DIR CALIB_TEXT STARTS_JSON SEQLEN EVAL_TEXT TOKENS CTX THREADS
       BITS GROUP ACTORDER(static|none) DAMP BLOCK
"""
import json
import math
import resource
import sys
import time

import torch
import transformers
from datasets import Dataset
from llmcompressor import oneshot
from llmcompressor.modifiers.gptq import GPTQModifier


def main() -> None:
    (folder, calib_text, starts_json, seqlen, eval_text, tokens, ctx, threads, bits, group, actorder, damp,
     block) = sys.argv[1:14]
    seqlen, tokens, ctx, threads, bits, group, block = map(int, (seqlen, tokens, ctx, threads, bits, group, block))
    torch.set_num_threads(threads)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    ids = tokenizer(open(calib_text, encoding="utf-8").read(), add_special_tokens=False)["input_ids"]
    starts = json.load(open(starts_json))
    windows = [ids[s:s + seqlen] for s in starts]
    assert all(len(w) == seqlen for w in windows), "a window runs past the text: the tokenizers disagree"
    dataset = Dataset.from_dict({"input_ids": windows, "attention_mask": [[1] * seqlen for _ in windows]})
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    recipe = GPTQModifier(
        ignore=["lm_head"], block_size=block, dampening_frac=float(damp),
        actorder=None if actorder == "none" else actorder,
        config_groups={"group_0": {"targets": ["Linear"], "weights": {
            "num_bits": bits, "type": "int", "symmetric": True, "strategy": "group", "group_size": group}}})
    start = time.perf_counter()
    oneshot(model=model, dataset=dataset, recipe=recipe, num_calibration_samples=len(windows),
            max_seq_length=seqlen, shuffle_calibration_samples=False)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # Perplexity with qs's protocol: the first TOKENS ids, no BOS, non-overlapping windows of
    # CTX, every token but a window's first scored.
    text_ids = tokenizer(open(eval_text, encoding="utf-8").read(), add_special_tokens=False)["input_ids"][:tokens]
    nll, scored = 0.0, 0
    model.eval()
    with torch.inference_mode():
        for begin in range(0, len(text_ids) - 1, ctx):
            window = torch.tensor([text_ids[begin:begin + ctx]])
            logp = torch.log_softmax(model(window).logits[0].double(), dim=-1)
            targets = window[0, 1:]
            nll -= logp[torch.arange(len(targets)), targets].sum().item()
            scored += len(targets)
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "ppl": math.exp(nll / scored)}))


if __name__ == "__main__":
    main()
