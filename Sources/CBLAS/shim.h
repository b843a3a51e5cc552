// Debian's OpenBLAS (libopenblas-dev): <cblas.h> is installed at /usr/include/x86_64-linux-gnu/cblas.h
// (an alternatives link to the OpenBLAS variant in use), which is on the default include path.
#ifndef QPK_CBLAS_SHIM_H
#define QPK_CBLAS_SHIM_H
#include <cblas.h>
// Debian's libopenblas also exports the reference LAPACK routines (Fortran calling convention,
// column-major); there is no header for them without liblapacke-dev, so the two GPTQ needs are
// declared here. See Sources/Quantize/GPTQ.swift.
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info);
#endif
