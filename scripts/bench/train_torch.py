"""PyTorch side of scripts/bench/train: full training steps of a causal LM (forward, backward,
AdamW over every parameter) on random windows of a text; prints the seconds of each step as
JSON. Arguments: model folder, text file, steps, batch, seqlen, threads."""
import json
import random
import sys
import time

import torch
import transformers


def main() -> None:
    folder, text, steps, batch, seqlen, threads = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
    torch.set_num_threads(threads)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32)
    model.train()
    ids = tokenizer(open(text, encoding="utf-8", errors="replace").read())["input_ids"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)
    rng = random.Random(0)
    seconds = []
    for _ in range(steps):
        starts = [rng.randrange(0, len(ids) - seqlen) for _ in range(batch)]
        x = torch.tensor([ids[s:s + seqlen] for s in starts])
        began = time.perf_counter()
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds.append(time.perf_counter() - began)
    print(json.dumps(seconds))


if __name__ == "__main__":
    main()
