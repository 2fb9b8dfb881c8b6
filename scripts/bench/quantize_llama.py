"""Times llama.cpp's quantizer (llama-cpp-python's llama_model_quantize) on a GGUF file.

Usage: quantize_llama.py IN_GGUF OUT_GGUF FTYPE THREADS [REPEAT]; FTYPE as llama.cpp numbers it
(7 Q8_0, 2 Q4_0). The whole call is timed (it reads the input, quantizes and writes the output);
prints the best of REPEAT (3) in seconds.
"""
import ctypes
import sys
import time

import llama_cpp


def main() -> None:
    src, dst, ftype, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    repeat = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
        best = min(best, time.perf_counter() - start)
        if rc != 0:
            sys.exit(f"llama_model_quantize({src}, ftype {ftype}) returned {rc}")
    print(f"{best:.4f}")


if __name__ == "__main__":
    main()
