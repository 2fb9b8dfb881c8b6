#include "qs_kernels.h"

#include <immintrin.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

// Matrix-vector products on qs's packed weights (codes row by row, lowest bits first; a scale
// and a zero term per group of input columns), for decoding without an fp32 copy. A group's
// values are s · code + c (c = −s · zero, or GGUF/mlx's offset), so its product with x is
// s · Σ code · x + c · Σ x: the code products per group, plus c times the group's sum of x,
// which is computed once per call for all the rows. 4-bit codes hold columns 2j and 2j + 1 in
// byte j's low and high nibbles, so x is taken apart into even and odd columns per 32 once per
// call, and each 16 bytes of codes meet 16 even and 16 odd values.

struct packed_job {
    const struct qs_packed_matrix *m;
    const float *x;        // as given
    const float *split;    // per 32 columns: the 16 even then the 16 odd (4-bit codes)
    const float *group_sums;
    const int8_t *codes;   // int8 path: x's codes in the kernel's order, per 32 columns
    const float *scales;   // int8 path: d_x per 32 columns
    float *y;
    int isa, int8;
};

// One past the last column of group g (the last group of a row may be shorter).
static inline long group_end(const struct qs_packed_matrix *m, long g) {
    long end = (g + 1) * m->group;
    return end < m->cols ? end : m->cols;
}

static inline float zero_term(const struct qs_packed_matrix *m, long index, float scale) {
    switch (m->zero_kind) {
    case 0: return -scale * m->zero;
    case 1: return -scale * m->zeros[index];
    default: return m->zeros[index];
    }
}

static float row_portable(const struct packed_job *job, long r) {
    const struct qs_packed_matrix *m = job->m;
    const uint8_t *codes = m->codes + r * m->row_bytes;
    float total = 0;
    for (long g = 0; g < m->groups_per_row; g++) {
        long begin = g * m->group, end = group_end(m, g);
        float dot = 0;
        for (long c = begin; c < end; c++) {
            int code = m->bits == 8 ? codes[c] : (codes[c / 2] >> (4 * (c & 1))) & 0xF;
            dot += (float)code * job->x[c];
        }
        float s = m->scales[r * m->groups_per_row + g];
        total += s * dot + zero_term(m, r * m->groups_per_row + g, s) * job->group_sums[g];
    }
    return total;
}

enum { QS_PACKED_ROWS = 4 };

// Up to four rows at a time share the loads of x; `count` is a constant at each call.
__attribute__((target("avx512f,avx512bw"), always_inline)) static inline void rows_avx512_n(
    const struct packed_job *job, long r0, const int count, const int bits) {
    const struct qs_packed_matrix *m = job->m;
    const __m512i low = _mm512_set1_epi32(0xF);
    __m512 acc[QS_PACKED_ROWS];
    float extra[QS_PACKED_ROWS];
    for (int i = 0; i < count; i++) {
        acc[i] = _mm512_setzero_ps();
        extra[i] = 0;
    }
    for (long g = 0; g < m->groups_per_row; g++) {
        long begin = g * m->group, end = group_end(m, g);
        __m512 dot[QS_PACKED_ROWS];
        for (int i = 0; i < count; i++) dot[i] = _mm512_setzero_ps();
        for (long c = begin; c < end; c += 32) {
            __m512 x0 = _mm512_loadu_ps(job->split + c), x1 = _mm512_loadu_ps(job->split + c + 16);
            for (int i = 0; i < count; i++) {
                const uint8_t *codes = m->codes + (r0 + i) * m->row_bytes;
                if (bits == 8) {
                    __m512 w0 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(codes + c))));
                    __m512 w1 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(codes + c + 16))));
                    dot[i] = _mm512_fmadd_ps(w1, x1, _mm512_fmadd_ps(w0, x0, dot[i]));
                } else {
                    __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(codes + c / 2)));
                    __m512 even = _mm512_cvtepi32_ps(_mm512_and_si512(bytes, low));
                    __m512 odd = _mm512_cvtepi32_ps(_mm512_srli_epi32(bytes, 4));
                    dot[i] = _mm512_fmadd_ps(odd, x1, _mm512_fmadd_ps(even, x0, dot[i]));
                }
            }
        }
        for (int i = 0; i < count; i++) {
            long index = (r0 + i) * m->groups_per_row + g;
            float scale = m->scales[index];
            acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(scale), dot[i], acc[i]);
            extra[i] += zero_term(m, index, scale) * job->group_sums[g];
        }
    }
    for (int i = 0; i < count; i++) job->y[r0 + i] = _mm512_reduce_add_ps(acc[i]) + extra[i];
}

__attribute__((target("avx512f,avx512bw"))) static void rows_avx512(const struct packed_job *job, long r0, int count) {
    // One instance per row count and code width, so that both are constants in the loops.
    if (job->m->bits == 8) {
        if (count == 4) rows_avx512_n(job, r0, 4, 8);
        else for (int i = 0; i < count; i++) rows_avx512_n(job, r0 + i, 1, 8);
    } else {
        if (count == 4) rows_avx512_n(job, r0, 4, 4);
        else for (int i = 0; i < count; i++) rows_avx512_n(job, r0 + i, 1, 4);
    }
}

// The int8 path: x's codes per 32 columns (even then odd for 4-bit codes), integer dot
// products of unsigned codes and x's signed ones; up to four rows share the loads of x.
#define QS_PACKED_INT8(name, target_isa, dot_expr)                                                                     \
    __attribute__((target(target_isa), always_inline)) static inline void name##_n(                                   \
        const struct packed_job *job, long r0, const int count, const int bits) {                                      \
        const struct qs_packed_matrix *m = job->m;                                                                     \
        const __m128i low = _mm_set1_epi8(0xF);                                                                        \
        __m256 acc[QS_PACKED_ROWS];                                                                                    \
        float extra[QS_PACKED_ROWS];                                                                                   \
        for (int i = 0; i < count; i++) {                                                                              \
            acc[i] = _mm256_setzero_ps();                                                                              \
            extra[i] = 0;                                                                                              \
        }                                                                                                              \
        for (long g = 0; g < m->groups_per_row; g++) {                                                                 \
            long begin = g * m->group, end = group_end(m, g);                 \
            float scale[QS_PACKED_ROWS];                                                                               \
            for (int i = 0; i < count; i++) scale[i] = m->scales[(r0 + i) * m->groups_per_row + g];                   \
            for (long c = begin; c < end; c += 32) {                                                                   \
                __m256i xq = _mm256_loadu_si256((const __m256i *)(job->codes + c));                                    \
                float dx = job->scales[c / 32];                                                                        \
                for (int i = 0; i < count; i++) {                                                                      \
                    const uint8_t *codes = m->codes + (r0 + i) * m->row_bytes;                                         \
                    __m256i w;                                                                                         \
                    if (bits == 8) {                                                                                   \
                        w = _mm256_loadu_si256((const __m256i *)(codes + c));                                          \
                    } else {                                                                                           \
                        __m128i v = _mm_loadu_si128((const __m128i *)(codes + c / 2));                                 \
                        w = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), low), _mm_and_si128(v, low));        \
                    }                                                                                                  \
                    __m256i products = dot_expr;                                                                       \
                    acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(scale[i] * dx), _mm256_cvtepi32_ps(products), acc[i]);    \
                }                                                                                                      \
            }                                                                                                          \
            for (int i = 0; i < count; i++)                                                                            \
                extra[i] += zero_term(m, (r0 + i) * m->groups_per_row + g, scale[i]) * job->group_sums[g];             \
        }                                                                                                              \
        for (int i = 0; i < count; i++) {                                                                              \
            __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc[i]), _mm256_extractf128_ps(acc[i], 1));                   \
            h = _mm_add_ps(h, _mm_movehl_ps(h, h));                                                                    \
            h = _mm_add_ss(h, _mm_movehdup_ps(h));                                                                     \
            job->y[r0 + i] = _mm_cvtss_f32(h) + extra[i];                                                              \
        }                                                                                                              \
    }                                                                                                                  \
    __attribute__((target(target_isa))) static void name(const struct packed_job *job, long r0, int count) {           \
        if (job->m->bits == 8) {                                                                                       \
            if (count == 4) name##_n(job, r0, 4, 8);                                                                   \
            else for (int i = 0; i < count; i++) name##_n(job, r0 + i, 1, 8);                                          \
        } else {                                                                                                       \
            if (count == 4) name##_n(job, r0, 4, 4);                                                                   \
            else for (int i = 0; i < count; i++) name##_n(job, r0 + i, 1, 4);                                          \
        }                                                                                                              \
    }

// maddubs adds pairs of u8 × s8 products in 16 bits, which 8-bit codes (255 · 127 · 2) overflow:
// those are widened to 16 bits first.
__attribute__((target("avx2,fma"))) static inline __m256i dot_avx2(__m256i w, __m256i xq, int bits) {
    if (bits == 4) return _mm256_madd_epi16(_mm256_maddubs_epi16(w, xq), _mm256_set1_epi16(1));
    __m256i lo = _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(w)), _mm256_cvtepi8_epi16(_mm256_castsi256_si128(xq)));
    __m256i hi = _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_extracti128_si256(w, 1)), _mm256_cvtepi8_epi16(_mm256_extracti128_si256(xq, 1)));
    return _mm256_add_epi32(lo, hi);
}

QS_PACKED_INT8(rows_int8_avx2, "avx2,fma", dot_avx2(w, xq, bits))
QS_PACKED_INT8(rows_int8_vnni, "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma",
               _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, xq))

static float row_int8_portable(const struct packed_job *job, long r) {
    const struct qs_packed_matrix *m = job->m;
    const uint8_t *codes = m->codes + r * m->row_bytes;
    float total = 0;
    for (long g = 0; g < m->groups_per_row; g++) {
        long begin = g * m->group, end = group_end(m, g);
        long index = r * m->groups_per_row + g;
        float s = m->scales[index], dot = 0;
        for (long c = begin; c < end; c += 32) {
            int sum = 0;
            for (int j = 0; j < 32; j++) {
                // The kernel's order: 4-bit codes give the 16 even columns, then the 16 odd.
                long column = m->bits == 8 ? c + j : c + (j < 16 ? 2 * j : 2 * (j - 16) + 1);
                int code = m->bits == 8 ? codes[column] : (codes[column / 2] >> (4 * (column & 1))) & 0xF;
                sum += code * job->codes[c + j];
            }
            dot += job->scales[c / 32] * (float)sum;
        }
        total += s * dot + zero_term(m, index, s) * job->group_sums[g];
    }
    return total;
}

static void packed_task(void *ctx, long begin, long end) {
    const struct packed_job *job = ctx;
    const struct qs_packed_matrix *m = job->m;
    for (long r = begin; r < end; r += QS_PACKED_ROWS) {
        int count = end - r < QS_PACKED_ROWS ? (int)(end - r) : QS_PACKED_ROWS;
        // The rows two groups ahead, asked for now (see matvec.c).
        if (r + 3 * QS_PACKED_ROWS <= end) {
            const uint8_t *ahead = m->codes + (r + 2 * QS_PACKED_ROWS) * m->row_bytes;
            for (long offset = 0; offset < QS_PACKED_ROWS * m->row_bytes; offset += 64) _mm_prefetch((const char *)(ahead + offset), _MM_HINT_T0);
        }
        if (job->int8) {
            if (job->isa == 2) rows_int8_vnni(job, r, count);
            else if (job->isa == 1) rows_int8_avx2(job, r, count);
            else for (int i = 0; i < count; i++) job->y[r + i] = row_int8_portable(job, r + i);
        } else if (job->isa == 2) {
            rows_avx512(job, r, count);
        } else {
            for (int i = 0; i < count; i++) job->y[r + i] = row_portable(job, r + i);
        }
    }
}

int qs_packed_supported(const struct qs_packed_matrix *m) {
    return (m->bits == 4 || m->bits == 8) && m->cols % 32 == 0 && m->group % 32 == 0 && m->group > 0;
}

int qs_matvec_packed(const struct qs_packed_matrix *m, const float *x, float *y, int isa, int int8, int threads) {
    if (!qs_packed_supported(m)) return -1;
    if (isa > qs_kernels_best_isa()) isa = qs_kernels_best_isa();
    if (int8 && isa == 2 && !qs_kernels_has_vnni()) isa = 1;
    if (!int8 && isa == 1) isa = 0;
    long cols = m->cols, blocks = cols / 32;
    // split (cols floats), group sums, int8 codes (cols bytes) and scales (blocks floats).
    size_t bytes = sizeof(float) * (size_t)(cols + m->groups_per_row + blocks) + (size_t)cols + 64;
    unsigned char local[32768];
    unsigned char *memory = bytes <= sizeof local ? local : malloc(bytes);
    if (!memory) return -1;
    float *split = (float *)memory;
    float *sums = split + cols;
    float *scales = sums + m->groups_per_row;
    int8_t *codes = (int8_t *)(scales + blocks);
    for (long g = 0; g < m->groups_per_row; g++) {
        long begin = g * m->group, end = group_end(m, g);
        float s = 0;
        for (long c = begin; c < end; c++) s += x[c];
        sums[g] = s;
    }
    // The kernel's order of x per 32 columns: as given for 8-bit codes; even then odd for 4-bit.
    for (long b = 0; b < blocks; b++) {
        for (int j = 0; j < 32; j++) {
            long column = m->bits == 8 ? b * 32 + j : b * 32 + (j < 16 ? 2 * j : 2 * (j - 16) + 1);
            split[b * 32 + j] = x[column];
        }
    }
    if (int8) {
        for (long b = 0; b < blocks; b++) {
            float amax = 0;
            int finite = 1;
            for (int j = 0; j < 32; j++) {
                float a = split[b * 32 + j] < 0 ? -split[b * 32 + j] : split[b * 32 + j];
                if (a > amax) amax = a;
                if (!(a <= FLT_MAX)) finite = 0;
            }
            // A NaN or infinity makes the block's products NaN, as the exact path's would be.
            float d = finite ? amax / 127.0f : NAN, inverse = finite && d != 0 ? 1.0f / d : 0.0f;
            for (int j = 0; j < 32; j++) {
                float v = split[b * 32 + j] * inverse;
                int q = (int)(v < 0 ? v - 0.5f : v + 0.5f);
                codes[b * 32 + j] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
            }
            scales[b] = d;
        }
    }
    struct packed_job job = {m, x, split, sums, codes, scales, y, isa, int8};
    qs_parallel(m->rows, qs_row_chunk(m->rows, threads), threads, packed_task, &job);
    if (memory != local) free(memory);
    return 0;
}

// Dequantization of whole rows, for the tiles that many-row products (prefill, evaluation)
// multiply through GEMM. The values are exactly PackedWeight's: s · (code − zero) for integer
// zero points, s · code + offset for offsets, each a separate rounding (no fused multiply-add),
// so a product on these tiles is the dequantize-then-fp32 product.
#pragma clang fp contract(off)
static void dequantize_group(const struct qs_packed_matrix *m, const uint8_t *codes, long begin, long end, long index, float *out) {
    float s = m->scales[index];
    if (m->zero_kind == 2) {
        float o = m->zeros[index];
        if (m->bits == 8) {
            for (long c = begin; c < end; c++) out[c] = s * (float)codes[c] + o;
        } else {
            for (long c = begin; c < end; c += 2) {
                uint8_t b = codes[c >> 1];
                out[c] = s * (float)(b & 0xF) + o;
                out[c + 1] = s * (float)(b >> 4) + o;
            }
        }
        return;
    }
    float z = m->zero_kind == 0 ? m->zero : m->zeros[index];
    if (m->bits == 8) {
        for (long c = begin; c < end; c++) out[c] = s * ((float)codes[c] - z);
    } else {
        for (long c = begin; c < end; c += 2) {
            uint8_t b = codes[c >> 1];
            out[c] = s * ((float)(b & 0xF) - z);
            out[c + 1] = s * ((float)(b >> 4) - z);
        }
    }
}

int qs_dequantize_packed_rows(const struct qs_packed_matrix *m, long first, long count, float *out) {
    if (!(m->bits == 8 || (m->bits == 4 && m->cols % 2 == 0 && m->group % 2 == 0)) || m->group <= 0) return -1;
    if (first < 0 || count < 0 || first + count > m->rows) return -1;
    for (long r = first; r < first + count; r++) {
        const uint8_t *codes = m->codes + r * m->row_bytes;
        float *row = out + (r - first) * m->cols;
        for (long g = 0; g < m->groups_per_row; g++)
            dequantize_group(m, codes, g * m->group, group_end(m, g), r * m->groups_per_row + g, row);
    }
    return 0;
}
