/* Decode-step attention against a preallocated key/value cache, and the
 * in-place cache write.
 *
 * One new query per (batch, head) attends to the cache positions
 * [starts[b], lengths[b]) of its sequence. Each (batch, head) pair is one unit
 * of work; the keys are walked once in blocks of DB positions with an online
 * softmax (running maximum and sum), and the values of a block are added into
 * the output row right after its probabilities are known, so each cached key
 * and value is read exactly once and nothing is copied. The output row itself
 * is the accumulator: no scratch memory beyond a block of logits on the stack.
 */
#include <math.h>
#include <string.h>

#include "internal.h"

#define DB 256
/* Cached floats read by one step above which it is split over threads (about 1 MB). */
#define DECODE_PARALLEL_WORK (1 << 18)

NLPK_CLONES
static void block_logits(const float *q, const float *k, int n, int D, float scale, float *s) {
    int j = 0;
    /* Four keys per sweep of q, four independent sums: the horizontal
     * reductions overlap instead of each waiting on the last. */
    for (; j + 4 <= n; j += 4) {
        const float *k0 = k + (size_t)j * D, *k1 = k0 + D, *k2 = k1 + D, *k3 = k2 + D;
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
        for (int d = 0; d < D; d++) {
            a0 += q[d] * k0[d];
            a1 += q[d] * k1[d];
            a2 += q[d] * k2[d];
            a3 += q[d] * k3[d];
        }
        s[j] = scale * a0;
        s[j + 1] = scale * a1;
        s[j + 2] = scale * a2;
        s[j + 3] = scale * a3;
    }
    for (; j < n; j++) {
        const float *kj = k + (size_t)j * D;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int d = 0; d < D; d++) acc += q[d] * kj[d];
        s[j] = scale * acc;
    }
}

/* o (Dv) = c * o + sum_j p[j] v[j, :]. */
NLPK_CLONES
static void block_values(const float *p, const float *v, int n, int Dv, float c, float *o) {
    if (c != 1.0f) {
#pragma omp simd
        for (int d = 0; d < Dv; d++) o[d] *= c;
    }
    int j = 0;
    /* Four value rows per sweep of o: a quarter of the loads and stores of o. */
    for (; j + 4 <= n; j += 4) {
        const float *v0 = v + (size_t)j * Dv, *v1 = v0 + Dv, *v2 = v1 + Dv, *v3 = v2 + Dv;
        float p0 = p[j], p1 = p[j + 1], p2 = p[j + 2], p3 = p[j + 3];
#pragma omp simd
        for (int d = 0; d < Dv; d++) o[d] += p0 * v0[d] + p1 * v1[d] + p2 * v2[d] + p3 * v3[d];
    }
    for (; j < n; j++) {
        const float *vj = v + (size_t)j * Dv;
        float pj = p[j];
#pragma omp simd
        for (int d = 0; d < Dv; d++) o[d] += pj * vj[d];
    }
}

static void decode_unit(const float *q, const float *k, const float *v, int D, int Dv,
                        float scale, int start, int len, float *o) {
    float s[DB];
    float m = -INFINITY, l = 0.0f;
    int nan_seen = 0;
    memset(o, 0, (size_t)Dv * sizeof(float));
    for (int j0 = start; j0 < len; j0 += DB) {
        int n = len - j0 < DB ? len - j0 : DB;
        block_logits(q, k + (size_t)j0 * D, n, D, scale, s);
        float mt = nlpk_row_max(s, n);
        float mnew = mt > m ? mt : m;
        if (mnew == -INFINITY) {
            /* Every logit so far is -inf or NaN: remember a NaN, skip the rest. */
            for (int j = 0; j < n; j++) nan_seen |= s[j] != s[j];
            continue;
        }
        float c = 1.0f;
        if (mnew != m && m != -INFINITY) {
            c = nlpk_expf(m - mnew);
            l *= c;
        }
        m = mnew;
        l += nlpk_exp_shifted(s, n, m);
        block_values(s, v + (size_t)j0 * Dv, n, Dv, c, o);
    }
    if (nan_seen || m == -INFINITY || l != l) {
        /* An undefined softmax (a NaN logit, or all visible logits -inf, which
         * only inf inputs give): NaN, as the reference's plain softmax says. */
        for (int d = 0; d < Dv; d++) o[d] = NAN;
        return;
    }
    float inv = 1.0f / l;
    for (int d = 0; d < Dv; d++) o[d] *= inv;
}

void nlpk_attention_decode(const float *q, const float *k, const float *v, int B, int H, int L,
                           int D, int Dv, float scale, const int64_t *lengths,
                           const int64_t *starts, float *out) {
    /* Threads only for a cache worth splitting: a short one (a small model's step) reads in microseconds,
     * and waking a second thread costs more, and far more when another process holds the other core. */
    int64_t work = 0;
    for (int b = 0; b < B; b++) work += (lengths[b] - (starts ? starts[b] : 0)) * (int64_t)H * (D + Dv);
#pragma omp parallel for schedule(dynamic, 1) if (work > DECODE_PARALLEL_WORK)
    for (int u = 0; u < B * H; u++) {
        int b = u / H;
        int start = starts ? (int)starts[b] : 0;
        decode_unit(q + (size_t)u * D, k + (size_t)u * L * D, v + (size_t)u * L * Dv, D, Dv,
                    scale, start, (int)lengths[b], out + (size_t)u * Dv);
    }
}

void nlpk_cache_write(float *cache, int B, int H, int L, int D, const float *src, int T,
                      const int64_t *positions) {
    /* Only worth threads when there is much to copy (a prompt, not a step). */
    int64_t total = (int64_t)B * H * T * D;
#pragma omp parallel for schedule(static) if (total > 65536)
    for (int u = 0; u < B * H; u++) {
        int b = u / H;
        memcpy(cache + ((size_t)u * L + (size_t)positions[b]) * D, src + (size_t)u * T * D,
               (size_t)T * D * sizeof(float));
    }
}
