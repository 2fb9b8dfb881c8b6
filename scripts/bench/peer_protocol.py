"""What the peer scripts of scripts/bench share: qs's calibration windows applied to the peer's
tokenizer, and perplexity with qs's protocol (the first TOKENS ids, no BOS, non-overlapping
windows of CTX, every token but a window's first scored)."""
import json
import math

import torch
from datasets import Dataset


def calibration_dataset(tokenizer, calib_text, starts_json, seqlen):
    """The windows qs drew (their token starts), as a dataset for llm-compressor's oneshot."""
    ids = tokenizer(open(calib_text, encoding="utf-8").read(), add_special_tokens=False)["input_ids"]
    windows = [ids[s:s + seqlen] for s in json.load(open(starts_json))]
    assert all(len(w) == seqlen for w in windows), "a window runs past the text: the tokenizers disagree"
    return Dataset.from_dict({"input_ids": windows, "attention_mask": [[1] * seqlen for _ in windows]}), len(windows)


def perplexity(model, tokenizer, eval_text, tokens, ctx):
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
    return math.exp(nll / scored)
