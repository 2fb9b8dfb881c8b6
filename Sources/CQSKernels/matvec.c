#include "qs_kernels.h"

#include <immintrin.h>
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
#define QS_ROWS 4

__attribute__((target("avx512f,avx512bw,f16c"))) static inline float half512(const uint8_t *p) {
    return _cvtsh_ss(load_u16(p));
}

__attribute__((target("avx512f,avx512bw,f16c"))) static void rows_avx512(int type, const uint8_t *rows, long row_bytes,
                                                                          int count, const float *x, long cols, float *y) {
    __m512 acc[QS_ROWS];
    for (int r = 0; r < count; r++) acc[r] = _mm512_setzero_ps();
    long blocks = cols / 32;
    const __m512i eight = _mm512_set1_epi32(8);
    const __m512i low = _mm512_set1_epi32(0xF);
    const long size = type == QS_GGML_Q8_0 ? 34 : type == QS_GGML_Q4_0 ? 18 : 20;
    for (long b = 0; b < blocks; b++) {
        const float *xb = x + b * 32;
        __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);
        __m512 total = type == QS_GGML_Q4_1 ? _mm512_add_ps(x0, x1) : _mm512_setzero_ps();
        for (int r = 0; r < count; r++) {
            const uint8_t *block = rows + r * row_bytes + b * size;
            __m512 dot;
            if (type == QS_GGML_Q8_0) {
                __m512 w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(block + 2))));
                __m512 w1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(block + 18))));
                dot = _mm512_fmadd_ps(w1, x1, _mm512_mul_ps(w0, x0));
            } else {
                __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(block + (type == QS_GGML_Q4_0 ? 2 : 4))));
                __m512i lo = _mm512_and_si512(bytes, low);
                __m512i hi = _mm512_srli_epi32(bytes, 4);
                if (type == QS_GGML_Q4_0) {
                    lo = _mm512_sub_epi32(lo, eight);
                    hi = _mm512_sub_epi32(hi, eight);
                }
                dot = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi), x1, _mm512_mul_ps(_mm512_cvtepi32_ps(lo), x0));
            }
            acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(half512(block)), dot, acc[r]);
            if (type == QS_GGML_Q4_1) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(half512(block + 2)), total, acc[r]);
        }
    }
    for (int r = 0; r < count; r++) y[r] = _mm512_reduce_add_ps(acc[r]);
}

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
            rows_avx512(type, base + r * row_bytes, row_bytes, count, x, cols, y + (r - row_begin));
        }
        return 0;
    }
    for (long r = row_begin; r < row_end; r++) {
        const uint8_t *row = base + r * row_bytes;
        y[r - row_begin] = isa == 1 ? row_avx2(type, row, x, cols) : row_portable(type, row, x, cols);
    }
    return 0;
}
