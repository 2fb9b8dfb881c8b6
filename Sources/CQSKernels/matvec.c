#include "qs_kernels.h"

#include <immintrin.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

// Matrix-vector products on GGUF's 32-value blocks, reading the stored blocks directly (no
// fp32 copy of the weight): y[r] = Σ_c x[c] · W[r][c]. The weights are dequantized in
// registers and multiplied in fp32, so the result is the dequantize-then-fp32 product up to
// the order of the additions. Q8_0: d·q; Q4_0: d·(q − 8); Q4_1: d·q + m, as Σ x·(d q + m) =
// d Σ x q + m Σ x.

enum { QS_GGML_Q4_0 = 2, QS_GGML_Q4_1 = 3, QS_GGML_Q8_0 = 8 };

static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1F;
    uint32_t mantissa = h & 0x3FF;
    uint32_t bits;
    if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {
            // Subnormal: normalise.
            int shift = 0;
            while ((mantissa & 0x400) == 0) {
                mantissa <<= 1;
                shift++;
            }
            mantissa &= 0x3FF;
            bits = sign | ((uint32_t)(127 - 15 - shift + 1) << 23) | (mantissa << 13);
        }
    } else if (exponent == 31) {
        bits = sign | 0x7F800000 | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    }
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static inline uint16_t load_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

// Asks for the bytes of the rows two groups ahead (the hardware prefetcher alone leaves the
// kernels waiting on memory once the weights are larger than the caches).
static inline void prefetch_rows(const uint8_t *start, long bytes) {
    for (long offset = 0; offset < bytes; offset += 64) _mm_prefetch((const char *)(start + offset), _MM_HINT_T0);
}

// MARK: portable

static float row_portable(int type, const uint8_t *row, const float *x, long cols) {
    float sum = 0;
    long blocks = cols / 32;
    for (long b = 0; b < blocks; b++) {
        const float *xb = x + b * 32;
        float dot = 0;
        switch (type) {
        case QS_GGML_Q8_0: {
            const uint8_t *block = row + b * 34;
            const int8_t *q = (const int8_t *)(block + 2);
            for (int j = 0; j < 32; j++) dot += xb[j] * (float)q[j];
            sum += half_to_float(load_u16(block)) * dot;
            break;
        }
        case QS_GGML_Q4_0: {
            const uint8_t *block = row + b * 18;
            const uint8_t *q = block + 2;
            for (int j = 0; j < 16; j++) {
                dot += xb[j] * (float)((q[j] & 0xF) - 8);
                dot += xb[j + 16] * (float)((q[j] >> 4) - 8);
            }
            sum += half_to_float(load_u16(block)) * dot;
            break;
        }
        case QS_GGML_Q4_1: {
            const uint8_t *block = row + b * 20;
            const uint8_t *q = block + 4;
            float total = 0;
            for (int j = 0; j < 16; j++) {
                dot += xb[j] * (float)(q[j] & 0xF);
                dot += xb[j + 16] * (float)(q[j] >> 4);
                total += xb[j] + xb[j + 16];
            }
            sum += half_to_float(load_u16(block)) * dot + half_to_float(load_u16(block + 2)) * total;
            break;
        }
        }
    }
    return sum;
}

// MARK: AVX2

__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma,f16c"))) static float row_avx2(int type, const uint8_t *row, const float *x, long cols) {
    __m256 acc = _mm256_setzero_ps();
    long blocks = cols / 32;
    const __m256i eight = _mm256_set1_epi32(8);
    const __m256i low = _mm256_set1_epi32(0xF);
    for (long b = 0; b < blocks; b++) {
        const float *xb = x + b * 32;
        switch (type) {
        case QS_GGML_Q8_0: {
            const uint8_t *block = row + b * 34;
            const uint8_t *q = block + 2;
            __m256 dot = _mm256_setzero_ps();
            for (int j = 0; j < 32; j += 8) {
                __m256 w = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + j))));
                dot = _mm256_fmadd_ps(w, _mm256_loadu_ps(xb + j), dot);
            }
            acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(load_u16(block))), dot, acc);
            break;
        }
        case QS_GGML_Q4_0:
        case QS_GGML_Q4_1: {
            int offset = type == QS_GGML_Q4_0 ? 2 : 4;
            const uint8_t *block = row + b * (type == QS_GGML_Q4_0 ? 18 : 20);
            const uint8_t *q = block + offset;
            __m256 dot = _mm256_setzero_ps();
            __m256 total = _mm256_setzero_ps();
            for (int j = 0; j < 16; j += 8) {
                __m256i bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(q + j)));
                __m256i lo = _mm256_and_si256(bytes, low);
                __m256i hi = _mm256_srli_epi32(bytes, 4);
                if (type == QS_GGML_Q4_0) {
                    lo = _mm256_sub_epi32(lo, eight);
                    hi = _mm256_sub_epi32(hi, eight);
                }
                __m256 x0 = _mm256_loadu_ps(xb + j), x1 = _mm256_loadu_ps(xb + 16 + j);
                dot = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo), x0, dot);
                dot = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hi), x1, dot);
                if (type == QS_GGML_Q4_1) total = _mm256_add_ps(total, _mm256_add_ps(x0, x1));
            }
            acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(load_u16(block))), dot, acc);
            if (type == QS_GGML_Q4_1) acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(load_u16(block + 2))), total, acc);
            break;
        }
        }
    }
    return hsum256(acc);
}

// MARK: AVX-512

// Four rows at a time share the loads of x and keep four independent accumulators in flight.
// `count` is a constant at every call (the function is inlined), so the accumulators stay in
// registers. Q4_0's −8 is folded into the products: Σ x·(q − 8) = Σ x·q + Σ (−8·x), the second
// term a vector computed once per block for all the rows.
#define QS_ROWS 4

__attribute__((target("avx512f,avx512bw,f16c"))) static inline float half512(const uint8_t *p) {
    return _cvtsh_ss(load_u16(p));
}

__attribute__((target("avx512f,avx512bw,f16c"), always_inline)) static inline void rows_avx512(
    const int type, const uint8_t *rows, long row_bytes, const int count, const float *x, long cols, float *y) {
    __m512 acc[QS_ROWS];
    for (int r = 0; r < count; r++) acc[r] = _mm512_setzero_ps();
    long blocks = cols / 32;
    const __m512i low = _mm512_set1_epi32(0xF);
    const long size = type == QS_GGML_Q8_0 ? 34 : type == QS_GGML_Q4_0 ? 18 : 20;
    for (long b = 0; b < blocks; b++) {
        const float *xb = x + b * 32;
        __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);
        __m512 total = _mm512_add_ps(x0, x1);
        __m512 offset = _mm512_mul_ps(total, _mm512_set1_ps(-8.0f));
        for (int r = 0; r < count; r++) {
            const uint8_t *block = rows + r * row_bytes + b * size;
            __m512 dot;
            if (type == QS_GGML_Q8_0) {
                __m512 w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(block + 2))));
                __m512 w1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(block + 18))));
                dot = _mm512_fmadd_ps(w1, x1, _mm512_mul_ps(w0, x0));
            } else {
                __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(block + (type == QS_GGML_Q4_0 ? 2 : 4))));
                __m512 lo = _mm512_cvtepi32_ps(_mm512_and_si512(bytes, low));
                __m512 hi = _mm512_cvtepi32_ps(_mm512_srli_epi32(bytes, 4));
                if (type == QS_GGML_Q4_0) {
                    dot = _mm512_fmadd_ps(hi, x1, _mm512_fmadd_ps(lo, x0, offset));
                } else {
                    dot = _mm512_fmadd_ps(hi, x1, _mm512_mul_ps(lo, x0));
                }
            }
            acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(half512(block)), dot, acc[r]);
            if (type == QS_GGML_Q4_1) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(half512(block + 2)), total, acc[r]);
        }
    }
    for (int r = 0; r < count; r++) y[r] = _mm512_reduce_add_ps(acc[r]);
}

// One instance per type and row count, so each has its constants folded in.
#define QS_ROWS_FN(name, type_id)                                                                                      \
    __attribute__((target("avx512f,avx512bw,f16c"))) static void name(const uint8_t *rows, long row_bytes, int count,  \
                                                                      const float *x, long cols, float *y) {           \
        switch (count) {                                                                                               \
        case 4: rows_avx512(type_id, rows, row_bytes, 4, x, cols, y); break;                                           \
        case 3: rows_avx512(type_id, rows, row_bytes, 3, x, cols, y); break;                                           \
        case 2: rows_avx512(type_id, rows, row_bytes, 2, x, cols, y); break;                                           \
        default: rows_avx512(type_id, rows, row_bytes, 1, x, cols, y); break;                                          \
        }                                                                                                              \
    }
QS_ROWS_FN(rows_q8_0, QS_GGML_Q8_0)
QS_ROWS_FN(rows_q4_0, QS_GGML_Q4_0)
QS_ROWS_FN(rows_q4_1, QS_GGML_Q4_1)

int qs_matvec_blocks_supported(int type) { return type == QS_GGML_Q8_0 || type == QS_GGML_Q4_0 || type == QS_GGML_Q4_1; }

int qs_kernels_best_isa(void) {
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) return 1;
    return 0;
}

int qs_matvec_blocks(int type, const void *weights, long row_bytes, const float *x, long cols, float *y, long row_begin,
                     long row_end, int isa) {
    if (!qs_matvec_blocks_supported(type) || cols % 32 != 0) return -1;
    if (isa > qs_kernels_best_isa()) isa = qs_kernels_best_isa();
    const uint8_t *base = (const uint8_t *)weights;
    if (isa == 2) {
        for (long r = row_begin; r < row_end; r += QS_ROWS) {
            int count = row_end - r < QS_ROWS ? (int)(row_end - r) : QS_ROWS;
            const uint8_t *rows = base + r * row_bytes;
            if (r + 3 * QS_ROWS <= row_end) prefetch_rows(rows + 2 * QS_ROWS * row_bytes, QS_ROWS * row_bytes);
            float *out = y + (r - row_begin);
            if (type == QS_GGML_Q8_0) rows_q8_0(rows, row_bytes, count, x, cols, out);
            else if (type == QS_GGML_Q4_0) rows_q4_0(rows, row_bytes, count, x, cols, out);
            else rows_q4_1(rows, row_bytes, count, x, cols, out);
        }
        return 0;
    }
    for (long r = row_begin; r < row_end; r++) {
        const uint8_t *row = base + r * row_bytes;
        y[r - row_begin] = isa == 1 ? row_avx2(type, row, x, cols) : row_portable(type, row, x, cols);
    }
    return 0;
}

// MARK: threads

struct blocks_job {
    int type, isa;
    const void *weights;
    long row_bytes, cols;
    const float *x;
    float *y;
};

static void blocks_task(void *ctx, long begin, long end) {
    const struct blocks_job *job = ctx;
    qs_matvec_blocks(job->type, job->weights, job->row_bytes, job->x, job->cols, job->y + begin, begin, end, job->isa);
}

long qs_row_chunk(long rows, int threads) {
    long chunk = rows / ((long)threads * 8);
    if (chunk < 16) chunk = 16;
    return (chunk + 3) / 4 * 4;
}

int qs_matvec_blocks_mt(int type, const void *weights, long row_bytes, const float *x, long cols, float *y, long rows,
                        int isa, int threads) {
    if (!qs_matvec_blocks_supported(type) || cols % 32 != 0) return -1;
    struct blocks_job job = {type, isa, weights, row_bytes, cols, x, y};
    qs_parallel(rows, qs_row_chunk(rows, threads), threads, blocks_task, &job);
    return 0;
}

// MARK: f32

__attribute__((target("avx512f"), always_inline)) static inline void rows_f32_avx512(
    const float *w, long ld, const int count, const float *x, long cols, float *y) {
    __m512 acc[QS_ROWS];
    for (int r = 0; r < count; r++) acc[r] = _mm512_setzero_ps();
    long c = 0;
    for (; c + 16 <= cols; c += 16) {
        __m512 xv = _mm512_loadu_ps(x + c);
        for (int r = 0; r < count; r++) acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(w + r * ld + c), xv, acc[r]);
    }
    if (c < cols) {
        __mmask16 mask = (__mmask16)((1u << (cols - c)) - 1);
        __m512 xv = _mm512_maskz_loadu_ps(mask, x + c);
        for (int r = 0; r < count; r++) acc[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, w + r * ld + c), xv, acc[r]);
    }
    for (int r = 0; r < count; r++) y[r] = _mm512_reduce_add_ps(acc[r]);
}

__attribute__((target("avx512f"))) static void rows_f32(const float *w, long ld, int count, const float *x, long cols, float *y) {
    switch (count) {
    case 4: rows_f32_avx512(w, ld, 4, x, cols, y); break;
    case 3: rows_f32_avx512(w, ld, 3, x, cols, y); break;
    case 2: rows_f32_avx512(w, ld, 2, x, cols, y); break;
    default: rows_f32_avx512(w, ld, 1, x, cols, y); break;
    }
}

static void matvec_f32_range(const float *w, long ld, const float *x, long cols, float *y, long begin, long end, int isa) {
    if (isa == 2) {
        for (long r = begin; r < end; r += QS_ROWS) {
            int count = end - r < QS_ROWS ? (int)(end - r) : QS_ROWS;
            rows_f32(w + r * ld, ld, count, x, cols, y + r);
        }
        return;
    }
    for (long r = begin; r < end; r++) {
        const float *row = w + r * ld;
        float sum = 0;
        for (long c = 0; c < cols; c++) sum += row[c] * x[c];
        y[r] = sum;
    }
}

struct f32_job {
    const float *w;
    long ld, cols;
    const float *x;
    float *y;
    int isa;
};

static void f32_task(void *ctx, long begin, long end) {
    const struct f32_job *job = ctx;
    matvec_f32_range(job->w, job->ld, job->x, job->cols, job->y, begin, end, job->isa);
}

void qs_matvec_f32(const float *w, long ld, const float *x, long cols, float *y, long rows, int isa, int threads) {
    if (isa > qs_kernels_best_isa()) isa = qs_kernels_best_isa();
    struct f32_job job = {w, ld, cols, x, y, isa == 2 ? 2 : 0};
    qs_parallel(rows, qs_row_chunk(rows, threads), threads, f32_task, &job);
}

// MARK: int8 activations

// The integer path, as llama.cpp runs its quantized products: x is quantized per 32-value block
// to int8 with one fp32 scale (d = max|x| / 127, codes round(x / d)), and each block's product
// is an integer dot product of the weight codes and x's codes, scaled once by d_w · d_x. Q4_0's
// −8 enters through the accumulator's starting value (lanes summing to −8 Σ q_x, computed once
// per block of x), Q4_1's m through Σ m · d_x Σ q_x, Q8_0's signed codes through |w| times x
// with w's sign (the unsigned × signed products the instructions take).
struct q8_activations {
    long blocks;
    int8_t *codes;      // blocks × 32
    float *scales;      // d_x per block
    float *sums;        // d_x · Σ q_x per block
    int32_t *offsets;   // blocks × 8 lanes: lane 0 = −8 Σ q_x, the rest 0
};

static void quantize_activations(const float *x, long cols, struct q8_activations *out) {
    long blocks = cols / 32;
    out->blocks = blocks;
    for (long b = 0; b < blocks; b++) {
        const float *xb = x + b * 32;
        float amax = 0;
        int finite = 1;
        for (int j = 0; j < 32; j++) {
            float a = xb[j] < 0 ? -xb[j] : xb[j];
            if (a > amax) amax = a;
            if (!(a <= FLT_MAX)) finite = 0;
        }
        // A NaN or infinity in the block makes its products NaN, as the exact path's would be.
        float d = finite ? amax / 127.0f : NAN;
        float inverse = finite && d != 0 ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            float v = xb[j] * inverse;
            int q = (int)(v < 0 ? v - 0.5f : v + 0.5f);
            q = q > 127 ? 127 : q < -127 ? -127 : q;
            out->codes[b * 32 + j] = (int8_t)q;
            sum += q;
        }
        out->scales[b] = d;
        out->sums[b] = d * (float)sum;
        for (int lane = 0; lane < 8; lane++) out->offsets[b * 8 + lane] = lane == 0 ? -8 * sum : 0;
    }
}

static float row_int8_portable(int type, const uint8_t *row, const struct q8_activations *a) {
    float sum = 0;
    for (long b = 0; b < a->blocks; b++) {
        const int8_t *xq = a->codes + b * 32;
        int dot = 0;
        switch (type) {
        case QS_GGML_Q8_0: {
            const uint8_t *block = row + b * 34;
            const int8_t *q = (const int8_t *)(block + 2);
            for (int j = 0; j < 32; j++) dot += q[j] * xq[j];
            sum += half_to_float(load_u16(block)) * a->scales[b] * (float)dot;
            break;
        }
        case QS_GGML_Q4_0: {
            const uint8_t *block = row + b * 18;
            for (int j = 0; j < 16; j++) dot += (block[2 + j] & 0xF) * xq[j] + (block[2 + j] >> 4) * xq[j + 16];
            dot += a->offsets[b * 8];
            sum += half_to_float(load_u16(block)) * a->scales[b] * (float)dot;
            break;
        }
        case QS_GGML_Q4_1: {
            const uint8_t *block = row + b * 20;
            for (int j = 0; j < 16; j++) dot += (block[4 + j] & 0xF) * xq[j] + (block[4 + j] >> 4) * xq[j + 16];
            sum += half_to_float(load_u16(block)) * a->scales[b] * (float)dot + half_to_float(load_u16(block + 2)) * a->sums[b];
            break;
        }
        }
    }
    return sum;
}

// u8 × s8 dot products of 32 bytes into 8 int32 lanes, added to acc.
__attribute__((target("avx2,fma,f16c"), always_inline)) static inline __m256i dot_u8s8_avx2(__m256i acc, __m256i u, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"), always_inline)) static inline __m256i dot_u8s8_vnni(
    __m256i acc, __m256i u, __m256i s) {
    return _mm256_dpbusd_epi32(acc, u, s);
}

#define QS_INT8_ROWS(name, target_isa, dot)                                                                            \
    __attribute__((target(target_isa), always_inline)) static inline void name##_n(                                   \
        const int type, const uint8_t *rows, long row_bytes, const int count, const struct q8_activations *a, float *y) { \
        __m256 acc[QS_ROWS];                                                                                           \
        float extra[QS_ROWS];                                                                                          \
        for (int r = 0; r < count; r++) {                                                                              \
            acc[r] = _mm256_setzero_ps();                                                                              \
            extra[r] = 0;                                                                                              \
        }                                                                                                              \
        const __m128i low = _mm_set1_epi8(0xF);                                                                        \
        const long size = type == QS_GGML_Q8_0 ? 34 : type == QS_GGML_Q4_0 ? 18 : 20;                                 \
        for (long b = 0; b < a->blocks; b++) {                                                                         \
            __m256i xq = _mm256_loadu_si256((const __m256i *)(a->codes + b * 32));                                     \
            __m256i start = type == QS_GGML_Q4_0 ? _mm256_loadu_si256((const __m256i *)(a->offsets + b * 8))           \
                                                 : _mm256_setzero_si256();                                             \
            float dx = a->scales[b];                                                                                   \
            for (int r = 0; r < count; r++) {                                                                          \
                const uint8_t *block = rows + r * row_bytes + b * size;                                                \
                __m256i products;                                                                                      \
                if (type == QS_GGML_Q8_0) {                                                                            \
                    __m256i w = _mm256_loadu_si256((const __m256i *)(block + 2));                                      \
                    products = dot(start, _mm256_sign_epi8(w, w), _mm256_sign_epi8(xq, w));                            \
                } else {                                                                                               \
                    __m128i v = _mm_loadu_si128((const __m128i *)(block + (type == QS_GGML_Q4_0 ? 2 : 4)));           \
                    __m256i w = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), low), _mm_and_si128(v, low));    \
                    products = dot(start, w, xq);                                                                      \
                }                                                                                                      \
                acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(load_u16(block)) * dx), _mm256_cvtepi32_ps(products), \
                                         acc[r]);                                                                      \
                if (type == QS_GGML_Q4_1) extra[r] += _cvtsh_ss(load_u16(block + 2)) * a->sums[b];                    \
            }                                                                                                          \
        }                                                                                                              \
        for (int r = 0; r < count; r++) y[r] = hsum256(acc[r]) + extra[r];                                            \
    }                                                                                                                  \
    __attribute__((target(target_isa))) static void name(int type, const uint8_t *rows, long row_bytes, int count,     \
                                                        const struct q8_activations *a, float *y) {                   \
        if (type == QS_GGML_Q8_0) {                                                                                    \
            if (count == 4) name##_n(QS_GGML_Q8_0, rows, row_bytes, 4, a, y);                                          \
            else for (int r = 0; r < count; r++) name##_n(QS_GGML_Q8_0, rows + r * row_bytes, row_bytes, 1, a, y + r); \
        } else if (type == QS_GGML_Q4_0) {                                                                             \
            if (count == 4) name##_n(QS_GGML_Q4_0, rows, row_bytes, 4, a, y);                                          \
            else for (int r = 0; r < count; r++) name##_n(QS_GGML_Q4_0, rows + r * row_bytes, row_bytes, 1, a, y + r); \
        } else {                                                                                                       \
            if (count == 4) name##_n(QS_GGML_Q4_1, rows, row_bytes, 4, a, y);                                          \
            else for (int r = 0; r < count; r++) name##_n(QS_GGML_Q4_1, rows + r * row_bytes, row_bytes, 1, a, y + r); \
        }                                                                                                              \
    }

QS_INT8_ROWS(rows_int8_avx2, "avx2,fma,f16c", dot_u8s8_avx2)
QS_INT8_ROWS(rows_int8_vnni, "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c", dot_u8s8_vnni)

int qs_kernels_has_vnni(void) {
    return qs_kernels_best_isa() == 2 && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

struct int8_job {
    int type, isa;
    const uint8_t *weights;
    long row_bytes;
    const struct q8_activations *a;
    float *y;
};

static void int8_task(void *ctx, long begin, long end) {
    const struct int8_job *job = ctx;
    for (long r = begin; r < end; r += QS_ROWS) {
        int count = end - r < QS_ROWS ? (int)(end - r) : QS_ROWS;
        const uint8_t *rows = job->weights + r * job->row_bytes;
        if (r + 3 * QS_ROWS <= end) prefetch_rows(rows + 2 * QS_ROWS * job->row_bytes, QS_ROWS * job->row_bytes);
        if (job->isa == 2) {
            rows_int8_vnni(job->type, rows, job->row_bytes, count, job->a, job->y + r);
        } else if (job->isa == 1) {
            rows_int8_avx2(job->type, rows, job->row_bytes, count, job->a, job->y + r);
        } else {
            for (int i = 0; i < count; i++) job->y[r + i] = row_int8_portable(job->type, rows + i * job->row_bytes, job->a);
        }
    }
}

int qs_matvec_blocks_int8(int type, const void *weights, long row_bytes, const float *x, long cols, float *y, long rows,
                          int isa, int threads) {
    if (!qs_matvec_blocks_supported(type) || cols % 32 != 0) return -1;
    if (isa > qs_kernels_best_isa()) isa = qs_kernels_best_isa();
    if (isa == 2 && !qs_kernels_has_vnni()) isa = 1;
    long blocks = cols / 32;
    // codes, scales, sums, offsets: 32 + 4 + 4 + 32 bytes a block.
    size_t bytes = (size_t)blocks * 72 + 64;
    unsigned char local[16384];
    unsigned char *memory = bytes <= sizeof local ? local : malloc(bytes);
    if (!memory) return -1;
    struct q8_activations a;
    a.offsets = (int32_t *)memory;
    a.codes = (int8_t *)(memory + blocks * 32);
    a.scales = (float *)(memory + blocks * 64);
    a.sums = (float *)(memory + blocks * 68);
    quantize_activations(x, cols, &a);
    struct int8_job job = {type, isa, weights, row_bytes, &a, y};
    qs_parallel(rows, qs_row_chunk(rows, threads), threads, int8_task, &job);
    if (memory != local) free(memory);
    return 0;
}
