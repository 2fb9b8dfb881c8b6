"""Perplexity of the real SmolLM2-135M (the registry's GGUF, dequantized by transformers) on the
registry's Shakespeare text, with qs's default protocol; written as a fixture for qs's parity
test. Also records the token ids of the text's start so that the tokenizer is checked too.

Protocol: the text is the files matching *_gut.txt in shksprdata/texts, in byte order of their
names, each file's bytes decoded as UTF-8, joined with a blank line ("\n\n"); its first TOKENS
token ids with no BOS; non-overlapping windows of CONTEXT; every token but the first of a window
scored; ppl = exp(mean NLL).

Usage: make_smollm2_ppl.py GGUF_FILE SHAKESPEARE_TEXTS_DIR
"""
import json
import math
import os
import sys

import torch
import transformers

from qs_text import read_collection

TOKENS = 4096
CONTEXT = 512
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "QSEngineTests", "Fixtures", "real", "smollm2_ppl.json")


def main() -> None:
    gguf_path, texts = sys.argv[1], sys.argv[2]
    # Only the first files are needed for TOKENS tokens.
    text = read_collection(texts, minimum=TOKENS * 8)
    folder, name = os.path.split(gguf_path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, torch_dtype=torch.float32).eval()
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][:TOKENS]
    torch.set_num_threads(2)
    nll, scored = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(ids) - 1, CONTEXT):
            window = torch.tensor([ids[start:start + CONTEXT]])
            logits = model(window).logits[0].double()
            logp = torch.log_softmax(logits, dim=-1)
            targets = window[0, 1:]
            nll -= logp[torch.arange(len(targets)), targets].sum().item()
            scored += len(targets)
    result = {
        "protocol": {"text": "shakespeare", "tokens": TOKENS, "context": CONTEXT, "stride": CONTEXT, "bos": False},
        "perplexity": math.exp(nll / scored),
        "scored": scored,
        "first_ids": ids[:256],
        "transformers": transformers.__version__,
        "torch": torch.__version__,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(result, f, indent=1)
    print(result["perplexity"], scored)


if __name__ == "__main__":
    main()
