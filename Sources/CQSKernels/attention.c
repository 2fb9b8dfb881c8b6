#include "qs_kernels.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>

// Attention for a few new rows against the cached keys and values (decoding), one task per
// (head, row) on the decode pool: scores q·k scaled, masked, a softmax as the many-row path
// computes it (qs_max, qs_exp_shifted, one reciprocal), and the weighted sum of the values.

struct attention_job {
    const float *q, *k, *v;
    float *out;
    long rows, qstride, kvstride, keys, past;
    int group, head_dim, causal, isa;
    float scale;
    const unsigned char *key_mask;
};

__attribute__((target("avx512f"))) static float dot_avx512(const float *a, const float *b, long n) {
    __m512 acc = _mm512_setzero_ps();
    long i = 0;
    for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
    if (i < n) {
        __mmask16 mask = (__mmask16)((1u << (n - i)) - 1);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, a + i), _mm512_maskz_loadu_ps(mask, b + i), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

__attribute__((target("avx512f"))) static void axpy_avx512(float a, const float *x, float *y, long n) {
    __m512 av = _mm512_set1_ps(a);
    long i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(av, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

// Head widths that are whole vectors up to 128 (every supported model's): q and the output
// held in registers, scores four keys at a time.
enum { QS_MAX_VECTORS = 8 };

__attribute__((target("avx512f"), always_inline)) static inline void head_avx512(
    const float *q, const float *k, const float *v, long stride, long visible, float scale, const unsigned char *key_mask,
    float *scores, float *out, const int vectors) {
    __m512 qv[QS_MAX_VECTORS];
    for (int i = 0; i < vectors; i++) qv[i] = _mm512_loadu_ps(q + 16 * i);
    long j = 0;
    for (; j + 4 <= visible; j += 4) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const float *k0 = k + j * stride;
        for (int i = 0; i < vectors; i++) {
            a0 = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(k0 + 16 * i), a0);
            a1 = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(k0 + stride + 16 * i), a1);
            a2 = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(k0 + 2 * stride + 16 * i), a2);
            a3 = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(k0 + 3 * stride + 16 * i), a3);
        }
        scores[j] = scale * _mm512_reduce_add_ps(a0);
        scores[j + 1] = scale * _mm512_reduce_add_ps(a1);
        scores[j + 2] = scale * _mm512_reduce_add_ps(a2);
        scores[j + 3] = scale * _mm512_reduce_add_ps(a3);
    }
    for (; j < visible; j++) {
        __m512 a = _mm512_setzero_ps();
        for (int i = 0; i < vectors; i++) a = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(k + j * stride + 16 * i), a);
        scores[j] = scale * _mm512_reduce_add_ps(a);
    }
    if (key_mask) {
        for (long t = 0; t < visible; t++)
            if (!key_mask[t]) scores[t] = -INFINITY;
    }
    float maximum = qs_max(scores, visible);
    float inverse = (float)(1.0 / qs_exp_shifted(scores, visible, maximum));
    __m512 acc[QS_MAX_VECTORS];
    for (int i = 0; i < vectors; i++) acc[i] = _mm512_setzero_ps();
    for (long t = 0; t < visible; t++) {
        __m512 p = _mm512_set1_ps(scores[t] * inverse);
        const float *value = v + t * stride;
        for (int i = 0; i < vectors; i++) acc[i] = _mm512_fmadd_ps(p, _mm512_loadu_ps(value + 16 * i), acc[i]);
    }
    for (int i = 0; i < vectors; i++) _mm512_storeu_ps(out + 16 * i, acc[i]);
}

__attribute__((target("avx512f"))) static void head_vectors(
    const float *q, const float *k, const float *v, long stride, long visible, float scale, const unsigned char *key_mask,
    float *scores, float *out, int vectors) {
    switch (vectors) {
    case 8: head_avx512(q, k, v, stride, visible, scale, key_mask, scores, out, 8); break;
    case 4: head_avx512(q, k, v, stride, visible, scale, key_mask, scores, out, 4); break;
    case 2: head_avx512(q, k, v, stride, visible, scale, key_mask, scores, out, 2); break;
    default:
        head_avx512(q, k, v, stride, visible, scale, key_mask, scores, out, vectors);
        break;
    }
}

static void head_portable(
    const float *q, const float *k, const float *v, long stride, long visible, long d, float scale, const unsigned char *key_mask,
    float *scores, float *out, int isa) {
    for (long j = 0; j < visible; j++) {
        const float *key = k + j * stride;
        float s;
        if (isa == 2) {
            s = dot_avx512(q, key, d);
        } else {
            s = 0;
            for (long i = 0; i < d; i++) s += q[i] * key[i];
        }
        scores[j] = scale * s;
    }
    if (key_mask) {
        for (long j = 0; j < visible; j++)
            if (!key_mask[j]) scores[j] = -INFINITY;
    }
    float maximum = qs_max(scores, visible);
    float inverse = (float)(1.0 / qs_exp_shifted(scores, visible, maximum));
    for (long i = 0; i < d; i++) out[i] = 0;
    for (long j = 0; j < visible; j++) {
        float p = scores[j] * inverse;
        const float *value = v + j * stride;
        if (isa == 2) {
            axpy_avx512(p, value, out, d);
        } else {
            for (long i = 0; i < d; i++) out[i] += p * value[i];
        }
    }
}

static void attention_task(void *ctx, long begin, long end) {
    const struct attention_job *job = ctx;
    float local[2048];
    float *scores = job->keys <= 2048 ? local : malloc(sizeof(float) * (size_t)job->keys);
    if (!scores) abort();
    const long d = job->head_dim;
    for (long item = begin; item < end; item++) {
        long h = item / job->rows, r = item % job->rows;
        long kv = h / job->group;
        long visible = job->causal ? job->past + r + 1 : job->keys;
        const float *q = job->q + r * job->qstride + h * d;
        const float *k = job->k + kv * d;
        const float *v = job->v + kv * d;
        float *out = job->out + r * job->qstride + h * d;
        if (job->isa == 2 && d % 16 == 0 && d / 16 <= QS_MAX_VECTORS) {
            head_vectors(q, k, v, job->kvstride, visible, job->scale, job->key_mask, scores, out, (int)(d / 16));
        } else {
            head_portable(q, k, v, job->kvstride, visible, d, job->scale, job->key_mask, scores, out, job->isa);
        }
    }
    if (scores != local) free(scores);
}

void qs_attention_rows(const float *q, long rows, const float *k, const float *v, long keys, int heads, int kv_heads,
                       int head_dim, int causal, const unsigned char *key_mask, float *out, int isa, int threads) {
    if (isa > qs_kernels_best_isa()) isa = qs_kernels_best_isa();
    struct attention_job job = {
        .q = q, .k = k, .v = v, .out = out, .rows = rows, .qstride = (long)heads * head_dim,
        .kvstride = (long)kv_heads * head_dim, .keys = keys, .past = keys - rows, .group = heads / kv_heads,
        .head_dim = head_dim, .causal = causal, .isa = isa == 2 ? 2 : 0, .scale = 1 / sqrtf((float)head_dim),
        .key_mask = key_mask,
    };
    qs_parallel((long)heads * rows, 1, threads, attention_task, &job);
}
