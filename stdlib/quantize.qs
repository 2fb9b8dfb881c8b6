# quantize: weight quantization recipes that run on every architecture qs loads.
# For: any model; the calibrated recipes need a tokenizer (they calibrate on a text).
# Cost: int8_channel and int4_rtn take seconds; int4_gptq, int4_awq and w8a8_smoothquant run
#       the calibration windows through the model twice, block by block (minutes for a 135M
#       model at 128 x 512); mixed_4_8 first quantizes each layer alone and measures the
#       model's predictions (about as long again).
# Use:  use quantize
#       int8_channel
#       int4_gptq text=shakespeare samples=128
#       mixed_4_8 target=4.5
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

recipe mixed_4_8(text="shakespeare", samples=128, seqlen=512, group=128, target=4.5, method="gptq") {
    # 4 bits, and 8 for the layers whose 4-bit rounding moves the model's predictions most,
    # as many as target bits per weight of the layers allows (scales counted): int4 g128 takes
    # 4.125, so target=4.5 keeps about a tenth of the weights at 8 bits.
    calibrate text samples=samples seqlen=seqlen
    autoquant layer.* target=target candidates=[4, 8] group=group method=method
}
