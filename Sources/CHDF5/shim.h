#ifndef QPK_CHDF5_SHIM_H
#define QPK_CHDF5_SHIM_H
#include <hdf5/serial/hdf5.h>
/* Macro constants Swift cannot import are wrapped here as static inline functions. */
static inline hid_t qpk_H5P_DEFAULT(void) { return H5P_DEFAULT; }
#endif
