#ifndef GH_CNGHTTP2_SHIM_H
#define GH_CNGHTTP2_SHIM_H
#include <nghttp2/nghttp2.h>
#endif
