"""Batches of inputs of similar lengths, bounded in rows x length: what a padded batch's arrays grow with."""

from __future__ import annotations

from typing import Sequence


def length_batches(lengths: Sequence[int], budget: int, max_rows: int | None = None) -> list[list[int]]:
    """The indices of ``lengths``, shortest first, cut into batches whose rows x longest length stays within
    ``budget`` and whose rows are at most ``max_rows`` (a longer input is a batch of its own): less padding,
    and memory bounded whatever the number of inputs. Results must not depend on the batch (the engine
    contract), so the grouping changes only speed."""
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        rows = len(batches[-1]) + 1 if batches else 1
        if batches and rows * lengths[i] <= budget and (max_rows is None or rows <= max_rows):
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches
