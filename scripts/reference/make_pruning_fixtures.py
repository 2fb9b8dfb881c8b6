"""The published pruning algorithms, written out in PyTorch in double precision, run on small
random matrices, as fixtures for qs's pruning: magnitude pruning as torch.nn.utils.prune does it
(global and per layer), Wanda (Sun et al., 2023) and SparseGPT (Frantar & Alistarh, 2023), the
latter alone and with joint quantization on GPTQ's grid.

Writes Tests/QSEngineTests/Fixtures/pruning/cases.json with four sections:
  global, local  torch.nn.utils.prune.global_unstructured / l1_unstructured (L1Unstructured)
                 called on nn.Linear modules holding the weights: each layer's W and mask
  wanda          W, the inputs X, the mask and W with the pruned entries zeroed
  sparsegpt      W, X, the settings, the mask and the pruned, updated (possibly quantized) W,
                 and with quantization the scales and zero points per (row, group)
Conventions: W is [rows, columns] = [out, in] and X is [tokens, columns], both flattened row by
row; a mask is 0/1 per element of W, 1 = kept. N:M (fields keep = N, group = M) keeps N of every
M consecutive input columns of each row, groups starting at column 0; unstructured cases have
keep = group = 0. A fraction s of n elements prunes exactly floor(n * s) of them (n * s in
double precision, n an integer) — no off-by-one; the script checks that every count is exact,
and that no two scores at a cut are close enough to be swapped by rounding.
Run once (tests never run it). Needs: torch.
  python3 -m venv .build/venv-ref && .build/venv-ref/bin/pip install torch numpy
  .build/venv-ref/bin/python scripts/reference/make_pruning_fixtures.py
"""
import json
import math
import os

import torch

from make_gptq_fixtures import grid, quantize
import torch.nn.utils.prune as prune

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "QSEngineTests", "Fixtures", "pruning", "cases.json")

# The smallest relative gap allowed between the last pruned and the first kept score of a cut,
# so that an implementation computing the scores with other rounding picks the same elements.
MIN_GAP = 1e-6


def floats(t):
    return [float(v) for v in t.flatten()]


def ints(t):
    return [int(v) for v in t.flatten()]


def count_pruned(n, fraction):
    """How many of n elements a fraction prunes: floor(n * fraction), exactly."""
    return math.floor(n * fraction)


def check_gap(scores, k):
    """The k smallest of scores (1-D) are clearly below the rest."""
    if k == 0 or k == scores.numel():
        return
    s = torch.sort(scores).values
    lo, hi = float(s[k - 1]), float(s[k])
    assert hi - lo > MIN_GAP * max(abs(hi), 1e-300), f"near tie at the cut: {lo} vs {hi}"


def lowest(scores, k):
    """A boolean mask of the k smallest entries of a 1-D tensor of scores."""
    check_gap(scores, k)
    out = torch.zeros(scores.numel(), dtype=torch.bool)
    if k > 0:
        out[torch.topk(scores, k, largest=False).indices] = True
    return out


def inputs(gen, tokens, columns):
    """Inputs with uneven channel scales and correlations, as real activations have."""
    base = torch.randn(tokens, columns, generator=gen)
    mix = torch.eye(columns) + 0.3 * torch.randn(columns, columns, generator=gen)
    return (base @ mix * torch.linspace(0.2, 3.0, columns)).float().double()


# Magnitude pruning: the torch functions themselves.

MAGNITUDE_SHAPES = [(8, 12), (16, 8), (5, 20)]
# torch prunes round(amount * n) (Python's round); these amounts were picked so that it equals
# floor(amount * n) for the sizes here (total 324 for global, 96, 128 and 100 for local).
GLOBAL_CASES = [("global-30pct", 0.3), ("global-50pct", 0.5), ("global-77pct", 0.77)]
LOCAL_CASES = [("local-40pct", 0.4), ("local-65pct", 0.65)]


def magnitude(gen, name, amount, is_global):
    layers = []
    for rows, columns in MAGNITUDE_SHAPES:
        layer = torch.nn.Linear(columns, rows, bias=False)
        with torch.no_grad():
            layer.weight.copy_(torch.randn(rows, columns, generator=gen).float().double())
        layers.append(layer)
    W = [layer.weight.detach().clone() for layer in layers]
    if is_global:
        total = sum(w.numel() for w in W)
        check_gap(torch.cat([w.abs().flatten() for w in W]), count_pruned(total, amount))
        prune.global_unstructured([(layer, "weight") for layer in layers], pruning_method=prune.L1Unstructured, amount=amount)
        pruned = sum(int((layer.weight_mask == 0).sum()) for layer in layers)
        assert pruned == count_pruned(total, amount), (name, pruned, total)
    else:
        for layer, w in zip(layers, W):
            check_gap(w.abs().flatten(), count_pruned(w.numel(), amount))
            prune.l1_unstructured(layer, "weight", amount=amount)
            assert int((layer.weight_mask == 0).sum()) == count_pruned(w.numel(), amount), name
    out = []
    for layer, w in zip(layers, W):
        mask = layer.weight_mask.detach()
        assert torch.equal(layer.weight.detach(), w * mask)
        out.append(dict(rows=w.shape[0], columns=w.shape[1], W=floats(w), kept=ints(mask)))
    return dict(name=name, amount=amount, layers=out)


# Wanda: |W_ij| * ||X_:,j||_2, compared within each output row (or each row's group of M).

WANDA_CASES = [
    # name, rows, columns, tokens, sparsity, keep, group
    ("unstructured-50pct", 8, 32, 32, 0.5, 0, 0),
    ("unstructured-30pct-ragged", 7, 23, 20, 0.3, 0, 0),
    ("2of4", 8, 32, 32, 0.5, 2, 4),
    ("4of8", 6, 40, 24, 0.5, 4, 8),
    ("1of4", 5, 24, 16, 0.75, 1, 4),
]


def wanda(W, X, sparsity, keep, group):
    rows, columns = W.shape
    S = W.abs() * X.norm(dim=0)
    pruned = torch.zeros(rows, columns, dtype=torch.bool)
    for r in range(rows):
        if group == 0:
            pruned[r] = lowest(S[r], count_pruned(columns, sparsity))
        else:
            for c in range(0, columns, group):
                pruned[r, c:c + group] = lowest(S[r, c:c + group], group - keep)
    kept = (~pruned).to(torch.int64)
    return kept, W * kept


# SparseGPT, with GPTQ's quantizer: the grid of make_gptq_fixtures.py, imported.

def sparsegpt(W, X, sparsity, keep, group, block, damp, bits, sym, qgroup):
    W = W.clone()
    rows, columns = W.shape
    H = X.t() @ X * (2 / X.shape[0])
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H[range(columns), range(columns)] += damp * torch.mean(torch.diag(H))
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    if group > 0:
        assert block % group == 0 and columns % group == 0
    scales = zeros = None
    if bits > 0:
        if qgroup > 0:
            # A quantization group never straddles a block; its grid is read from the
            # block's columns as the block began (W, not W1), as the published GPTQ and
            # SparseGPT code do.
            assert block % qgroup == 0 and columns % qgroup == 0
            scales = torch.zeros(rows, columns // qgroup)
            zeros = torch.zeros(rows, columns // qgroup)
        else:
            scale, zero = grid(W, bits, sym)
            scales, zeros = scale.reshape(rows, 1), zero.reshape(rows, 1)
    pruned = torch.zeros(rows, columns, dtype=torch.bool)
    for i1 in range(0, columns, block):
        i2 = min(i1 + block, columns)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        d = torch.diag(Hinv1)
        mask1 = torch.zeros(rows, count, dtype=torch.bool)
        if group == 0:
            # The whole block's mask at once, from the block as it begins.
            k = count_pruned(rows * count, sparsity)
            mask1 = lowest((W1 ** 2 / d.reshape(1, -1) ** 2).flatten(), k).reshape(rows, count)
            assert int(mask1.sum()) == k
        for i in range(count):
            if group > 0 and i % group == 0:
                # Each row's next M columns, scored as they are now.
                tmp = W1[:, i:i + group] ** 2 / d[i:i + group].reshape(1, -1) ** 2
                for r in range(rows):
                    mask1[r, i:i + group] = lowest(tmp[r], group - keep)
            if bits > 0 and qgroup > 0 and i % qgroup == 0:
                scale, zero = grid(W[:, i1 + i:i1 + i + qgroup], bits, sym)
                scales[:, (i1 + i) // qgroup], zeros[:, (i1 + i) // qgroup] = scale, zero
            w = W1[:, i]
            q = w.clone()
            q[mask1[:, i]] = 0
            if bits > 0:
                q = quantize(q, scale, zero, bits)
            Q1[:, i] = q
            err = (w - q) / d[i]
            W1[:, i:] -= err.unsqueeze(1) @ Hinv1[i, i:].unsqueeze(0)
            Err1[:, i] = err
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
        pruned[:, i1:i2] = mask1
    return (~pruned).to(torch.int64), W, scales, zeros


SPARSEGPT_CASES = [
    # name, rows, columns, tokens, sparsity, keep, group, block, bits, sym, qgroup, dead columns
    ("50pct-blocks-of-16", 12, 48, 64, 0.5, 0, 0, 16, 0, False, 0, []),
    ("60pct-one-block", 12, 48, 64, 0.6, 0, 0, 128, 0, False, 0, []),
    ("2of4-blocks-of-16", 12, 48, 64, 0.5, 2, 4, 16, 0, False, 0, []),
    ("50pct-int4-sym-channel", 10, 32, 48, 0.5, 0, 0, 16, 4, True, 0, []),
    ("50pct-int4-asym-g16", 8, 48, 64, 0.5, 0, 0, 16, 4, False, 16, []),
    ("2of4-int3-sym-g8", 9, 32, 40, 0.5, 2, 4, 16, 3, True, 8, []),
    ("45pct-dead-column-ragged-blocks", 8, 40, 48, 0.45, 0, 0, 16, 0, False, 0, [5]),
]


def check_mask(kept, sparsity, keep, group, block):
    """The mask [rows, columns] prunes exactly what was asked: floor(n * sparsity) per block
    (block = 0: per row), or M - N of each row's every M columns."""
    rows, columns = kept.shape
    pruned = kept == 0
    if group > 0:
        counts = pruned.reshape(rows, columns // group, group).sum(2)
        assert bool((counts == group - keep).all())
    elif block == 0:
        assert all(int(pruned[r].sum()) == count_pruned(columns, sparsity) for r in range(rows))
    else:
        for i1 in range(0, columns, block):
            i2 = min(i1 + block, columns)
            assert int(pruned[:, i1:i2].sum()) == count_pruned(rows * (i2 - i1), sparsity)


def main():
    gen = torch.Generator().manual_seed(11)
    torch.set_default_dtype(torch.float64)
    out = dict(source="scripts/reference/make_pruning_fixtures.py")
    out["global"] = [magnitude(gen, name, amount, True) for name, amount in GLOBAL_CASES]
    out["local"] = [magnitude(gen, name, amount, False) for name, amount in LOCAL_CASES]

    out["wanda"] = []
    for name, rows, columns, tokens, sparsity, keep, group in WANDA_CASES:
        W = torch.randn(rows, columns, generator=gen).float().double()
        X = inputs(gen, tokens, columns)
        kept, pruned = wanda(W, X, sparsity, keep, group)
        check_mask(kept, sparsity, keep, group, 0)
        assert bool((pruned[kept == 0] == 0).all())
        out["wanda"].append(dict(name=name, rows=rows, columns=columns, tokens=tokens, sparsity=sparsity,
                                 keep=keep, group=group, W=floats(W), X=floats(X), kept=ints(kept), pruned=floats(pruned)))

    out["sparsegpt"] = []
    for name, rows, columns, tokens, sparsity, keep, group, block, bits, sym, qgroup, dead in SPARSEGPT_CASES:
        W = torch.randn(rows, columns, generator=gen).float().double()
        X = inputs(gen, tokens, columns)
        X[:, dead] = 0
        kept, updated, scales, zeros = sparsegpt(W, X, sparsity, keep, group, block, 0.01, bits, sym, qgroup)
        check_mask(kept, sparsity, keep, group, block)
        assert bool((updated[kept == 0] == 0).all())
        assert all(bool((kept[:, j] == 0).all()) for j in dead)
        case = dict(name=name, rows=rows, columns=columns, tokens=tokens, sparsity=sparsity, keep=keep, group=group,
                    block=block, damp=0.01, bits=bits, sym=sym, qgroup=qgroup, W=floats(W), X=floats(X),
                    kept=ints(kept), updated=floats(updated))
        if bits > 0:
            # Every kept weight lies on its row's grid.
            gs = qgroup if qgroup > 0 else columns
            s = scales.repeat_interleave(gs, dim=1)
            z = zeros.repeat_interleave(gs, dim=1)
            codes = updated / s + z
            assert bool(((codes - codes.round()).abs() < 1e-9).all())
            assert bool(((codes.round() >= 0) & (codes.round() <= 2 ** bits - 1)).all())
            case.update(scales=floats(scales), zeros=floats(zeros))
        out["sparsegpt"].append(case)

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f)
    print(f"wrote {sum(len(v) for v in out.values() if isinstance(v, list))} cases to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
