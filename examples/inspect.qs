# The main job for now: load SmolLM2, look inside, measure it, and let it speak.
load smollm2-135m
info
layers layer.0.*
let r = eval ppl shakespeare ctx=512 tokens=2048
print "SmolLM2-135M: ppl {r.ppl} on {r.tokens} tokens of Shakespeare, {r.size_mb} MB, {r.bits_per_weight} bits/weight"
assert r.ppl < 60, "SmolLM2 should read Shakespeare better than that"
generate "The capital of France is" tokens=16
