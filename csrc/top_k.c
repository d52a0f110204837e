/* The k most probable next tokens of each row of logits, with their
 * log-probabilities: a beam search step's log-softmax and selection in two
 * passes over each row, without writing the (rows x vocabulary) matrix of
 * log-probabilities that numpy's log_softmax and argpartition made and read
 * again some six times (MarianMT: 58,000 tokens a row).
 *
 * Pass one: the row's maximum, then its sum of exponentials (accumulated in
 * double, as the normaliser of every value). Pass two: the k largest logits,
 * kept sorted in a list of k that a logit enters only when it beats the
 * list's smallest, which after the first few hundred tokens almost none do.
 */
#include <math.h>

#include "internal.h"

/* Rows x vocabulary above which rows are shared out over threads (about 1 MB of logits). */
#define TOP_K_PARALLEL_WORK (1 << 18)

NLPK_CLONES
static double sum_exp(const float *x, int n, float m) {
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; j++) sum += x[j] == -INFINITY ? 0.0f : nlpk_expf(x[j] - m);
    return sum;
}

static int is_banned(int64_t j, const int64_t *banned, int n_banned) {
    for (int b = 0; b < n_banned; b++)
        if (banned[b] == j) return 1;
    return 0;
}

/* The k largest of x (value descending, index ascending among equals), banned ids left out. */
static void top_k_row(const float *x, int V, int k, const int64_t *banned, int n_banned,
                      float *value, int64_t *index) {
    int count = 0;
    for (int j = 0; j < V; j++) {
        float s = x[j];
        /* Full: only a logit above the smallest kept enters (an equal one loses to its lower index). */
        if (count == k && !(s > value[k - 1])) continue;
        if (n_banned && is_banned(j, banned, n_banned)) continue;
        int at = count < k ? count++ : k - 1;
        /* Shift smaller values down; stop at an equal one, which keeps its place before this later index. */
        while (at > 0 && s > value[at - 1]) {
            value[at] = value[at - 1];
            index[at] = index[at - 1];
            at--;
        }
        value[at] = s;
        index[at] = j;
    }
}

void nlpk_top_k_log_softmax(const float *logits, int R, int V, int k, const int64_t *banned,
                            int n_banned, float *values, int64_t *indices) {
    int64_t work = (int64_t)R * V;
#pragma omp parallel for schedule(static) if (work >= TOP_K_PARALLEL_WORK)
    for (int r = 0; r < R; r++) {
        const float *x = logits + (int64_t)r * V;
        float *value = values + (int64_t)r * k;
        int64_t *index = indices + (int64_t)r * k;
        float m = nlpk_row_max(x, V);
        float lse;
        if (m == -INFINITY) {
            /* Every logit -inf (no distribution: every value -inf), or NaN where the others are. */
            int nan = 0;
            for (int j = 0; j < V; j++) nan |= x[j] != x[j];
            lse = nan ? NAN : 0.0f;
        } else {
            lse = m + (float)log(sum_exp(x, V, m));
        }
        top_k_row(x, V, k, banned, n_banned, value, index);
        for (int i = 0; i < k; i++) value[i] -= lse;
    }
}
