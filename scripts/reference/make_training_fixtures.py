"""Gradients of the tiny causal models (Tests/QSEngineTests/Fixtures/arch/<name>: the llama
family and gpt2) from PyTorch autograd, as fixtures for qs's training tests.

For each model: a batch of two sequences of 12 tokens; the next-token cross entropy (mean over
the 2 x 11 predicted positions, as transformers' loss) and its gradient with respect to every
parameter (GPT-2's Conv1D weights in their stored in x out layout); and the distillation
loss T^2 * KL(teacher || model) at T = 2 (mean over all 24 rows) against fixed random teacher
logits, with its gradients.

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


if __name__ == "__main__":
    main()
