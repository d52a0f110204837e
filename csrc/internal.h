/* Helpers shared by the kernel sources; not part of the public header. */
#ifndef NLPK_INTERNAL_H
#define NLPK_INTERNAL_H

#include <stdint.h>

#include "nlpk.h"

#ifdef _OPENMP
#include <omp.h>
#define MAX_THREADS() omp_get_max_threads()
#else
#define MAX_THREADS() 1
#endif

/* Hot loops get AVX-512 and AVX2 clones picked at load time, so a wheel
 * built for baseline x86-64 still uses the wide units where they exist. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define NLPK_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NLPK_CLONES
#endif

/* C (M x N) = alpha * op(A) * op(B) + beta * C, all row-major.
 * A row-major product is the column-major product of the transposes taken in
 * the other order, so the operands swap places. */
static inline void gemm_rm(nlpk_sgemm_fn sgemm, int trans_a, int trans_b, int M, int N,
                           int K, float alpha, const float *A, int lda, const float *B,
                           int ldb, float beta, float *C, int ldc) {
    char ta = trans_a ? 'T' : 'N';
    char tb = trans_b ? 'T' : 'N';
    if (M <= 0 || N <= 0) return;
    sgemm(&tb, &ta, &N, &M, &K, &alpha, (float *)B, &ldb, (float *)A, &lda, &beta, C, &ldc);
}

/* exp(x) to about 2 ulp, written so that loops over it vectorise (libm's
 * expf does not without -ffast-math, which this project never uses).
 * Cephes polynomial on x - n*ln2; NaN propagates; large negative x gives
 * denormal-free tiny values and callers zero masked entries themselves. */
static inline float nlpk_expf(float x) {
    /* Written as "c > x ? c : x" and "c < x ? c : x", the clamps are exactly
     * maxps / minps (a NaN x passes through both); other spellings made gcc
     * duplicate the whole polynomial for each clamp case. */
    x = -87.0f > x ? -87.0f : x;
    x = 88.0f < x ? 88.0f : x;
    /* Round to nearest by adding 1.5 * 2^23: no floorf, which baseline x86-64
     * cannot inline, and no float-to-int conversion, which is undefined for a
     * NaN. t's low mantissa bits then hold n in two's complement. */
    float t = x * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union {
        uint32_t i;
        float f;
    } bits;
    bits.f = t;
    /* 2^n: n + 127 in the exponent field (unsigned, so a NaN's bits wrap
     * harmlessly; the NaN in p carries through the product). */
    bits.i = (bits.i - 0x4B400000u + 127u) << 23;
    return p * bits.f;
}

/* csrc/rows.c: row reductions of the softmax kernels. */
float nlpk_row_max(const float *s, int n);
float nlpk_exp_shifted(float *s, int n, float m);

#endif
