"""Bindings of the C kernels in csrc/: the only door into C.

Every function checks its arguments (toolkit._checks) before a pointer reaches
C, releases the GIL while the kernel runs, and returns new numpy arrays. BLAS
comes from scipy.linalg.cython_blas, as in scikit-learn, and is handed to the
kernels as a function pointer so that csrc/ links to no BLAS of its own; the
pointer is taken from the module's C API table at import (toolkit.blas says
why not through a cimport).
"""

import numpy as np

from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport int32_t, int64_t, uint8_t

from toolkit import _checks
from toolkit.blas import scipy_cython_blas
from toolkit.threads import serial_blas

cdef extern from "nlpk.h" nogil:
    ctypedef void (*nlpk_sgemm_fn)(char *transa, char *transb, int *m, int *n, int *k,
                                   float *alpha, float *a, int *lda, float *b, int *ldb,
                                   float *beta, float *c, int *ldc)
    int NLPK_OK
    int nlpk_openmp_enabled()
    int nlpk_max_threads()
    void nlpk_set_num_threads(int n)
    void nlpk_embedding_forward(const float *table, int64_t D, const int64_t *ids, int64_t n,
                                float *out)
    void nlpk_embedding_backward_dense(const float *grad_out, const int64_t *ids, int64_t n,
                                       int64_t D, int64_t padding_id, float *grad_table)
    void nlpk_embedding_backward_rows(const float *grad_out, const int64_t *slot, int64_t n,
                                      int64_t D, float *rows)
    int nlpk_conv1d_forward(const float *x, int B, int T, int C, const float *w, int K, int F,
                            const float *bias, int pad_left, int To, float *y,
                            nlpk_sgemm_fn sgemm)
    int nlpk_conv1d_backward(const float *dy, const float *x, int B, int T, int C,
                             const float *w, int K, int F, int pad_left, int To,
                             float *dx, float *dw, float *db, nlpk_sgemm_fn sgemm)
    int nlpk_conv1d_relu_maxpool_forward(const float *x, int B, int T, int C, const float *w,
                                         int K, int F, const float *bias, int pad_left, int To,
                                         float *pooled, int32_t *argmax, nlpk_sgemm_fn sgemm)
    int nlpk_conv1d_relu_maxpool_backward(const float *dpooled, const float *pooled,
                                          const int32_t *argmax, const float *x, int B, int T,
                                          int C, const float *w, int K, int F, int pad_left,
                                          float *dx, float *dw, float *db)
    ctypedef struct nlpk_layout:
        int64_t b
        int64_t h
        int64_t t
    int nlpk_attention_forward(const float *q, nlpk_layout lq, const float *k, nlpk_layout lk,
                               const float *v, nlpk_layout lv, int B, int H, int Tq, int Tk,
                               int D, int Dv, float scale, const uint8_t *key_keep, int causal,
                               float *out, nlpk_layout lo, float *lse, nlpk_sgemm_fn sgemm)
    int nlpk_attention_backward(const float *dout, nlpk_layout ldo_, const float *q,
                                nlpk_layout lq, const float *k, nlpk_layout lk, const float *v,
                                nlpk_layout lv, const float *out, nlpk_layout lo,
                                const float *lse, int B, int H, int Tq, int Tk, int D, int Dv,
                                float scale, const uint8_t *key_keep, int causal, float *dq,
                                nlpk_layout ldq, float *dk, nlpk_layout ldk, float *dv,
                                nlpk_layout ldv, nlpk_sgemm_fn sgemm)
    void nlpk_attention_decode(const float *q, const float *k, const float *v, int B, int H,
                               int L, int D, int Dv, float scale, const int64_t *lengths,
                               const int64_t *starts, float *out)
    void nlpk_cache_write(float *cache, int B, int H, int L, int D, const float *src, int T,
                          const int64_t *positions)
    void nlpk_top_k_log_softmax(const float *logits, int R, int V, int k, const int64_t *banned,
                                int n_banned, float *values, int64_t *indices)
    void nlpk_layer_norm_forward(const float *x, const float *r, int64_t N, int D,
                                 const float *gamma, const float *beta, float eps, float *y,
                                 float *s, float *mean, float *rstd)
    int nlpk_layer_norm_backward(const float *dy, const float *x, int64_t N, int D,
                                 const float *gamma, const float *mean, const float *rstd,
                                 const float *ds, float *dx, float *dgamma, float *dbeta)
    void nlpk_gelu_forward(const float *x, int64_t n, int approximate, float *y)
    void nlpk_gelu_backward(const float *dy, const float *x, int64_t n, int approximate,
                            float *dx)
    void nlpk_adam_step(float *param, float *grad, float *m, float *v, int64_t n, float beta1,
                        float one_minus_beta1, float beta2, float one_minus_beta2, float step,
                        float inv_sqrt_bc2, float eps, float l2, float decay)
    int nlpk_linear_cross_entropy_forward(const float *h, int N, int D, const float *w, int V,
                                          const float *bias, const int64_t *targets, int block,
                                          float *lse, float *row_loss, nlpk_sgemm_fn sgemm)
    int nlpk_linear_cross_entropy_backward(const float *h, int N, int D, const float *w, int V,
                                           const float *bias, const int64_t *targets, int block,
                                           const float *lse, float coef, float *dh, float *dw,
                                           int accumulate_dw, float *dbias, nlpk_sgemm_fn sgemm)
    int nlpk_linear_cross_entropy_fused(const float *h, int N, int D, const float *w, int V,
                                        const float *bias, const int64_t *targets, int block,
                                        float coef, float *lse, float *row_loss, float *dh,
                                        float *dw, int accumulate_dw, float *dbias,
                                        nlpk_sgemm_fn sgemm)

# The C signature Cython gives scipy's sgemm (``s`` is scipy's float): what a cimport would check. With a SciPy
# whose sgemm differs, importing the kernels fails here (ValueError: "PyCapsule_GetPointer called with incorrect
# name") instead of handing them a wrong pointer.
cdef const char *SGEMM_SIGNATURE = (
    b"void (char *, char *, int *, int *, int *, __pyx_t_5scipy_6linalg_11cython_blas_s *,"
    b" __pyx_t_5scipy_6linalg_11cython_blas_s *, int *, __pyx_t_5scipy_6linalg_11cython_blas_s *, int *,"
    b" __pyx_t_5scipy_6linalg_11cython_blas_s *, __pyx_t_5scipy_6linalg_11cython_blas_s *, int *)")


cdef nlpk_sgemm_fn scipy_sgemm() except NULL:
    return <nlpk_sgemm_fn>PyCapsule_GetPointer(scipy_cython_blas().__pyx_capi__["sgemm"], SGEMM_SIGNATURE)


cdef nlpk_sgemm_fn BLAS = scipy_sgemm()


# Typed views of checked, non-empty, C-contiguous arrays. The checks in
# _checks guarantee all three, so taking the address of element 0 is safe.
# Inputs go through const views, so read-only arrays (np.load with mmap_mode,
# frozen weights) are accepted; outputs are always fresh writable arrays.
cdef inline const float *cfptr(a) except NULL:
    cdef const float[::1] view = a.reshape(-1)
    return &view[0]


cdef inline float *fptr(a) except NULL:
    cdef float[::1] view = a.reshape(-1)
    return &view[0]


# Attention's tensors: (B, H, T, D) with a contiguous last axis, other strides as they come (checked by
# _checks.rows_array; non-empty).
cdef inline const float *rows_ptr(a) except NULL:
    cdef const float[:, :, :, :] view = a  # strided (Cython's ::1 would demand the whole array contiguous)
    return &view[0, 0, 0, 0]


cdef inline float *rows_wptr(a) except NULL:
    cdef float[:, :, :, :] view = a
    return &view[0, 0, 0, 0]


cdef inline nlpk_layout layout_of(a):
    cdef nlpk_layout l
    l.b = a.strides[0] // 4
    l.h = a.strides[1] // 4
    # One time step: its stride is never followed, but BLAS wants a leading dimension of at least a row.
    l.t = a.strides[2] // 4 if a.shape[2] > 1 else a.shape[3]
    return l


cdef inline const int64_t *lptr(a) except NULL:
    cdef const int64_t[::1] view = a.reshape(-1)
    return &view[0]


cdef inline int64_t *wlptr(a) except NULL:
    cdef int64_t[::1] view = a.reshape(-1)
    return &view[0]


cdef inline const int32_t *ciptr(a) except NULL:
    cdef const int32_t[::1] view = a.reshape(-1)
    return &view[0]


cdef inline int32_t *iptr(a) except NULL:
    cdef int32_t[::1] view = a.reshape(-1)
    return &view[0]


cdef inline const uint8_t *bptr(a):
    if a is None:
        return NULL
    cdef const uint8_t[::1] view = a.reshape(-1)
    return &view[0]


cdef inline void check_status(int status) except *:
    if status != NLPK_OK:
        raise MemoryError("kernel scratch memory could not be allocated")


def openmp_enabled() -> bool:
    """Whether the kernels were compiled with OpenMP (else they run on one thread)."""
    return bool(nlpk_openmp_enabled())


def max_threads() -> int:
    """Threads an OpenMP kernel will use (OMP_NUM_THREADS, else the core count)."""
    return nlpk_max_threads()


def serial_after_fork() -> None:
    """Run the next OpenMP regions on one thread (for a child process made by fork)."""
    nlpk_set_num_threads(1)


def embedding_forward(table, ids):
    table = _checks.table_array(table)
    ids = _checks.ids_array(ids, "ids", table.shape[0])
    cdef int64_t D = table.shape[1], n = ids.size
    out = np.empty(ids.shape + (D,), dtype=np.float32)
    if n == 0:
        return out
    cdef const float *t = cfptr(table)
    cdef const int64_t *i = lptr(ids)
    cdef float *o = fptr(out)
    with nogil:
        nlpk_embedding_forward(t, D, i, n, o)
    return out


def embedding_backward(grad_out, ids, vocab_size, padding_idx=None, out=None):
    # Checked in the reference's order, so that both name the same culprit
    # when several arguments are wrong.
    vocab_size = _checks.vocab_size(vocab_size)
    ids = _checks.ids_array(ids, "ids", vocab_size)
    cdef int64_t pad = _checks.padding_id(padding_idx, vocab_size)
    grad_out = _checks.grad_rows(grad_out, ids)
    grad = grad_out.reshape(ids.size, grad_out.shape[-1])
    cdef int64_t D = grad.shape[1], n = grad.shape[0]
    if out is None:
        out = np.zeros((vocab_size, D), dtype=np.float32)
    else:
        out = _checks.writable(_checks.float_array(out, "out", 2), "out")
        _checks.same_shape("out", out.shape, "(vocab_size, D)", (vocab_size, D))
        if np.may_share_memory(out, grad):
            # The scatter reads grad rows while it adds into out; on shared
            # memory it would read rows it had already changed (the numpy
            # reference adds the whole gradient at once).
            grad = grad.copy()
    if n == 0:
        return out
    cdef const float *g = cfptr(grad)
    cdef const int64_t *i = lptr(ids)
    cdef float *o = fptr(out)
    with nogil:
        nlpk_embedding_backward_dense(g, i, n, D, pad, o)
    return out


def embedding_backward_sparse(grad_out, ids, vocab_size, padding_idx=None):
    vocab_size = _checks.vocab_size(vocab_size)
    ids = _checks.ids_array(ids, "ids", vocab_size)
    pad = _checks.padding_id(padding_idx, vocab_size)
    grad_out = _checks.grad_rows(grad_out, ids)
    grad = grad_out.reshape(ids.size, grad_out.shape[-1])
    flat = ids.reshape(-1)
    unique, slot = np.unique(flat, return_inverse=True)
    slot = np.ascontiguousarray(slot.reshape(-1), dtype=np.int64)
    if pad >= 0 and unique.size and (unique == pad).any():
        # Drop the padding id from the list; its positions get slot -1.
        where = int(np.searchsorted(unique, pad))
        unique = np.delete(unique, where)
        slot = np.where(slot == where, -1, np.where(slot > where, slot - 1, slot))
    cdef int64_t D = grad.shape[1], n = grad.shape[0]
    rows = np.zeros((unique.size, D), dtype=np.float32)
    if unique.size == 0:
        return unique.astype(np.int64), rows
    cdef const float *g = cfptr(grad)
    cdef const int64_t *s = lptr(slot)
    cdef float *r = fptr(rows)
    with nogil:
        nlpk_embedding_backward_rows(g, s, n, D, r)
    return unique.astype(np.int64), rows


def conv1d_forward(x, w, b=None, padding="valid"):
    x = _checks.float_array(x, "x", 3)
    w = _checks.float_array(w, "w", 3)
    # The bias before the geometry, as in the reference: the same call gets
    # the same exception from both.
    b = _checks.bias_vector(b, w.shape[2])
    cdef int pad_left, To
    pad_left, To = _checks.conv_geometry(x, w, padding)
    cdef int B = x.shape[0], T = x.shape[1], C = x.shape[2], K = w.shape[0], F = w.shape[2]
    y = np.empty((B, To, F), dtype=np.float32)
    cdef const float *px = cfptr(x)
    cdef const float *pw = cfptr(w)
    cdef const float *pb = NULL if b is None else cfptr(b)
    cdef float *py = fptr(y)
    cdef int status
    with serial_blas, nogil:
        status = nlpk_conv1d_forward(px, B, T, C, pw, K, F, pb, pad_left, To, py, BLAS)
    check_status(status)
    return y


def conv1d_backward(dy, x, w, padding="valid"):
    x = _checks.float_array(x, "x", 3)
    w = _checks.float_array(w, "w", 3)
    cdef int pad_left, To
    pad_left, To = _checks.conv_geometry(x, w, padding)
    cdef int B = x.shape[0], T = x.shape[1], C = x.shape[2], K = w.shape[0], F = w.shape[2]
    dy = _checks.float_array(dy, "dy", 3)
    _checks.same_shape("dy", dy.shape, "the conv1d output", (B, To, F))
    dx = np.empty_like(x)
    dw = np.empty_like(w)
    db = np.empty(F, dtype=np.float32)
    cdef const float *pdy = cfptr(dy)
    cdef const float *px = cfptr(x)
    cdef const float *pw = cfptr(w)
    cdef float *pdx = fptr(dx)
    cdef float *pdw = fptr(dw)
    cdef float *pdb = fptr(db)
    cdef int status
    with serial_blas, nogil:
        status = nlpk_conv1d_backward(pdy, px, B, T, C, pw, K, F, pad_left, To, pdx, pdw, pdb, BLAS)
    check_status(status)
    return dx, dw, db


def conv1d_relu_maxpool_forward(x, w, b=None, padding="valid"):
    x = _checks.float_array(x, "x", 3)
    w = _checks.float_array(w, "w", 3)
    # The bias before the geometry, as in the reference: the same call gets
    # the same exception from both.
    b = _checks.bias_vector(b, w.shape[2])
    cdef int pad_left, To
    pad_left, To = _checks.conv_geometry(x, w, padding)
    cdef int B = x.shape[0], T = x.shape[1], C = x.shape[2], K = w.shape[0], F = w.shape[2]
    pooled = np.empty((B, F), dtype=np.float32)
    argmax = np.empty((B, F), dtype=np.int32)
    cdef const float *px = cfptr(x)
    cdef const float *pw = cfptr(w)
    cdef const float *pb = NULL if b is None else cfptr(b)
    cdef float *pp = fptr(pooled)
    cdef int32_t *pa = iptr(argmax)
    cdef int status
    with serial_blas, nogil:
        status = nlpk_conv1d_relu_maxpool_forward(px, B, T, C, pw, K, F, pb, pad_left, To, pp, pa, BLAS)
    check_status(status)
    return pooled, argmax


def conv1d_relu_maxpool_backward(dpooled, x, w, pooled, argmax, padding="valid"):
    x = _checks.float_array(x, "x", 3)
    w = _checks.float_array(w, "w", 3)
    cdef int pad_left, To
    pad_left, To = _checks.conv_geometry(x, w, padding)
    cdef int B = x.shape[0], T = x.shape[1], C = x.shape[2], K = w.shape[0], F = w.shape[2]
    dpooled = _checks.float_array(dpooled, "dpooled", 2)
    pooled = _checks.float_array(pooled, "pooled", 2)
    _checks.same_shape("dpooled", dpooled.shape, "(B, F)", (B, F))
    _checks.same_shape("pooled", pooled.shape, "(B, F)", (B, F))
    argmax = _checks.argmax_array(argmax, (B, F), To)
    dx = np.empty_like(x)
    dw = np.empty_like(w)
    db = np.empty(F, dtype=np.float32)
    cdef const float *pdp = cfptr(dpooled)
    cdef const float *pp = cfptr(pooled)
    cdef const int32_t *pa = ciptr(argmax)
    cdef const float *px = cfptr(x)
    cdef const float *pw = cfptr(w)
    cdef float *pdx = fptr(dx)
    cdef float *pdw = fptr(dw)
    cdef float *pdb = fptr(db)
    cdef int status
    with nogil:
        status = nlpk_conv1d_relu_maxpool_backward(pdp, pp, pa, px, B, T, C, pw, K, F, pad_left,
                                                   pdx, pdw, pdb)
    check_status(status)
    return dx, dw, db


def attention_forward(q, k, v, key_padding_mask=None, causal=False, scale=None, layout="bhtd"):
    keep, scale = _checks.attention_inputs(q, k, v, key_padding_mask, scale)
    _checks.attention_layout(layout)
    cdef int B = q.shape[0], H = q.shape[1], Tq = q.shape[2], D = q.shape[3]
    cdef int Tk = k.shape[2], Dv = v.shape[3]
    out = _checks.attention_result((B, H, Tq, Dv), layout)
    lse = np.empty((B, H, Tq), dtype=np.float32)
    cdef const float *pq = rows_ptr(q)
    cdef const float *pk = rows_ptr(k)
    cdef const float *pv = rows_ptr(v)
    cdef const uint8_t *pm = bptr(keep)
    cdef float *po = rows_wptr(out)
    cdef float *pl = fptr(lse)
    cdef nlpk_layout lq = layout_of(q), lk = layout_of(k), lv = layout_of(v), lo = layout_of(out)
    cdef float s = scale
    cdef int c = bool(causal)
    cdef int status
    with serial_blas, nogil:
        status = nlpk_attention_forward(pq, lq, pk, lk, pv, lv, B, H, Tq, Tk, D, Dv, s, pm, c, po, lo, pl, BLAS)
    check_status(status)
    return out, lse


def attention_backward(dout, q, k, v, out, lse, key_padding_mask=None, causal=False, scale=None, layout="bhtd"):
    keep, scale = _checks.attention_inputs(q, k, v, key_padding_mask, scale)
    _checks.attention_backward_inputs(dout, out, lse, q, v)
    _checks.attention_layout(layout)
    cdef int B = q.shape[0], H = q.shape[1], Tq = q.shape[2], D = q.shape[3]
    cdef int Tk = k.shape[2], Dv = v.shape[3]
    dq = _checks.attention_result(q.shape, layout)
    dk = _checks.attention_result(k.shape, layout)
    dv = _checks.attention_result(v.shape, layout)
    cdef const float *pdo = rows_ptr(dout)
    cdef const float *pq = rows_ptr(q)
    cdef const float *pk = rows_ptr(k)
    cdef const float *pv = rows_ptr(v)
    cdef const float *po = rows_ptr(out)
    cdef const float *pl = cfptr(lse)
    cdef const uint8_t *pm = bptr(keep)
    cdef float *pdq = rows_wptr(dq)
    cdef float *pdk = rows_wptr(dk)
    cdef float *pdv = rows_wptr(dv)
    cdef nlpk_layout ldo_ = layout_of(dout), lq = layout_of(q), lk = layout_of(k), lv = layout_of(v)
    cdef nlpk_layout lo = layout_of(out), ldq = layout_of(dq), ldk = layout_of(dk), ldv = layout_of(dv)
    cdef float s = scale
    cdef int c = bool(causal)
    cdef int status
    with serial_blas, nogil:
        status = nlpk_attention_backward(pdo, ldo_, pq, lq, pk, lk, pv, lv, po, lo, pl, B, H, Tq, Tk, D, Dv, s,
                                         pm, c, pdq, ldq, pdk, ldk, pdv, ldv, BLAS)
    check_status(status)
    return dq, dk, dv


def attention_decode(q, k_cache, v_cache, lengths, starts=None, scale=None):
    lengths, starts, scale = _checks.decode_inputs(q, k_cache, v_cache, lengths, starts, scale)
    cdef int B = q.shape[0], H = q.shape[1], D = q.shape[3]
    cdef int L = k_cache.shape[2], Dv = v_cache.shape[3]
    out = np.empty((B, H, 1, Dv), dtype=np.float32)
    cdef const float *pq = cfptr(q)
    cdef const float *pk = cfptr(k_cache)
    cdef const float *pv = cfptr(v_cache)
    cdef const int64_t *pl = lptr(lengths)
    cdef const int64_t *ps = NULL if starts is None else lptr(starts)
    cdef float *po = fptr(out)
    cdef float s = scale
    with nogil:
        nlpk_attention_decode(pq, pk, pv, B, H, L, D, Dv, s, pl, ps, po)
    return out


def cache_write(cache, new, positions):
    positions = _checks.cache_write_inputs(cache, new, positions)
    cdef int B = cache.shape[0], H = cache.shape[1], L = cache.shape[2], D = cache.shape[3]
    cdef int T = new.shape[2]
    if T == 0:
        return None
    if np.may_share_memory(cache, new):
        new = new.copy()  # the copy would otherwise read rows it had overwritten
    cdef float *pc = fptr(cache)
    cdef const float *pn = cfptr(new)
    cdef const int64_t *pp = lptr(positions)
    with nogil:
        nlpk_cache_write(pc, B, H, L, D, pn, T, pp)
    return None


def top_k_log_softmax(logits, k, banned=None):
    banned = _checks.top_k_inputs(logits, k, banned)
    cdef int R = logits.shape[0], V = logits.shape[1], K = k, n = banned.size
    values = np.empty((R, K), dtype=np.float32)
    indices = np.empty((R, K), dtype=np.int64)
    if R == 0:
        return values, indices
    cdef const float *px = cfptr(logits)
    cdef const int64_t *pb = NULL if n == 0 else lptr(banned)
    cdef float *pv = fptr(values)
    cdef int64_t *pi = wlptr(indices)
    with nogil:
        nlpk_top_k_log_softmax(px, R, V, K, pb, n, pv, pi)
    return values, indices


def _layer_norm(x, residual, gamma, beta, eps, fused):
    cdef float e = _checks.layer_norm_inputs(x, residual, gamma, beta, eps, fused)
    cdef int D = x.shape[-1]
    cdef int64_t N = x.size // D
    y = np.empty_like(x)
    s = None if residual is None else np.empty_like(x)
    mean = np.empty(x.shape[:-1], dtype=np.float32)
    rstd = np.empty(x.shape[:-1], dtype=np.float32)
    cdef const float *px = cfptr(x)
    cdef const float *pr = NULL if residual is None else cfptr(residual)
    cdef const float *pg = cfptr(gamma)
    cdef const float *pb = cfptr(beta)
    cdef float *py = fptr(y)
    cdef float *ps = NULL if s is None else fptr(s)
    cdef float *pm = fptr(mean)
    cdef float *pd = fptr(rstd)
    with nogil:
        nlpk_layer_norm_forward(px, pr, N, D, pg, pb, e, py, ps, pm, pd)
    return y, s, mean, rstd


def layer_norm_forward(x, gamma, beta, eps=1e-5):
    y, _, mean, rstd = _layer_norm(x, None, gamma, beta, eps, False)
    return y, mean, rstd


def add_layer_norm_forward(x, residual, gamma, beta, eps=1e-5):
    return _layer_norm(x, residual, gamma, beta, eps, True)


def layer_norm_backward(dy, x, gamma, mean, rstd, ds=None):
    _checks.layer_norm_backward_inputs(dy, x, gamma, mean, rstd, ds)
    cdef int D = x.shape[-1]
    cdef int64_t N = x.size // D
    dx = np.empty_like(x)
    dgamma = np.empty(D, dtype=np.float32)
    dbeta = np.empty(D, dtype=np.float32)
    cdef const float *pdy = cfptr(dy)
    cdef const float *px = cfptr(x)
    cdef const float *pg = cfptr(gamma)
    cdef const float *pm = cfptr(mean)
    cdef const float *pr = cfptr(rstd)
    cdef const float *pds = NULL if ds is None else cfptr(ds)
    cdef float *pdx = fptr(dx)
    cdef float *pdg = fptr(dgamma)
    cdef float *pdb = fptr(dbeta)
    cdef int status
    with nogil:
        status = nlpk_layer_norm_backward(pdy, px, N, D, pg, pm, pr, pds, pdx, pdg, pdb)
    check_status(status)
    return dx, dgamma, dbeta


def gelu_forward(x, approximate="none"):
    _checks.gelu_inputs(x, approximate)
    y = np.empty_like(x)
    cdef int64_t n = x.size
    if n == 0:
        return y
    cdef int a = approximate == "tanh"
    cdef const float *px = cfptr(x)
    cdef float *py = fptr(y)
    with nogil:
        nlpk_gelu_forward(px, n, a, py)
    return y


def gelu_backward(dy, x, approximate="none"):
    _checks.gelu_inputs(x, approximate, dy)
    dx = np.empty_like(x)
    cdef int64_t n = x.size
    if n == 0:
        return dx
    cdef int a = approximate == "tanh"
    cdef const float *pdy = cfptr(dy)
    cdef const float *px = cfptr(x)
    cdef float *pdx = fptr(dx)
    with nogil:
        nlpk_gelu_backward(pdy, px, n, a, pdx)
    return dx


def linear_cross_entropy(h, w, targets, bias, ignore_index, block):
    t, count, block_ = _checks.linear_cross_entropy_inputs(h, w, targets, bias, ignore_index, block)
    cdef int N = h.shape[0], D = h.shape[1], V = w.shape[0], blk = block_
    lse = np.empty(N, dtype=np.float32)
    row_loss = np.empty(N, dtype=np.float32)
    cdef const float *ph = cfptr(h)
    cdef const float *pw = cfptr(w)
    cdef const float *pb = NULL if bias is None else cfptr(bias)
    cdef const int64_t *pt = lptr(t)
    cdef float *pl = fptr(lse)
    cdef float *pr = fptr(row_loss)
    cdef int status
    with serial_blas, nogil:
        status = nlpk_linear_cross_entropy_forward(ph, N, D, pw, V, pb, pt, blk, pl, pr, BLAS)
    check_status(status)
    # The mean in float64 over the counted rows (0 / 0 = NaN when none is, as torch).
    loss = float(row_loss.sum(dtype=np.float64) / count) if count else float("nan")
    return loss, lse


def linear_cross_entropy_backward(h, w, targets, lse, bias, ignore_index, block, dloss, dw_out):
    t, count, block_ = _checks.linear_cross_entropy_inputs(h, w, targets, bias, ignore_index, block)
    _checks.linear_cross_entropy_backward_inputs(h, w, bias, lse, dw_out)
    cdef float coef = _checks.loss_gradient(dloss) / count if count else 0.0
    cdef int N = h.shape[0], D = h.shape[1], V = w.shape[0], blk = block_
    cdef int accumulate = dw_out is not None
    dh = np.empty_like(h)
    dw = dw_out if accumulate else np.empty_like(w)
    dbias = None if bias is None else np.empty(V, dtype=np.float32)
    cdef const float *ph = cfptr(h)
    cdef const float *pw = cfptr(w)
    cdef const float *pb = NULL if bias is None else cfptr(bias)
    cdef const int64_t *pt = lptr(t)
    cdef const float *pl = cfptr(lse)
    cdef float *pdh = fptr(dh)
    cdef float *pdw = fptr(dw)
    cdef float *pdb = NULL if dbias is None else fptr(dbias)
    cdef int status
    with serial_blas, nogil:
        status = nlpk_linear_cross_entropy_backward(ph, N, D, pw, V, pb, pt, blk, pl, coef, pdh, pdw,
                                                    accumulate, pdb, BLAS)
    check_status(status)
    return dh, dw, dbias


def linear_cross_entropy_with_grad(h, w, targets, bias, ignore_index, block, dloss, dw_out):
    t, count, block_ = _checks.linear_cross_entropy_inputs(h, w, targets, bias, ignore_index, block)
    _checks.linear_cross_entropy_backward_inputs(h, w, bias, None, dw_out, one_call=True)
    cdef float coef = _checks.loss_gradient(dloss) / count if count else 0.0
    cdef int N = h.shape[0], D = h.shape[1], V = w.shape[0], blk = block_
    cdef int accumulate = dw_out is not None
    lse = np.empty(N, dtype=np.float32)
    row_loss = np.empty(N, dtype=np.float32)
    dh = np.empty_like(h)
    dw = dw_out if accumulate else np.empty_like(w)
    dbias = None if bias is None else np.empty(V, dtype=np.float32)
    cdef const float *ph = cfptr(h)
    cdef const float *pw = cfptr(w)
    cdef const float *pb = NULL if bias is None else cfptr(bias)
    cdef const int64_t *pt = lptr(t)
    cdef float *pl = fptr(lse)
    cdef float *pr = fptr(row_loss)
    cdef float *pdh = fptr(dh)
    cdef float *pdw = fptr(dw)
    cdef float *pdb = NULL if dbias is None else fptr(dbias)
    cdef int status
    with serial_blas, nogil:
        status = nlpk_linear_cross_entropy_fused(ph, N, D, pw, V, pb, pt, blk, coef, pl, pr, pdh, pdw,
                                                 accumulate, pdb, BLAS)
    check_status(status)
    loss = float(row_loss.sum(dtype=np.float64) / count) if count else float("nan")
    return loss, lse, dh, dw, dbias


def adam_step(param, grad, m, v, lr, beta1, beta2, eps, t, weight_decay, decoupled):
    lr, beta1, beta2, eps, t, weight_decay = _checks.adam_inputs(param, grad, m, v, lr, beta1, beta2, eps, t,
                                                                weight_decay)
    cdef int64_t n = param.size
    if n == 0:
        return None
    cdef float step = lr / (1.0 - beta1 ** t)
    cdef float inv_sqrt_bc2 = 1.0 / (1.0 - beta2 ** t) ** 0.5
    cdef float l2 = 0.0 if decoupled else weight_decay
    cdef float decay = 1.0 - lr * weight_decay if decoupled else 1.0
    cdef float b1 = beta1, b2 = beta2, a1 = 1.0 - beta1, a2 = 1.0 - beta2, e = eps
    cdef float *pp = fptr(param)
    cdef float *pg = fptr(grad)
    cdef float *pm = fptr(m)
    cdef float *pv = fptr(v)
    with nogil:
        nlpk_adam_step(pp, pg, pm, pv, n, b1, a1, b2, a2, step, inv_sqrt_bc2, e, l2, decay)
    return None
