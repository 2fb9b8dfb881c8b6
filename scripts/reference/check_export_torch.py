"""Checks 2 and 3 of scripts/check-export, and the token ids check 4 evaluates on.

Usage:
  check_export_torch.py ids MODEL_FOLDER TEXT TOKENS OUT_JSON
      The first TOKENS ids of TEXT by the model's Hugging Face tokenizer (no special tokens).
  check_export_torch.py dense FOLDER TEXT TOKENS CTX QS_PPL QS_TOKENS
      Check 2: transformers loads qs's dense folder; its perplexity (qs's protocol) within 0.1%
      of qs's.
  check_export_torch.py ct CT_FOLDER DENSE_FOLDER TEXT TOKENS CTX QS_PPL QS_TOKENS
      Check 3: transformers + compressed-tensors decompress qs's compressed-tensors folder
      (CompressedTensorsConfig(dequantize=True)); every tensor must equal qs's dense f32 save of
      the same state, and the perplexity must be within 0.5% of qs's.

Each check prints its figures and one PASS or FAIL line, and exits 1 on FAIL.
"""
import json
import os
import re
import sys

import torch
import transformers
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
from peer_protocol import perplexity  # noqa: E402


def load_folder(folder):
    tensors = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".safetensors"):
            tensors.update(load_file(os.path.join(folder, name)))
    return tensors


def text_ids(tokenizer, text, tokens):
    return tokenizer(open(text, encoding="utf-8").read(), add_special_tokens=False)["input_ids"][:tokens]


def report_ppl(number, what, peer, qs, qs_tokens, scored, limit):
    rel = abs(peer - qs) / qs
    ok = rel <= limit and qs_tokens == scored
    tokens_note = "" if qs_tokens == scored else f"; token counts differ: qs {qs_tokens}, transformers {scored}"
    print(f"{'PASS' if ok else 'FAIL'} {number} {what}: transformers ppl {peer:.4f}, qs ppl {qs:.4f}, "
          f"relative difference {100 * rel:.4f}% (limit {100 * limit:g}%){tokens_note}")
    return ok


def main():
    mode = sys.argv[1]
    torch.set_num_threads(int(os.environ.get("QS_THREADS", os.cpu_count() or 1)))
    if mode == "ids":
        folder, text, tokens, out = sys.argv[2:6]
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        json.dump(text_ids(tokenizer, text, int(tokens)), open(out, "w"))
        return
    if mode == "dense":
        folder, text, tokens, ctx, qs_ppl, qs_tokens = sys.argv[2:8]
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        scored = len(text_ids(tokenizer, text, int(tokens)))
        peer = perplexity(model, tokenizer, text, int(tokens), int(ctx))
        ok = report_ppl(2, "transformers reads qs's dense folder (int4 g64 asym RTN)", peer, float(qs_ppl),
                        int(qs_tokens), scored, 0.001)
        sys.exit(0 if ok else 1)
    if mode == "ct":
        folder, dense_folder, text, tokens, ctx, qs_ppl, qs_tokens = sys.argv[2:9]
        config = json.load(open(os.path.join(folder, "config.json")))
        qconfig = config["quantization_config"]
        groups = qconfig.get("config_groups", {})
        print(f"  compressed-tensors folder: format {qconfig.get('format')}, {len(groups)} config groups:")
        for g in groups.values():
            w = g["weights"]
            targets = sorted({re.sub(r"\.\d+\.", ".*.", t) for t in g["targets"]})
            print(f"    {w['num_bits']}-bit {w['type']} {w['strategy']}"
                  f"{' ' + str(w['group_size']) if w.get('group_size') else ''} {'sym' if w['symmetric'] else 'asym'} "
                  f"({g.get('format') or qconfig.get('format')}): {len(g['targets'])} layers, {', '.join(targets)}")
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            folder, dtype=torch.float32, quantization_config=transformers.CompressedTensorsConfig(dequantize=True))
        expected = load_folder(dense_folder)
        state = {k: v for k, v in model.state_dict().items()}
        if "lm_head.weight" not in expected and "lm_head.weight" in state:
            expected["lm_head.weight"] = expected["model.embed_tokens.weight"]
        compared = identical = 0
        worst = 0.0
        problems = []
        for name, want in sorted(expected.items()):
            if name not in state:
                problems.append(f"{name}: not in the decompressed model")
                continue
            got = state[name].detach().to(torch.float32)
            compared += 1
            if got.shape != want.shape:
                problems.append(f"{name}: shape {tuple(got.shape)}, qs {tuple(want.shape)}")
                continue
            if torch.equal(got.view(torch.int32), want.view(torch.int32)):
                identical += 1
            else:
                diff = (got - want).abs().max().item()
                worst = max(worst, diff)
                problems.append(f"{name}: max |diff| {diff:.3g}")
        extra = sorted(k for k in state if k not in expected and not k.endswith(("_scale", "_zero_point", "g_idx", "_shape")))
        if extra:
            problems.append(f"in the decompressed model, not in qs's dense folder: {', '.join(extra[:5])}")
        for line in problems[:10]:
            print(f"    {line}")
        weights_ok = not problems
        print(f"{'PASS' if weights_ok else 'FAIL'} 3 compressed-tensors decompresses qs's folder to qs's values: "
              f"{identical}/{compared} tensors bit-identical to qs's dense f32 save (max |diff| {worst:.3g})")
        scored = len(text_ids(tokenizer, text, int(tokens)))
        peer = perplexity(model, tokenizer, text, int(tokens), int(ctx))
        ppl_ok = report_ppl(3, "perplexity of the decompressed model", peer, float(qs_ppl), int(qs_tokens), scored, 0.005)
        sys.exit(0 if weights_ok and ppl_ok else 1)
    sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
