/* nlpk: the C kernels of nlp-tool.
 *
 * Plain C99 + OpenMP, no Python. Callers (the Cython bindings) validate every
 * argument: shapes, dtypes, contiguity, index ranges. The kernels assume valid
 * input and never allocate more than O(threads * tile) scratch memory; a
 * kernel that needs scratch returns NLPK_ENOMEM when malloc fails, else NLPK_OK.
 *
 * All arrays are C-contiguous, row-major, float32 unless stated otherwise.
 * Matrix products go through the caller-supplied Fortran sgemm (from
 * scipy.linalg.cython_blas), so this layer links to no BLAS of its own.
 */
#ifndef NLPK_H
#define NLPK_H

#include <stdint.h>

#define NLPK_OK 0
#define NLPK_ENOMEM 1

/* Fortran BLAS sgemm, column-major, arguments by pointer. */
typedef void (*nlpk_sgemm_fn)(char *transa, char *transb, int *m, int *n, int *k,
                              float *alpha, float *a, int *lda, float *b, int *ldb,
                              float *beta, float *c, int *ldc);

/* ---- runtime ---------------------------------------------------------- */
int nlpk_openmp_enabled(void);
int nlpk_max_threads(void);
/* The thread count of the next parallel regions (omp_set_num_threads). */
void nlpk_set_num_threads(int n);

/* ---- embedding ---------------------------------------------------------
 * table (V, D); ids (n,) int64, all in [0, V).
 */
void nlpk_embedding_forward(const float *table, int64_t D, const int64_t *ids, int64_t n,
                            float *out /* (n, D) */);

/* grad_table (V, D) += scatter of grad_out (n, D) by ids; the row of
 * padding_id (or none when padding_id < 0) gets nothing. */
void nlpk_embedding_backward_dense(const float *grad_out, const int64_t *ids, int64_t n,
                                   int64_t D, int64_t padding_id, float *grad_table);

/* rows (U, D) += scatter of grad_out (n, D) by slot; slot[i] in [0, U), or -1
 * to skip position i (padding). */
void nlpk_embedding_backward_rows(const float *grad_out, const int64_t *slot, int64_t n,
                                  int64_t D, float *rows);

/* ---- conv1d, channels-last ---------------------------------------------
 * x (B, T, C); w (K, C, F); bias (F,) or NULL; stride 1.
 * pad_left zeros before each sequence; To output steps:
 *   valid: pad_left = 0, To = T - K + 1;  same: pad_left = (K - 1) / 2, To = T.
 * y[b, t, f] = bias[f] + sum_{k, c} x[b, t + k - pad_left, c] * w[k, c, f],
 * with x outside [0, T) read as zero.
 */
int nlpk_conv1d_forward(const float *x, int B, int T, int C, const float *w, int K, int F,
                        const float *bias, int pad_left, int To, float *y,
                        nlpk_sgemm_fn sgemm);

/* dx (B, T, C), dw (K, C, F) and db (F,) (db may be NULL) are overwritten. */
int nlpk_conv1d_backward(const float *dy, const float *x, int B, int T, int C,
                         const float *w, int K, int F, int pad_left, int To,
                         float *dx, float *dw, float *db, nlpk_sgemm_fn sgemm);

/* Fused conv -> bias -> ReLU -> max over time.
 * pooled[b, f] = max_t relu(y[b, t, f]); argmax[b, f] = first t reaching the
 * max of y[b, :, f] (before ReLU). The (B, To, F) activation is never stored. */
int nlpk_conv1d_relu_maxpool_forward(const float *x, int B, int T, int C, const float *w,
                                     int K, int F, const float *bias, int pad_left, int To,
                                     float *pooled, int32_t *argmax, nlpk_sgemm_fn sgemm);

/* Gradient flows only through (b, argmax[b, f], f) where pooled[b, f] > 0.
 * dx, dw, db are overwritten. */
int nlpk_conv1d_relu_maxpool_backward(const float *dpooled, const float *pooled,
                                      const int32_t *argmax, const float *x, int B, int T,
                                      int C, const float *w, int K, int F, int pad_left,
                                      float *dx, float *dw, float *db);

/* ---- scaled dot-product attention ---------------------------------------
 * q (B, H, Tq, D); k (B, H, Tk, D); v (B, H, Tk, Dv); out (B, H, Tq, Dv);
 * lse (B, H, Tq): log-sum-exp of each row of scaled, masked logits (-inf for a
 * fully masked row, whose output is zeros).
 * key_keep (B, Tk) uint8 or NULL: 0 marks a padding key that no query sees.
 * causal: query i sees key j only if j <= i + (Tk - Tq) (aligned at the end,
 * so a single new query attends to the whole cache).
 * Backward recomputes the probabilities tile by tile from lse: nothing of
 * size Tq x Tk is kept between forward and backward.
 */
int nlpk_attention_forward(const float *q, const float *k, const float *v, int B, int H,
                           int Tq, int Tk, int D, int Dv, float scale,
                           const uint8_t *key_keep, int causal, float *out, float *lse,
                           nlpk_sgemm_fn sgemm);

/* dq, dk, dv are overwritten. */
int nlpk_attention_backward(const float *dout, const float *q, const float *k,
                            const float *v, const float *out, const float *lse, int B,
                            int H, int Tq, int Tk, int D, int Dv, float scale,
                            const uint8_t *key_keep, int causal, float *dq, float *dk,
                            float *dv, nlpk_sgemm_fn sgemm);

#endif
