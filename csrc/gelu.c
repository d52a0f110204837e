/* GELU, y = x * Phi(x), forward and backward, elementwise.
 *
 * tanh approximation (BERT, GPT-2):
 *   y = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3),
 * computed as y = x * sigma(2u) with sigma(z) = 1 / (1 + exp(-z)), which is
 * the same value without the cancellation of 1 + tanh(u) for negative x.
 * exact: y = x Phi(x), Phi(x) = erfc(-x / sqrt 2) / 2, with erfc from the
 * Numerical Recipes Chebyshev fit (relative error below 1.2e-7 everywhere).
 * Both are written without libm calls so that the loops vectorise; the exp
 * is nlpk_expf, with arguments outside its range mapped to exactly 0 or inf.
 * Infinite and NaN inputs give what the float64 formulas above give.
 */
#include <math.h>

#include "internal.h"

#define GELU_C 0.7978845608028654f   /* sqrt(2 / pi) */
#define GELU_A 0.044715f
#define INV_SQRT2 0.7071067811865476f
#define INV_SQRT_2PI 0.3989422804014327f

/* exp(a), exactly 0 below -87 and inf above 88 (nlpk_expf clamps instead). */
static inline float exp_full(float a) {
    float e = nlpk_expf(a);
    e = a < -87.0f ? 0.0f : e;
    return a > 88.0f ? INFINITY : e;
}

/* erfc(z) for z >= 0 (NaN propagates). */
static inline float erfc_pos(float z) {
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    return t * exp_full(p - z * z);
}

static inline float phi_cdf(float x) {
    float e = erfc_pos(fabsf(x) * INV_SQRT2);
    return x >= 0.0f ? 1.0f - 0.5f * e : 0.5f * e;
}

NLPK_CLONES
static void gelu_tanh_fwd(const float *x, int64_t n, float *y) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float xi = x[i];
        float u = GELU_C * (xi + GELU_A * xi * xi * xi);
        y[i] = xi / (1.0f + exp_full(-2.0f * u));
    }
}

NLPK_CLONES
static void gelu_tanh_bwd(const float *dy, const float *x, int64_t n, float *dx) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float xi = x[i];
        float u = GELU_C * (xi + GELU_A * xi * xi * xi);
        float e = exp_full(-2.0f * u);
        float s = 1.0f / (1.0f + e);               /* sigma(2u) = (1 + tanh u) / 2 */
        float du = GELU_C * (1.0f + 3.0f * GELU_A * xi * xi);
        /* d/dx [x sigma(2u)] = sigma + 2 x sigma (1 - sigma) u', with
         * 1 - sigma = e sigma (1 where e is inf). Beyond |x| = 20 that term is
         * below float32's range (x * 0 keeps inf and NaN inputs NaN). */
        float one_minus_s = e == INFINITY ? 1.0f : e * s;
        float term = fabsf(xi) < 20.0f ? 2.0f * xi * (one_minus_s * s) * du : xi * 0.0f;
        dx[i] = dy[i] * (s + term);
    }
}

NLPK_CLONES
static void gelu_erf_fwd(const float *x, int64_t n, float *y) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * phi_cdf(x[i]);
}

NLPK_CLONES
static void gelu_erf_bwd(const float *dy, const float *x, int64_t n, float *dx) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float xi = x[i];
        float pdf = exp_full(-0.5f * xi * xi) * INV_SQRT_2PI;
        dx[i] = dy[i] * (phi_cdf(xi) + xi * pdf);
    }
}

#define GELU_CHUNK 16384

void nlpk_gelu_forward(const float *x, int64_t n, int approximate, float *y) {
    int64_t chunks = (n + GELU_CHUNK - 1) / GELU_CHUNK;
#pragma omp parallel for schedule(static) if (chunks > 4)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t i0 = c * GELU_CHUNK, m = n - i0 < GELU_CHUNK ? n - i0 : GELU_CHUNK;
        if (approximate)
            gelu_tanh_fwd(x + i0, m, y + i0);
        else
            gelu_erf_fwd(x + i0, m, y + i0);
    }
}

void nlpk_gelu_backward(const float *dy, const float *x, int64_t n, int approximate,
                        float *dx) {
    int64_t chunks = (n + GELU_CHUNK - 1) / GELU_CHUNK;
#pragma omp parallel for schedule(static) if (chunks > 4)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t i0 = c * GELU_CHUNK, m = n - i0 < GELU_CHUNK ? n - i0 : GELU_CHUNK;
        if (approximate)
            gelu_tanh_bwd(dy + i0, x + i0, m, dx + i0);
        else
            gelu_erf_bwd(dy + i0, x + i0, m, dx + i0);
    }
}
