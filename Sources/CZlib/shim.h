#ifndef GH_CZLIB_SHIM_H
#define GH_CZLIB_SHIM_H
#include <zlib.h>
/* deflateInit2/inflateInit2 are macros; Swift cannot call macros, so wrap them. */
static inline int gh_deflate_init2(z_streamp s, int level, int window_bits) {
    return deflateInit2(s, level, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
}
static inline int gh_inflate_init2(z_streamp s, int window_bits) {
    return inflateInit2(s, window_bits);
}
#endif
