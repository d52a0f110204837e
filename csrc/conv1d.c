/* 1-D convolution on channels-last sequences through im2col + BLAS.
 *
 * With channels last and stride 1, the receptive field of output step t is
 * the K*C floats starting at x[t - pad_left]: im2col is a row copy, and the
 * whole window product becomes one GEMM with inner dimension K*C. Work is
 * split over the batch; each thread owns its scratch and its slice of the
 * output, and parameter gradients are summed from per-thread buffers.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "nlpk.h"


/* Output steps are processed in chunks of at most this many rows, which
 * bounds the im2col scratch for very long sequences. */
#define ROW_CHUNK 512

/* cols (r1 - r0, K*C): row t - r0 holds x[t - pad_left .. t - pad_left + K), zeros outside [0, T). */
static void im2col(const float *xb, int T, int C, int K, int pad_left, int r0, int r1,
                   float *cols) {
    const size_t KC = (size_t)K * C;
    for (int t = r0; t < r1; t++) {
        float *row = cols + (size_t)(t - r0) * KC;
        int s = t - pad_left;
        if (s >= 0 && s + K <= T) {
            memcpy(row, xb + (size_t)s * C, KC * sizeof(float));
            continue;
        }
        for (int k = 0; k < K; k++) {
            int src = s + k;
            if (src >= 0 && src < T)
                memcpy(row + (size_t)k * C, xb + (size_t)src * C, (size_t)C * sizeof(float));
            else
                memset(row + (size_t)k * C, 0, (size_t)C * sizeof(float));
        }
    }
}

/* y rows [r0, r1) of one sequence: bias (or zero) plus cols @ w. */
static void conv_rows(const float *cols, int rows, int KC, const float *w, int F,
                      const float *bias, float *y, nlpk_sgemm_fn sgemm) {
    for (int i = 0; i < rows; i++) {
        float *yr = y + (size_t)i * F;
        if (bias)
            memcpy(yr, bias, (size_t)F * sizeof(float));
        else
            memset(yr, 0, (size_t)F * sizeof(float));
    }
    gemm_rm(sgemm, 0, 0, rows, F, KC, 1.0f, cols, KC, w, F, 1.0f, y, F);
}

static int chunk_rows(int To) { return To < ROW_CHUNK ? (To > 0 ? To : 1) : ROW_CHUNK; }

int nlpk_conv1d_forward(const float *x, int B, int T, int C, const float *w, int K, int F,
                        const float *bias, int pad_left, int To, float *y,
                        nlpk_sgemm_fn sgemm) {
    const int KC = K * C, R = chunk_rows(To);
    int failed = 0;
#pragma omp parallel
    {
        float *cols = malloc((size_t)R * KC * sizeof(float));
        if (!cols) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int b = 0; b < B; b++) {
            if (!cols) continue;
            const float *xb = x + (size_t)b * T * C;
            for (int r0 = 0; r0 < To; r0 += R) {
                int r1 = r0 + R < To ? r0 + R : To;
                im2col(xb, T, C, K, pad_left, r0, r1, cols);
                conv_rows(cols, r1 - r0, KC, w, F, bias, y + ((size_t)b * To + r0) * F, sgemm);
            }
        }
        free(cols);
    }
    return failed ? NLPK_ENOMEM : NLPK_OK;
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

int nlpk_conv1d_backward(const float *dy, const float *x, int B, int T, int C,
                         const float *w, int K, int F, int pad_left, int To,
                         float *dx, float *dw, float *db, nlpk_sgemm_fn sgemm) {
    const int KC = K * C, R = chunk_rows(To), nthr = MAX_THREADS();
    const size_t nw = (size_t)KC * F;
    /* Per-thread dw then db, so that threads never add into shared memory. */
    float *acc = calloc((size_t)nthr * (nw + F), sizeof(float));
    if (!acc) return NLPK_ENOMEM;
    int failed = 0;
#pragma omp parallel num_threads(nthr)
    {
        float *dw_t = acc + (size_t)THREAD_ID() * nw;
        float *db_t = acc + (size_t)nthr * nw + (size_t)THREAD_ID() * F;
        float *cols = malloc((size_t)R * KC * sizeof(float));
        if (!cols) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int b = 0; b < B; b++) {
            if (!cols) continue;
            const float *xb = x + (size_t)b * T * C;
            const float *dyb = dy + (size_t)b * To * F;
            float *dxb = dx + (size_t)b * T * C;
            memset(dxb, 0, (size_t)T * C * sizeof(float));
            /* dx[s] += dy[t] @ w[k]^T for every tap k with s = t + k - pad_left. */
            for (int k = 0; k < K; k++) {
                int t0 = pad_left - k > 0 ? pad_left - k : 0;
                int t1 = T + pad_left - k < To ? T + pad_left - k : To;
                if (t1 <= t0) continue;
                gemm_rm(sgemm, 0, 1, t1 - t0, C, F, 1.0f, dyb + (size_t)t0 * F, F,
                        w + (size_t)k * C * F, F, 1.0f, dxb + (size_t)(t0 + k - pad_left) * C, C);
            }
            for (int r0 = 0; r0 < To; r0 += R) {
                int r1 = r0 + R < To ? r0 + R : To;
                im2col(xb, T, C, K, pad_left, r0, r1, cols);
                gemm_rm(sgemm, 1, 0, KC, F, r1 - r0, 1.0f, cols, KC, dyb + (size_t)r0 * F, F,
                        1.0f, dw_t, F);
            }
            for (int t = 0; t < To; t++) {
                const float *row = dyb + (size_t)t * F;
#pragma omp simd
                for (int f = 0; f < F; f++) db_t[f] += row[f];
            }
        }
        free(cols);
    }
    if (!failed) {
        reduce_buffers(acc, nthr, nw, dw);
        if (db) reduce_buffers(acc + (size_t)nthr * nw, nthr, (size_t)F, db);
    }
    free(acc);
    return failed ? NLPK_ENOMEM : NLPK_OK;
}

int nlpk_conv1d_relu_maxpool_forward(const float *x, int B, int T, int C, const float *w,
                                     int K, int F, const float *bias, int pad_left, int To,
                                     float *pooled, int32_t *argmax, nlpk_sgemm_fn sgemm) {
    const int KC = K * C, R = chunk_rows(To);
    int failed = 0;
#pragma omp parallel
    {
        float *cols = malloc((size_t)R * KC * sizeof(float));
        float *y = malloc((size_t)R * F * sizeof(float));
        if (!cols || !y) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int b = 0; b < B; b++) {
            if (!cols || !y) continue;
            const float *xb = x + (size_t)b * T * C;
            float *best = pooled + (size_t)b * F;
            int32_t *arg = argmax + (size_t)b * F;
            for (int f = 0; f < F; f++) {
                best[f] = -INFINITY;
                arg[f] = 0;
            }
            for (int r0 = 0; r0 < To; r0 += R) {
                int r1 = r0 + R < To ? r0 + R : To;
                im2col(xb, T, C, K, pad_left, r0, r1, cols);
                conv_rows(cols, r1 - r0, KC, w, F, bias, y, sgemm);
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
        free(cols);
        free(y);
    }
    return failed ? NLPK_ENOMEM : NLPK_OK;
}

int nlpk_conv1d_relu_maxpool_backward(const float *dpooled, const float *pooled,
                                      const int32_t *argmax, const float *x, int B, int T,
                                      int C, const float *w, int K, int F, int pad_left,
                                      float *dx, float *dw, float *db) {
    const int nthr = MAX_THREADS();
    const size_t nw = (size_t)K * C * F;
    /* Work in (K, F, C) order so both the x row and the accumulated row are
     * contiguous in c; wt is w in that order, acc the per-thread dw and db. */
    float *wt = malloc(nw * sizeof(float));
    float *acc = calloc((size_t)nthr * (nw + F), sizeof(float));
    if (!wt || !acc) {
        free(wt);
        free(acc);
        return NLPK_ENOMEM;
    }
    for (int k = 0; k < K; k++)
        for (int c = 0; c < C; c++)
            for (int f = 0; f < F; f++)
                wt[((size_t)k * F + f) * C + c] = w[((size_t)k * C + c) * F + f];
#pragma omp parallel num_threads(nthr)
    {
        float *dwt = acc + (size_t)THREAD_ID() * nw;
        float *db_t = acc + (size_t)nthr * nw + (size_t)THREAD_ID() * F;
#pragma omp for schedule(static)
        for (int b = 0; b < B; b++) {
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
    /* Sum the per-thread buffers back into (K, C, F) order. */
#pragma omp parallel for schedule(static) if (nw > 16384)
    for (size_t i = 0; i < nw; i++) {
        size_t k = i / ((size_t)C * F), c = (i / F) % C, f = i % F;
        size_t src = (k * F + f) * C + c;
        float s = 0.0f;
        for (int j = 0; j < nthr; j++) s += acc[(size_t)j * nw + src];
        dw[i] = s;
    }
    if (db) reduce_buffers(acc + (size_t)nthr * nw, nthr, (size_t)F, db);
    free(wt);
    free(acc);
    return NLPK_OK;
}
