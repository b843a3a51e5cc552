#ifndef QPK_CZLIB_SHIM_H
#define QPK_CZLIB_SHIM_H
#include <zlib.h>
#endif
