#include <string.h>

#include "nlpk.h"

#ifdef _OPENMP
#include <omp.h>
#endif

void nlpk_embedding_forward(const float *table, int64_t D, const int64_t *ids, int64_t n,
                            float *out) {
    int64_t i;
#pragma omp parallel for schedule(static) if (n * D > 65536)
    for (i = 0; i < n; i++) {
        memcpy(out + i * D, table + ids[i] * D, (size_t)D * sizeof(float));
    }
}

/* Scatter-add without atomics: each thread owns a band of columns and walks
 * all positions, so no two threads ever write the same float. Bands are
 * multiples of 16 floats to keep threads off each other's cache lines. */
static void scatter_rows(const float *grad_out, const int64_t *slot, int64_t n, int64_t D,
                         int64_t skip, float *dst) {
    int64_t nbands = (D + 15) / 16;
#pragma omp parallel if (n * D > 65536)
    {
        int nthreads = 1, tid = 0;
#ifdef _OPENMP
        nthreads = omp_get_num_threads();
        tid = omp_get_thread_num();
#endif
        int64_t b0 = nbands * tid / nthreads, b1 = nbands * (tid + 1) / nthreads;
        int64_t c0 = b0 * 16, c1 = b1 * 16 < D ? b1 * 16 : D;
        for (int64_t i = 0; i < n && c0 < c1; i++) {
            int64_t r = slot[i];
            if (r < 0 || r == skip) continue;
            const float *src = grad_out + i * D;
            float *row = dst + r * D;
#pragma omp simd
            for (int64_t c = c0; c < c1; c++) row[c] += src[c];
        }
    }
}

void nlpk_embedding_backward_dense(const float *grad_out, const int64_t *ids, int64_t n,
                                   int64_t D, int64_t padding_id, float *grad_table) {
    scatter_rows(grad_out, ids, n, D, padding_id, grad_table);
}

void nlpk_embedding_backward_rows(const float *grad_out, const int64_t *slot, int64_t n,
                                  int64_t D, float *rows) {
    scatter_rows(grad_out, slot, n, D, -1, rows);
}
