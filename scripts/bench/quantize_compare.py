"""Compares the tensors of two GGUF files with the gguf package: names, types, shapes and the
bytes of their data, and the metadata keys. Prints one line per pair of types (how many
tensors, how many with identical bytes; for the 32-value block types, how many blocks differ and
in how many of those the scales are the same, i.e. only codes differ), the first tensors that
differ, the metadata keys that differ, and a total line.

Usage: quantize_compare.py LABEL_A A.gguf LABEL_B B.gguf
"""
import sys

import numpy as np
from gguf import GGUFReader

# bytes per block of 32 values, and how many leading bytes hold the block's scale (and min)
BLOCKS = {"Q8_0": (34, 2), "Q4_0": (18, 2), "Q4_1": (20, 4), "Q5_0": (22, 2), "Q5_1": (24, 4)}


def field_value(field):
    try:
        return field.contents()
    except Exception:  # an array type the reader does not decode: compare its raw parts
        return [bytes(np.asarray(p).tobytes()) for p in field.parts]


def main() -> None:
    label_a, path_a, label_b, path_b = sys.argv[1:5]
    reader_a, reader_b = GGUFReader(path_a), GGUFReader(path_b)
    a = {t.name: t for t in reader_a.tensors}
    b = {t.name: t for t in reader_b.tensors}
    pairs = {}
    notes = []
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            notes.append(f"{name}: only in {label_a if name in a else label_b}")
            continue
        ta, tb = a[name], b[name]
        key = (ta.tensor_type.name, tb.tensor_type.name)
        stats = pairs.setdefault(key, {"tensors": 0, "same": 0, "blocks": 0, "bad_blocks": 0, "scale_same": 0})
        stats["tensors"] += 1
        da = np.asarray(ta.data).reshape(-1).view(np.uint8)
        db = np.asarray(tb.data).reshape(-1).view(np.uint8)
        if list(ta.shape) != list(tb.shape):
            notes.append(f"{name}: shape {list(ta.shape)} / {list(tb.shape)}")
            continue
        if key[0] != key[1]:
            continue
        if key[0] in BLOCKS:
            size, head = BLOCKS[key[0]]
            stats["blocks"] += da.size // size
        if np.array_equal(da, db):
            stats["same"] += 1
            continue
        line = f"{name} ({key[0]}): {int(np.count_nonzero(da != db))} of {da.size} bytes differ"
        if key[0] in BLOCKS:
            ba, bb = da.reshape(-1, size), db.reshape(-1, size)
            bad = np.any(ba != bb, axis=1)
            stats["bad_blocks"] += int(bad.sum())
            stats["scale_same"] += int(np.all(ba[bad, :head] == bb[bad, :head], axis=1).sum())
            line += f", in {int(bad.sum())} blocks"
        notes.append(line)
    total = sum(s["tensors"] for s in pairs.values())
    same = sum(s["same"] for s in pairs.values())
    print(f"  tensors by type ({label_a} / {label_b}): bit-identical")
    for (ka, kb), s in sorted(pairs.items()):
        line = f"    {ka:>5} / {kb:<5} {s['tensors']:4} tensors, {s['same']:4} bit-identical"
        if s["bad_blocks"]:
            line += (f"; {s['bad_blocks']} of {s['blocks']} blocks differ, "
                     f"{s['scale_same']} of those with the same scale (codes differ)")
        print(line)
    for line in notes[:6]:
        print(f"    {line}")
    if len(notes) > 6:
        print(f"    ... {len(notes) - 6} more")
    fields_a = {k: f for k, f in reader_a.fields.items() if not k.startswith("GGUF.")}
    fields_b = {k: f for k, f in reader_b.fields.items() if not k.startswith("GGUF.")}
    only = sorted(set(fields_a) ^ set(fields_b))
    changed = sorted(k for k in set(fields_a) & set(fields_b) if field_value(fields_a[k]) != field_value(fields_b[k]))
    print(f"  metadata: {len(fields_a)} / {len(fields_b)} keys; differ: {', '.join(changed) or 'none'}"
          + (f"; only in one: {', '.join(only)}" if only else ""))
    print(f"  bit-identical tensors: {same}/{total} (of {len(set(a) | set(b))} names)")


if __name__ == "__main__":
    main()
