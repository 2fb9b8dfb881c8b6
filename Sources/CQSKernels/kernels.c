#include "qs_kernels.h"

#include <math.h>
#include <malloc.h>
#include <immintrin.h>

// exp(x) = 2^n · e^r with n = round(x / ln2), r = x - n·ln2 (ln2 in two parts so the product
// is exact), e^r by a degree-6 polynomial on |r| ≤ ln2/2: relative error below 2e-7.
// Inputs below -87.33 (where 2^n leaves the normal range) give 0; above 88.37, +inf.
#define QS_EXP_HI 88.3762626647949f
#define QS_EXP_LO -87.3365447504f

__attribute__((target("avx512f"))) static inline __m512 exp512(__m512 x) {
    const __m512 hi = _mm512_set1_ps(QS_EXP_HI);
    const __m512 lo = _mm512_set1_ps(QS_EXP_LO);
    __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    __mmask16 over = _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 r2 = _mm512_mul_ps(r, r);
    __m512 e = _mm512_add_ps(_mm512_fmadd_ps(p, r2, r), _mm512_set1_ps(1.0f));
    __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    __m512 result = _mm512_mul_ps(e, _mm512_castsi512_ps(bits));
    result = _mm512_mask_blend_ps(under, result, _mm512_setzero_ps());
    return _mm512_mask_blend_ps(over, result, _mm512_set1_ps(INFINITY));
}

__attribute__((target("avx512f"))) static inline __m512d widen_low(__m512 v) {
    return _mm512_cvtps_pd(_mm512_castps512_ps256(v));
}

__attribute__((target("avx512f"))) static inline __m512d widen_high(__m512 v) {
    return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

__attribute__((target("avx512f"))) static double exp_shifted_avx512(float *values, long n, float shift, int store) {
    const __m512 s = _mm512_set1_ps(shift);
    __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(values + i), s));
        if (store) _mm512_storeu_ps(values + i, e);
        acc0 = _mm512_add_pd(acc0, widen_low(e));
        acc1 = _mm512_add_pd(acc1, widen_high(e));
    }
    if (i < n) {
        __mmask16 mask = (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), mask, values + i);
        __m512 e = exp512(_mm512_sub_ps(v, s));
        if (store) _mm512_mask_storeu_ps(values + i, mask, e);
        acc0 = _mm512_add_pd(acc0, widen_low(e));
        acc1 = _mm512_add_pd(acc1, widen_high(e));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
}

__attribute__((target("avx512f"))) static float max_avx512(const float *values, long n) {
    __m512 best = _mm512_set1_ps(-INFINITY);
    long i = 0;
    for (; i + 16 <= n; i += 16) best = _mm512_max_ps(best, _mm512_loadu_ps(values + i));
    if (i < n) {
        __mmask16 mask = (__mmask16)((1u << (n - i)) - 1);
        best = _mm512_max_ps(best, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), mask, values + i));
    }
    return _mm512_reduce_max_ps(best);
}

__attribute__((target("avx512f"))) static void silu_mul_avx512(float *gate, const float *up, long n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 g = _mm512_loadu_ps(gate + i);
        __m512 sig = _mm512_div_ps(one, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), g))));
        _mm512_storeu_ps(gate + i, _mm512_mul_ps(_mm512_mul_ps(g, sig), _mm512_loadu_ps(up + i)));
    }
    for (; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

static double exp_shifted_portable(float *values, long n, float shift, int store) {
    double sum = 0;
    for (long i = 0; i < n; i++) {
        float e = expf(values[i] - shift);
        if (store) values[i] = e;
        sum += e;
    }
    return sum;
}

static float max_portable(const float *values, long n) {
    float best = -INFINITY;
    for (long i = 0; i < n; i++) best = values[i] > best ? values[i] : best;
    return best;
}

void qs_silu_mul(float *gate, const float *up, long n) {
    if (qs_kernels_use_avx512()) {
        silu_mul_avx512(gate, up, n);
        return;
    }
    for (long i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

int qs_kernels_use_avx512(void) {
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx512f") ? 1 : 0;
    return cached;
}

float qs_max(const float *values, long n) {
    return qs_kernels_use_avx512() ? max_avx512(values, n) : max_portable(values, n);
}

double qs_exp_shifted(float *values, long n, float shift) {
    return qs_kernels_use_avx512() ? exp_shifted_avx512(values, n, shift, 1) : exp_shifted_portable(values, n, shift, 1);
}

double qs_sum_exp_shifted(const float *values, long n, float shift) {
    // The store flag is off: the values are only read.
    return qs_kernels_use_avx512() ? exp_shifted_avx512((float *)values, n, shift, 0)
                                   : exp_shifted_portable((float *)values, n, shift, 0);
}

void qs_keep_large_buffers(void) {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

void qs_keep_freed_memory(void) {
    /* glibc caps the mmap threshold at 32 MB on 64-bit; below it, freed memory stays in the
       heap, never trimmed, so a training step reuses the pages of the step before. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, -1);
}
