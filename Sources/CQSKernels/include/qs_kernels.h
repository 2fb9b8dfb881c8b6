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
#endif
