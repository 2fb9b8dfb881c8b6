# sanity: quick checks that a loaded causal language model still works after compression.
# For: any causal language model qs loads.
# Cost: one short generation and one `eval ppl` of `tokens` tokens; asserts that perplexity
#       stays within `max_ratio` of the model as loaded.
# Use:  use sanity
#       sanity_check max_ratio=1.1
recipe sanity_check(text="shakespeare", tokens=1024, max_ratio=1.5) {
    generate "Once upon a time" tokens=16
    let r = eval ppl text tokens=tokens
    if r.base_ppl != none {
        assert r.ppl < r.base_ppl * max_ratio, "perplexity {r.ppl} is more than {max_ratio} x the original {r.base_ppl}"
    } else {
        print "the model is as loaded: ppl {r.ppl}"
    }
    r
}
