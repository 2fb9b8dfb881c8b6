# train: training recipes for llama-family models (llama, mistral, qwen2, SmolLM2).
# For: a model with a tokenizer; training runs on CPU (SmolLM2-135M, 2 cores: about 5 s a
#      step of 4 x 256 tokens end to end; tune blocks about 0.15 s a step a block).
# Use:  use train
#       prune_retrain shakespeare
#       int4_tuned shakespeare
#       int4_qat shakespeare steps=200
recipe prune_retrain(text="shakespeare", amounts=[10%, 20%, 30%, 40%, 50%], method="wanda", samples=64, steps=50, lr=5e-5, seqlen=256) {
    # Iterative pruning: each amount in turn (the layers end at the last), with training
    # between the steps so the weights left take over the work of those removed. Each step
    # chooses by Wanda's |W| x input norm (calibrated on the text; this replaces a calibration
    # set made before) or, with method="magnitude", by |W| alone. The masks hold during
    # training: a pruned weight stays zero. On SmolLM2 (Hamlet: 64 windows of 512 to calibrate,
    # 30 training steps after each step) Wanda steps ended at 59.7 ppl on Macbeth, magnitude
    # steps at 95.5, one-shot Wanda 50% at 82.2 (scripts/check-training, part 4).
    if method != "magnitude" {
        calibrate text samples=samples seqlen=seqlen
    }
    let losses = []
    for amount in amounts {
        prune layer.* amount method=method
        let r = finetune text steps=steps lr=lr seqlen=seqlen
        print "pruned to {amount} ({method}): loss {r.first_loss} -> {r.last_loss}"
        losses = losses + [r.last_loss]
    }
    losses
}

recipe int4_tuned(text="shakespeare", group=64, samples=64, seqlen=512, steps=40, lr=1e-4) {
    # Round-to-nearest int4, then block-wise reconstruction: each block learns, within its
    # grid, to give the original block's outputs on the calibration windows.
    calibrate text samples=samples seqlen=seqlen
    quantize layer.* bits=4 sym group=group
    tune blocks steps=steps batch=2 lr=lr
}

recipe int4_qat(text="shakespeare", group=64, steps=200, lr=2e-5) {
    # Quantization-aware distillation: int4 weights trained through fake quantization against
    # the model as loaded, then packed again on their grid.
    quantize layer.* bits=4 sym group=group
    finetune text loss=kd steps=steps lr=lr
}
