# Perplexity throughput of qs on SmolLM2 (scripts/bench/eval sets tokens and ctx).
load smollm2-135m
eval ppl shakespeare tokens=256 ctx=256
eval ppl shakespeare tokens=tokens ctx=ctx
