"""Builds tiny random models of each supported architecture with transformers, and records
their outputs on a fixed token sequence, as fixtures for qs's forward-pass parity tests.

Writes Tests/QSEngineTests/Fixtures/arch/<name>/{config.json, model.safetensors, expected.json}.
expected.json holds the input ids and the logits (causal LMs) or last hidden states and the
mean-pooled embedding (encoders), in float32. Run once; tests never run it.
Needs: torch, transformers, safetensors.
"""
import json
import os
import sys

import torch
import transformers

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "QSEngineTests", "Fixtures", "arch")

COMMON = dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
              num_attention_heads=4, max_position_embeddings=64)


def models():
    yield "llama", transformers.LlamaConfig(**COMMON, num_key_value_heads=2, rms_norm_eps=1e-5,
                                            rope_theta=10000.0, tie_word_embeddings=False), transformers.LlamaForCausalLM
    yield "smollm2", transformers.LlamaConfig(**COMMON, num_key_value_heads=1, rms_norm_eps=1e-5,
                                              rope_theta=100000.0, tie_word_embeddings=True), transformers.LlamaForCausalLM
    yield "qwen2", transformers.Qwen2Config(**COMMON, num_key_value_heads=2, rms_norm_eps=1e-6,
                                            rope_theta=1000000.0, tie_word_embeddings=False), transformers.Qwen2ForCausalLM
    yield "mistral", transformers.MistralConfig(**COMMON, num_key_value_heads=2, rms_norm_eps=1e-5,
                                                tie_word_embeddings=False), transformers.MistralForCausalLM
    yield "gpt2", transformers.GPT2Config(vocab_size=96, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                                          n_inner=64), transformers.GPT2LMHeadModel
    yield "bert", transformers.BertConfig(vocab_size=96, hidden_size=32, intermediate_size=64,
                                          num_hidden_layers=2, num_attention_heads=4,
                                          max_position_embeddings=64, type_vocab_size=2), transformers.BertModel


def main() -> None:
    torch.manual_seed(0)
    ids = [int(i) for i in torch.randint(0, 96, (23,), generator=torch.Generator().manual_seed(1))]
    for name, config, cls in models():
        model = cls(config).eval()
        with torch.no_grad():
            # Random init leaves norms at 1 and biases at 0: perturb every parameter so that
            # each one matters to the output.
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        folder = os.path.join(ROOT, name)
        os.makedirs(folder, exist_ok=True)
        model.save_pretrained(folder, safe_serialization=True)
        for extra in ("generation_config.json",):
            path = os.path.join(folder, extra)
            if os.path.exists(path):
                os.remove(path)
        x = torch.tensor([ids])
        expected = {"ids": ids, "transformers": transformers.__version__, "torch": torch.__version__}
        with torch.no_grad():
            if name == "bert":
                out = model(input_ids=x).last_hidden_state[0]
                expected["hidden"] = out.flatten().tolist()
                expected["embedding"] = out.mean(dim=0).tolist()
            else:
                logits = model(input_ids=x).logits[0]
                expected["logits"] = logits.flatten().tolist()
                # Incremental decoding must give the same last row: qs checks its KV cache.
        with open(os.path.join(folder, "expected.json"), "w") as f:
            json.dump(expected, f)
        print(name, sum(p.numel() for p in model.parameters()), "parameters", file=sys.stderr)


if __name__ == "__main__":
    main()
