"""llm-compressor's WandaPruningModifier or SparseGPTModifier on CPU, as scripts/bench/prune runs
it beside qs: the same model folder, the same calibration windows (token starts that qs drew,
applied to the same tokenizer's ids), the same sparsity and mask structure, then perplexity
with qs's protocol. Prints one JSON line: prune seconds, peak resident MB, perplexity.

Usage: prune_llmcompressor.py MODEL_DIR CALIB_TEXT STARTS_JSON SEQLEN EVAL_TEXT TOKENS CTX THREADS
       METHOD(wanda|sparsegpt) SPARSITY MASK(0:0|N:M) DAMP BLOCK
"""
import json
import resource
import sys
import time

import torch
import transformers
from llmcompressor import oneshot
from llmcompressor.modifiers.pruning import SparseGPTModifier, WandaPruningModifier
from peer_protocol import calibration_dataset, perplexity


def main() -> None:
    (folder, calib_text, starts_json, seqlen, eval_text, tokens, ctx, threads, method, sparsity, mask, damp,
     block) = sys.argv[1:14]
    seqlen, tokens, ctx, threads, block = map(int, (seqlen, tokens, ctx, threads, block))
    torch.set_num_threads(threads)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    dataset, samples = calibration_dataset(tokenizer, calib_text, starts_json, seqlen)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    if method == "wanda":
        recipe = WandaPruningModifier(sparsity=float(sparsity), mask_structure=mask, targets=["Linear"], ignore=["lm_head"])
    else:
        recipe = SparseGPTModifier(sparsity=float(sparsity), mask_structure=mask, block_size=block, dampening_frac=float(damp),
                                   targets=["Linear"], ignore=["lm_head"])
    start = time.perf_counter()
    oneshot(model=model, dataset=dataset, recipe=recipe, num_calibration_samples=samples,
            max_seq_length=seqlen, shuffle_calibration_samples=False)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    zeros = sum(int((m.weight == 0).sum()) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and "lm_head" not in n)
    total = sum(m.weight.numel() for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and "lm_head" not in n)
    ppl = perplexity(model, tokenizer, eval_text, tokens, ctx)
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "ppl": ppl, "sparsity": zeros / total}))


if __name__ == "__main__":
    main()
