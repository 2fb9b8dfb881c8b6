# sweep: perplexity of the loaded model at several context lengths.
# For: any causal language model qs loads (llama, mistral, qwen2, gpt2, SmolLM2).
# Cost: one `eval ppl` per context: `tokens` tokens through the model each time
#       (SmolLM2-135M, 2 cores: a few seconds per 2048 tokens).
# Use:  use sweep
#       ppl_sweep shakespeare tokens=2048
recipe ppl_sweep(text="shakespeare", tokens=2048, contexts=[128, 256, 512]) {
    let results = []
    for c in contexts {
        let r = eval ppl text ctx=c tokens=tokens
        assert r.ppl > 1, "perplexity {r.ppl} at ctx {c} is below 1: the evaluation is broken"
        print "ctx {c}: ppl {r.ppl}"
        results = results + [r.ppl]
    }
    results
}
