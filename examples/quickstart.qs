# The main job: compress SmolLM2-135M end to end and hand the result to the tools people
# deploy with. Baseline, calibration, a pruning step, GPTQ for the MLP, 8-bit attention,
# evaluation, a compressed-tensors folder transformers loads, a GGUF llama.cpp runs, and an
# HTML report of it all.
# The registry ships SmolLM2 as llama.cpp's Q4_1 GGUF (already about 5.7 bits a weight): those
# values are the baseline, and 8-bit attention takes more bytes than its Q4_1 blocks did.
# Run: qs run examples/quickstart.qs   (scripts/demo sets up, builds and fetches first)

load smollm2-135m
let out = "out/quickstart"
let base = eval ppl shakespeare ctx=512 tokens=4096

# 32 windows of 512 tokens of Hamlet-to-Lear Shakespeare, drawn with seed 0.
calibrate shakespeare samples=32 seqlen=512

# Prune first (a quantized layer is not pruned again): 20% of each MLP row by Wanda's score.
prune layer.*.mlp.* 20% method=wanda

# GPTQ for the MLP, int4 symmetric in groups of 32 (pruned weights stay zero): the grid of
# llama.cpp's Q4_0, so the GGUF holds these codes as they are.
quantize layer.*.mlp.* bits=4 group=32 method=gptq act_order

# 8-bit attention by round-to-nearest, groups of 32: the grid of Q8_0.
quantize layer.*.attn.* bits=8 group=32 clip=none

let r = eval ppl shakespeare ctx=512 tokens=4096
let k = eval kld shakespeare ctx=512 tokens=4096
assert r.ppl < base.ppl * 1.5, "the compressed model lost too much: ppl {r.ppl} against {base.ppl}"

let folder = save "{out}/smollm2-compressed" format=compressed-tensors dtype=f16 overwrite
let gguf = export "{out}/smollm2.gguf" overwrite
# One page of everything above: before/after, size against perplexity, error per layer, bits
# per layer, sparsity, the recipe (save wrote the same page into the folder as report.html).
let page = report html "{out}/report.html" title="SmolLM2-135M: Wanda 20% + GPTQ int4 MLP + int8 attention"

print ""
print "                     baseline     compressed"
print "perplexity           {base.ppl}      {r.ppl}"
print "KL divergence        0            {k.kld}   (top-1 agreement {k.top1})"
print "size MB              {base.size_mb}        {r.size_mb}"
print "bits per weight      {base.bits_per_weight}        {r.bits_per_weight}"
print "(the same weights as f16: {base.params * 2 / 1000000} MB)"
print ""
print "compressed-tensors:  {folder.path}   (transformers: AutoModelForCausalLM.from_pretrained)"
print "GGUF:                {gguf.path}   ({gguf.size_mb} MB)"
print "run it in llama.cpp: {gguf.run}"
print "the report:          {page.path}   (open it in a browser)"
