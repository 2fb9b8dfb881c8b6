#ifndef QS_CBLAS_SHIM_H
#define QS_CBLAS_SHIM_H
// OpenBLAS is not linked: libopenblas runs its CPU detection in a load-time constructor, which
// reads OPENBLAS_CORETYPE once. qs sets that variable first, then opens the library here.
#include <dlfcn.h>
#include <stddef.h>

typedef void (*qs_sgemm_fn)(int order, int transA, int transB, int m, int n, int k, float alpha,
                            const float *a, int lda, const float *b, int ldb, float beta, float *c,
                            int ldc);
typedef void (*qs_set_threads_fn)(int);
typedef char *(*qs_corename_fn)(void);

enum { QS_CBLAS_ROW_MAJOR = 101, QS_CBLAS_NO_TRANS = 111, QS_CBLAS_TRANS = 112 };

static inline void *qs_blas_open(const char *path) { return dlopen(path, RTLD_NOW | RTLD_LOCAL); }
static inline const char *qs_blas_error(void) { return dlerror(); }
static inline qs_sgemm_fn qs_blas_sgemm(void *handle) { return (qs_sgemm_fn)dlsym(handle, "cblas_sgemm"); }
static inline qs_set_threads_fn qs_blas_set_threads(void *handle) {
    return (qs_set_threads_fn)dlsym(handle, "openblas_set_num_threads");
}
static inline qs_corename_fn qs_blas_corename(void *handle) {
    return (qs_corename_fn)dlsym(handle, "openblas_get_corename");
}
#endif
