"""toolkit.batching.length_batches: batches of similar lengths within a budget of rows x length."""

from __future__ import annotations

import random

from toolkit.batching import length_batches


def test_batches_cover_every_input_once_shortest_first_within_their_bounds():
    rng = random.Random(0)
    lengths = [rng.randint(1, 60) for _ in range(300)]
    for budget, max_rows in ((100, None), (512, 12), (7, 3), (1, 1)):
        batches = length_batches(lengths, budget, max_rows)
        assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
        flat = [lengths[i] for batch in batches for i in batch]
        assert flat == sorted(lengths)
        for batch in batches:
            widest = max(lengths[i] for i in batch)
            # A batch breaks a bound only when it is one input too long for any batch.
            assert len(batch) == 1 or (len(batch) * widest <= budget and (max_rows is None or len(batch) <= max_rows))
        # Greedy: a batch ends only when the next input would not fit.
        for batch, after in zip(batches, batches[1:]):
            rows = len(batch) + 1
            assert rows * lengths[after[0]] > budget or (max_rows is not None and rows > max_rows)


def test_equal_lengths_keep_their_order_and_no_input_gives_no_batch():
    assert length_batches([3, 3, 3, 3], 6) == [[0, 1], [2, 3]]
    assert length_batches([], 10) == []
    assert length_batches([50], 10) == [[0]]
