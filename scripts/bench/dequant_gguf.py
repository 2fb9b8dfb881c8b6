"""Times the gguf package's dequantization of every tensor of a GGUF file to float32.

Usage: dequant_gguf.py FILE [REPEAT]; prints the best time in seconds.
"""
import sys
import time

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def main() -> None:
    path = sys.argv[1]
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    reader = GGUFReader(path)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        total = 0
        for tensor in reader.tensors:
            values = dequantize(tensor.data, tensor.tensor_type).astype(np.float32, copy=False)
            total += values.size
        best = min(best, time.perf_counter() - start)
    print(f"{best:.4f}")
    print(f"{total} values", file=sys.stderr)


if __name__ == "__main__":
    main()
