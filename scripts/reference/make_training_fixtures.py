"""Gradients of the tiny causal models (Tests/QSEngineTests/Fixtures/arch/<name>: the llama
family and gpt2) from PyTorch autograd, as fixtures for qs's training tests.

For each model: a batch of two sequences of 12 tokens; the next-token cross entropy (mean over
the 2 x 11 predicted positions, as transformers' loss) and its gradient with respect to every
parameter (GPT-2's Conv1D weights in their stored in x out layout); and the distillation
loss T^2 * KL(teacher || model) at T = 2 (mean over all 24 rows) against fixed random teacher
logits, with its gradients. For the BERT encoder (no vocabulary projection): only "kd", the mean
squared error of its last hidden states (attention over all 12 tokens, token type 0) against
fixed random targets, with its gradients.

Writes Tests/QSEngineTests/Fixtures/training/<name>.json. Run once; tests never run it.
Needs: torch, transformers, safetensors.
"""
import json
import os

import torch
import transformers

HERE = os.path.dirname(__file__)
ARCH = os.path.join(HERE, "..", "..", "Tests", "QSEngineTests", "Fixtures", "arch")
OUT = os.path.join(HERE, "..", "..", "Tests", "QSEngineTests", "Fixtures", "training")
TEMPERATURE = 2.0


def gradients(model):
    return {name: [float(f"{v:.8g}") for v in p.grad.detach().flatten().tolist()]
            for name, p in model.named_parameters() if p.grad is not None}


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(0, 96, (2, 12), generator=generator)
    teacher = torch.randn(2, 12, 96, generator=generator) * 3
    for name in ["llama", "smollm2", "qwen2", "gpt2"]:
        folder = os.path.join(ARCH, name)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            folder, torch_dtype=torch.float32, attn_implementation="eager")
        model.train(False)
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        ce = {"loss": float(out.loss), "gradients": gradients(model)}
        model.zero_grad()
        logits = model(input_ids=ids).logits
        student = torch.log_softmax(logits / TEMPERATURE, dim=-1)
        target = torch.log_softmax(teacher / TEMPERATURE, dim=-1)
        kl = (target.exp() * (target - student)).sum(-1).mean() * TEMPERATURE ** 2
        kl.backward()
        kd = {"loss": float(kl), "gradients": gradients(model)}
        record = {
            "ids": ids.tolist(), "temperature": TEMPERATURE,
            "teacher_logits": [float(f"{v:.8g}") for v in teacher.flatten().tolist()],
            "ce": ce, "kd": kd,
        }
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            json.dump(record, f)
        print(name, "ce", ce["loss"], "kd", kd["loss"])

    # The encoder: its last hidden states against fixed random targets.
    model = transformers.AutoModel.from_pretrained(
        os.path.join(ARCH, "bert"), torch_dtype=torch.float32, attn_implementation="eager")
    model.train(False)
    target = torch.randn(2, 12, model.config.hidden_size, generator=generator)
    # Token ids from 1: id 0 is BERT's padding token, whose embedding row PyTorch never updates
    # (padding_idx), and which text never holds.
    ids = torch.randint(1, 96, (2, 12), generator=generator)
    hidden = model(input_ids=ids, token_type_ids=torch.zeros_like(ids)).last_hidden_state
    mse = ((hidden - target) ** 2).mean()
    mse.backward()
    record = {
        "ids": ids.tolist(), "temperature": 1.0,
        "teacher_logits": [float(f"{v:.8g}") for v in target.flatten().tolist()],
        "kd": {"loss": float(mse), "gradients": gradients(model)},
    }
    with open(os.path.join(OUT, "bert.json"), "w") as f:
        json.dump(record, f)
    print("bert", "mse", float(mse))


if __name__ == "__main__":
    main()
