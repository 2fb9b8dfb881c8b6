# quantize: weight quantization recipes that run on every architecture qs loads.
# For: any model; the GPTQ recipe needs a tokenizer (it calibrates on a text).
# Cost: int8_channel and int4_rtn take seconds; int4_gptq and int4_awq run the calibration windows
#       through the model twice, block by block (minutes for a 135M model at 128 x 512).
# Use:  use quantize
#       int8_channel
#       int4_gptq text=shakespeare samples=128
recipe int8_channel() {
    # One scale and zero point per output row: the asymmetric grid kept SmolLM2 within 0.2%
    # of its perplexity where the symmetric one cost 0.7% (docs/quantization.md).
    quantize layer.* bits=8 group=channel asym clip=none
}

recipe int4_rtn(group=128) {
    quantize layer.* bits=4 group=group
}

recipe int4_gptq(text="shakespeare", samples=128, seqlen=512, group=128) {
    calibrate text samples=samples seqlen=seqlen
    quantize layer.* bits=4 group=group method=gptq act_order
}

recipe int4_awq(text="shakespeare", samples=128, seqlen=512, group=128) {
    calibrate text samples=samples seqlen=seqlen
    quantize layer.* bits=4 group=group method=awq
}

recipe w8a8_smoothquant(text="shakespeare", samples=128, seqlen=512, alpha=0.5) {
    # int8 weights per output row and int8 activations per token, after SmoothQuant's smoothing.
    calibrate text samples=samples seqlen=seqlen
    quantize layer.* bits=8 group=channel act_bits=8 smooth=alpha
}
