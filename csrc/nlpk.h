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
typedef struct {
    int64_t b, h, t; /* floats between consecutive batch rows, heads and time steps */
} nlpk_layout;

/* Each tensor's element (b, h, t, j) is at x[b * l.b + h * l.h + t * l.t + j]:
 * (B, H, T, D) arrays, or (B, T, H, D) ones read in place. lse is always
 * (B, H, Tq), contiguous. */
int nlpk_attention_forward(const float *q, nlpk_layout lq, const float *k, nlpk_layout lk,
                           const float *v, nlpk_layout lv, int B, int H, int Tq, int Tk,
                           int D, int Dv, float scale, const uint8_t *key_keep, int causal,
                           float *out, nlpk_layout lo, float *lse, nlpk_sgemm_fn sgemm);

/* dq, dk, dv are overwritten. */
int nlpk_attention_backward(const float *dout, nlpk_layout ldo_, const float *q,
                            nlpk_layout lq, const float *k, nlpk_layout lk, const float *v,
                            nlpk_layout lv, const float *out, nlpk_layout lo,
                            const float *lse, int B, int H, int Tq, int Tk, int D, int Dv,
                            float scale, const uint8_t *key_keep, int causal, float *dq,
                            nlpk_layout ldq, float *dk, nlpk_layout ldk, float *dv,
                            nlpk_layout ldv, nlpk_sgemm_fn sgemm);

/* ---- decode-step attention against a key/value cache -------------------
 * q (B, H, 1, D); k (B, H, L, D); v (B, H, L, Dv): caches preallocated to L
 * positions; out (B, H, 1, Dv). lengths (B,): 1 <= lengths[b] <= L; starts
 * (B,) or NULL (all 0): 0 <= starts[b] < lengths[b]. The query of sequence b
 * attends to cache positions [starts[b], lengths[b]) of every head; each is
 * read once, nothing is copied, no scratch is allocated. A softmax that is
 * undefined (a NaN logit, or every visible logit -inf) gives a NaN row.
 */
void nlpk_attention_decode(const float *q, const float *k, const float *v, int B, int H, int L,
                           int D, int Dv, float scale, const int64_t *lengths,
                           const int64_t *starts, float *out);

/* cache (B, H, L, D)[b, h, positions[b] + t, :] = src (B, H, T, D)[b, h, t, :],
 * in place; 0 <= positions[b] and positions[b] + T <= L; src and cache do
 * not overlap. */
void nlpk_cache_write(float *cache, int B, int H, int L, int D, const float *src, int T,
                      const int64_t *positions);

/* ---- the k most probable tokens of each row of logits ---------------------
 * logits (R, V); values (R, k): log_softmax(logits)[r] at the k largest
 * logits of row r, descending (an equal value: the lower index first), and
 * indices (R, k) their token ids. The n_banned ids of banned are never
 * chosen, though they count in the normaliser; 1 <= k <= V - n_banned. A row
 * whose logits are all -inf gives -inf values; a NaN logit, NaN values.
 */
void nlpk_top_k_log_softmax(const float *logits, int R, int V, int k, const int64_t *banned,
                            int n_banned, float *values, int64_t *indices);

/* ---- layer norm over the last axis (N rows of D) ------------------------
 * With r == NULL: y = (x - mean) * rstd * gamma + beta, rstd = 1/sqrt(var + eps)
 * (biased variance); s is not touched. With r: s = x + r is written and
 * normalised instead. mean, rstd (N,) are kept for the backward.
 */
void nlpk_layer_norm_forward(const float *x, const float *r, int64_t N, int D,
                             const float *gamma, const float *beta, float eps, float *y,
                             float *s, float *mean, float *rstd);

/* x is what was normalised (s for the fused form); ds (N, D) or NULL is a
 * gradient added to dx (the fused form's second output). dx (N, D), dgamma,
 * dbeta (D,) are overwritten. Returns NLPK_ENOMEM when scratch fails. */
int nlpk_layer_norm_backward(const float *dy, const float *x, int64_t N, int D,
                             const float *gamma, const float *mean, const float *rstd,
                             const float *ds, float *dx, float *dgamma, float *dbeta);

/* ---- GELU, elementwise over n values ------------------------------------
 * approximate = 1: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)));
 * approximate = 0: x Phi(x) (exact, erf). dx is dy times the derivative. */
void nlpk_gelu_forward(const float *x, int64_t n, int approximate, float *y);
void nlpk_gelu_backward(const float *dy, const float *x, int64_t n, int approximate,
                        float *dx);

/* ---- Adam, one step over n parameters, in place -------------------------
 * g = grad + l2 param; m, v updated; param = decay param - step m / (sqrt(v)
 * inv_sqrt_bc2 + eps); grad set to zero. All four arrays hold n floats and
 * do not overlap. */
void nlpk_adam_step(float *param, float *grad, float *m, float *v, int64_t n, float beta1,
                    float one_minus_beta1, float beta2, float one_minus_beta2, float step,
                    float inv_sqrt_bc2, float eps, float l2, float decay);

/* ---- softmax cross-entropy fused with the output projection -----------
 * h (N, D); w (V, D); bias (V,) or NULL; logits = h w^T + bias, computed
 * `block` vocabulary columns at a time and never stored whole.
 * targets (N,): each in [0, V), or < 0 for a row that is ignored.
 * Forward: lse (N,) = log-sum-exp of each row's logits; row_loss (N,) =
 * lse - logit of the target (0 for an ignored row).
 */
int nlpk_linear_cross_entropy_forward(const float *h, int N, int D, const float *w, int V,
                                      const float *bias, const int64_t *targets, int block,
                                      float *lse, float *row_loss, nlpk_sgemm_fn sgemm);

/* Gradients of coef * sum of the counted rows' losses, from the forward's lse:
 * G = coef * (softmax - onehot(target)) (zero rows where ignored);
 * dh = G w and dbias = column sums of G are overwritten (dbias may be NULL);
 * dw = G^T h is overwritten, or added to dw when accumulate_dw. */
int nlpk_linear_cross_entropy_backward(const float *h, int N, int D, const float *w, int V,
                                       const float *bias, const int64_t *targets, int block,
                                       const float *lse, float coef, float *dh, float *dw,
                                       int accumulate_dw, float *dbias, nlpk_sgemm_fn sgemm);

/* Both in one call (training): lse and row_loss as the forward, dh, dw,
 * dbias as the backward with coef, each chunk's logits kept rather than
 * recomputed (scratch of at most about 32 MB plus slices x 256 x D). */
int nlpk_linear_cross_entropy_fused(const float *h, int N, int D, const float *w, int V,
                                    const float *bias, const int64_t *targets, int block,
                                    float coef, float *lse, float *row_loss, float *dh,
                                    float *dw, int accumulate_dw, float *dbias,
                                    nlpk_sgemm_fn sgemm);

#endif
