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
/* Keeps every freed buffer under 32 MB in the heap (training steps reuse their pages). */
void qs_keep_freed_memory(void);

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

/// A job's items [begin, end) for `qs_parallel`.
typedef void (*qs_task_fn)(void *ctx, long begin, long end);

/// Runs fn over the items 0..<total, handed out `chunk` at a time, on up to `threads` threads of
/// the decode pool (the caller among them); returns when all are done. Workers spin a while
/// after a job before they sleep, so the small products of decoding start without a wake-up.
/// A call made while another job runs (another thread, or nested) runs on the caller alone.
void qs_parallel(long total, long chunk, int threads, qs_task_fn fn, void *ctx);

/// The rows a decode kernel's job hands out at a time: a multiple of the kernels' four, about
/// eight chunks per thread so that the atomic hand-out can even out a slow thread, never under 16.
long qs_row_chunk(long rows, int threads);

/// `qs_matvec_blocks` over all `rows` rows, split over `threads` threads of the decode pool.
int qs_matvec_blocks_mt(int type, const void *weights, long row_bytes, const float *x, long cols, float *y, long rows,
                        int isa, int threads);

/// `qs_matvec_blocks_mt` with x quantized to int8 per 32-value block (llama.cpp's Q8_0 of the
/// activations) and integer dot products: AVX-512 VNNI (isa 2, where the CPU has it), AVX2
/// (isa 1), or portable. Not the exact product: x's rounding adds an error of about 0.4% of
/// each block's largest value.
int qs_matvec_blocks_int8(int type, const void *weights, long row_bytes, const float *x, long cols, float *y, long rows,
                          int isa, int threads);

/// Whether the CPU has AVX-512 VNNI (with VL) for the int8 path.
int qs_kernels_has_vnni(void);

/// y[r] = Σ_c x[c] · W[r][c] for an fp32 matrix of `rows` rows, row r at w + r · ld, on
/// `threads` threads; `isa` 2 AVX-512, else portable.
void qs_matvec_f32(const float *w, long ld, const float *x, long cols, float *y, long rows, int isa, int threads);

/// Scaled dot-product attention of `rows` new query rows ([rows, heads · head_dim]) against
/// `keys` keys and values ([keys, kv_heads · head_dim]) whose first keys − rows are the past;
/// causal: row r sees keys up to past + r; key_mask (per key, nonzero = attend) or NULL. Writes
/// out [rows, heads · head_dim]. One (head, row) per task on `threads` threads.
void qs_attention_rows(const float *q, long rows, const float *k, const float *v, long keys, int heads, int kv_heads,
                       int head_dim, int causal, const unsigned char *key_mask, float *out, int isa, int threads);

/// A packed weight as `qs_matvec_packed` reads it (qs's PackedWeight): `rows` rows of `cols`
/// columns, each row's codes in `row_bytes` bytes (4-bit: column 2j in byte j's low nibble);
/// one scale per group of `group` columns (the last group may be shorter), row-major; values
/// s · (code − zero) with zero_kind 0 (one `zero` for all), 1 (`zeros` per group), or
/// s · code + zeros[group] with zero_kind 2 (offsets).
struct qs_packed_matrix {
    const unsigned char *codes;
    long row_bytes, rows, cols, group, groups_per_row;
    int bits, zero_kind;
    const float *scales;
    const float *zeros;
    float zero;
};

/// Whether `qs_matvec_packed` takes this matrix: 4- or 8-bit codes, columns and group size
/// multiples of 32.
int qs_packed_supported(const struct qs_packed_matrix *m);

/// y = W x for a packed matrix, on `threads` threads; int8 nonzero quantizes x per 32 columns
/// for integer dot products (as `qs_matvec_blocks_int8`). -1 when the matrix is not taken.
int qs_matvec_packed(const struct qs_packed_matrix *m, const float *x, float *y, int isa, int int8, int threads);

/// Rows first ..< first + count of a packed matrix as fp32 into `out` (count × cols values),
/// with PackedWeight's values exactly. Takes 8-bit codes, and 4-bit codes when the columns and
/// the group size are even (any group size, a shorter last group); -1 otherwise.
int qs_dequantize_packed_rows(const struct qs_packed_matrix *m, long first, long count, float *out);
#endif
