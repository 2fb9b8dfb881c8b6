#ifndef QS_KERNELS_H
#define QS_KERNELS_H
// Vector kernels the Swift compiler does not vectorise well (exp needs rounding, integer
// conversion and bit tricks that Swift's generic SIMD types leave as calls). Each has an
// AVX-512 version, chosen at run time when the CPU has AVX-512F, and a portable one.

/// The largest of n values (-inf when n == 0).
float qs_max(const float *values, long n);

/// values[i] = exp(values[i] - shift); returns the sum of the new values.
double qs_exp_shifted(float *values, long n, float shift);

/// The sum of exp(values[i] - shift), values unchanged.
double qs_sum_exp_shifted(const float *values, long n, float shift);

/// gate[i] = silu(gate[i]) * up[i], silu(x) = x / (1 + exp(-x)) (the llama family's gated MLP).
void qs_silu_mul(float *gate, const float *up, long n);

/// Keeps freed buffers up to 1 GiB in the heap (glibc mallopt) instead of unmapping them, so
/// that the next buffer of the same size needs no fresh zero-filled pages.
void qs_keep_large_buffers(void);

/// Whether the AVX-512 versions are in use.
int qs_kernels_use_avx512(void);

/// Swaps two paths in one step (Linux renameat2 with RENAME_EXCHANGE): a reader sees one or
/// the other, never neither. 0 on success, -1 with errno set (ENOSYS, EINVAL where the file
/// system cannot).
int qs_exchange_paths(const char *first, const char *second);

/// y[r - row_begin] = Σ_c x[c] · W[r][c] for rows row_begin..<row_end of a matrix stored as GGUF
/// blocks of `type` (ggml type ids: 8 Q8_0, 2 Q4_0, 3 Q4_1), each row `cols` values (a multiple
/// of 32) in `row_bytes` bytes; `isa` 2 AVX-512, 1 AVX2 + FMA, 0 portable (lowered to what the
/// CPU has). Returns -1 for a type or width it does not take, 0 otherwise.
int qs_matvec_blocks(int type, const void *weights, long row_bytes, const float *x, long cols, float *y, long row_begin,
                     long row_end, int isa);

/// Whether `qs_matvec_blocks` takes this ggml type.
int qs_matvec_blocks_supported(int type);

/// The widest vector path this CPU runs: 2 AVX-512 (F, BW), 1 AVX2 with FMA, 0 none.
int qs_kernels_best_isa(void);
#endif
