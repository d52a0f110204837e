"""Greedy and beam search over an encoder-decoder with a KV cache, batched.

The model is a :class:`~toolkit.nn.transformer.Seq2SeqTransformer` or
another with its ``start``/``step`` and ids (a MarianMT checkpoint's). Two
beam searches: ours (:func:`beam_search`, GNMT's length penalty) for the
models trained here, and transformers' (:func:`transformers_beam_search`)
for checkpoints made there, which then translate here as they do there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from toolkit import kernels
from toolkit.nn.transformer import DecoderCache, Seq2SeqTransformer

Array = np.ndarray


@dataclass(frozen=True)
class Hypothesis:
    """Target ids (without BOS and EOS) and their score: the summed log-probability
    (EOS included) divided by the length penalty."""

    ids: list[int]
    score: float


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's ((5 + length) / 6) ** alpha: alpha 0 ranks by total log-probability, larger favours longer outputs."""
    return ((5.0 + length) / 6.0) ** alpha


def transformers_length_penalty(length: int, alpha: float) -> float:
    """transformers' length ** alpha (its ``length_penalty``, 1.0 by default)."""
    return float(length) ** alpha


def _candidates(model: Seq2SeqTransformer, tokens: Array, cache: DecoderCache, last: Array, n: int
                ) -> tuple[Array, Array]:
    """The ``n`` most probable next tokens of each row and their log-probabilities, best first, (rows, n) each
    (fewer when the vocabulary is smaller); ``last`` (bool per row): rows at their last step, which end with EOS
    when the model forces it there (transformers' ``forced_eos_token_id``).

    One kernel call per step (kernels.top_k_log_softmax): the rows' log-softmax and their best tokens without
    the (rows, vocabulary) log-probabilities, which numpy made and read again some six times.
    """
    # Padding and BOS are never outputs; an untrained model may still rate them.
    banned = np.unique(np.array([model.pad_id, model.bos_id], dtype=np.int64))
    logits = model.step(tokens, cache)
    values, ids = kernels.top_k_log_softmax(logits, min(n, logits.shape[1] - banned.size), banned)
    if model.forced_eos and last.any():
        values[last] = -np.inf
        values[last, 0] = 0.0
        ids[last, 0] = model.eos_id
    return values, ids


def _limits(max_len: int | Array, B: int) -> Array:
    """Per-row output budgets: a row's result must not depend on the other rows of its batch."""
    limits = np.broadcast_to(np.asarray(max_len, dtype=np.int64), (B,))
    if B and limits.min() < 1:
        raise ValueError(f"max_len must be at least 1, got {limits.min()}")
    return limits


def _start_beams(model: Seq2SeqTransformer, src: Array, beam: int, max_len: int | Array,
                 top_k: int) -> tuple[int, Array, DecoderCache]:
    """What a beam search starts from: ``top_k`` within the beam, each row's budget (:func:`_limits`) and the
    cache of ``beam`` rows per source row; ValueError for a beam below 1."""
    if beam < 1:
        raise ValueError(f"beam must be at least 1, got {beam}")
    return min(top_k, beam), _limits(max_len, src.shape[0]), model.start(src, beams=beam)


def _best(scores: Array, values: Array, ids: Array, n: int) -> tuple[Array, Array, Array]:
    """The ``n`` best continuations of each row of beams, best first: their scores (R, n), beams and tokens.

    ``scores`` (R, K): each beam's score so far; ``values``, ``ids`` (R * K, m): its m best next tokens and their
    log-probabilities (:func:`_candidates`). A row's n best are among its beams' own n best.
    """
    R, K = scores.shape
    m = values.shape[1]
    sums = (scores.reshape(-1, 1) + values).reshape(R, K * m)
    order = np.argsort(-sums, axis=1, kind="stable")[:, :n]
    return (np.take_along_axis(sums, order, axis=1), order // m,
            np.take_along_axis(ids.reshape(R, K * m), order, axis=1))


def greedy(model: Seq2SeqTransformer, src: Array, max_len: int | Array) -> list[Hypothesis]:
    """The most probable next token at each step, for each row of ``src`` (B, Ts).

    ``max_len``: at most this many tokens, one number or one per row.
    """
    B = src.shape[0]
    limits = _limits(max_len, B)
    cache = model.start(src)
    tokens = np.full((B, 1), model.bos_id, dtype=np.int64)
    out: list[list[int]] = [[] for _ in range(B)]
    scores = np.zeros(B)
    alive = np.arange(B)
    for t in range(int(limits.max(initial=0))):
        values, ids = _candidates(model, tokens, cache, t + 1 >= limits[alive], 1)
        best = ids[:, 0]
        scores[alive] += values[:, 0]
        keep = []
        for row, (b, tok) in enumerate(zip(alive, best)):
            if tok == model.eos_id:
                continue
            out[b].append(int(tok))
            if t + 1 < limits[b]:
                keep.append(row)
        if not keep:
            break
        if len(keep) < len(alive):
            # Finished rows leave the batch: later steps cost only what is still being decoded.
            rows = np.array(keep)
            cache, alive, best = cache.select(rows), alive[rows], best[rows]
        tokens = best[:, None].astype(np.int64)
    return [Hypothesis(ids, float(s)) for ids, s in zip(out, scores)]


def beam_search(model: Seq2SeqTransformer, src: Array, beam: int, max_len: int | Array, alpha: float = 0.6,
                top_k: int = 1) -> list[list[Hypothesis]]:
    """The ``top_k`` best of ``beam`` hypotheses per row of ``src``, best first.

    All rows' beams run as one batch. A row stops once ``beam`` hypotheses
    have ended with EOS (early stopping, so that beam 1 is greedy search);
    hypotheses still open after ``max_len`` tokens (one number or one per
    row) end there, without EOS.
    """
    top_k, limits, cache = _start_beams(model, src, beam, max_len, top_k)
    B, K = src.shape[0], beam
    # Only the first beam of each row is live at the start, so the beams do not all pick the same token.
    scores = np.tile(np.r_[0.0, np.full(K - 1, -np.inf)], B).reshape(B, K)
    history = np.zeros((B, K, 0), dtype=np.int64)  # tokens so far of each live hypothesis
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    rows = np.arange(B)  # source rows still searching, in cache order (each has K cache rows)
    tokens = np.full((B * K, 1), model.bos_id, dtype=np.int64)
    for t in range(int(limits.max(initial=0))):
        R = len(rows)
        # The 2K best continuations of each row, best first: at most K end with EOS, so K stay live.
        cand_scores, from_beam, tok = _best(scores, *_candidates(model, tokens, cache,
                                                                 np.repeat(t + 1 >= limits[rows], K), 2 * K), 2 * K)
        finite = np.isfinite(cand_scores)
        is_eos = finite & (tok == model.eos_id)
        live = finite & ~is_eos
        live_rank = np.cumsum(live, axis=1) - live
        # An EOS counts when it ranks above the K-th live continuation (so beam 1 is greedy).
        for r, p in zip(*np.nonzero(is_eos & (live_rank < K))):
            b = rows[r]
            if len(finished[b]) < K:
                ids = history[r, from_beam[r, p]].tolist()
                finished[b].append(Hypothesis(ids, float(cand_scores[r, p]) / length_penalty(len(ids) + 1, alpha)))
        picked = live & (live_rank < K)
        r_idx, p_idx = np.nonzero(picked)
        slot = live_rank[r_idx, p_idx]
        next_scores = np.full((R, K), -np.inf)
        next_tokens = np.full((R, K), model.eos_id, dtype=np.int64)
        next_from = np.zeros((R, K), dtype=np.int64)
        next_scores[r_idx, slot] = cand_scores[r_idx, p_idx]
        next_tokens[r_idx, slot] = tok[r_idx, p_idx]
        next_from[r_idx, slot] = from_beam[r_idx, p_idx]
        history = np.concatenate([history[np.arange(R)[:, None], next_from], next_tokens[:, :, None]], axis=2)
        open_rows = np.array([len(finished[b]) < K for b in rows]) & np.isfinite(next_scores[:, 0])
        out_of_room = open_rows & (t + 1 >= limits[rows])
        for r in np.nonzero(out_of_room)[0]:
            # The open hypotheses end here, without EOS, as greedy search's do.
            finished[rows[r]] += [Hypothesis(history[r, j].tolist(), float(next_scores[r, j])
                                             / length_penalty(t + 1, alpha))
                                  for j in range(K) if np.isfinite(next_scores[r, j])]
        keep = np.nonzero(open_rows & ~out_of_room)[0]
        if not len(keep):
            break
        rows, scores, history = rows[keep], next_scores[keep], history[keep]
        cache = cache.select((keep[:, None] * K + next_from[keep]).reshape(-1))
        tokens = next_tokens[keep].reshape(-1, 1)
    return [sorted(f, key=lambda h: -h.score)[:top_k] for f in finished]


# What transformers' beam search adds to a score it sets aside (its -1e9): kept as it is, so that even its
# degenerate cases rank here as they rank there.
SET_ASIDE = np.float32(1e9)


def transformers_beam_search(model: Seq2SeqTransformer, src: Array, beam: int, max_len: int | Array,
                             alpha: float = 1.0, top_k: int = 1) -> list[list[Hypothesis]]:
    """The ``top_k`` best of ``beam`` hypotheses per row of ``src``, best first, as transformers'
    ``generate(num_beams=beam, length_penalty=alpha)`` finds them (its default ``early_stopping=False``).

    At each step the 2K best continuations of a row's K beams are ranked. Those among the first K that end
    (with EOS, or at the row's last step: ``max_len`` tokens, EOS included, is transformers' max_length - 1)
    join the row's K best finished hypotheses, scored by log-probability / length ** alpha; the K best of the
    others go on. A row stops once its best open beam, scored at the current length, cannot beat its worst
    finished hypothesis (transformers' heuristic), or at its last step.
    """
    top_k, limits, cache = _start_beams(model, src, beam, max_len, top_k)
    B, K = src.shape[0], beam
    # float32 scores, as transformers keeps them.
    running = np.tile(np.r_[0.0, np.full(K - 1, -SET_ASIDE)], B).reshape(B, K).astype(np.float32)
    history = np.zeros((B, K, 0), dtype=np.int64)
    done = np.full((B, K), -SET_ASIDE, dtype=np.float32)  # each row's K best finished scores, best first
    done_ids: list[list[list[int]]] = [[[] for _ in range(K)] for _ in range(B)]
    is_done = np.zeros((B, K), dtype=bool)
    improvable = np.ones(B, dtype=bool)
    results: list[list[Hypothesis]] = [[] for _ in range(B)]
    rows = np.arange(B)  # source rows still searching, in cache order
    tokens = np.full((B * K, 1), model.bos_id, dtype=np.int64)
    for t in range(int(limits.max(initial=0))):
        R, at_limit = len(rows), t + 1 >= limits[rows]
        cand, from_beam, tok = _best(running, *_candidates(model, tokens, cache, np.repeat(at_limit, K), 2 * K), 2 * K)
        ends = (tok == model.eos_id) | at_limit[:, None]
        seqs = np.concatenate([history[np.arange(R)[:, None], from_beam], tok[:, :, None]], axis=2)
        going = cand - SET_ASIDE * ends
        keep = np.argsort(-going, axis=1, kind="stable")[:, :K]
        running, history = np.take_along_axis(going, keep, axis=1), seqs[np.arange(R)[:, None], keep]
        just_done = ends.copy()
        just_done[:, K:] = False
        ended = (cand / transformers_length_penalty(t + 1, alpha) - SET_ASIDE * ~improvable[:, None]
                 - SET_ASIDE * ~just_done)
        merged = np.concatenate([done, ended], axis=1)
        best = np.argsort(-merged, axis=1, kind="stable")[:, :K]
        done = np.take_along_axis(merged, best, axis=1)
        is_done = np.take_along_axis(np.concatenate([is_done, just_done], axis=1), best, axis=1)
        for r in range(R):
            done_ids[r] = [done_ids[r][j] if j < K else seqs[r, j - K].tolist() for j in best[r]]
        worst = np.where(is_done, done.min(axis=1, keepdims=True), -SET_ASIDE)
        improvable &= (running[:, :1] / transformers_length_penalty(t + 1, alpha) > worst).any(axis=1)
        stop = ~improvable | ends.all(axis=1)
        for r in np.nonzero(stop)[0]:
            results[rows[r]] = [Hypothesis(ids[:-1] if ids and ids[-1] == model.eos_id else ids, float(score))
                                for ids, score, flag in zip(done_ids[r], done[r], is_done[r]) if flag][:top_k]
        go = np.nonzero(~stop)[0]
        if not len(go):
            break
        rows, running, history, done, is_done, improvable = (rows[go], running[go], history[go], done[go],
                                                             is_done[go], improvable[go])
        done_ids = [done_ids[r] for r in go]
        cache = cache.select((go[:, None] * K + np.take_along_axis(from_beam, keep, axis=1)[go]).reshape(-1))
        tokens = np.take_along_axis(tok, keep, axis=1)[go].reshape(-1, 1)
    return results


@dataclass(frozen=True)
class SearchRule:
    """How a model's outputs are searched and scored: a beam search and the length penalty that normalises its
    scores (and greedy search's)."""

    beam_search: Callable[..., list[list[Hypothesis]]]
    length_penalty: Callable[[int, float], float]


OURS = SearchRule(beam_search, length_penalty)
TRANSFORMERS = SearchRule(transformers_beam_search, transformers_length_penalty)
