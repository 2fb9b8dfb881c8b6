"""Writes a Hugging Face folder with random weights in Qwen2.5-0.5B's shapes, for benchmarks.

Usage: make_qwen_shaped.py TOKENIZER_FOLDER OUT_FOLDER

Qwen2.5-0.5B's architecture (qwen2: q/k/v biases, 24 blocks, hidden 896, MLP 4864, 14 query
heads and 2 key/value heads of 64, tied embeddings, rope theta 1e6) with the vocabulary of the
tokenizer in TOKENIZER_FOLDER (SmolLM2's 49,152 tokens instead of Qwen's 151,936, so that the
file carries a tokenizer llama.cpp can load; every other shape is Qwen2.5-0.5B's). Weights are
normal with standard deviation 0.02 (norms 1), seeded: speed does not depend on what they say.
"""
import json
import pathlib
import shutil
import sys

import numpy as np
from safetensors.numpy import save_file


def main() -> None:
    source, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    vocab = json.loads((source / "config.json").read_text())["vocab_size"]
    hidden, inter, layers, heads, kv_heads, head_dim = 896, 4864, 24, 14, 2, 64
    config = {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_act": "silu",
        "hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": layers,
        "num_attention_heads": heads, "num_key_value_heads": kv_heads, "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": True, "vocab_size": vocab,
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32",
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if (source / name).exists():
            shutil.copy(source / name, out / name)
    rng = np.random.default_rng(0)

    def normal(*shape):
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)

    tensors = {"model.embed_tokens.weight": normal(vocab, hidden), "model.norm.weight": np.ones(hidden, np.float32)}
    for i in range(layers):
        p = f"model.layers.{i}."
        tensors[p + "input_layernorm.weight"] = np.ones(hidden, np.float32)
        tensors[p + "post_attention_layernorm.weight"] = np.ones(hidden, np.float32)
        tensors[p + "self_attn.q_proj.weight"] = normal(heads * head_dim, hidden)
        tensors[p + "self_attn.q_proj.bias"] = normal(heads * head_dim)
        tensors[p + "self_attn.k_proj.weight"] = normal(kv_heads * head_dim, hidden)
        tensors[p + "self_attn.k_proj.bias"] = normal(kv_heads * head_dim)
        tensors[p + "self_attn.v_proj.weight"] = normal(kv_heads * head_dim, hidden)
        tensors[p + "self_attn.v_proj.bias"] = normal(kv_heads * head_dim)
        tensors[p + "self_attn.o_proj.weight"] = normal(hidden, heads * head_dim)
        tensors[p + "mlp.gate_proj.weight"] = normal(inter, hidden)
        tensors[p + "mlp.up_proj.weight"] = normal(inter, hidden)
        tensors[p + "mlp.down_proj.weight"] = normal(hidden, inter)
    save_file(tensors, str(out / "model.safetensors"))


if __name__ == "__main__":
    main()
