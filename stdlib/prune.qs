# prune: pruning recipes that run on every architecture qs loads.
# For: any model with a tokenizer (they calibrate on a text).
# Cost: each runs the calibration windows through the model block by block (Wanda once and
#       again pruned, SparseGPT as GPTQ does: minutes for a 135M model at 128 x 512).
# Use:  use prune
#       wanda_50
#       sparsegpt_2_4 text=shakespeare samples=128
#       neurons_25_int4
recipe wanda_50(text="shakespeare", samples=128, seqlen=512, amount=50%) {
    # Wanda: |w| times its input's norm, the lowest half of every output row pruned.
    calibrate text samples=samples seqlen=seqlen
    prune layer.* amount method=wanda
}

recipe sparsegpt_2_4(text="shakespeare", samples=128, seqlen=512) {
    # 2 of every 4 weights along the input kept (what sparse tensor cores run), the pruned
    # weights' error spread over the rest.
    calibrate text samples=samples seqlen=seqlen
    prune layer.* 2:4 method=sparsegpt
}

recipe neurons_25_int4(text="shakespeare", samples=128, seqlen=512, group=128) {
    # A quarter of every block's MLP neurons removed (ranked by what they add to the block's
    # output on the calibration text; the same count from each block, so a configuration can
    # describe the model), then the smaller model quantized to int4 with GPTQ.
    calibrate text samples=samples seqlen=seqlen
    prune layer.* neurons=25% uniform by=activation
    quantize layer.* bits=4 group=group method=gptq
}
