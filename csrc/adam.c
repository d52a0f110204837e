/* One Adam step over a parameter array, in one pass: the update reads the
 * parameter, its gradient and both moments once and writes them once (the
 * gradient as zeros, ready for the next step's accumulation), where the
 * numpy form made some fifteen passes with temporaries.
 *
 * Per element, with g = grad + l2 * param:
 *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
 *   param = decay * param - step * m / (sqrt(v) * inv_sqrt_bc2 + eps)
 * 1 - beta comes from the caller, rounded once from double: 1.0f - 0.999f is
 * off by 1.3e-5 relatively (0.999 is not a float), which showed in v.
 * step = lr / (1 - beta1^t) and inv_sqrt_bc2 = 1 / sqrt(1 - beta2^t) come
 * from the caller, as do l2 (coupled weight decay, Adam) and decay
 * (1 - lr * weight_decay, AdamW's decoupled decay; 1 otherwise). Each
 * element's arithmetic is the same whichever thread runs it, so results do
 * not depend on the thread count.
 */
#include <math.h>

#include "internal.h"

#define ADAM_CHUNK 16384

NLPK_CLONES
static void adam_chunk(float *p, float *g, float *m, float *v, int64_t n, float beta1,
                       float one_minus_beta1, float beta2, float one_minus_beta2, float step,
                       float inv_sqrt_bc2, float eps, float l2, float decay) {
    const float a1 = one_minus_beta1, a2 = one_minus_beta2;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] + l2 * p[i];
        float mi = beta1 * m[i] + a1 * gi;
        float vi = beta2 * v[i] + a2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        p[i] = decay * p[i] - step * (mi / (sqrtf(vi) * inv_sqrt_bc2 + eps));
        g[i] = 0.0f;
    }
}

void nlpk_adam_step(float *param, float *grad, float *m, float *v, int64_t n, float beta1,
                    float one_minus_beta1, float beta2, float one_minus_beta2, float step,
                    float inv_sqrt_bc2, float eps, float l2, float decay) {
    int64_t chunks = (n + ADAM_CHUNK - 1) / ADAM_CHUNK;
#pragma omp parallel for schedule(static) if (chunks > 4)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t i0 = c * ADAM_CHUNK, k = n - i0 < ADAM_CHUNK ? n - i0 : ADAM_CHUNK;
        adam_chunk(param + i0, grad + i0, m + i0, v + i0, k, beta1, one_minus_beta1, beta2,
                   one_minus_beta2, step, inv_sqrt_bc2, eps, l2, decay);
    }
}
