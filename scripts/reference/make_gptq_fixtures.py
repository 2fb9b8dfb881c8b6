"""The published GPTQ algorithm (Frantar et al., 2022; the reference `fasterquant`), written
out in PyTorch in double precision, run on small random matrices, as fixtures for qs's GPTQ.

Writes Tests/QSEngineTests/Fixtures/gptq/cases.json: for each case the weight W [rows, columns],
the calibration inputs X [tokens, columns], the settings, and what GPTQ produced: the
dequantized weight, the scales and zero points per (row, group), and g_idx.
Run once (tests never run it). Needs: torch, numpy.
  python3 -m venv .build/venv-ref && .build/venv-ref/bin/pip install torch numpy
  .build/venv-ref/bin/python scripts/reference/make_gptq_fixtures.py
"""
import json
import math
import os

import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "QSEngineTests", "Fixtures", "gptq", "cases.json")


def grid(x, bits, sym):
    """Per-row min-max grid of x [rows, n]: the reference quantizer's find_params."""
    maxq = 2 ** bits - 1
    xmin = torch.minimum(x.min(1).values, torch.zeros(x.shape[0], dtype=x.dtype))
    xmax = torch.maximum(x.max(1).values, torch.zeros(x.shape[0], dtype=x.dtype))
    if sym:
        xmax = torch.maximum(xmin.abs(), xmax)
        xmin = torch.where(xmin < 0, -xmax, xmin)
    both_zero = (xmin == 0) & (xmax == 0)
    xmin[both_zero] = -1
    xmax[both_zero] = 1
    scale = (xmax - xmin) / maxq
    zero = torch.full_like(scale, (maxq + 1) / 2) if sym else torch.round(-xmin / scale)
    return scale, zero


def quantize(x, scale, zero, bits):
    q = torch.clamp(torch.round(x / scale) + zero, 0, 2 ** bits - 1)
    return scale * (q - zero)


def gptq(W, X, bits, sym, groupsize, act_order, static_groups, blocksize, percdamp):
    W = W.clone()
    rows, columns = W.shape
    H = X.t() @ X * (2 / X.shape[0])
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    gs = groupsize if groupsize > 0 else columns
    groups = []
    if static_groups and groupsize > 0:
        for i in range(0, columns, gs):
            groups.append(grid(W[:, i:i + gs], bits, sym))
    if act_order:
        perm = torch.argsort(torch.diag(H), descending=True)
        W = W[:, perm]
        H = H[perm][:, perm]
        invperm = torch.argsort(perm)
    Q = torch.zeros_like(W)
    H[range(columns), range(columns)] += percdamp * torch.mean(torch.diag(H))
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    n_groups = math.ceil(columns / gs)
    scales = torch.zeros(rows, n_groups, dtype=W.dtype)
    zeros = torch.zeros(rows, n_groups, dtype=W.dtype)
    scale, zero = grid(W, bits, sym) if groupsize <= 0 else (None, None)
    if groupsize <= 0:
        scales[:, 0], zeros[:, 0] = scale, zero
    for i1 in range(0, columns, blocksize):
        i2 = min(i1 + blocksize, columns)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            if groupsize > 0:
                if static_groups:
                    idx = i1 + i
                    if act_order:
                        idx = perm[idx]
                    scale, zero = groups[idx // gs]
                elif (i1 + i) % gs == 0:
                    scale, zero = grid(W[:, i1 + i:i1 + i + gs], bits, sym)
                    scales[:, (i1 + i) // gs], zeros[:, (i1 + i) // gs] = scale, zero
            q = quantize(w, scale, zero, bits)
            Q1[:, i] = q
            err = (w - q) / d
            W1[:, i:] -= err.unsqueeze(1) @ Hinv1[i, i:].unsqueeze(0)
            Err1[:, i] = err
        Q[:, i1:i2] = Q1
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
    if static_groups and groupsize > 0:
        for g, (scale, zero) in enumerate(groups):
            scales[:, g], zeros[:, g] = scale, zero
    g_idx = [i // gs for i in range(columns)]
    if act_order:
        Q = Q[:, invperm]
        g_idx = [g_idx[int(j)] for j in invperm]
    return Q, scales, zeros, g_idx


CASES = [
    # name, rows, columns, tokens, bits, sym, group, act_order, static_groups, block
    ("int4-g16-sym-ragged", 12, 40, 96, 4, True, 16, False, False, 128),
    ("int3-channel-asym", 10, 32, 80, 3, False, 0, False, False, 128),
    ("int4-g12-asym-blocks-of-16", 8, 48, 120, 4, False, 12, False, False, 16),
    ("int4-g8-sym-actorder-static", 9, 32, 64, 4, True, 8, True, True, 128),
    ("int4-g8-asym-actorder-gidx", 9, 32, 64, 4, False, 8, True, False, 128),
    ("int2-channel-sym-actorder-blocks-of-8", 6, 24, 50, 2, True, 0, True, False, 8),
]


def main():
    gen = torch.Generator().manual_seed(7)
    torch.set_default_dtype(torch.float64)
    out = []
    for name, rows, columns, tokens, bits, sym, group, act_order, static, block in CASES:
        W = torch.randn(rows, columns, generator=gen).float().double()
        # Inputs with uneven channel scales and correlations, as real activations have.
        base = torch.randn(tokens, columns, generator=gen)
        mix = torch.eye(columns) + 0.3 * torch.randn(columns, columns, generator=gen)
        X = (base @ mix * torch.linspace(0.2, 3.0, columns)).float().double()
        Q, scales, zeros, g_idx = gptq(W, X, bits, sym, group, act_order, static, block, 0.01)
        out.append(dict(name=name, rows=rows, columns=columns, bits=bits, sym=sym, group=group,
                        act_order=act_order, static_groups=static, block=block, damp=0.01,
                        W=[float(v) for v in W.flatten()], X=[float(v) for v in X.flatten()],
                        dequantized=[float(v) for v in Q.flatten()],
                        scales=[float(v) for v in scales.flatten()], zeros=[float(v) for v in zeros.flatten()],
                        g_idx=[int(v) for v in g_idx]))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(dict(source="scripts/reference/make_gptq_fixtures.py", cases=out), f)
    print(f"wrote {len(out)} cases to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
