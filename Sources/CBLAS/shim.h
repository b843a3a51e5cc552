// Debian's OpenBLAS (libopenblas-dev): <cblas.h> is installed at /usr/include/x86_64-linux-gnu/cblas.h
// (an alternatives link to the OpenBLAS variant in use), which is on the default include path.
#ifndef QPK_CBLAS_SHIM_H
#define QPK_CBLAS_SHIM_H
#include <cblas.h>
#endif
