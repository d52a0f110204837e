/* Scaled dot-product attention, flash style.
 *
 * Each (batch, head) pair is one unit of work for one thread. Queries are
 * taken in blocks of BQ rows and keys in blocks of BK columns; logits of one
 * tile live in per-thread scratch and an online softmax (running max and sum
 * per row) merges the key blocks. Forward keeps only the row log-sum-exp;
 * backward recomputes each tile's probabilities from it. All products are
 * BLAS calls on tiles. Every tensor but lse comes with its layout: a (b, h)
 * unit's rows need not be contiguous, so (B, T, H, D) arrays (the heads of a
 * fused q/k/v projection, say) are read and written where they are.
 *
 * Tile sizes: the BLAS packs both operands of every product, and the
 * probabilities P are packed again for P V with only Dv columns to spread
 * that over; tall query blocks spread the packing of K and V over more rows
 * (BQ 128 -> 512 took the forward at T = 512 from 0.63 to 0.64-0.70 of the GEMM
 * peak on one core). Causal blocks are shorter, BQC rows, and each stops at
 * the last key its last row sees, so the masked triangle above the diagonal
 * is computed only within one BQC-wide band: 75 % of the full work at
 * T = 128 and 56 % at T = 512, where one 128-row block did all of it at
 * T = 128. 64 rows beat 32 and 16 (smaller products, less efficient BLAS)
 * at T = 128: forward + backward 1.32x PyTorch on one core, against 1.22x
 * and 1.12x.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define BQ 512
#define BQC 64
#define BK 512

typedef struct {
    int Tq, Tk, D, Dv, causal;
    float scale;
    const uint8_t *keep; /* (Tk,) for this batch row, or NULL */
    /* Floats between consecutive rows (time steps) of q, k, v, out and, in
     * the backward, of dout, dq, dk, dv: D or Dv for (B, H, T, D) arrays,
     * H * D for (B, T, H, D) ones. */
    int64_t ldq, ldk, ldv, ldo, lddo, lddq, lddk, lddv;
} attn_shape;

/* The (b, h) unit's first row of a tensor laid out as `l`. */
static inline const float *unit_of(const float *x, nlpk_layout l, int b, int h) {
    return x + b * l.b + h * l.h;
}

static inline float *unit_of_w(float *x, nlpk_layout l, int b, int h) {
    return x + b * l.b + h * l.h;
}

/* Zero n rows of width w, ld floats apart. */
static void zero_rows(float *x, int n, int w, int64_t ld) {
    for (int i = 0; i < n; i++) memset(x + i * ld, 0, (size_t)w * sizeof(float));
}

/* Scaled logits of a tile, with masked entries set to -inf. */
static void masked_logits(const attn_shape *a, const float *qb, const float *kb, int q0,
                          int nq, int k0, int nk, float *S, nlpk_sgemm_fn sgemm) {
    gemm_rm(sgemm, 0, 1, nq, nk, a->D, a->scale, qb, (int)a->ldq, kb, (int)a->ldk, 0.0f, S, nk);
    if (a->keep) {
        for (int i = 0; i < nq; i++)
            for (int j = 0; j < nk; j++)
                if (!a->keep[k0 + j]) S[(size_t)i * nk + j] = -INFINITY;
    }
    if (a->causal) {
        int shift = a->Tk - a->Tq;
        for (int i = 0; i < nq; i++) {
            int last = q0 + i + shift - k0; /* last visible column in this tile */
            for (int j = last + 1 < 0 ? 0 : last + 1; j < nk; j++) S[(size_t)i * nk + j] = -INFINITY;
        }
    }
}

/* What a tile row whose maximum is -inf holds: ROW_NAN if a NaN, else
 * ROW_VISIBLE if some visible key has a -inf logit (only inf inputs do that),
 * else ROW_MASKED. */
enum { ROW_MASKED, ROW_VISIBLE, ROW_NAN };

static int empty_row_kind(const attn_shape *a, const float *s, int qi, int k0, int nk) {
    int last = a->causal ? qi + (a->Tk - a->Tq) - k0 : nk - 1;
    int kind = ROW_MASKED;
    for (int j = 0; j < nk; j++) {
        if (s[j] != s[j]) return ROW_NAN;
        if (j <= last && (!a->keep || a->keep[k0 + j])) kind = ROW_VISIBLE;
    }
    return kind;
}

/* How many keys, from the first, query rows [q0, q0 + nq) may see: all of
 * them, or under the causal mask up to the last row's diagonal (0 when the
 * block sees none, which leaves its rows empty). */
static int visible_keys(const attn_shape *a, int q0, int nq) {
    if (!a->causal) return a->Tk;
    int end = q0 + nq + (a->Tk - a->Tq);
    return end < 0 ? 0 : end < a->Tk ? end : a->Tk;
}

static int query_block(int causal) { return causal ? BQC : BQ; }

NLPK_CLONES
static void scale_row(float *x, int n, float c) {
#pragma omp simd
    for (int j = 0; j < n; j++) x[j] *= c;
}

static void forward_unit(const attn_shape *a, const float *q, const float *k, const float *v,
                         float *out, float *lse, float *S, float *m, float *l, float *saw,
                         nlpk_sgemm_fn sgemm) {
    const int bq = query_block(a->causal);
    for (int q0 = 0; q0 < a->Tq; q0 += bq) {
        int nq = a->Tq - q0 < bq ? a->Tq - q0 : bq;
        int kend = visible_keys(a, q0, nq);
        const float *qb = q + q0 * a->ldq;
        float *ob = out + q0 * a->ldo;
        zero_rows(ob, nq, a->Dv, a->ldo);
        for (int i = 0; i < nq; i++) {
            m[i] = -INFINITY;
            l[i] = 0.0f;
            saw[i] = 0.0f;
        }
        for (int k0 = 0; k0 < kend; k0 += BK) {
            int nk = kend - k0 < BK ? kend - k0 : BK;
            masked_logits(a, qb, k + k0 * a->ldk, q0, nq, k0, nk, S, sgemm);
            for (int i = 0; i < nq; i++) {
                float *s = S + (size_t)i * nk;
                float mt = nlpk_row_max(s, nk);
                float mnew = mt > m[i] ? mt : m[i];
                if (mnew == -INFINITY) {
                    /* A NaN poisons the row for good; visible keys at -inf only
                     * matter if no later tile brings a finite logit. */
                    int kind = empty_row_kind(a, s, q0 + i, k0, nk);
                    if (kind == ROW_NAN) m[i] = l[i] = NAN;
                    if (kind == ROW_VISIBLE) saw[i] = 1.0f;
                    memset(s, 0, (size_t)nk * sizeof(float));
                    continue;
                }
                if (mnew != m[i] && m[i] != -INFINITY) {
                    /* A larger maximum arrived: rescale what was summed so far. */
                    float c = nlpk_expf(m[i] - mnew);
                    l[i] *= c;
                    scale_row(ob + i * a->ldo, a->Dv, c);
                }
                m[i] = mnew;
                l[i] += nlpk_exp_shifted(s, nk, mnew);
            }
            gemm_rm(sgemm, 0, 0, nq, a->Dv, nk, 1.0f, S, nk, v + k0 * a->ldv, (int)a->ldv,
                    1.0f, ob, (int)a->ldo);
        }
        for (int i = 0; i < nq; i++) {
            float *o = ob + i * a->ldo;
            if (l[i] > 0.0f) {
                scale_row(o, a->Dv, 1.0f / l[i]);
                lse[q0 + i] = m[i] + logf(l[i]);
            } else if (l[i] != l[i] || saw[i] != 0.0f) {
                /* The softmax is undefined (NaN logits, or every visible
                 * logit -inf): say NaN rather than pass the row off as masked. */
                for (int j = 0; j < a->Dv; j++) o[j] = NAN;
                lse[q0 + i] = NAN;
            } else {
                lse[q0 + i] = -INFINITY; /* no visible key: zeros */
            }
        }
    }
}

int nlpk_attention_forward(const float *q, nlpk_layout lq, const float *k, nlpk_layout lk,
                           const float *v, nlpk_layout lv, int B, int H, int Tq, int Tk,
                           int D, int Dv, float scale, const uint8_t *key_keep, int causal,
                           float *out, nlpk_layout lo, float *lse, nlpk_sgemm_fn sgemm) {
    const int bq = Tq < query_block(causal) ? Tq : query_block(causal), bk = Tk < BK ? Tk : BK;
    int failed = 0;
#pragma omp parallel
    {
        float *S = malloc(((size_t)bq * bk + 3 * (size_t)bq) * sizeof(float));
        if (!S) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int u = 0; u < B * H; u++) {
            if (!S) continue;
            int b = u / H, h = u % H;
            attn_shape a = {Tq, Tk, D, Dv, causal, scale,
                            key_keep ? key_keep + (size_t)b * Tk : NULL,
                            lq.t, lk.t, lv.t, lo.t, 0, 0, 0, 0};
            forward_unit(&a, unit_of(q, lq, b, h), unit_of(k, lk, b, h), unit_of(v, lv, b, h),
                         unit_of_w(out, lo, b, h), lse + (size_t)u * Tq, S, S + (size_t)bq * bk,
                         S + (size_t)bq * bk + bq, S + (size_t)bq * bk + 2 * bq, sgemm);
        }
        free(S);
    }
    return failed ? NLPK_ENOMEM : NLPK_OK;
}

/* P <- exp(S - lse) row by row (rows with lse = -inf see nothing: zeros). */
NLPK_CLONES
static void probs_from_lse(float *S, int nq, int nk, const float *lse) {
    for (int i = 0; i < nq; i++) {
        float *s = S + (size_t)i * nk;
        float L = lse[i];
        if (L == -INFINITY) {
            memset(s, 0, (size_t)nk * sizeof(float));
            continue;
        }
#pragma omp simd
        for (int j = 0; j < nk; j++) s[j] = s[j] == -INFINITY ? 0.0f : nlpk_expf(s[j] - L);
    }
}

/* dS = P * (dP - delta), in place in dP. */
NLPK_CLONES
static void softmax_grad(const float *P, float *dP, int nq, int nk, const float *delta) {
    for (int i = 0; i < nq; i++) {
        const float *p = P + (size_t)i * nk;
        float *g = dP + (size_t)i * nk;
        float d = delta[i];
#pragma omp simd
        for (int j = 0; j < nk; j++) g[j] = p[j] * (g[j] - d);
    }
}

NLPK_CLONES
static float dot(const float *x, const float *y, int n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < n; j++) s += x[j] * y[j];
    return s;
}

static void backward_unit(const attn_shape *a, const float *dout, const float *q,
                          const float *k, const float *v, const float *out, const float *lse,
                          float *dq, float *dk, float *dv, float *S, float *dP, float *delta,
                          nlpk_sgemm_fn sgemm) {
    zero_rows(dk, a->Tk, a->D, a->lddk);
    zero_rows(dv, a->Tk, a->Dv, a->lddv);
    zero_rows(dq, a->Tq, a->D, a->lddq);
    const int bq = query_block(a->causal);
    for (int q0 = 0; q0 < a->Tq; q0 += bq) {
        int nq = a->Tq - q0 < bq ? a->Tq - q0 : bq;
        int kend = visible_keys(a, q0, nq);
        const float *qb = q + q0 * a->ldq;
        const float *dob = dout + q0 * a->lddo;
        float *dqb = dq + q0 * a->lddq;
        /* delta_i = sum_j P_ij dP_ij = dout_i . out_i */
        for (int i = 0; i < nq; i++)
            delta[i] = dot(dob + i * a->lddo, out + (q0 + i) * a->ldo, a->Dv);
        for (int k0 = 0; k0 < kend; k0 += BK) {
            int nk = kend - k0 < BK ? kend - k0 : BK;
            const float *kb = k + k0 * a->ldk, *vb = v + k0 * a->ldv;
            masked_logits(a, qb, kb, q0, nq, k0, nk, S, sgemm);
            probs_from_lse(S, nq, nk, lse + q0);
            gemm_rm(sgemm, 1, 0, nk, a->Dv, nq, 1.0f, S, nk, dob, (int)a->lddo, 1.0f,
                    dv + k0 * a->lddv, (int)a->lddv);
            gemm_rm(sgemm, 0, 1, nq, nk, a->Dv, 1.0f, dob, (int)a->lddo, vb, (int)a->ldv, 0.0f,
                    dP, nk);
            softmax_grad(S, dP, nq, nk, delta);
            gemm_rm(sgemm, 0, 0, nq, a->D, nk, a->scale, dP, nk, kb, (int)a->ldk, 1.0f, dqb,
                    (int)a->lddq);
            gemm_rm(sgemm, 1, 0, nk, a->D, nq, a->scale, dP, nk, qb, (int)a->ldq, 1.0f,
                    dk + k0 * a->lddk, (int)a->lddk);
        }
    }
}

int nlpk_attention_backward(const float *dout, nlpk_layout ldo_, const float *q,
                            nlpk_layout lq, const float *k, nlpk_layout lk, const float *v,
                            nlpk_layout lv, const float *out, nlpk_layout lo,
                            const float *lse, int B, int H, int Tq, int Tk, int D, int Dv,
                            float scale, const uint8_t *key_keep, int causal, float *dq,
                            nlpk_layout ldq, float *dk, nlpk_layout ldk, float *dv,
                            nlpk_layout ldv, nlpk_sgemm_fn sgemm) {
    const int bq = Tq < query_block(causal) ? Tq : query_block(causal), bk = Tk < BK ? Tk : BK;
    int failed = 0;
#pragma omp parallel
    {
        float *S = malloc((2 * (size_t)bq * bk + bq) * sizeof(float));
        if (!S) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int u = 0; u < B * H; u++) {
            if (!S) continue;
            int b = u / H, h = u % H;
            attn_shape a = {Tq, Tk, D, Dv, causal, scale,
                            key_keep ? key_keep + (size_t)b * Tk : NULL,
                            lq.t, lk.t, lv.t, lo.t, ldo_.t, ldq.t, ldk.t, ldv.t};
            backward_unit(&a, unit_of(dout, ldo_, b, h), unit_of(q, lq, b, h),
                          unit_of(k, lk, b, h), unit_of(v, lv, b, h), unit_of(out, lo, b, h),
                          lse + (size_t)u * Tq, unit_of_w(dq, ldq, b, h),
                          unit_of_w(dk, ldk, b, h), unit_of_w(dv, ldv, b, h), S,
                          S + (size_t)bq * bk,
                          S + 2 * (size_t)bq * bk, sgemm);
        }
        free(S);
    }
    return failed ? NLPK_ENOMEM : NLPK_OK;
}
