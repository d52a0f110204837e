"""Chinese text in the classify task: the tokenizer's cjk modes, models trained with them, the shipped model."""

from __future__ import annotations

import gzip
import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from toolkit.cli import make_cli
from toolkit.nn import ModelFileError, read_model_file, rewrite_metadata
from toolkit.plugins import load_registry
from toolkit.text import CJK_MODES, WordTokenizer, tokenize
from toolkit_plugins.classification.cnn import CnnClassifier
from toolkit_plugins.classification.ensemble import EnsembleClassifier
from toolkit_plugins.classification.ngram import NgramClassifier, featurize

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "plugins" / "classification" / "models" / "chnsenticorp-sentiment.nlpt"
REVIEW = "这部电影太好看了"
DATA = ROOT.parent / "shared" / "data" / "chnsenticorp"


# -- tokenization -----------------------------------------------------------------------------------------------

def test_characters_bigrams_and_words():
    assert tokenize(REVIEW) == ["这", "部", "电", "影", "太", "好", "看", "了"]
    assert tokenize(REVIEW, cjk="bigram") == ["这部", "部电", "电影", "影太", "太好", "好看", "看了"]
    assert tokenize(REVIEW, cjk="jieba") == ["这部", "电影", "太", "好看", "了"]


def test_mixed_chinese_and_ascii_text_keeps_latin_words_and_numbers_whole():
    text = "iPhone 15 的屏幕很清楚！Battery OK，价格便宜"
    assert tokenize(text) == ["iphone", "15", "的", "屏", "幕", "很", "清", "楚", "battery", "ok", "价", "格", "便", "宜"]
    assert tokenize(text, cjk="jieba") == ["iphone", "15", "的", "屏幕", "很", "清楚", "battery", "ok", "价格便宜"]
    # Full-width Latin letters and punctuation are NFKC-folded before anything else.
    assert tokenize("ＮＬＰ很好。", cjk="jieba") == ["nlp", "很", "好"]


@pytest.mark.parametrize("cjk", CJK_MODES)
@pytest.mark.parametrize("text", ["", "   ", "。！？", "……", "😀"])
def test_text_without_words_gives_no_tokens(text, cjk):
    assert tokenize(text, cjk=cjk) == []


def test_jieba_words_do_not_change_with_jiebas_global_dictionary():
    import jieba

    before = tokenize("房间太小了", cjk="jieba")
    jieba.add_word("房间太小")
    try:
        assert jieba.lcut("房间太小了")[0] == "房间太小"
        assert tokenize("房间太小了", cjk="jieba") == before == ["房间", "太小", "了"]
    finally:
        jieba.del_word("房间太小")


def test_character_ngrams_are_the_n_gram_features_of_character_tokens():
    # 好, 看, 好看: a one-word run gives its characters and their bigram, never a gram across a Latin word.
    assert featurize(["好看"], 3, 20).nnz == 3
    assert featurize(["好看 movie 了"], 3, 20).nnz == 4 + 3 + 2
    assert featurize(["好看"], 3, 20, cjk="jieba").nnz == 1
    assert featurize([""], 3, 20).nnz == 0


def test_word_tokenizer_keeps_the_jieba_mode_in_its_config():
    tokenizer = WordTokenizer(cjk="jieba").fit([REVIEW, "电影很无聊"])
    restored = WordTokenizer.from_config(json.loads(json.dumps(tokenizer.to_config())))
    assert restored.cjk == "jieba" and restored.texts_to_sequences([REVIEW]) == tokenizer.texts_to_sequences([REVIEW])
    assert "电影" in restored.vocabulary


def test_cli_start_up_imports_neither_jieba_nor_the_segmenter():
    code = ("import sys\nfrom toolkit.cli import cli\n"
            "try:\n    cli(['train', 'classify', '--help'])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "assert 'jieba' not in sys.modules and 'toolkit.text.chinese' not in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--cjk [char|bigram|jieba]" in proc.stdout


# -- models trained with a cjk mode ----------------------------------------------------------------------------

POSITIVE = ["房间很干净，服务很好", "位置方便，早餐丰富", "非常满意，下次还会再来", "性价比高，推荐入住",
            "前台热情，环境安静", "电脑运行流畅，屏幕清晰"]
NEGATIVE = ["房间很脏，服务很差", "隔音太差，一夜没睡好", "非常失望，再也不来了", "价格太贵，不推荐",
            "前台冷漠，环境吵闹", "电脑经常死机，屏幕模糊"]
TINY = [{"text": t, "label": "pos"} for t in POSITIVE] + [{"text": t, "label": "neg"} for t in NEGATIVE]
SMALL = {"hash_bits": 12, "epochs": 30, "learning_rate": 0.02, "max_len": 16, "vocab_size": 200, "dim": 16,
         "filters": 16, "hidden": 16, "batch": 4}


@pytest.mark.parametrize("cjk", ["char", "jieba"])
def test_ngram_model_learns_its_data_and_keeps_its_cjk_mode(tmp_path, cjk):
    path = tmp_path / "zh.nlpt"
    NgramClassifier.train(TINY, str(path), ngram=2, hash_bits=12, c=10.0, cjk=cjk)
    assert read_model_file(path)[0]["metadata"]["hashing"]["cjk"] == cjk
    engine = NgramClassifier(model=str(path))
    assert engine._loaded()[0].cjk == cjk
    assert [r["label"] for r in engine.run([r["text"] for r in TINY])] == [r["label"] for r in TINY]


def test_ensemble_trained_on_jieba_words_splits_text_alike_in_both_models(tmp_path):
    path = tmp_path / "zh.nlpt"
    EnsembleClassifier.train(TINY, str(path), valid=TINY, cjk="jieba", **SMALL)
    meta = read_model_file(path)[0]["metadata"]
    # Both members split text as the model was trained to (characters, or jieba's words), kept in the file.
    assert meta["ngram"]["hashing"]["cjk"] == meta["cnn"]["tokenizer"]["cjk"] == meta["training"]["options"]["cjk"]
    model = EnsembleClassifier(model=str(path))._loaded()[0]
    assert "酒店" in model.cnns[0].tokenizer.vocabulary or "房间" in model.cnns[0].tokenizer.vocabulary
    texts = [r["text"] for r in TINY]
    w = model.ngram_weight
    separate = w * model.ngram.predict_proba(texts) + (1 - w) * model.cnns[0].predict_proba(texts)
    assert abs(model.predict_proba(texts) - separate).max() == 0


def test_cnn_on_characters_learns_its_data(tmp_path):
    path = tmp_path / "zh.nlpt"
    CnnClassifier.train(TINY, str(path), **{k: v for k, v in SMALL.items() if k != "hash_bits"})
    engine = CnnClassifier(model=str(path))
    assert read_model_file(path)[0]["metadata"]["tokenizer"]["cjk"] == "char"
    assert [r["label"] for r in engine.run([r["text"] for r in TINY])] == [r["label"] for r in TINY]


def test_train_and_classify_on_the_command_line_with_the_cjk_option(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.tsv").write_text("text\tlabel\n" + "".join(f"{r['text']}\t{r['label']}\n" for r in TINY * 2),
                                       encoding="utf-8")
    cli = make_cli(lambda: load_registry(("toolkit_plugins.classification",), entry_points=[]))
    trained = CliRunner().invoke(cli, ["train", "classify", "data.tsv", "-e", "ngram", "--cjk", "jieba", "--c", "10",
                                       "--hash-bits", "12", "--valid-split", "0", "-o", "zh.nlpt", "-q"])
    assert trained.exit_code == 0, trained.output
    assert read_model_file(tmp_path / "zh.nlpt")[0]["metadata"]["hashing"]["cjk"] == "jieba"
    result = CliRunner().invoke(cli, ["classify", "-m", "zh.nlpt", "-e", "ngram", "--text", "前台热情，环境安静", "-f", "json"])
    assert result.exit_code == 0, result.output
    assert [r["result"]["label"] for r in json.loads(result.stdout)] == ["pos"]


def test_a_model_file_with_an_unknown_cjk_mode_is_refused(tmp_path):
    path = tmp_path / "zh.nlpt"
    NgramClassifier.train(TINY, str(path), hash_bits=12)
    rewrite_metadata(path, lambda meta: meta["hashing"].update(cjk="words"))
    with pytest.raises(ModelFileError, match="cjk='words'"):
        NgramClassifier(model=str(path)).run([REVIEW])


# -- the training script ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def script():
    path = ROOT / "scripts" / "train_default_chinese_classifier.py"
    spec = importlib.util.spec_from_file_location("train_default_chinese_classifier", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def write_jsonl_gz(path: Path, records: list[dict]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def test_the_script_selects_on_dev_without_its_repeats_and_ships_a_model_that_says_it_reads_chinese(
        script, tmp_path):
    rng = random.Random(0)
    rows = [{"text": rng.choice(texts) + "，" + rng.choice(texts), "label": label}
            for _ in range(60) for label, texts in (("pos", POSITIVE), ("neg", NEGATIVE))]
    write_jsonl_gz(tmp_path / "train.jsonl.gz", rows[:80])
    write_jsonl_gz(tmp_path / "dev.jsonl.gz", rows[80:100] + rows[:5])  # 5 repeats of training reviews
    write_jsonl_gz(tmp_path / "test.jsonl.gz", rows[100:])
    small = {**SMALL, "epochs": 2, "word_vectors": False}
    candidates = (script.Candidate("a", "chars", {**small, "cjk": "char", "ngram_weight": 1.0}),
                  script.Candidate("b", "words", {**small, "cjk": "jieba"}))
    output = tmp_path / "models" / "zh.nlpt"
    args = script.parse_args(["--data", str(tmp_path), "--output", str(output)])
    assert script.run(args, "the command", candidates) == 0
    assert sorted(p.name for p in output.parent.iterdir()) == ["zh.md", "zh.nlpt"]
    meta = read_model_file(output)[0]["metadata"]
    assert meta["languages"] == ["zh"] and meta["name"] == script.MODEL_NAME
    assert meta["selection"]["validation"]["near_duplicates_removed"] >= 5
    assert meta["training"]["records"] == 80 and meta["test_metrics"]["records"] == 20
    card = output.with_suffix(".md").read_text()
    assert "non-commercial research or teaching" in card and f"Accuracy: **{meta['test_metrics']['accuracy']:.4f}**" in card


def test_the_script_validates_on_the_dev_reviews_sentences_and_fits_a_sentences_candidate_on_them_too(
        script, tmp_path):
    rng = random.Random(2)
    # Reviews of two sentences (。 ends one), each sentence of at least 3 characters.
    rows = [{"text": rng.choice(texts) + "。" + rng.choice(texts) + "！", "label": label}
            for _ in range(40) for label, texts in (("pos", POSITIVE), ("neg", NEGATIVE))]
    for name, part in (("train", rows[:50]), ("dev", rows[50:65]), ("test", rows[65:])):
        write_jsonl_gz(tmp_path / f"{name}.jsonl.gz", part)
    candidates = (script.Candidate("s", "with sentences", {**SMALL, "epochs": 2, "cjk": "jieba"}, sentences=True),)
    output = tmp_path / "models" / "zh.nlpt"
    assert script.run(script.parse_args(["--data", str(tmp_path), "--output", str(output)]), "the command",
                      candidates) == 0
    meta = read_model_file(output)[0]["metadata"]
    assert meta["training"]["records"] == 50 + 2 * 50  # the reviews and their two sentences each
    validation = meta["selection"]["validation"]
    assert validation["sentences"] == 2 * validation["records"]
    row = meta["selection"]["candidates"][0]
    assert row["score"] == pytest.approx((row["validation_accuracy"] + row["sentence_accuracy"]) / 2)
    card = output.with_suffix(".md").read_text()
    assert "the 50 reviews of `train.jsonl.gz` and their 100 sentences of at least 3 characters" in card
    assert f"and their {validation['sentences']}\n  sentences of at least 3 characters" in card


def test_the_script_card_names_the_cnn_members_of_the_chosen_candidate_and_their_epochs(script, tmp_path):
    rng = random.Random(1)
    rows = [{"text": rng.choice(texts) + "，" + rng.choice(texts), "label": label}
            for _ in range(50) for label, texts in (("pos", POSITIVE), ("neg", NEGATIVE))]
    for name, part in (("train", rows[:70]), ("dev", rows[70:85]), ("test", rows[85:])):
        write_jsonl_gz(tmp_path / f"{name}.jsonl.gz", part)
    candidates = (script.Candidate("m", "two CNNs", {**SMALL, "epochs": 2, "cjk": "jieba", "cnn_members": 2}),)
    output = tmp_path / "models" / "zh.nlpt"
    assert script.run(script.parse_args(["--data", str(tmp_path), "--output", str(output), "--seed", "4"]),
                      "the command", candidates) == 0
    meta = read_model_file(output)[0]["metadata"]
    assert meta["cnn_members"] == 2
    epochs = [member["best_epoch"] for member in meta["training"]["cnn_members"]]
    assert [member["seed"] for member in meta["training"]["cnn_members"]] == [4, 9]
    assert meta["selection"]["candidates"][0]["cnn_best_epochs"] == epochs
    card = output.with_suffix(".md").read_text()
    assert "The CNN side is the mean of 2 CNNs of that recipe, trained with seeds 4, 9." in card
    assert f"| {epochs[0]}, {epochs[1]} |" in card
    assert f"{script.FILM_REVIEW} gets `" in card


# -- the shipped Chinese model -----------------------------------------------------------------------------------

CLEAR = {
    "这家酒店的服务很好，房间也很干净，下次还会再来": "pos",
    "位置方便，早餐丰富，前台非常热情，强烈推荐": "pos",
    "这本书写得很精彩，值得一读": "pos",
    "房间又小又脏，隔音很差，再也不会住了": "neg",
    "服务态度极差，前台爱理不理，非常失望": "neg",
    "电脑用了两天就坏了，质量太差，不推荐购买": "neg",
}


@pytest.fixture(scope="module")
def shipped() -> EnsembleClassifier | NgramClassifier | CnnClassifier:
    engine = read_model_file(SHIPPED)[0]["metadata"]["engine"]
    return {e.name: e for e in (EnsembleClassifier, NgramClassifier, CnnClassifier)}[engine](model=str(SHIPPED))


def test_shipped_model_reads_chinese_and_says_so(shipped):
    meta = shipped.loaded_metadata()
    assert meta["languages"] == ["zh"]
    assert meta["labels"] == ["neg", "pos"]
    assert SHIPPED.stat().st_size <= 10 * 2**20
    card = SHIPPED.with_suffix(".md").read_text(encoding="utf-8")
    assert f"Accuracy: **{meta['test_metrics']['accuracy']:.4f}**" in card and "non-commercial" in card
    # Both members split text as the model was trained to (characters, or jieba's words), kept in the file.
    assert meta["ngram"]["hashing"]["cjk"] == meta["cnn"]["tokenizer"]["cjk"] == meta["training"]["options"]["cjk"]


def test_shipped_model_classifies_clear_reviews(shipped):
    assert {text: r["label"] for text, r in zip(CLEAR, shipped.run(list(CLEAR)))} == CLEAR


def test_shipped_model_on_the_command_line():
    cli = make_cli(lambda: load_registry(("toolkit_plugins.classification",), entry_points=[]))
    result = CliRunner().invoke(cli, ["classify", "-m", str(SHIPPED), "--text", "酒店位置很好，服务周到", "-f", "json"])
    assert result.exit_code == 0, result.output
    assert [r["result"]["label"] for r in json.loads(result.stdout)] == ["pos"]


def test_the_english_default_model_lists_its_language():
    from toolkit.nn import read_metadata
    from toolkit_plugins.classification.common import DEFAULT_MODEL_FILE

    assert read_metadata(DEFAULT_MODEL_FILE)["languages"] == ["en"]


@pytest.mark.skipif(not (DATA / "test.jsonl.gz").exists(), reason="needs ../shared/data/chnsenticorp")
def test_shipped_model_scores_its_recorded_test_accuracy(shipped):
    with gzip.open(DATA / "test.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    recorded = shipped.loaded_metadata()["test_metrics"]
    assert recorded["records"] == len(rows)
    assert shipped.evaluate(rows)["accuracy"] == pytest.approx(recorded["accuracy"], abs=1 / len(rows))
