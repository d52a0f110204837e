"""plugins/summarization/corpora.py: the fixed splits of BBC News Summary and CNN/DailyMail (docs/data-splits.md)."""

from __future__ import annotations

import hashlib
import random
from collections import Counter

import pytest

from toolkit_plugins.summarization import corpora
from toolkit.text.duplicates import near_duplicates

pytestmark = pytest.mark.skipif(not (corpora.BBC.is_file() and corpora.CNNDM.is_file()),
                                reason="the corpora live in ../shared/data beside the checkout")


@pytest.fixture(scope="module")
def bbc() -> corpora.Split:
    return corpora.bbc_split()


@pytest.fixture(scope="module")
def cnndm() -> corpora.Split:
    return corpora.cnndm_split()


@pytest.fixture(scope="module")
def carved(bbc, cnndm) -> dict[str, tuple[list[dict], list[dict], int]]:
    return {"bbc": corpora.carve_validation(bbc.train, 0.2), "cnndm": corpora.carve_validation(cnndm.train, 0.2)}


def digest(records: list[dict]) -> str:
    return hashlib.sha256(" ".join(r["id"] for r in records).encode()).hexdigest()[:16]


def test_the_splits_are_the_recorded_ones(bbc, cnndm):
    # The ids of every part, in order, as docs/data-splits.md counts them: a change of the
    # shuffle, the shares or the de-duplication shows here.
    assert (len(bbc.train), len(bbc.test), bbc.removed) == (969, 1103, {"train": 31, "test": 48, "test~train": 74})
    assert (len(cnndm.train), len(cnndm.test), cnndm.removed) == (1999, 2487,
                                                                  {"train": 1, "test": 2, "test~train": 1})
    assert [digest(p) for p in (bbc.train, bbc.test, cnndm.train, cnndm.test)] == [
        "40597d1bee8e2c77", "1d7517d8706de731", "3fc84ba369e52d87", "83161f558ab27f16"]


def test_no_part_shares_a_text_with_another_or_within_itself(bbc, cnndm):
    for split in (bbc, cnndm):
        texts = [r["article"] for r in split.train + split.test]
        assert near_duplicates(texts) == []
        assert not {r["id"] for r in split.train} & {r["id"] for r in split.test}


def test_cnndm_parts_hold_both_sources_in_their_overall_shares(cnndm, carved):
    everything = corpora.cnndm_records()
    overall = Counter(r["source"] for r in everything)
    assert overall == {"cnn": 1093, "dailymail": 3397}
    fit, valid, _ = carved["cnndm"]
    for part in (cnndm.train, cnndm.test, fit, valid):
        counts = Counter(r["source"] for r in part)
        for source, n in overall.items():
            assert counts[source] / len(part) == pytest.approx(n / len(everything), abs=0.01), source
    assert len(cnndm.train) / len(everything) == pytest.approx(2000 / 4490, abs=0.001)


def test_source_is_the_archived_pages_host():
    archived = "http://web.archive.org/web/20150401100102id_/http://{}/2015/04/01/story/"
    assert corpora.source(archived.format("www.cnn.com")) == "cnn"
    assert corpora.source(archived.format("edition.cnn.com")) == "cnn"
    assert corpora.source(archived.format("www.dailymail.co.uk")) == "dailymail"
    with pytest.raises(ValueError, match="not a CNN or Daily Mail url"):
        corpora.source(archived.format("www.notcnn.com"))


def test_bbc_articles_come_without_their_headline(bbc):
    for record in bbc.train[:50] + bbc.test[:50]:
        assert record["title"] not in record["article"].split("\n")[:1]
        assert record["article"] and not record["article"].startswith("\n")


def test_the_centrality_dev_part_is_inside_bbc_train(bbc):
    # The constants of centrality.py were tuned on the first 500 records of the shuffled order.
    records = corpora.bbc_records()
    order = list(range(len(records)))
    random.Random(0).shuffle(order)
    dev = [records[i] for i in order[:500]]
    train_ids = {r["id"] for r in bbc.train}
    assert not {r["id"] for r in dev} & {r["id"] for r in bbc.test}
    # A dev record that left train is the later copy of a record still in it.
    dropped = [r["article"] for r in dev if r["id"] not in train_ids]
    assert 0 < len(dropped) <= bbc.removed["train"]
    copies = near_duplicates(dropped, [r["article"] for r in bbc.train])
    assert {i for i, _, _ in copies} == set(range(len(dropped)))


def test_validation_is_carved_from_train_by_source_without_copies(bbc, cnndm, carved):
    for split, (fit, valid, removed) in ((bbc, carved["bbc"]), (cnndm, carved["cnndm"])):
        assert removed == 0  # train has no near duplicates left within it
        assert sorted(r["id"] for r in fit + valid) == sorted(r["id"] for r in split.train)
        assert len(valid) == pytest.approx(0.2 * len(split.train), abs=2)
    assert corpora.carve_validation(bbc.train, 0.2) == carved["bbc"]


def test_deduplicate_drops_the_later_copy_within_and_the_second_lists_copy_across():
    base = " ".join(f"word{i}" for i in range(40))
    other = " ".join(f"other{i}" for i in range(40))
    third = " ".join(f"third{i}" for i in range(40))
    first = [base, other, base + " end"]
    second = [third, base.upper(), third]
    assert corpora.deduplicate(first, second) == ([0, 1], [0], {"first": 1, "second": 1, "second~first": 1})
