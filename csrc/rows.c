/* Row reductions the softmax kernels share (attention, decode step, linear cross-entropy). */
#include <math.h>

#include "internal.h"

/* Maximum of s[0..n) ignoring NaN (a NaN never wins; the exp that follows carries it). */
NLPK_CLONES
float nlpk_row_max(const float *s, int n) {
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int j = 0; j < n; j++) m = s[j] > m ? s[j] : m;
    return m;
}

/* s[j] <- exp(s[j] - m), exactly 0 where s[j] is -inf; returns the sum. */
NLPK_CLONES
float nlpk_exp_shifted(float *s, int n, float m) {
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; j++) {
        float p = s[j] == -INFINITY ? 0.0f : nlpk_expf(s[j] - m);
        s[j] = p;
        sum += p;
    }
    return sum;
}
