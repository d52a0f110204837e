/* 1-D convolution on channels-last sequences, through BLAS.
 *
 * Two algorithms compute the same thing:
 * - taps: y[t] += x[t + k - pad_left] @ w[k] for each tap k, one GEMM per tap
 *   straight on the input rows (channels last makes them a plain matrix);
 * - Winograd F(2, K) for K = 3 and 5: outputs in pairs, from transformed
 *   input tiles and transformed weights, with alpha = K + 1 GEMMs per pair of
 *   outputs instead of 2K (1.5x fewer products for K = 3, 1.67x for K = 5).
 *   Transforms use small exact constants, so float32 results stay within a
 *   few ulp-scale errors of the direct sum (tests hold both to the reference).
 * Work is split over the batch, one sequence at a time to whichever thread is
 * free (so a core slowed by other work does not hold the rest back); each
 * thread owns its scratch and its slice of the output, and weight gradients
 * are summed from per-thread buffers.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "nlpk.h"

/* Output steps are produced in chunks of at most this many rows (even, for
 * Winograd pairs), which bounds the scratch for very long sequences. */
#define ROW_CHUNK 512
#define MAX_ALPHA 6

/* y_pair = AT [(G w) . (BT d)] over alpha = K + 1 points (0, +-1, +-2, inf),
 * from the Toom-Cook construction, rows rescaled so that BT is integral. */
typedef struct {
    int K, alpha;
    float BT[MAX_ALPHA][MAX_ALPHA];
    float G[MAX_ALPHA][5];
    float AT[2][MAX_ALPHA];
} winograd_t;

static const winograd_t WINOGRAD_3 = {
    3, 4,
    {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}},
    {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}},
    {{1, 1, 1, 0}, {0, 1, -1, -1}},
};

static const winograd_t WINOGRAD_5 = {
    5, 6,
    {{4, 0, -5, 0, 1, 0},
     {0, 4, 4, -1, -1, 0},
     {0, -4, 4, 1, -1, 0},
     {0, -2, -1, 2, 1, 0},
     {0, 2, -1, -2, 1, 0},
     {0, 4, 0, -5, 0, 1}},
    {{0.25f, 0, 0, 0, 0},
     {1.f / 6, 1.f / 6, 1.f / 6, 1.f / 6, 1.f / 6},
     {1.f / 6, -1.f / 6, 1.f / 6, -1.f / 6, 1.f / 6},
     {1.f / 24, 2.f / 24, 4.f / 24, 8.f / 24, 16.f / 24},
     {1.f / 24, -2.f / 24, 4.f / 24, -8.f / 24, 16.f / 24},
     {0, 0, 0, 0, 1}},
    {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 1}},
};

/* One convolution's fixed parts: geometry, weights (K, C, F) and, for
 * Winograd, the transformed weights U (alpha, C, F). */
typedef struct {
    int C, F, K, pad_left;
    const float *w, *bias;
    const winograd_t *wino;
    float *U;
    nlpk_sgemm_fn sgemm;
} conv_plan;

/* Winograd pays off once the GEMMs dominate the transforms. */
static const winograd_t *pick_winograd(int K, int C, int F) {
    if (C < 16 || F < 16) return NULL;
    if (K == 3) return &WINOGRAD_3;
    if (K == 5) return &WINOGRAD_5;
    return NULL;
}

/* Fill a plan; allocates U for Winograd (free with plan_free). */
static int plan_init(conv_plan *p, int C, int F, int K, int pad_left, const float *w,
                     const float *bias, nlpk_sgemm_fn sgemm) {
    p->C = C, p->F = F, p->K = K, p->pad_left = pad_left;
    p->w = w, p->bias = bias, p->sgemm = sgemm, p->U = NULL;
    p->wino = pick_winograd(K, C, F);
    if (!p->wino) return NLPK_OK;
    const size_t CF = (size_t)C * F;
    p->U = malloc((size_t)p->wino->alpha * CF * sizeof(float));
    if (!p->U) return NLPK_ENOMEM;
    for (int a = 0; a < p->wino->alpha; a++) {
        float *Ua = p->U + a * CF;
        memset(Ua, 0, CF * sizeof(float));
        for (int k = 0; k < K; k++) {
            float g = p->wino->G[a][k];
            if (g == 0.0f) continue;
            const float *wk = w + k * CF;
            for (size_t i = 0; i < CF; i++) Ua[i] += g * wk[i];
        }
    }
    return NLPK_OK;
}

static void plan_free(conv_plan *p) { free(p->U); }

/* Floats of per-thread scratch that conv_range and winograd_weight_grad need. */
static size_t scratch_floats(const conv_plan *p) {
    if (!p->wino) return 1;
    size_t tiles = ROW_CHUNK / 2;
    return (size_t)p->wino->alpha * tiles * ((size_t)p->C + p->F) + (size_t)p->C;
}

static void fill_bias(const conv_plan *p, float *y, int rows) {
    for (int i = 0; i < rows; i++) {
        float *yr = y + (size_t)i * p->F;
        if (p->bias)
            memcpy(yr, p->bias, (size_t)p->F * sizeof(float));
        else
            memset(yr, 0, (size_t)p->F * sizeof(float));
    }
}

/* V[a][j] = sum_i BT[a][i] x[2 (j0 + j) - pad_left + i], zeros outside [0, T). */
NLPK_CLONES
static void input_transform(const conv_plan *p, const float *xb, int T, int j0, int nj,
                            float *V, const float *zeros) {
    const winograd_t *W = p->wino;
    const int C = p->C;
    const size_t plane = (size_t)nj * C;
    for (int j = 0; j < nj; j++) {
        const float *rows[MAX_ALPHA];
        int base = 2 * (j0 + j) - p->pad_left;
        for (int i = 0; i < W->alpha; i++)
            rows[i] = (base + i >= 0 && base + i < T) ? xb + (size_t)(base + i) * C : zeros;
        for (int a = 0; a < W->alpha; a++) {
            float *v = V + a * plane + (size_t)j * C;
            memset(v, 0, (size_t)C * sizeof(float));
            for (int i = 0; i < W->alpha; i++) {
                float bt = W->BT[a][i];
                if (bt == 0.0f) continue;
                const float *xr = rows[i];
#pragma omp simd
                for (int c = 0; c < C; c++) v[c] += bt * xr[c];
            }
        }
    }
}

/* Output rows [r0, r1) of one sequence of length T into y (r1 - r0, F).
 * r0 is even when the plan is Winograd. */
static void conv_range(const conv_plan *p, const float *xb, int T, int r0, int r1, float *y,
                       float *scratch) {
    const int C = p->C, F = p->F;
    fill_bias(p, y, r1 - r0);
    if (!p->wino) {
        for (int k = 0; k < p->K; k++) {
            int t0 = p->pad_left - k > r0 ? p->pad_left - k : r0;
            int t1 = T + p->pad_left - k < r1 ? T + p->pad_left - k : r1;
            if (t1 <= t0) continue;
            gemm_rm(p->sgemm, 0, 0, t1 - t0, F, C, 1.0f, xb + (size_t)(t0 + k - p->pad_left) * C,
                    C, p->w + (size_t)k * C * F, F, 1.0f, y + (size_t)(t0 - r0) * F, F);
        }
        return;
    }
    const winograd_t *W = p->wino;
    const int j0 = r0 / 2, nj = (r1 - r0 + 1) / 2;
    float *V = scratch, *M = V + (size_t)W->alpha * nj * C, *zeros = M + (size_t)W->alpha * nj * F;
    memset(zeros, 0, (size_t)C * sizeof(float));
    input_transform(p, xb, T, j0, nj, V, zeros);
    for (int a = 0; a < W->alpha; a++)
        gemm_rm(p->sgemm, 0, 0, nj, F, C, 1.0f, V + (size_t)a * nj * C, C,
                p->U + (size_t)a * C * F, F, 0.0f, M + (size_t)a * nj * F, F);
    for (int j = 0; j < nj; j++)
        for (int i = 0; i < 2 && 2 * j + i < r1 - r0; i++) {
            float *yr = y + (size_t)(2 * j + i) * F;
            for (int a = 0; a < W->alpha; a++) {
                float at = W->AT[i][a];
                if (at == 0.0f) continue;
                const float *m = M + ((size_t)a * nj + j) * F;
#pragma omp simd
                for (int f = 0; f < F; f++) yr[f] += at * m[f];
            }
        }
}

/* Whole sequences: y (B, To, F) from x (B, T, C). */
static int conv_batch(const conv_plan *p, const float *x, int B, int T, int To, float *y) {
    const size_t nscratch = scratch_floats(p);
    int failed = 0;
#pragma omp parallel
    {
        float *scratch = malloc(nscratch * sizeof(float));
        if (!scratch) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int b = 0; b < B; b++) {
            if (!scratch) continue;
            for (int r0 = 0; r0 < To; r0 += ROW_CHUNK) {
                int r1 = r0 + ROW_CHUNK < To ? r0 + ROW_CHUNK : To;
                conv_range(p, x + (size_t)b * T * p->C, T, r0, r1, y + ((size_t)b * To + r0) * p->F,
                           scratch);
            }
        }
        free(scratch);
    }
    return failed ? NLPK_ENOMEM : NLPK_OK;
}

int nlpk_conv1d_forward(const float *x, int B, int T, int C, const float *w, int K, int F,
                        const float *bias, int pad_left, int To, float *y,
                        nlpk_sgemm_fn sgemm) {
    conv_plan p;
    int status = plan_init(&p, C, F, K, pad_left, w, bias, sgemm);
    if (status == NLPK_OK) status = conv_batch(&p, x, B, T, To, y);
    plan_free(&p);
    return status;
}

/* Weight gradients are summed per slice of the batch, in batch order, each
 * slice in a buffer of its own; slices go to whichever thread is free, and the
 * buffers are added in slice order. The sums therefore do not depend on which
 * thread ran what: the same inputs give the same bits on every run (and with
 * any thread count up to MIN_SLICES / 2). */
#define MIN_SLICES 8

static int batch_slices(int B) {
    int n = 2 * MAX_THREADS();
    n = n < MIN_SLICES ? MIN_SLICES : n;
    return B < n ? B : n;
}

/* dst[i] = sum over nbuf buffers of acc[j * n + i]. */
static void reduce_buffers(const float *acc, int nbuf, size_t n, float *dst) {
#pragma omp parallel for schedule(static) if (n > 16384)
    for (size_t i = 0; i < n; i++) {
        float s = 0.0f;
        for (int j = 0; j < nbuf; j++) s += acc[(size_t)j * n + i];
        dst[i] = s;
    }
}

/* dU[a] += V[a]^T dM[a] for output rows [r0, r1) of one sequence, where
 * dM[a][j] = sum_i AT[i][a] dy[2 (j0 + j) + i]: the Winograd forward, transposed. */
static void winograd_weight_grad(const conv_plan *p, const float *xb, int T, const float *dyb,
                                 int r0, int r1, float *dU, float *scratch) {
    const winograd_t *W = p->wino;
    const int C = p->C, F = p->F, j0 = r0 / 2, nj = (r1 - r0 + 1) / 2;
    float *V = scratch, *dM = V + (size_t)W->alpha * nj * C, *zeros = dM + (size_t)W->alpha * nj * F;
    memset(zeros, 0, (size_t)C * sizeof(float));
    input_transform(p, xb, T, j0, nj, V, zeros);
    for (int a = 0; a < W->alpha; a++) {
        for (int j = 0; j < nj; j++) {
            float *m = dM + ((size_t)a * nj + j) * F;
            memset(m, 0, (size_t)F * sizeof(float));
            for (int i = 0; i < 2 && 2 * j + i < r1 - r0; i++) {
                float at = W->AT[i][a];
                if (at == 0.0f) continue;
                const float *g = dyb + (size_t)(r0 + 2 * j + i) * F;
#pragma omp simd
                for (int f = 0; f < F; f++) m[f] += at * g[f];
            }
        }
        gemm_rm(p->sgemm, 1, 0, C, F, nj, 1.0f, V + (size_t)a * nj * C, C, dM + (size_t)a * nj * F,
                F, 1.0f, dU + (size_t)a * C * F, F);
    }
}

/* Add one sequence's share of dw (in Winograd space for a Winograd plan) and db. */
static void weight_grad_sequence(const conv_plan *p, const float *xb, int T, const float *dyb, int To,
                                 float *dw, float *db, float *scratch) {
    const int C = p->C, F = p->F;
    if (p->wino) {
        for (int r0 = 0; r0 < To; r0 += ROW_CHUNK)
            winograd_weight_grad(p, xb, T, dyb, r0, r0 + ROW_CHUNK < To ? r0 + ROW_CHUNK : To, dw, scratch);
    } else {
        /* dw[k] += x[t + k - pad_left]^T dy[t] over the steps where the tap is inside x. */
        for (int k = 0; k < p->K; k++) {
            int t0 = p->pad_left - k > 0 ? p->pad_left - k : 0;
            int t1 = T + p->pad_left - k < To ? T + p->pad_left - k : To;
            if (t1 <= t0) continue;
            gemm_rm(p->sgemm, 1, 0, C, F, t1 - t0, 1.0f, xb + (size_t)(t0 + k - p->pad_left) * C, C,
                    dyb + (size_t)t0 * F, F, 1.0f, dw + (size_t)k * C * F, F);
        }
    }
    for (int t = 0; t < To; t++) {
        const float *row = dyb + (size_t)t * F;
#pragma omp simd
        for (int f = 0; f < F; f++) db[f] += row[f];
    }
}

int nlpk_conv1d_backward(const float *dy, const float *x, int B, int T, int C,
                         const float *w, int K, int F, int pad_left, int To,
                         float *dx, float *dw, float *db, nlpk_sgemm_fn sgemm) {
    /* dx is the convolution of dy with the taps reversed and transposed,
     * w'[k] = w[K - 1 - k]^T (F x C), padded so that it is "full". */
    const size_t CF = (size_t)C * F;
    float *wflip = malloc((size_t)K * CF * sizeof(float));
    if (!wflip) return NLPK_ENOMEM;
    for (int k = 0; k < K; k++)
        for (int c = 0; c < C; c++)
            for (int f = 0; f < F; f++)
                wflip[((size_t)(K - 1 - k) * F + f) * C + c] = w[((size_t)k * C + c) * F + f];
    conv_plan back, fwd;
    int status = plan_init(&back, F, C, K, K - 1 - pad_left, wflip, NULL, sgemm);
    if (status == NLPK_OK) status = conv_batch(&back, dy, B, To, T, dx);
    plan_free(&back);
    free(wflip);
    if (status != NLPK_OK) return status;

    status = plan_init(&fwd, C, F, K, pad_left, w, NULL, sgemm);
    if (status != NLPK_OK) return status;
    /* Per-slice weight gradient (in Winograd space when fwd.wino), then db. */
    const int nslices = batch_slices(B);
    const size_t nw = (size_t)(fwd.wino ? fwd.wino->alpha : K) * CF;
    const size_t nscratch = scratch_floats(&fwd);
    float *acc = calloc((size_t)nslices * (nw + F), sizeof(float));
    if (!acc) {
        plan_free(&fwd);
        return NLPK_ENOMEM;
    }
    int failed = 0;
#pragma omp parallel
    {
        float *scratch = malloc(nscratch * sizeof(float));
        if (!scratch) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int sl = 0; sl < nslices; sl++) {
            if (!scratch) continue;
            float *dw_s = acc + (size_t)sl * nw;
            float *db_s = acc + (size_t)nslices * nw + (size_t)sl * F;
            int b0 = (int)((int64_t)B * sl / nslices), b1 = (int)((int64_t)B * (sl + 1) / nslices);
            for (int b = b0; b < b1; b++)
                weight_grad_sequence(&fwd, x + (size_t)b * T * C, T, dy + (size_t)b * To * F, To, dw_s,
                                     db_s, scratch);
        }
        free(scratch);
    }
    if (!failed) {
        if (fwd.wino) {
            /* dU summed over slices, then dw[k] = sum_a G[a][k] dU[a]. */
            float *dU = malloc(nw * sizeof(float));
            if (!dU) {
                failed = 1;
            } else {
                reduce_buffers(acc, nslices, nw, dU);
                memset(dw, 0, (size_t)K * CF * sizeof(float));
                for (int k = 0; k < K; k++)
                    for (int a = 0; a < fwd.wino->alpha; a++) {
                        float g = fwd.wino->G[a][k];
                        if (g == 0.0f) continue;
                        const float *src = dU + a * CF;
                        float *dst = dw + k * CF;
                        for (size_t i = 0; i < CF; i++) dst[i] += g * src[i];
                    }
                free(dU);
            }
        } else {
            reduce_buffers(acc, nslices, nw, dw);
        }
        if (db) reduce_buffers(acc + (size_t)nslices * nw, nslices, (size_t)F, db);
    }
    free(acc);
    plan_free(&fwd);
    return failed ? NLPK_ENOMEM : NLPK_OK;
}

int nlpk_conv1d_relu_maxpool_forward(const float *x, int B, int T, int C, const float *w,
                                     int K, int F, const float *bias, int pad_left, int To,
                                     float *pooled, int32_t *argmax, nlpk_sgemm_fn sgemm) {
    conv_plan p;
    int status = plan_init(&p, C, F, K, pad_left, w, bias, sgemm);
    if (status != NLPK_OK) {
        plan_free(&p);
        return status;
    }
    const int R = To < ROW_CHUNK ? To : ROW_CHUNK;
    const size_t nscratch = scratch_floats(&p);
    int failed = 0;
#pragma omp parallel
    {
        float *scratch = malloc(nscratch * sizeof(float));
        float *y = malloc((size_t)R * F * sizeof(float));
        if (!scratch || !y) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int b = 0; b < B; b++) {
            if (!scratch || !y) continue;
            const float *xb = x + (size_t)b * T * C;
            float *best = pooled + (size_t)b * F;
            int32_t *arg = argmax + (size_t)b * F;
            for (int f = 0; f < F; f++) {
                best[f] = -INFINITY;
                arg[f] = 0;
            }
            for (int r0 = 0; r0 < To; r0 += R) {
                int r1 = r0 + R < To ? r0 + R : To;
                conv_range(&p, xb, T, r0, r1, y, scratch);
                for (int t = r0; t < r1; t++) {
                    const float *yr = y + (size_t)(t - r0) * F;
                    for (int f = 0; f < F; f++) {
                        /* First maximum wins; a NaN is taken and then kept, as numpy's
                         * max/argmax propagate it. */
                        if (best[f] == best[f] && !(yr[f] <= best[f])) {
                            best[f] = yr[f];
                            arg[f] = t;
                        }
                    }
                }
            }
            for (int f = 0; f < F; f++)
                if (best[f] <= 0.0f) best[f] = 0.0f;
        }
        free(scratch);
        free(y);
    }
    plan_free(&p);
    return failed ? NLPK_ENOMEM : NLPK_OK;
}

int nlpk_conv1d_relu_maxpool_backward(const float *dpooled, const float *pooled,
                                      const int32_t *argmax, const float *x, int B, int T,
                                      int C, const float *w, int K, int F, int pad_left,
                                      float *dx, float *dw, float *db) {
    const int nslices = batch_slices(B);
    const size_t nw = (size_t)K * C * F;
    /* Work in (K, F, C) order so both the x row and the accumulated row are
     * contiguous in c; wt is w in that order, acc the per-slice dw and db. */
    float *wt = malloc(nw * sizeof(float));
    float *acc = calloc((size_t)nslices * (nw + F), sizeof(float));
    if (!wt || !acc) {
        free(wt);
        free(acc);
        return NLPK_ENOMEM;
    }
    for (int k = 0; k < K; k++)
        for (int c = 0; c < C; c++)
            for (int f = 0; f < F; f++)
                wt[((size_t)k * F + f) * C + c] = w[((size_t)k * C + c) * F + f];
#pragma omp parallel for schedule(dynamic, 1)
    for (int sl = 0; sl < nslices; sl++) {
        float *dwt = acc + (size_t)sl * nw;
        float *db_t = acc + (size_t)nslices * nw + (size_t)sl * F;
        for (int b = (int)((int64_t)B * sl / nslices); b < (int)((int64_t)B * (sl + 1) / nslices); b++) {
            const float *xb = x + (size_t)b * T * C;
            float *dxb = dx + (size_t)b * T * C;
            memset(dxb, 0, (size_t)T * C * sizeof(float));
            for (int f = 0; f < F; f++) {
                size_t bf = (size_t)b * F + f;
                if (!(pooled[bf] > 0.0f)) continue; /* ReLU was off: no gradient */
                float g = dpooled[bf];
                db_t[f] += g;
                int s0 = argmax[bf] - pad_left;
                for (int k = 0; k < K; k++) {
                    int s = s0 + k;
                    if (s < 0 || s >= T) continue;
                    const float *xr = xb + (size_t)s * C;
                    float *dxr = dxb + (size_t)s * C;
                    float *dwr = dwt + ((size_t)k * F + f) * C;
                    const float *wr = wt + ((size_t)k * F + f) * C;
#pragma omp simd
                    for (int c = 0; c < C; c++) {
                        dwr[c] += g * xr[c];
                        dxr[c] += g * wr[c];
                    }
                }
            }
        }
    }
    /* Sum the per-slice buffers back into (K, C, F) order. */
#pragma omp parallel for schedule(static) if (nw > 16384)
    for (size_t i = 0; i < nw; i++) {
        size_t k = i / ((size_t)C * F), c = (i / F) % C, f = i % F;
        size_t src = (k * F + f) * C + c;
        float s = 0.0f;
        for (int j = 0; j < nslices; j++) s += acc[(size_t)j * nw + src];
        dw[i] = s;
    }
    if (db) reduce_buffers(acc + (size_t)nslices * nw, nslices, (size_t)F, db);
    free(wt);
    free(acc);
    return NLPK_OK;
}
