"""The trained summarizer: the greedy ROUGE oracle, training, model files, and `nlp-tool train summarize`."""

from __future__ import annotations

import json
import random
import zipfile

import pytest
from click.testing import CliRunner

import toolkit_plugins.summarization.features as features
import toolkit_plugins.summarization.trained as trained
from toolkit_plugins.summarization.lead import LeadSummarizer
from toolkit_plugins.summarization.oracle import oracle, rouge12
from toolkit_plugins.summarization.trained import TrainedSummarizer
from toolkit.cli import make_cli
from toolkit.engine import DataError, ModelMismatchError, OptionError
from toolkit.nn import ModelFileError
from toolkit.plugins import load_registry
from toolkit.testing import check_engine, check_training

KEY = [
    "Officials announced the new {} budget on Monday.",
    "The {} plan was approved by the council after a long vote.",
]
FILLER = [
    "It rained in the afternoon.", "A dog walked past the square.", "Some people ate lunch outside.",
    "The trains ran on time.", "Birds sang in the park.", "A shop sold cheap umbrellas.",
    "Children played football nearby.", "The radio played old songs.",
]
TOPICS = ["transport", "housing", "school", "water", "energy", "health", "library", "parks"]


def synthetic(n: int, seed: int) -> list[dict]:
    """Articles of filler with two key sentences at random places; the summary is the key sentences."""
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        topic = rng.choice(TOPICS)
        keys = [k.format(topic) for k in KEY]
        body = rng.sample(FILLER, 6)
        for key in keys:
            body.insert(rng.randrange(1, len(body) + 1), key)
        records.append({"article": " ".join(body), "summary": " ".join(keys)})
    return records


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("trained") / "tiny.nlpt"
    TrainedSummarizer.train(synthetic(24, 0), str(path), valid=synthetic(6, 1), progress=False,
                            epochs=12, patience=0, dim=16, filters=16, hidden=16, dropout=0.0, learning_rate=5e-3)
    return str(path)


# -- oracle ------------------------------------------------------------------

def test_oracle_takes_the_sentence_that_is_the_reference_and_stops():
    sentences = ["The cat sat on the mat.", "Dogs bark loudly at night.", "The cat sat."]
    assert oracle(sentences, "The cat sat on the mat.") == [0]


def test_oracle_adds_sentences_in_order_of_gain():
    sentences = ["Prices fell.", "Unrelated words here entirely.", "Profits rose sharply at the big bank."]
    assert oracle(sentences, "Profits rose sharply at the big bank. Prices fell.") == [2, 0]


def test_oracle_reads_glued_reference_sentences_and_stems():
    # BBC references lack the space after a full stop; "running"/"runs" and "dogs"/"dog" share stems.
    sentences = ["Sales fell 5%.", "The weather was fine.", "Dogs were running."]
    assert oracle(sentences, "Sales fell 5%.The dog runs.") == [0, 2]


def test_oracle_counts_cjk_characters_and_gives_nothing_without_overlap():
    assert oracle(["今天天气很好。", "我们去公园吧！"], "我们去公园") == [1]
    assert oracle(["Nothing in common."], "Rien en commun.") == []
    assert oracle([], "Anything.") == []


def test_rouge12_is_the_sum_of_rouge1_and_rouge2_f1():
    assert rouge12(["a b c d"], "a b c d") == pytest.approx(2.0)
    assert rouge12(["a b"], "a b c d") == pytest.approx(2 / 3 + 0.5)  # P 1, R 1/2; R-2: P 1, R 1/3
    assert rouge12([], "a b") == 0.0


# -- the engine ----------------------------------------------------------------

def test_trained_engine_conforms(model, monkeypatch):
    monkeypatch.setattr(TrainedSummarizer, "default_model", model)
    check_engine(TrainedSummarizer)


def test_training_contract(tmp_path):
    check_training(TrainedSummarizer, synthetic(8, 2), tmp_path, epochs=1, dim=8, filters=8, hidden=8)


def test_learns_to_pick_the_key_sentences(model):
    test = synthetic(20, 3)
    engine = TrainedSummarizer(model=model, sentences=2)
    hits = sum(s["text"] in r["summary"] for r in test for s in engine.summarize(r["article"])["sentences"])
    lead = sum(s["text"] in r["summary"] for r in test
               for s in LeadSummarizer(sentences=2).summarize(r["article"])["sentences"])
    assert hits >= 36 > lead, (hits, lead)
    assert engine.evaluate(test)["rouge1"] > LeadSummarizer(sentences=2).evaluate(test)["rouge1"]


@pytest.mark.parametrize("text", [
    synthetic(1, 4)[0]["article"],
    "市议会周一批准了新的交通计划。该计划增加三条公交线路。议会领导人说交通计划将减少拥堵。周一天气晴朗。",
    "# Title\n\nOfficials announced the budget.\n\n```\ncode. more code.\n```\n\nThe plan was approved.",
])
def test_offsets_order_no_duplicates(model, text):
    for k in (1, 2, 3, 20):
        result = TrainedSummarizer(model=model, sentences=k).summarize(text)
        chosen = result["sentences"]
        assert 1 <= len(chosen) <= k
        for s in chosen:
            assert text[s["start"] : s["end"]] == s["text"]
            assert "code" not in s["text"] and s["text"] != "# Title"
        starts = [s["start"] for s in chosen]
        assert starts == sorted(set(starts))
        assert sorted(s["rank"] for s in chosen) == list(range(1, len(chosen) + 1))


def test_stamp_names_the_model(model):
    stamp = TrainedSummarizer(model=model).stamp()
    assert stamp["engine"] == "summarize:trained" and stamp["model"] == model and stamp["model_name"] == "tiny"


def test_trained_is_the_default_engine():
    engines = list(load_registry(entry_points=[]).tasks()["summarize"])
    assert engines == ["trained", "centrality", "lead"]


def test_model_without_sentence_encoder_reads_no_words(tmp_path):
    path = str(tmp_path / "features.nlpt")
    TrainedSummarizer.train(synthetic(24, 0), path, valid=synthetic(6, 1), progress=False,
                            epochs=12, patience=0, filters=0, hidden=16, learning_rate=5e-3)
    engine = TrainedSummarizer(model=path, sentences=2)
    assert engine.scorer.encoder is None and engine.scorer.maxlen == 0
    assert [k for k, _, _ in engine.scorer.named_parameters()] == ["0.0.w", "0.0.b", "0.1.w", "0.1.b"]
    assert engine.tokenizer.vocab_size <= 2  # padding and unknown only: no vocabulary stored
    test = synthetic(20, 3)
    assert engine.evaluate(test)["rouge1"] > LeadSummarizer(sentences=2).evaluate(test)["rouge1"]


def test_scorer_reads_sentences_cut_after_their_longest_word_as_if_padded_to_maxlen():
    import numpy as np

    from toolkit_plugins.summarization.scorer import SentenceScorer

    rng = np.random.default_rng(0)
    scorer = SentenceScorer(vocab_size=50, maxlen=17, features=3, dim=6, filters=5, hidden=4, seed=1)
    for longest in (0, 1, 2, 9, 14, 15, 17):
        ids = np.zeros((4, 17), dtype=np.float32)
        for row, n in enumerate((longest, longest // 2, 1 if longest else 0, 0)):
            ids[row, :n] = rng.integers(1, 50, n)
        x = np.concatenate([ids, rng.normal(size=(4, 3)).astype(np.float32)], axis=1)
        encoded, _ = scorer.encoder.forward(ids.astype(np.int32), False)
        full, _ = scorer.head.forward(np.concatenate([encoded, x[:, 17:]], axis=1), False)
        np.testing.assert_array_equal(scorer(x), full)


def test_frequency_features_count_the_document_words_of_each_sentence():
    import numpy as np

    from toolkit_plugins.summarization.centrality import sentence_words

    texts = ["Budget budget vote.", "The vote was late.", "Of the."]
    # Document counts without stop words: budget 2, vote 2, late 1.
    totals, lengths = np.array([6.0, 3.0, 0.0]), np.array([3, 2, 1])
    expected = np.stack([totals / lengths**features.FREQUENCY_POWER, totals / lengths], axis=1)
    expected /= expected.max(axis=0)
    # A headline row after the sentences does not count.
    words = sentence_words([*texts, "Budget budget budget."])
    np.testing.assert_allclose(features.frequencies(words, 3), expected)


def test_documents_in_paragraphs_and_on_one_line_differ_in_paragraph_share():
    from toolkit.text.sentences import split_sentences

    column = features.FEATURES.index("paragraph_share")
    one_line = "First news here. Second one there. Third one now. Fourth and last."
    paragraphs = one_line.replace(". ", ".\n\n")
    for text, share in ((one_line, 0.25), (paragraphs, 1.0)):
        doc = features.Document(text, split_sentences(text))
        assert doc.features[:, column].tolist() == [share] * 4


def test_ranking_prefers_the_longer_of_two_likely_sentences_only_for_a_summary_shorter_than_expected():
    import numpy as np

    from toolkit.text.sentences import split_sentences

    text = "Short one here. A much longer sentence about the budget vote in the city council today. Tail end."
    doc = features.Document(text, split_sentences(text))
    likely = np.array([0.5, 0.45, 0.1])  # about one summary sentence expected (the scores sum to 1.05)
    assert doc.ranked(likely, 1)[0] == 1 and doc.ranked(likely, None)[0] == 1
    assert doc.ranked(likely, 2) == [0, 1, 2]  # k >= 1.05: by score alone
    assert doc.ranked(np.array([0.9, 0.3, 0.1]), 1)[0] == 0  # a factor sqrt(15 / 3 words), not a veto


def test_length_rules_apply_the_length_factor_always_when_short_or_never():
    import numpy as np

    from toolkit.text.sentences import split_sentences

    text = "Short one here. A much longer sentence about the budget vote in the city council today. Tail end."
    doc = features.Document(text, split_sentences(text))
    likely = np.array([0.5, 0.45, 0.1])  # the scores sum to 1.05
    assert doc.ranked(likely, 2, "always")[0] == 1 and doc.ranked(likely, 2, "short")[0] == 0
    assert doc.ranked(likely, 1, "never")[0] == 0 and doc.ranked(likely, None, "never")[0] == 0
    assert doc.ranked(likely, 1, "short") == doc.ranked(likely, 1, "always")
    with pytest.raises(ValueError, match="length rule must be one of always, short, never"):
        doc.ranked(likely, 1, "sometimes")


def rewritten(source: str, target, change) -> str:
    """A copy of the model file ``source`` at ``target`` whose metadata ``change(metadata)`` has edited."""
    from toolkit.nn import rewrite_metadata

    rewrite_metadata(source, change, target)
    return str(target)


def test_model_stores_its_length_rule_and_a_file_without_one_ranks_as_short(model, tmp_path):
    assert TrainedSummarizer(model=model).metadata["length_rule"] == "short"
    old = rewritten(model, tmp_path / "old.nlpt", lambda meta: meta.pop("length_rule"))
    rules = {rule: rewritten(model, tmp_path / f"{rule}.nlpt", lambda meta: meta.update(length_rule=rule))
             for rule in features.LENGTH_RULES}
    texts = [r["article"] for r in synthetic(30, 8)]
    for k in (1, 2, 4):
        summaries = {name: [TrainedSummarizer(model=path, sentences=k).summarize(t)["summary"] for t in texts]
                     for name, path in {"old": old, **rules}.items()}
        assert summaries["old"] == summaries["short"], k
    assert TrainedSummarizer(model=old).length_rule == "short"
    assert TrainedSummarizer(model=rules["never"]).length_rule == "never"
    # The rules differ on these texts: a test that could not tell them apart would prove nothing.
    assert summaries["always"] != summaries["never"]


def test_training_options_paragraph_share_and_length_rule_reach_the_model(tmp_path):
    path = str(tmp_path / "plain.nlpt")
    TrainedSummarizer.train(synthetic(24, 0), path, valid=synthetic(6, 1), progress=False, epochs=2,
                            filters=0, hidden=8, paragraph_share=False, length_rule="never")
    engine = TrainedSummarizer(model=path, sentences=2)
    assert engine.metadata["features"] == [f for f in features.FEATURES if f != "paragraph_share"]
    assert engine.scorer.features == len(features.FEATURES) - 1 and engine.length_rule == "never"
    assert len(engine.summarize(synthetic(1, 9)[0]["article"])["sentences"]) == 2
    with pytest.raises(OptionError, match="length_rule"):
        TrainedSummarizer.train(synthetic(4, 0), path, length_rule="sometimes")


# -- bad data, bad models -------------------------------------------------------

def test_unusable_training_data_is_a_data_error(tmp_path):
    out = str(tmp_path / "m.nlpt")
    with pytest.raises(DataError, match="no records"):
        TrainedSummarizer.train([], out)
    with pytest.raises(DataError, match="record 2 has no 'summary'"):
        TrainedSummarizer.train([{"article": "A. B.", "summary": "A."}, {"article": "C."}], out)
    unrelated = [{"article": "Alpha beta. Gamma delta.", "summary": "Zeta eta theta."}] * 4
    with pytest.raises(DataError, match="shares a word with its summary"):
        TrainedSummarizer.train(unrelated, out)
    with pytest.raises(OptionError, match="dropout"):
        TrainedSummarizer.train(synthetic(4, 0), out, dropout=1.0)
    assert not any(tmp_path.iterdir())


def test_without_validation_data_nothing_is_held_out_and_the_last_epoch_is_kept(tmp_path):
    import toolkit
    from toolkit.nn import read_model_file

    report = toolkit.train("summarize", synthetic(20, 3), engine="trained", output=tmp_path / "m.nlpt",
                           valid_split=0, progress=False, epochs=2, dim=8, filters=8, hidden=8)
    assert (report["train_records"], report["valid_records"], report["records"]) == (20, 0, 20)
    training = read_model_file(tmp_path / "m.nlpt")[0]["metadata"]["training"]
    assert training["records"] == 20 and training["validation_records"] is None
    assert training["best_epoch"] is None and [e["epoch"] for e in training["epochs"]] == [1, 2]
    assert not any(key.startswith("val_") for epoch in training["epochs"] for key in epoch)


def test_a_run_stopped_by_its_time_limit_resumes_to_the_model_of_an_uninterrupted_run(tmp_path):
    from toolkit.nn import read_checkpoint, read_model_file

    options = {"progress": False, "epochs": 3, "patience": 0, "dim": 8, "filters": 8, "hidden": 8, "seed": 1}
    records, valid = synthetic(20, 4), synthetic(5, 5)
    TrainedSummarizer.train(records, str(tmp_path / "straight.nlpt"), valid=valid, **options)
    output = tmp_path / "run.nlpt"
    first = TrainedSummarizer.train(records, str(output), valid=valid, max_minutes=1e-9, **options)
    assert first["stopped"] == "time limit" and first["steps"] == 1
    assert read_checkpoint(first["checkpoint"]).setup["tokenizer"] == read_model_file(output)[0]["metadata"][
        "tokenizer"]
    with pytest.raises(ModelMismatchError, match="seed 1, not 2"):
        TrainedSummarizer.train(records, str(output), valid=valid, resume=True, **{**options, "seed": 2})
    second = TrainedSummarizer.train(records, str(output), valid=valid, resume=True, **options)
    assert second["stopped"] == "completed" and not (tmp_path / "run.nlpt.ckpt").exists()
    straight, resumed = read_model_file(tmp_path / "straight.nlpt")[1], read_model_file(output)[1]
    assert straight.keys() == resumed.keys() and all((straight[k] == resumed[k]).all() for k in straight)


def test_damaged_and_foreign_model_files(model, tmp_path):
    data = open(model, "rb").read()
    (tmp_path / "truncated.nlpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated.nlpt: not a readable nlp-tool model file"):
        TrainedSummarizer(model=str(tmp_path / "truncated.nlpt"))
    with zipfile.ZipFile(model) as src, zipfile.ZipFile(tmp_path / "foreign.nlpt", "w") as dst:
        config = json.loads(src.read("config.json"))
        config["metadata"]["engine"] = "centrality"
        dst.writestr("config.json", json.dumps(config))
        for name in src.namelist():
            if name != "config.json":
                dst.writestr(name, src.read(name))
    with pytest.raises(ModelMismatchError, match="a model for summarize:centrality, not summarize:trained; use --engine centrality"):
        TrainedSummarizer(model=str(tmp_path / "foreign.nlpt"))
    with pytest.raises(OptionError, match="no such model file"):
        TrainedSummarizer(model=str(tmp_path / "absent.nlpt"))
    unknown = rewritten(model, tmp_path / "unknown.nlpt", lambda meta: meta["features"].append("colour"))
    with pytest.raises(ModelFileError, match="made for other sentence features"):
        TrainedSummarizer(model=unknown)
    rule = rewritten(model, tmp_path / "rule.nlpt", lambda meta: meta.update(length_rule="sometimes"))
    with pytest.raises(ModelFileError, match="unknown length rule 'sometimes'"):
        TrainedSummarizer(model=rule)


def test_missing_default_model_names_the_training_script(monkeypatch, tmp_path):
    absent = tmp_path / "news.nlpt"
    monkeypatch.setattr(trained, "DEFAULT_MODEL_FILE", absent)
    monkeypatch.setattr(TrainedSummarizer, "default_model", str(absent))
    with pytest.raises(OptionError, match="scripts/train_default_summarizer.py"):
        TrainedSummarizer()


# -- command line ----------------------------------------------------------------

def test_cli_train_then_summarize(tmp_path):
    cli = make_cli(lambda: load_registry(entry_points=[]))
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"text": r["article"], "abstract": r["summary"]}) + "\n"
                            for r in synthetic(20, 5)))
    out = tmp_path / "model.nlpt"
    runner = CliRunner()
    result = runner.invoke(cli, ["train", "summarize", str(data), "--engine", "trained", "--article-column", "text",
                                 "--summary-column", "abstract", "--output", str(out), "--quiet", "--format", "json",
                                 "--epochs", "3", "--dim", "8", "--filters", "8", "--hidden", "8"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["engine"] == "summarize:trained" and report["model"] == str(out)
    assert 0.0 <= report["metrics"]["rouge1"] <= 1.0
    article = synthetic(1, 6)[0]["article"]
    result = runner.invoke(cli, ["summarize", "--engine", "trained", "--model", str(out), "--sentences", "2",
                                 "--format", "json", "--text", article])
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.stdout)
    chosen = item["result"]["sentences"]
    assert item["stamp"]["model"] == str(out)
    assert len(chosen) == 2 and all(article[s["start"] : s["end"]] == s["text"] for s in chosen)


def test_cli_bad_data_and_damaged_model_exit_with_a_message(tmp_path):
    cli = make_cli(lambda: load_registry(entry_points=[]))
    runner = CliRunner()
    data = tmp_path / "bad.jsonl"
    data.write_text('{"article": "Alpha beta. Gamma delta.", "summary": "Zeta eta."}\n' * 4)
    result = runner.invoke(cli, ["train", "summarize", str(data), "--engine", "trained",
                                 "--output", str(tmp_path / "m.nlpt"), "--quiet"])
    assert result.exit_code == 2
    assert "shares a word with its summary" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m.nlpt").exists()
    (tmp_path / "damaged.nlpt").write_bytes(b"PK\x03\x04 not really a zip")
    result = runner.invoke(cli, ["summarize", "--engine", "trained", "--model", str(tmp_path / "damaged.nlpt"),
                                 "--text", "One sentence. Another one."])
    assert result.exit_code == 1
    assert "damaged.nlpt: not a readable nlp-tool model file" in result.output and "Traceback" not in result.output


def shipped_model() -> dict:
    if not trained.DEFAULT_MODEL_FILE.is_file():
        pytest.skip("the default model is not installed (python scripts/train_default_summarizer.py)")
    return TrainedSummarizer(sentences=1).metadata


def test_shipped_default_model_is_used_without_model_and_is_the_candidate_its_selection_chose():
    meta = shipped_model()
    engine = TrainedSummarizer(sentences=1)
    assert engine.model == str(trained.DEFAULT_MODEL_FILE)
    chosen = meta["selection"]["candidates"][meta["selection"]["chosen"]]
    assert chosen["criterion"] == max(c["criterion"] for c in meta["selection"]["candidates"])
    assert engine.length_rule == chosen["length_rule"]
    assert ("paragraph_share" in meta["features"]) == chosen["paragraph_share"]
    assert (engine.scorer.encoder is None) == (chosen["encoder"] == "none")
    assert meta["training"]["best_epoch"] == chosen["best_epoch"]
    text = synthetic(1, 7)[0]["article"]
    [chosen_sentence] = engine.summarize(text)["sentences"]
    assert text[chosen_sentence["start"] : chosen_sentence["end"]] == chosen_sentence["text"]


# The model and the ranking are deterministic: the same file on the same records gives the same
# summaries. The margin (0.1 ROUGE point) is for floating-point differences between machines.
TOLERANCE = 0.001


def test_shipped_model_scores_on_a_test_slice_what_its_training_run_recorded():
    from toolkit_plugins.summarization import corpora

    meta = shipped_model()
    if not (corpora.BBC.is_file() and corpora.CNNDM.is_file()):
        pytest.skip("the corpora live in ../shared/data beside the checkout")
    records = {r["id"]: r for r in corpora.bbc_records() + corpora.cnndm_records()}
    assert set(meta["test_slice"]) == {"BBC", "CNN", "Daily Mail"}
    for part, recorded in meta["test_slice"].items():
        sliced = [records[i] for i in recorded["ids"]]
        assert len(sliced) >= 10 and {r["source"] for r in sliced} == {
            {"BBC": "bbc", "CNN": "cnn", "Daily Mail": "dailymail"}[part]}
        for engine, make in (("trained", TrainedSummarizer), ("lead", LeadSummarizer)):
            scores = make(sentences=3).evaluate(sliced)
            for metric in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
                assert scores[metric] == pytest.approx(recorded[engine][metric], abs=TOLERANCE), (part, engine, metric)


def test_model_card_states_the_test_and_validation_numbers_of_the_model_file():
    meta = shipped_model()
    card = (trained.DEFAULT_MODEL_FILE.parent / "MODEL_CARD.md").read_text(encoding="utf-8")
    rows = {}
    for line in card.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 7 and cells[2] in ("trained", "centrality", "lead"):
            rows[(cells[0].split(" (")[0], cells[1], cells[2])] = [float(c) for c in cells[3:]]
    expected = {}
    for part, by_length in meta["test_metrics"].items():
        for length, m in by_length.items():
            expected[(part, length, "trained")] = m
            for engine, b in meta["test_baselines"][part][length].items():
                expected[(part, length, engine)] = b
    assert len(expected) == 4 * 2 * 3
    assert rows == {key: [m["rouge1"], m["rouge2"], m["rougeL"], m["rougeLsum"]] for key, m in expected.items()}
    chosen = meta["selection"]["chosen"]
    lines = card.splitlines()
    for n, candidate in enumerate(meta["selection"]["candidates"]):
        number = f"**{n + 1}**" if n == chosen else f"{n + 1}"
        [row] = [line for line in lines if line.startswith(f"| {number} | {candidate['data']} |")]
        assert row.endswith(f"| {candidate['criterion']:.3f} |"), row


def training_script():
    """scripts/train_default_summarizer.py as a module."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "train_default_summarizer.py"
    spec = importlib.util.spec_from_file_location("train_default_summarizer", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_script_refuses_a_model_over_its_limit_before_it_reaches_its_destination(tmp_path):
    from toolkit.files import TooLarge, move_within

    module = training_script()
    shipped = tmp_path / "models" / "news.nlpt"
    shipped.parent.mkdir()
    shipped.write_bytes(b"the model shipped before")
    staged = tmp_path / "models" / "staged.nlpt"
    with staged.open("wb") as f:
        f.truncate(module.MAX_BYTES + 1)  # sparse: no 10 MB written
    with pytest.raises(TooLarge, match=r"staged.nlpt is 10.00 MB, over the 10 MB limit: .*news.nlpt was not written"):
        move_within(staged, shipped, module.MAX_BYTES)
    assert shipped.read_bytes() == b"the model shipped before" and not staged.exists()
    staged.write_bytes(b"x" * 2048)
    assert move_within(staged, shipped, module.MAX_BYTES) == 2048
    assert shipped.read_bytes() == b"x" * 2048 and not staged.exists()


def test_training_script_recipe_is_what_the_shipped_model_was_trained_with():
    from toolkit.engine import renamed_options

    meta = shipped_model()
    module = training_script()
    # The shipped model was trained before lr, maxlen and num_words were renamed: its options keep the old names.
    options = renamed_options(meta["training"]["options"], TrainedSummarizer.train_options, lambda old, new: None)
    assert {name: options[name] for name in module.RECIPE} == module.RECIPE
