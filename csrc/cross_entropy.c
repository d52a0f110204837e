/* Softmax cross-entropy over a large vocabulary, fused with the output
 * projection: logits = h w^T (+ bias), never stored whole.
 *
 * The vocabulary is cut into blocks of `block` columns, and the blocks into
 * nslice contiguous slices, one unit of work each (dynamic schedule). Inside
 * a slice, each block's logits are computed BR rows at a time into
 * per-thread scratch (BR x block) with one sgemm.
 *
 * Forward: each slice keeps a running max and sum of exponentials per row
 * (an online log-sum-exp); the slices are merged in slice order, so the
 * result does not depend on which thread ran which slice. The target's
 * logit is picked up by the one block that holds it.
 * Backward: each block's logits are recomputed, G = coef * (softmax - onehot)
 * formed in place from the forward's lse, then dw[block] = G^T h (owned by
 * the slice), dbias[block] = column sums of G, and dh += G w[block] into
 * the slice's own (N x D) accumulator (slice 0 writes dh itself); the
 * accumulators are added in slice order at the end.
 * The fused entry point (at the end) does both for a chunk of rows at a
 * time, keeping the chunk's logits instead of recomputing them, as
 * exponentials: the forward's exp serves the gradient too.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define BR 256 /* rows per tile */
/* Rows per chunk of the fused entry point, and its logits' budget in floats:
 * 512 rows and 64 MB ran 5 % faster than 256 and 32 MB at V = 8000 and
 * V = 50257 (more rows per product outweigh the chunk outgrowing L3). */
#define FUSED_ROWS 512
#define FUSED_FLOATS ((int64_t)16 << 20)

typedef struct {
    const float *h, *w, *bias;
    const int64_t *targets;
    int N, D, V, block;
} ce_shape;

static int n_slices(int nblocks) {
    int threads = MAX_THREADS();
    int n = 2 * threads;
    return n < nblocks ? n : nblocks;
}

/* S (nr x nv, rows ld apart) = h[r0:r0+nr] w[v0:v0+nv]^T + bias[v0:v0+nv]. */
static void block_logits(const ce_shape *c, int r0, int nr, int v0, int nv, float *S, int ld,
                         nlpk_sgemm_fn sgemm) {
    gemm_rm(sgemm, 0, 1, nr, nv, c->D, 1.0f, c->h + (size_t)r0 * c->D, c->D,
            c->w + (size_t)v0 * c->D, c->D, 0.0f, S, ld);
    if (c->bias) {
        const float *b = c->bias + v0;
        for (int i = 0; i < nr; i++) {
            float *s = S + (size_t)i * ld;
#pragma omp simd
            for (int j = 0; j < nv; j++) s[j] += b[j];
        }
    }
}

NLPK_CLONES
static float ce_exp_sum(const float *s, int n, float m) {
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; j++) sum += nlpk_expf(s[j] - m);
    return sum;
}

/* ce_exp_sum that also leaves exp(s - m) in s, for the gradient to scale. */
NLPK_CLONES
static float ce_exp_sum_kept(float *s, int n, float m) {
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; j++) {
        float e = nlpk_expf(s[j] - m);
        s[j] = e;
        sum += e;
    }
    return sum;
}

/* Fold one tile into the running (m, l) of its rows: m, l, picked indexed
 * from row r0. With `shift` (the fused entry point), a row whose sum is
 * taken keeps exp(logit - shift[i]) in place of its logits, so that its
 * gradient costs a product instead of a second exp; shift[i] is NaN for a
 * row left as logits (nothing finite seen yet, or NaN/inf). */
static void forward_tile(const ce_shape *c, float *S, int ld, int r0, int nr, int v0, int nv,
                         float *m, float *l, float *picked, float *shift) {
    for (int i = 0; i < nr; i++) {
        float *s = S + (size_t)i * ld;
        if (shift) shift[i] = NAN;
        int64_t t = c->targets[r0 + i];
        if (t >= v0 && t < v0 + nv) picked[i] = s[t - v0];
        if (l[i] != l[i]) continue; /* a NaN came earlier: the row stays NaN */
        float mt = nlpk_row_max(s, nv); /* a NaN never wins the max; the sum below carries it */
        float mold = m[i];
        float mnew = mt > mold ? mt : mold;
        if (mnew == -INFINITY) {
            /* Every logit -inf so far (or NaN, which the max skips). */
            for (int j = 0; j < nv; j++)
                if (s[j] != s[j]) l[i] = NAN;
            continue;
        }
        if (mnew == INFINITY) {
            m[i] = INFINITY;
            l[i] = NAN; /* inf - inf: the softmax is undefined */
            continue;
        }
        float scaled = mold == -INFINITY ? 0.0f : l[i] * nlpk_expf(mold - mnew);
        m[i] = mnew;
        if (shift) {
            shift[i] = mnew;
            l[i] = scaled + ce_exp_sum_kept(s, nv, mnew);
        } else {
            l[i] = scaled + ce_exp_sum(s, nv, mnew);
        }
    }
}

/* The log-sum-exp of row i from the slices' running (m, l), taken in slice
 * order: m of slice sl at stats[sl * stride + i], l at stats[sl * stride + half + i]. */
static float merge_slices(const float *stats, int nslice, size_t stride, size_t half, int i) {
    float M = -INFINITY;
    for (int sl = 0; sl < nslice; sl++) {
        float ms = stats[sl * stride + i], ls = stats[sl * stride + half + i];
        if (ms != ms || ls != ls) return NAN;
        if (ms > M) M = ms;
    }
    if (M == -INFINITY) return -INFINITY;
    float L = 0.0f;
    for (int sl = 0; sl < nslice; sl++) {
        float ms = stats[sl * stride + i], ls = stats[sl * stride + half + i];
        if (ms != -INFINITY) L += ls * expf(ms - M);
    }
    return M + logf(L);
}

int nlpk_linear_cross_entropy_forward(const float *h, int N, int D, const float *w, int V,
                                      const float *bias, const int64_t *targets, int block,
                                      float *lse, float *row_loss, nlpk_sgemm_fn sgemm) {
    if (block > V) block = V;
    const int nblocks = (int)(((int64_t)V + block - 1) / block);
    const int nslice = n_slices(nblocks);
    const int br = N < BR ? N : BR;
    ce_shape c = {h, w, bias, targets, N, D, V, block};
    /* Per slice: running max and sum of each row; one picked logit per row. */
    float *stats = malloc(((size_t)2 * nslice + 1) * N * sizeof(float));
    if (!stats) return NLPK_ENOMEM;
    float *picked = stats + (size_t)2 * nslice * N;
    for (int sl = 0; sl < nslice; sl++)
        for (int i = 0; i < N; i++) {
            stats[(size_t)2 * N * sl + i] = -INFINITY;
            stats[(size_t)2 * N * sl + N + i] = 0.0f;
        }
    for (int i = 0; i < N; i++) picked[i] = 0.0f;
    int failed = 0;
#pragma omp parallel
    {
        float *S = malloc((size_t)br * block * sizeof(float));
        if (!S) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int sl = 0; sl < nslice; sl++) {
            if (!S) continue;
            float *m = stats + (size_t)2 * N * sl, *l = m + N;
            int b0 = (int)((int64_t)nblocks * sl / nslice);
            int b1 = (int)((int64_t)nblocks * (sl + 1) / nslice);
            for (int b = b0; b < b1; b++) {
                int v0 = (int)((int64_t)b * block);
                int nv = V - v0 < block ? V - v0 : block;
                for (int r0 = 0; r0 < N; r0 += br) {
                    int nr = N - r0 < br ? N - r0 : br;
                    block_logits(&c, r0, nr, v0, nv, S, nv, sgemm);
                    forward_tile(&c, S, nv, r0, nr, v0, nv, m + r0, l + r0, picked + r0, NULL);
                }
            }
        }
        free(S);
    }
    if (!failed) {
        for (int r = 0; r < N; r++) {
            lse[r] = merge_slices(stats, nslice, (size_t)2 * N, (size_t)N, r);
            row_loss[r] = targets[r] < 0 ? 0.0f : lse[r] - picked[r];
        }
    }
    free(stats);
    return failed ? NLPK_ENOMEM : NLPK_OK;
}

/* G = coef * (exp(S - lse) - onehot(target)) in place; ignored rows zero.
 * With `shift` (from forward_tile), a row with a number there holds
 * exp(logit - shift[i]) already and is scaled by exp(shift[i] - lse).
 * Column sums of G are added to db (the slice's own entries of dbias). */
NLPK_CLONES
static void grad_tile(const ce_shape *c, float *S, int ld, int r0, int nr, int v0, int nv,
                      const float *lse, const float *shift, float coef, float *db) {
    for (int i = 0; i < nr; i++) {
        float *s = S + (size_t)i * ld;
        int r = r0 + i;
        int64_t t = c->targets[r];
        if (t < 0) {
            memset(s, 0, (size_t)nv * sizeof(float));
            continue;
        }
        float L = lse[r];
        if (shift && shift[i] == shift[i]) {
            float f = coef * expf(shift[i] - L);
#pragma omp simd
            for (int j = 0; j < nv; j++) s[j] *= f;
        } else {
#pragma omp simd
            for (int j = 0; j < nv; j++) s[j] = coef * nlpk_expf(s[j] - L);
        }
        if (t >= v0 && t < v0 + nv) s[t - v0] -= coef;
        if (db) {
#pragma omp simd
            for (int j = 0; j < nv; j++) db[j] += s[j];
        }
    }
}

int nlpk_linear_cross_entropy_backward(const float *h, int N, int D, const float *w, int V,
                                       const float *bias, const int64_t *targets, int block,
                                       const float *lse, float coef, float *dh, float *dw,
                                       int accumulate_dw, float *dbias, nlpk_sgemm_fn sgemm) {
    if (block > V) block = V;
    const int nblocks = (int)(((int64_t)V + block - 1) / block);
    const int nslice = n_slices(nblocks);
    const int br = N < BR ? N : BR;
    ce_shape c = {h, w, bias, targets, N, D, V, block};
    /* dh of slices 1.. (slice 0 writes dh itself). */
    float *acc = NULL;
    if (nslice > 1) {
        acc = malloc((size_t)(nslice - 1) * N * D * sizeof(float));
        if (!acc) return NLPK_ENOMEM;
    }
    if (dbias) memset(dbias, 0, (size_t)V * sizeof(float));
    int failed = 0;
#pragma omp parallel
    {
        float *S = malloc((size_t)br * block * sizeof(float));
        if (!S) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int sl = 0; sl < nslice; sl++) {
            if (!S) continue;
            float *dhs = sl == 0 ? dh : acc + (size_t)(sl - 1) * N * D;
            int b0 = (int)((int64_t)nblocks * sl / nslice);
            int b1 = (int)((int64_t)nblocks * (sl + 1) / nslice);
            for (int b = b0; b < b1; b++) {
                int v0 = (int)((int64_t)b * block);
                int nv = V - v0 < block ? V - v0 : block;
                float *dwb = dw + (size_t)v0 * D;
                for (int r0 = 0; r0 < N; r0 += br) {
                    int nr = N - r0 < br ? N - r0 : br;
                    const float *hc = h + (size_t)r0 * D;
                    block_logits(&c, r0, nr, v0, nv, S, nv, sgemm);
                    grad_tile(&c, S, nv, r0, nr, v0, nv, lse, NULL, coef,
                              dbias ? dbias + v0 : NULL);
                    /* dw[block] (+)= G^T h[rows]; dh[rows] (+)= G w[block]. */
                    gemm_rm(sgemm, 1, 0, nv, D, nr, 1.0f, S, nv, hc, D,
                            (r0 == 0 && !accumulate_dw) ? 0.0f : 1.0f, dwb, D);
                    gemm_rm(sgemm, 0, 0, nr, D, nv, 1.0f, S, nv, c.w + (size_t)v0 * D, D,
                            b == b0 ? 0.0f : 1.0f, dhs + (size_t)r0 * D, D);
                }
            }
        }
        free(S);
    }
    if (!failed && nslice > 1) {
        const size_t total = (size_t)N * D;
#pragma omp parallel for schedule(static) if (total > 65536)
        for (int r = 0; r < N; r++) {
            float *d = dh + (size_t)r * D;
            for (int sl = 1; sl < nslice; sl++) {
                const float *a = acc + (size_t)(sl - 1) * N * D + (size_t)r * D;
#pragma omp simd
                for (int j = 0; j < D; j++) d[j] += a[j];
            }
        }
    }
    free(acc);
    return failed ? NLPK_ENOMEM : NLPK_OK;
}

/* Forward and backward in one call, for training: rows are taken R at a
 * time, and a chunk's logits over the whole vocabulary (R x V, at most about
 * 64 MB) are kept between its log-sum-exp and its gradient instead of being
 * recomputed. Per chunk, with barriers between: the slices fill their
 * columns of Z and their running (m, l); the rows' lse; each slice turns its
 * columns into G and adds G^T h into its rows of dw and G w into its partial
 * dh; the partial dh are summed in slice order. */
int nlpk_linear_cross_entropy_fused(const float *h, int N, int D, const float *w, int V,
                                    const float *bias, const int64_t *targets, int block,
                                    float coef, float *lse, float *row_loss, float *dh,
                                    float *dw, int accumulate_dw, float *dbias,
                                    nlpk_sgemm_fn sgemm) {
    if (block > V) block = V;
    const int nblocks = (int)(((int64_t)V + block - 1) / block);
    const int nslice = n_slices(nblocks);
    int64_t r64 = FUSED_FLOATS / V;
    r64 = r64 > FUSED_ROWS ? FUSED_ROWS : (r64 < 16 ? 16 : r64);
    const int R = (int)(r64 < N ? r64 : N);
    ce_shape c = {h, w, bias, targets, N, D, V, block};
    const size_t zsize = (size_t)R * V;
    float *Z = malloc((zsize + (size_t)2 * nslice * R + (size_t)nslice * R * D + R +
                       (size_t)nblocks * R) * sizeof(float));
    if (!Z) return NLPK_ENOMEM;
    float *stats = Z + zsize, *part = stats + (size_t)2 * nslice * R;
    float *picked = part + (size_t)nslice * R * D;
    float *shifts = picked + R; /* forward_tile's shift, R per block */
    for (int i = 0; i < R; i++) picked[i] = 0.0f;
    if (dbias) memset(dbias, 0, (size_t)V * sizeof(float));
#pragma omp parallel
    for (int r0 = 0; r0 < N; r0 += R) {
        const int nr = N - r0 < R ? N - r0 : R;
#pragma omp for schedule(dynamic, 1)
        for (int sl = 0; sl < nslice; sl++) {
            float *m = stats + (size_t)2 * R * sl, *l = m + R;
            for (int i = 0; i < nr; i++) {
                m[i] = -INFINITY;
                l[i] = 0.0f;
            }
            int b0 = (int)((int64_t)nblocks * sl / nslice);
            int b1 = (int)((int64_t)nblocks * (sl + 1) / nslice);
            for (int b = b0; b < b1; b++) {
                int v0 = (int)((int64_t)b * block);
                int nv = V - v0 < block ? V - v0 : block;
                block_logits(&c, r0, nr, v0, nv, Z + v0, V, sgemm);
                forward_tile(&c, Z + v0, V, r0, nr, v0, nv, m, l, picked, shifts + (size_t)b * R);
            }
        }
#pragma omp for schedule(static)
        for (int i = 0; i < nr; i++) {
            int r = r0 + i;
            lse[r] = merge_slices(stats, nslice, (size_t)2 * R, (size_t)R, i);
            row_loss[r] = targets[r] < 0 ? 0.0f : lse[r] - picked[i];
            picked[i] = 0.0f; /* for the next chunk (an ignored row picks nothing) */
        }
#pragma omp for schedule(dynamic, 1)
        for (int sl = 0; sl < nslice; sl++) {
            float *dhs = part + (size_t)sl * R * D;
            int b0 = (int)((int64_t)nblocks * sl / nslice);
            int b1 = (int)((int64_t)nblocks * (sl + 1) / nslice);
            for (int b = b0; b < b1; b++) {
                int v0 = (int)((int64_t)b * block);
                int nv = V - v0 < block ? V - v0 : block;
                float *G = Z + v0;
                grad_tile(&c, G, V, r0, nr, v0, nv, lse, shifts + (size_t)b * R, coef,
                          dbias ? dbias + v0 : NULL);
                gemm_rm(sgemm, 1, 0, nv, D, nr, 1.0f, G, V, h + (size_t)r0 * D, D,
                        (r0 == 0 && !accumulate_dw) ? 0.0f : 1.0f, dw + (size_t)v0 * D, D);
                gemm_rm(sgemm, 0, 0, nr, D, nv, 1.0f, G, V, w + (size_t)v0 * D, D,
                        b == b0 ? 0.0f : 1.0f, dhs, D);
            }
        }
#pragma omp for schedule(static)
        for (int i = 0; i < nr; i++) {
            float *d = dh + (size_t)(r0 + i) * D;
            memcpy(d, part + (size_t)i * D, (size_t)D * sizeof(float));
            for (int sl = 1; sl < nslice; sl++) {
                const float *a = part + (size_t)sl * R * D + (size_t)i * D;
#pragma omp simd
                for (int j = 0; j < D; j++) d[j] += a[j];
            }
        }
    }
    free(Z);
    return NLPK_OK;
}
