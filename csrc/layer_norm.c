/* Layer norm over the last axis, optionally fused with the residual add.
 *
 * Rows are independent: the forward walks each row three times while it sits
 * in L1 (mean, variance of the centred values, output), so x is read from
 * memory once and y written once. The backward's row part needs two row sums
 * (of g = dy * gamma and of g * xhat); dgamma and dbeta are column sums over
 * all rows, kept per slice of rows in double and added slice by slice in
 * order, so they do not depend on which thread ran which slice.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

NLPK_CLONES
static void ln_row(const float *x, const float *r, int D, const float *gamma,
                   const float *beta, float eps, float *y, float *s, float *mean_out,
                   float *rstd_out) {
    if (r) {
#pragma omp simd
        for (int j = 0; j < D; j++) s[j] = x[j] + r[j];
        x = s;
    }
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < D; j++) sum += x[j];
    float mean = sum / (float)D;
    float sq = 0.0f;
#pragma omp simd reduction(+ : sq)
    for (int j = 0; j < D; j++) {
        float c = x[j] - mean;
        sq += c * c;
    }
    float rstd = 1.0f / sqrtf(sq / (float)D + eps);
#pragma omp simd
    for (int j = 0; j < D; j++) y[j] = (x[j] - mean) * rstd * gamma[j] + beta[j];
    *mean_out = mean;
    *rstd_out = rstd;
}

void nlpk_layer_norm_forward(const float *x, const float *r, int64_t N, int D,
                             const float *gamma, const float *beta, float eps, float *y,
                             float *s, float *mean, float *rstd) {
#pragma omp parallel for schedule(dynamic, 32) if (N * (int64_t)D > 32768)
    for (int64_t i = 0; i < N; i++) {
        size_t o = (size_t)i * D;
        ln_row(x + o, r ? r + o : NULL, D, gamma, beta, eps, y + o, r ? s + o : NULL,
               mean + i, rstd + i);
    }
}

NLPK_CLONES
static void ln_row_backward(const float *dy, const float *x, int D, const float *gamma,
                            float mean, float rstd, const float *ds, float *dx, double *dg,
                            double *db) {
    float a = 0.0f, b = 0.0f;
#pragma omp simd reduction(+ : a, b)
    for (int j = 0; j < D; j++) {
        float xh = (x[j] - mean) * rstd;
        float g = dy[j] * gamma[j];
        a += g;
        b += g * xh;
    }
    a /= (float)D;
    b /= (float)D;
#pragma omp simd
    for (int j = 0; j < D; j++) {
        float xh = (x[j] - mean) * rstd;
        float d = rstd * (dy[j] * gamma[j] - a - xh * b);
        dx[j] = ds ? d + ds[j] : d;
        dg[j] += (double)(dy[j] * xh);
        db[j] += (double)dy[j];
    }
}

int nlpk_layer_norm_backward(const float *dy, const float *x, int64_t N, int D,
                             const float *gamma, const float *mean, const float *rstd,
                             const float *ds, float *dx, float *dgamma, float *dbeta) {
    /* Fixed slices: the column sums are bit-identical for any thread count up
     * to NSLICE. Small inputs get one slice (no threads). */
    int threads = MAX_THREADS();
    int nslice = N * (int64_t)D > 32768 ? (threads > 8 ? threads : 8) : 1;
    if (nslice > N) nslice = (int)N;
    double *part = calloc((size_t)nslice * 2 * D, sizeof(double));
    if (!part) return NLPK_ENOMEM;
#pragma omp parallel for schedule(dynamic, 1) if (nslice > 1)
    for (int sl = 0; sl < nslice; sl++) {
        int64_t i0 = N * sl / nslice, i1 = N * (sl + 1) / nslice;
        double *dg = part + (size_t)sl * 2 * D, *db = dg + D;
        for (int64_t i = i0; i < i1; i++) {
            size_t o = (size_t)i * D;
            ln_row_backward(dy + o, x + o, D, gamma, mean[i], rstd[i], ds ? ds + o : NULL,
                            dx + o, dg, db);
        }
    }
    for (int j = 0; j < D; j++) {
        double g = 0.0, b = 0.0;
        for (int sl = 0; sl < nslice; sl++) {
            g += part[(size_t)sl * 2 * D + j];
            b += part[(size_t)sl * 2 * D + D + j];
        }
        dgamma[j] = (float)g;
        dbeta[j] = (float)b;
    }
    free(part);
    return NLPK_OK;
}
