"""Recall@1 among 10, the measure of response selection (Lowe et al., 2015): for every response turn of some
dialogues, the true response and 9 responses drawn from other dialogues, in random order; a hit when the
true one scores best against the turns before it.

Both scorers of the retrieval engine (BM25 and the dual encoder) and the dual
encoder's validation during training rank the same candidates: the draw
depends only on the dialogues and :data:`EVALUATION_SEED`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from toolkit.errors import DataError

CANDIDATES = 10  # the true response and 9 from other dialogues, as Recall@1 among 10 is reported
EVALUATION_SEED = 0


@dataclass(frozen=True)
class Exchange:
    """A response turn of dialogue number ``dialogue`` and the turns before it."""

    dialogue: int
    history: list[str]
    response: str


def exchanges(dialogues: Sequence[list[str]]) -> list[Exchange]:
    """Every turn after the first of each dialogue, with its history."""
    return [Exchange(d, turns[:i], turns[i]) for d, turns in enumerate(dialogues) for i in range(1, len(turns))]


def rank(found: Sequence[Exchange], score: Callable[[int, np.ndarray], np.ndarray]) -> dict:
    """Recall@1 among :data:`CANDIDATES` and the mean reciprocal rank of the true responses of ``found``;
    ``score(n, candidates)`` gives the scores of the responses of ``found[candidates]`` for the history of
    ``found[n]``. DataError when the exchanges come from fewer than two dialogues."""
    owner = np.array([exchange.dialogue for exchange in found])
    if len(set(owner.tolist())) < 2:
        raise DataError("evaluation data: Recall@1 draws the other candidates from other dialogues; give two"
                        " dialogues or more")
    rng = np.random.default_rng(EVALUATION_SEED)
    hits, reciprocal = 0, 0.0
    for n, exchange in enumerate(found):
        others = np.flatnonzero(owner != exchange.dialogue)
        candidates = np.append(rng.choice(others, size=min(CANDIDATES - 1, len(others)), replace=False), n)
        rng.shuffle(candidates)
        scores = np.asarray(score(n, candidates))
        true = int(np.flatnonzero(candidates == n)[0])
        # Ties go to the candidate listed first, so an uninformed score is right 1 time in 10, not always.
        position = int((scores > scores[true]).sum() + (scores[:true] == scores[true]).sum())
        hits += position == 0
        reciprocal += 1 / (position + 1)
    return {"responses": len(found), "candidates": CANDIDATES, "seed": EVALUATION_SEED,
            "recall_at_1": round(hits / len(found), 4), "mrr": round(reciprocal / len(found), 4)}
