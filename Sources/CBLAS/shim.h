#ifndef QS_CBLAS_SHIM_H
#define QS_CBLAS_SHIM_H
// OpenBLAS is not linked: libopenblas runs its CPU detection in a load-time constructor, which
// reads OPENBLAS_CORETYPE once. qs sets that variable first, then opens the library here.
#include <dlfcn.h>
#include <stddef.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

typedef void (*qs_sgemm_fn)(int order, int transA, int transB, int m, int n, int k, float alpha,
                            const float *a, int lda, const float *b, int ldb, float beta, float *c,
                            int ldc);
// y = alpha * op(A) x + beta * y: one row times a matrix, reading A once without packing it.
typedef void (*qs_sgemv_fn)(int order, int trans, int m, int n, float alpha, const float *a, int lda, const float *x,
                            int incx, float beta, float *y, int incy);
typedef void (*qs_set_threads_fn)(int);
// C = alpha * AᵀA + beta * C (trans) on one triangle of C: what X^T X needs, in half the work.
typedef void (*qs_ssyrk_fn)(int order, int uplo, int trans, int n, int k, float alpha, const float *a, int lda,
                            float beta, float *c, int ldc);
// LAPACK (OpenBLAS ships it): Cholesky factorisation and the inverse from it, double precision.
typedef void (*qs_dpotrf_fn)(const char *uplo, const int *n, double *a, const int *lda, int *info);
typedef void (*qs_dpotri_fn)(const char *uplo, const int *n, double *a, const int *lda, int *info);
typedef int (*qs_get_threads_fn)(void);
typedef char *(*qs_corename_fn)(void);

enum { QS_CBLAS_ROW_MAJOR = 101, QS_CBLAS_NO_TRANS = 111, QS_CBLAS_TRANS = 112, QS_CBLAS_UPPER = 121 };

static inline void *qs_blas_open(const char *path) { return dlopen(path, RTLD_NOW | RTLD_LOCAL); }
static inline const char *qs_blas_error(void) { return dlerror(); }
static inline qs_sgemm_fn qs_blas_sgemm(void *handle) { return (qs_sgemm_fn)dlsym(handle, "cblas_sgemm"); }
static inline qs_set_threads_fn qs_blas_set_threads(void *handle) {
    return (qs_set_threads_fn)dlsym(handle, "openblas_set_num_threads");
}
static inline qs_get_threads_fn qs_blas_get_threads(void *handle) {
    return (qs_get_threads_fn)dlsym(handle, "openblas_get_num_threads");
}
static inline qs_ssyrk_fn qs_blas_ssyrk(void *handle) { return (qs_ssyrk_fn)dlsym(handle, "cblas_ssyrk"); }
static inline qs_sgemv_fn qs_blas_sgemv(void *handle) { return (qs_sgemv_fn)dlsym(handle, "cblas_sgemv"); }
static inline qs_dpotrf_fn qs_lapack_dpotrf(void *handle) { return (qs_dpotrf_fn)dlsym(handle, "dpotrf_"); }
static inline qs_dpotri_fn qs_lapack_dpotri(void *handle) { return (qs_dpotri_fn)dlsym(handle, "dpotri_"); }
static inline qs_corename_fn qs_blas_corename(void *handle) {
    return (qs_corename_fn)dlsym(handle, "openblas_get_corename");
}

// What CPUID and XCR0 say about the vector units. Each field is 1 when the feature is present;
// the os_ fields say whether the OS saves the registers (without that the instructions fault).
typedef struct {
    int fma, avx, avx2;
    int avx512f, avx512bw, avx512dq, avx512vl;
    int amx_tile;
    int os_avx, os_avx512;
} qs_cpu_features;

static inline qs_cpu_features qs_cpu_detect(void) {
    qs_cpu_features f = {0};
#if defined(__x86_64__) || defined(__i386__)
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid_count(1, 0, &eax, &ebx, &ecx, &edx)) return f;
    f.fma = (ecx >> 12) & 1;
    f.avx = (ecx >> 28) & 1;
    int osxsave = (ecx >> 27) & 1;
    if (osxsave) {
        unsigned int xcr0_lo, xcr0_hi;
        __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
        // Bits 1-2: SSE and AVX state; bits 5-7: opmask, upper ZMM0-15, ZMM16-31.
        f.os_avx = (xcr0_lo & 0x6) == 0x6;
        f.os_avx512 = (xcr0_lo & 0xE6) == 0xE6;
    }
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
        f.avx2 = (ebx >> 5) & 1;
        f.avx512f = (ebx >> 16) & 1;
        f.avx512dq = (ebx >> 17) & 1;
        f.avx512bw = (ebx >> 30) & 1;
        f.avx512vl = (ebx >> 31) & 1;
        f.amx_tile = (edx >> 24) & 1;
    }
#endif
    return f;
}
#endif
