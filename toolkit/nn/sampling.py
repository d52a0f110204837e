"""Choosing tokens from a language model (greedy, temperature, top-k, top-p, repetition penalty), and the
batched decoding loop on :class:`~toolkit.nn.language_model.DecoderLM`'s key/value cache.

Each row draws from its own random generator, once per token, so a row's
text depends on its seed and prompt, not on the rows it is batched with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

from toolkit.nn.continuous_cache import ContinuousCache, Remembered
from toolkit.nn.language_model import DecoderLM, KVCache

Array = np.ndarray


@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen from the model's log-probabilities.

    ``temperature`` 0, or ``top_k`` 1, is greedy decoding (the most probable
    token); otherwise the log-probabilities are divided by the temperature,
    cut to the ``top_k`` most probable tokens (0: all) and to the smallest
    set whose probability reaches ``top_p``, and a token is drawn.
    ``repetition_penalty`` p > 1 multiplies the (negative) log-probability
    of every token already in the prompt or the text by p, making repeats
    less likely (1: off). The model's end of text is not chosen before
    ``min_tokens`` tokens (:class:`Decoding` sees to it).
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    min_tokens: int = 0

    def __post_init__(self) -> None:
        if not self.temperature >= 0:
            raise ValueError(f"temperature must be at least 0, not {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be at least 0, not {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be greater than 0 and at most 1, not {self.top_p}")
        if not self.repetition_penalty >= 1:
            raise ValueError(f"repetition_penalty must be at least 1, not {self.repetition_penalty}")
        if self.min_tokens < 0:
            raise ValueError(f"min_tokens must be at least 0, not {self.min_tokens}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0 or self.top_k == 1

    def choose(self, logp: Array, rng: np.random.Generator, seen: Sequence[int] = ()) -> int:
        """The next token id, given the log-probabilities ``logp`` (V,) and the ids ``seen`` so far."""
        z = logp.astype(np.float64)
        if self.repetition_penalty != 1 and len(seen):
            ids = np.unique(np.asarray(seen, dtype=np.int64))
            z[ids] *= self.repetition_penalty
        if self.greedy:
            return int(np.argmax(z))
        z /= self.temperature
        candidates = np.arange(len(z))
        if 0 < self.top_k < len(z):
            candidates = np.argpartition(-z, self.top_k - 1)[: self.top_k]
        z = z[candidates]
        order = np.argsort(-z, kind="stable")
        candidates, z = candidates[order], z[order]
        p = np.exp(z - z[0])
        p /= p.sum()
        cumulative = np.cumsum(p)
        if self.top_p < 1:
            # The smallest prefix (most probable first) whose probability reaches top_p.
            keep = int(np.searchsorted(cumulative, self.top_p)) + 1
            candidates, cumulative = candidates[:keep], cumulative[:keep] / cumulative[keep - 1]
        pick = int(np.searchsorted(cumulative, rng.random(), side="right"))
        return int(candidates[min(pick, len(candidates) - 1)])


@dataclass
class Continuation:
    """What one row generated: token ids, each one's log-probability under the model (before sampling's
    changes), and why it ended: "length" (max_tokens), "end" (the model's end of text) or "stop" (the
    caller's :meth:`Decoding.stop`). ``finish`` is None while the row is generating."""

    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish: str | None = None


class Decoding:
    """Batched decoding of ``prompts`` (lists of ids, each at most the model's context) on one cache.

    Iterating yields, after each step, the ``(row, token)`` pairs produced
    by the rows still generating (a row's end-of-text token included, which
    ends it without joining its ids). Between steps the caller may end rows
    with :meth:`stop` (a stop string was found). Finished rows leave the
    batch, so later steps cost only the rows still going. When the text
    reaches the model's context, the last half of it is run again as the
    new context and decoding goes on. With a ``continuous_cache``, each
    row's next token is drawn from the model's probabilities mixed with the
    cache's over all the row's text so far (the slid-out part included).
    """

    def __init__(self, model: DecoderLM, prompts: Sequence[Sequence[int]], sampling: Sampling, max_tokens: int,
                 rngs: Sequence[np.random.Generator], forbidden: Sequence[int] = (),
                 continuous_cache: ContinuousCache | None = None) -> None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, not {max_tokens}")
        if len(rngs) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(rngs)} random generators")
        for prompt in prompts:
            if not 0 < len(prompt) <= model.max_len:
                raise ValueError(f"a prompt must hold 1 to {model.max_len} tokens, not {len(prompt)}")
        self.model, self.sampling, self.max_tokens, self.rngs = model, sampling, max_tokens, list(rngs)
        self.forbidden = np.asarray(sorted(set(forbidden)), dtype=np.int64)
        self.results = [Continuation() for _ in prompts]
        self.seen = [list(prompt) for prompt in prompts]
        self.rows = np.arange(len(prompts))
        # What each row's cache holds: its prompt and text, or their last half once the context filled up.
        self.context = [list(prompt) for prompt in prompts]
        self._logp: Array | None = None
        self._cache: KVCache | None = None
        self.continuous_cache = continuous_cache
        # Per row: the continuous cache's memory, and the final state of its last position (whose next token
        # is the one to choose).
        self._remembered = [Remembered(model.dim, continuous_cache.size) for _ in prompts] if continuous_cache else []
        self._query: dict[int, Array] = {}
        if len(prompts):
            self._start(first=True)

    def _start(self, first: bool = False) -> None:
        """Run the rows' contexts as left-padded prompts, with room for every row to reach the model's context
        before the cache is full (when a row must slide depends on its own length, not its neighbours'), or
        to finish, when that comes first: the cache holds what the rows can still generate, not a whole
        context per row (GPT-2's would be 75 MB a row)."""
        contexts = [self.context[row] for row in self.rows]
        width = max(map(len, contexts))
        columns = np.full((len(contexts), width), self.model.pad_id, dtype=np.int64)
        starts = np.array([width - len(c) for c in contexts], dtype=np.int64)
        for j, context in enumerate(contexts):
            columns[j, starts[j]:] = context
        to_go = max(self.max_tokens - len(self.results[row].ids) for row in self.rows)
        capacity = min(self.model.max_len + int(starts.max()), width + to_go)
        self._logp, self._cache = self.model.start(columns, starts, capacity)
        if self.continuous_cache is not None:
            for j, row in enumerate(self.rows):
                states = self._cache.states[j, starts[j]:]
                if first:
                    self._remembered[row].add(states[:-1], columns[j, starts[j] + 1:])
                self._query[row] = states[-1]

    def _mixed(self, logp: Array) -> Array:
        """The rows' log-probabilities ``logp`` mixed with their continuous cache's."""
        return np.stack([self.continuous_cache.next_logp(logp[j], self._query[row], *self._remembered[row].view())
                         for j, row in enumerate(self.rows)])

    def stop(self, row: int, reason: str = "stop") -> None:
        """End ``row`` after this step."""
        if self.results[row].finish is None:
            self.results[row].finish = reason

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        while len(self.rows):
            logp = self._logp if self.continuous_cache is None else self._mixed(self._logp)
            early = [j for j, row in enumerate(self.rows) if len(self.results[row].ids) < self.sampling.min_tokens]
            if len(self.forbidden) or early:
                allowed = logp.copy()
                allowed[:, self.forbidden] = -np.inf
                allowed[early, self.model.eos_id] = -np.inf
            else:
                allowed = logp
            tokens = np.array([self.sampling.choose(allowed[j], self.rngs[row], self.seen[row])
                               for j, row in enumerate(self.rows)], dtype=np.int64)
            produced = []
            for j, (row, token) in enumerate(zip(self.rows, tokens)):
                result = self.results[row]
                produced.append((int(row), int(token)))
                if self.continuous_cache is not None:
                    self._remembered[row].add(self._query[row][None], [token])
                if token == self.model.eos_id:
                    result.finish = "end"
                    continue
                result.ids.append(int(token))
                result.logprobs.append(float(logp[j, token]))
                self.seen[row].append(int(token))
                if len(result.ids) >= self.max_tokens:
                    result.finish = "length"
            yield produced
            keep = np.array([self.results[row].finish is None for row in self.rows])
            if not keep.all():
                self.rows, tokens = self.rows[keep], tokens[keep]
                if not len(self.rows):
                    break
                self._cache = self._cache.select(np.nonzero(keep)[0])
            for row, token in zip(self.rows, tokens):
                self.context[row].append(int(token))
            full = [row for row in self.rows if len(self.context[row]) > self.model.max_len]
            if full:
                # Past the context: such a row goes on from the last half of its text, run again as a prompt.
                for row in full:
                    self.context[row] = self.context[row][-max(self.model.max_len // 2, 1):]
                self._start()
            else:
                self._logp = self.model.step(tokens, self._cache)
                if self.continuous_cache is not None:
                    for j, row in enumerate(self.rows):
                        self._query[row] = self._cache.states[j, -1]
