#ifndef QS_CZLIB_SHIM_H
#define QS_CZLIB_SHIM_H
#include <zlib.h>
// inflateInit2 is a macro: Swift calls this function instead.
static inline int qs_inflate_init2(z_stream *stream, int windowBits) {
    return inflateInit2(stream, windowBits);
}
#endif
