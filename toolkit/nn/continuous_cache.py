"""The continuous cache of a language model (Grave, Joulin and Usunier, 2017, "Improving Neural Language
Models with a Continuous Cache").

The model's final states of the last ``size`` positions are kept with the
token that followed each. The next token's probability is mixed from the
model's and the cache's: the cache gives each remembered token the weight
softmax(``theta`` · state · remembered state) of its position, so words of
the recent text, beyond what the model's context window reads, become more
likely where the text is like the place they were seen. Nothing is
trained: three numbers, chosen on validation text (:func:`choose_cache`)
and stored with the model. Perplexity always scores the mixture; decoding
draws from it only when asked, as it makes sampled text repeat itself.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

Array = np.ndarray

# Query positions per block of the banded products: a block's scores are block x (size + block) floats.
BLOCK = 512
# The grid :func:`choose_cache` searches. ``theta`` is scaled by the states' mean squared norm, so that the grid
# fits models of any width and layer norm gain.
SIZES = (1000, 2000, 4000, 8000)
THETA_SCALES = (8.0, 12.0, 16.0, 24.0)
WEIGHTS = (0.1, 0.2, 0.25, 0.3, 0.35, 0.4)
# A block of scores is BLOCK x (size + BLOCK) floats: 134 MB at this size, which a model file may not exceed.
MAX_SIZE = 65536


def _number(value: object, kinds: type | tuple[type, ...]) -> bool:
    """``value`` is one of ``kinds``, and not a bool (JSON's true would pass as the number 1)."""
    return isinstance(value, kinds) and not isinstance(value, bool)


@dataclass(frozen=True)
class ContinuousCache:
    """Remember the last ``size`` positions; sharpness ``theta``; the cache's share ``weight`` of the mixed
    probability (the model keeps 1 - weight)."""

    size: int
    theta: float
    weight: float

    def __post_init__(self) -> None:
        if not (_number(self.size, int) and 1 <= self.size <= MAX_SIZE):
            raise ValueError(f"a continuous cache's size must be a whole number from 1 to {MAX_SIZE}, not"
                             f" {self.size!r}")
        if not (_number(self.theta, (int, float)) and math.isfinite(self.theta) and self.theta >= 0):
            raise ValueError(f"a continuous cache's theta must be a number of at least 0, not {self.theta!r}")
        if not (_number(self.weight, (int, float)) and 0 < self.weight < 1):
            raise ValueError(f"a continuous cache's weight must be between 0 and 1, not {self.weight!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, saved: object) -> "ContinuousCache":
        """The cache a model file's metadata describes; ValueError for anything else."""
        if not isinstance(saved, dict) or set(saved) != {"size", "theta", "weight"}:
            raise ValueError(f"a continuous cache is {{size, theta, weight}}, not {saved!r}")
        return cls(**saved)

    def probabilities(self, states: Array, next_ids: Array, start: int = 0) -> Array:
        """:func:`cache_probabilities` of this cache's size and theta."""
        return cache_probabilities(states, next_ids, [(self.size, self.theta)], start)[0]

    def mix(self, p_model: Array, p_cache: Array) -> Array:
        """(1 - weight) · p_model + weight · p_cache, and p_model where the cache is empty (NaN)."""
        return np.where(np.isnan(p_cache), p_model, (1 - self.weight) * p_model + self.weight * p_cache)

    def next_logp(self, logp: Array, query: Array, keys: Array, values: Array) -> Array:
        """One decoding step: the model's log-probabilities ``logp`` (V,) for the position whose final state is
        ``query`` (dim,), mixed with the cache of ``keys`` (L, dim), the states of the positions before it, and
        ``values`` (L,), the tokens that followed them (their last ``size`` are read)."""
        keys, values = keys[-self.size:], values[-self.size:]
        if not len(values):
            return logp
        z = self.theta * (keys @ query).astype(np.float64)
        e = np.exp(z - z.max())
        p_cache = np.bincount(values, weights=e / e.sum(), minlength=len(logp))
        with np.errstate(divide="ignore"):
            return np.log((1 - self.weight) * np.exp(logp.astype(np.float64)) + self.weight * p_cache)


def cache_probabilities(states: Array, next_ids: Array, settings: Sequence[tuple[int, float]], start: int = 0
                        ) -> list[Array]:
    """For a stream: ``states`` (n, dim), the model's final state at each position, and ``next_ids`` (n,), the
    token that followed it. For each (size, theta) of ``settings``, the cache's probability (float64) of
    ``next_ids[j]`` from the positions j - size .. j - 1, for each position j from ``start`` on (the ones before
    are only remembered); NaN at position 0, where it remembers nothing. One product per block of positions
    serves every setting: the search of :func:`choose_cache` reads sixteen at once."""
    states = np.ascontiguousarray(states, dtype=np.float32)
    next_ids = np.asarray(next_ids)
    n = len(next_ids)
    if states.ndim != 2 or len(states) != n:
        raise ValueError(f"states {states.shape} do not match {n} next ids")
    if not 0 <= start <= n:
        raise ValueError(f"start {start} is outside the stream of {n} positions")
    found = [np.full(n, np.nan) for _ in settings]
    widest = max(size for size, _ in settings)
    outside: dict[tuple[int, int, int], Array] = {}  # a block's columns out of each size's reach, by block shape
    for j0 in range(max(start, 1), n, BLOCK):
        j1, base = min(n, j0 + BLOCK), max(0, j0 - widest)
        scores = states[j0:j1] @ states[base:j1].T
        same = next_ids[base:j1][None, :] == next_ids[j0:j1][:, None]
        for k, (size, theta) in enumerate(settings):
            first = max(0, j0 - size) - base  # the first column within this size's reach
            key = (j1 - j0, j1 - base - first, size)
            if key not in outside:
                lag = np.arange(j0, j1)[:, None] - np.arange(base + first, j1)[None, :]
                outside[key] = (lag < 1) | (lag > size)
            z = scores[:, first:] * np.float32(theta)
            np.copyto(z, np.float32(-np.inf), where=outside[key])
            z -= z.max(axis=1, keepdims=True)
            e = np.exp(z, out=z)
            found[k][j0:j1] = e.sum(axis=1, where=same[:, first:], dtype=np.float64) / e.sum(axis=1, dtype=np.float64)
    return [probabilities[start:] for probabilities in found]


def choose_cache(states: Array, next_ids: Array, nll: Array, words: int, sizes: Sequence[int] = SIZES,
                 theta_scales: Sequence[float] = THETA_SCALES, weights: Sequence[float] = WEIGHTS
                 ) -> tuple[ContinuousCache | None, float]:
    """The cache of the grid that gives validation text the lowest word perplexity, from the model's
    ``states`` and ``next_ids`` over the text's stream (as :meth:`ContinuousCache.probabilities` reads them),
    its negative log-likelihood ``nll`` (n,) of each next id and the text's ``words``; and that perplexity.
    None (and the model's own perplexity) when no cache of the grid lowers it."""
    p_model = np.exp(-np.asarray(nll, dtype=np.float64))
    best: tuple[ContinuousCache | None, float] = (None, math.exp(float(np.sum(nll)) / words))
    unit = 1.0 / float(np.mean(np.square(states, dtype=np.float64).sum(axis=1)))
    # Seven significant digits: what the model file stores is what was searched.
    settings = [(size, float(f"{scale * unit:.7g}")) for size in sizes for scale in theta_scales]
    for (size, theta), p_cache in zip(settings, cache_probabilities(states, next_ids, settings)):
        for weight in weights:
            cache = ContinuousCache(size, theta, weight)
            perplexity = math.exp(-float(np.log(cache.mix(p_model, p_cache)).sum()) / words)
            if perplexity < best[1]:
                best = (cache, perplexity)
    return best


class Remembered:
    """What a continuous cache holds for one text being decoded: the final states of its positions so far and
    the token that followed each, in buffers that grow by doubling; at most ``limit`` are kept."""

    def __init__(self, dim: int, limit: int) -> None:
        self.limit = limit
        self.keys = np.empty((16, dim), dtype=np.float32)
        self.values = np.empty(16, dtype=np.int64)
        self.count = 0

    def add(self, states: Array, ids: Sequence[int]) -> None:
        """Remember ``states`` (k, dim), each followed by the token in ``ids`` (k,)."""
        ids = np.asarray(ids, dtype=np.int64)[-self.limit:]
        states, k = states[len(states) - len(ids):], len(ids)
        if self.count + k > len(self.values):
            # Only the last ``limit`` are ever read: the older ones make room before the buffers grow.
            kept = min(self.count, self.limit - k)
            self.keys[:kept] = self.keys[self.count - kept:self.count]
            self.values[:kept] = self.values[self.count - kept:self.count]
            self.count = kept
            if kept + k > len(self.values):
                grown = max(2 * len(self.values), kept + k)
                self.keys = np.concatenate([self.keys[:kept], np.empty((grown - kept, self.keys.shape[1]), np.float32)])
                self.values = np.concatenate([self.values[:kept], np.empty(grown - kept, np.int64)])
        self.keys[self.count:self.count + k] = states
        self.values[self.count:self.count + k] = ids
        self.count += k

    def view(self) -> tuple[Array, Array]:
        """The remembered states and tokens, oldest first."""
        return self.keys[:self.count], self.values[:self.count]
