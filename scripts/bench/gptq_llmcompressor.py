"""llm-compressor's GPTQModifier on CPU, as scripts/bench/gptq runs it beside qs: the same model
folder, the same calibration windows (token starts that qs drew, applied to the same
tokenizer's ids), the same scheme, then perplexity with qs's protocol. Prints one JSON line:
quantize seconds, peak resident MB, perplexity.

Usage: gptq_llmcompressor.py MODEL_DIR CALIB_TEXT STARTS_JSON SEQLEN EVAL_TEXT TOKENS CTX THREADS
       BITS GROUP ACTORDER(static|none) DAMP BLOCK
"""
import json
import resource
import sys
import time

import torch
import transformers
from llmcompressor import oneshot
from llmcompressor.modifiers.gptq import GPTQModifier
from peer_protocol import calibration_dataset, perplexity


def main() -> None:
    (folder, calib_text, starts_json, seqlen, eval_text, tokens, ctx, threads, bits, group, actorder, damp,
     block) = sys.argv[1:14]
    seqlen, tokens, ctx, threads, bits, group, block = map(int, (seqlen, tokens, ctx, threads, bits, group, block))
    torch.set_num_threads(threads)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    dataset, samples = calibration_dataset(tokenizer, calib_text, starts_json, seqlen)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    recipe = GPTQModifier(
        ignore=["lm_head"], block_size=block, dampening_frac=float(damp),
        actorder=None if actorder == "none" else actorder,
        config_groups={"group_0": {"targets": ["Linear"], "weights": {
            "num_bits": bits, "type": "int", "symmetric": True, "strategy": "group", "group_size": group}}})
    start = time.perf_counter()
    oneshot(model=model, dataset=dataset, recipe=recipe, num_calibration_samples=samples,
            max_seq_length=seqlen, shuffle_calibration_samples=False)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ppl = perplexity(model, tokenizer, eval_text, tokens, ctx)
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "ppl": ppl}))


if __name__ == "__main__":
    main()
