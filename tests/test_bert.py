"""BERT and DistilBERT checkpoints (toolkit.nn.bert) for classify: read without PyTorch, checked against a
reference written here from the checkpoint's own tensor names, and against transformers where it is installed."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import toolkit
from toolkit.errors import ModelFileError, ModelMismatchError, OptionError

WORDS = ["the", "film", "was", "great", "awful", "plot", "acting", "not", "bad", "at", "all", "a", "dog", "ran",
         "good", "boring", "music", "story", ",", ".", "!", "##s", "##ing", "##ly"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
TEXTS = ["The film was great!", "awful acting, boring plot.", "Not bad at all.", "a dog ran",
         "the music was good and the story was great and the acting was not bad at all " * 4, "films"]
LABELS = {"0": "negative", "1": "positive", "2": "mixed"}
D, HEADS, LAYERS, FFN, POSITIONS = 32, 4, 2, 64, 40


def _names(kind: str) -> dict[str, str]:
    if kind == "bert":
        block = "bert.encoder.layer.{i}."
        return {"q": block + "attention.self.query", "k": block + "attention.self.key",
                "v": block + "attention.self.value", "o": block + "attention.output.dense",
                "ln1": block + "attention.output.LayerNorm", "ff1": block + "intermediate.dense",
                "ff2": block + "output.dense", "ln2": block + "output.LayerNorm", "emb": "bert.embeddings."}
    block = "distilbert.transformer.layer.{i}."
    return {"q": block + "attention.q_lin", "k": block + "attention.k_lin", "v": block + "attention.v_lin",
            "o": block + "attention.out_lin", "ln1": block + "sa_layer_norm", "ff1": block + "ffn.lin1",
            "ff2": block + "ffn.lin2", "ln2": block + "output_layer_norm", "emb": "distilbert.embeddings."}


def checkpoint_folder(folder: Path, kind: str, seed: int = 0, labels: dict = LABELS, head: str = "classify",
                      d: int = D, ffn: int = FFN) -> dict[str, np.ndarray]:
    """A tiny sequence-classification (or question-answering) checkpoint as Hugging Face lays one out, random
    weights (width ``d``, feed-forward ``ffn``); its tensors."""
    from safetensors.numpy import save_file
    from tokenizers.implementations import BertWordPieceTokenizer

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names, t = _names(kind), {}

    def linear(name: str, d_in: int, d_out: int) -> None:
        t[name + ".weight"] = rng.normal(0, 0.2, (d_out, d_in)).astype(np.float32)
        t[name + ".bias"] = rng.normal(0, 0.1, d_out).astype(np.float32)

    def norm(name: str) -> None:
        t[name + ".weight"] = (1 + rng.normal(0, 0.1, d)).astype(np.float32)
        t[name + ".bias"] = rng.normal(0, 0.1, d).astype(np.float32)

    emb = names["emb"]
    t[emb + "word_embeddings.weight"] = rng.normal(0, 0.5, (len(VOCAB), d)).astype(np.float32)
    t[emb + "position_embeddings.weight"] = rng.normal(0, 0.5, (POSITIONS, d)).astype(np.float32)
    if kind == "bert":
        t[emb + "token_type_embeddings.weight"] = rng.normal(0, 0.5, (2, d)).astype(np.float32)
    norm(emb + "LayerNorm")
    for i in range(LAYERS):
        for part in "qkvo":
            linear(names[part].format(i=i), d, d)
        norm(names["ln1"].format(i=i))
        norm(names["ln2"].format(i=i))
        linear(names["ff1"].format(i=i), d, ffn)
        linear(names["ff2"].format(i=i), ffn, d)
    if head == "qa":
        linear("qa_outputs", d, 2)
    else:
        linear("bert.pooler.dense" if kind == "bert" else "pre_classifier", d, d)
        linear("classifier", d, len(labels))
    save_file(t, str(folder / "model.safetensors"))
    if kind == "bert":
        config = {"model_type": "bert", "architectures": ["BertForSequenceClassification"], "hidden_size": d,
                  "num_attention_heads": HEADS, "num_hidden_layers": LAYERS, "intermediate_size": ffn,
                  "hidden_act": "gelu", "max_position_embeddings": POSITIONS, "type_vocab_size": 2,
                  "layer_norm_eps": 1e-12}
    else:
        config = {"model_type": "distilbert", "architectures": ["DistilBertForSequenceClassification"], "dim": d,
                  "n_heads": HEADS, "n_layers": LAYERS, "hidden_dim": ffn, "activation": "gelu",
                  "max_position_embeddings": POSITIONS}
    config.update({"vocab_size": len(VOCAB), "pad_token_id": 0})
    if head == "qa":
        config["architectures"] = [config["architectures"][0].replace("SequenceClassification", "QuestionAnswering")]
    else:
        config.update({"id2label": labels, "label2id": {name: int(i) for i, name in labels.items()}})
    (folder / "config.json").write_text(json.dumps(config))
    tokenizer = BertWordPieceTokenizer({piece: i for i, piece in enumerate(VOCAB)}, lowercase=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    return t


def reference_states(t: dict[str, np.ndarray], kind: str, ids: list[int], types: list[int]) -> np.ndarray:
    """The encoder's final states for one unpadded input, in float64, written from the architecture's papers
    and Hugging Face's tensor names alone."""
    names = _names(kind)
    erf = np.vectorize(math.erf)

    def linear(x, name):
        return _linear64(t, x, name)

    def norm(x, name):
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * t[name + ".weight"] + t[name + ".bias"]

    emb = names["emb"]
    x = t[emb + "word_embeddings.weight"][ids] + t[emb + "position_embeddings.weight"][:len(ids)]
    if kind == "bert":
        x = x + t[emb + "token_type_embeddings.weight"][types]
    x = norm(x.astype(np.float64), emb + "LayerNorm")
    dh = D // HEADS
    for i in range(LAYERS):
        name = {part: value.format(i=i) for part, value in names.items()}
        q, k, v = (linear(x, name[p]).reshape(len(ids), HEADS, dh).transpose(1, 0, 2) for p in "qkv")
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(dh)
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        a = (weights @ v).transpose(1, 0, 2).reshape(len(ids), D)
        x = norm(x + linear(a, name["o"]), name["ln1"])
        h = linear(x, name["ff1"])
        h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
        x = norm(x + linear(h, name["ff2"]), name["ln2"])
    return x


def _linear64(t: dict[str, np.ndarray], x: np.ndarray, name: str) -> np.ndarray:
    return x @ t[name + ".weight"].astype(np.float64).T + t[name + ".bias"]


def reference_logits(t: dict[str, np.ndarray], kind: str, ids: list[int]) -> np.ndarray:
    """The class scores of one text: the first token's state through the head."""
    first = reference_states(t, kind, ids, [0] * len(ids))[0]
    pooled = np.tanh(_linear64(t, first, "bert.pooler.dense")) if kind == "bert" else \
        np.maximum(_linear64(t, first, "pre_classifier"), 0)
    return _linear64(t, pooled, "classifier")


@pytest.fixture(scope="module", params=["bert", "distilbert"])
def folder(request, tmp_path_factory) -> tuple[Path, str, dict]:
    path = tmp_path_factory.mktemp(request.param) / f"tiny-{request.param}"
    return path, request.param, checkpoint_folder(path, request.param, seed=len(request.param))


def run(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from toolkit.cli import cli; cli()", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


LOAD_PEAK = """
import sys
from pathlib import Path

from toolkit.nn.bert import BertClassifier

def status(key):
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith(key + ":")) * 1024

before = status("VmRSS")
classifier = BertClassifier.from_pretrained(Path(sys.argv[1]))
print(status("VmHWM") - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_a_checkpoint_is_resident_about_once_while_it_loads(tmp_path):
    # Random initial weights drawn before the checkpoint's were copied in, gradients written full of zeros, and one
    # file mapping held open for the whole load each added about the model's size to the peak (2.3x in all).
    tensors = checkpoint_folder(tmp_path / "wide", "distilbert", d=1024, ffn=4096)
    weights = sum(t.nbytes for t in tensors.values())  # about 100 MB
    done = subprocess.run([sys.executable, "-c", LOAD_PEAK, str(tmp_path / "wide")], capture_output=True,
                          text=True, timeout=120, check=True)
    assert int(done.stdout) < 1.5 * weights, (int(done.stdout) / 2**20, weights / 2**20)


def test_logits_equal_the_reference_for_a_padded_batch(folder):
    from toolkit.nn.bert import BertClassifier

    path, kind, tensors = folder
    classifier = BertClassifier.from_pretrained(path)
    encodings = classifier.tokenizer.encode(TEXTS)
    ours = classifier.logits(*classifier.tokenizer.arrays(encodings))  # one batch: short texts padded
    for row, encoding in enumerate(encodings):
        assert encoding.ids[0] == VOCAB.index("[CLS]") and encoding.ids[-1] == VOCAB.index("[SEP]")
        np.testing.assert_allclose(ours[row], reference_logits(tensors, kind, encoding.ids), atol=1e-4)
    assert classifier.labels == ["negative", "positive", "mixed"]


def test_the_pipeline_picks_the_engine_from_the_checkpoint_and_says_what_it_cut(folder):
    path, kind, _ = folder
    pipe = toolkit.pipeline("classify", model=str(path), top_k=3)
    assert pipe.engine_name == "bert"
    results = pipe(TEXTS)
    probabilities = pipe.engine._loaded()[0].predict_proba(TEXTS)
    for result, row in zip(results, probabilities):
        assert result["label"] == ["negative", "positive", "mixed"][int(row.argmax())]
        assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert len(result["labels"]) == 3
    assert results[4]["truncated"] is True and all("truncated" not in r for i, r in enumerate(results) if i != 4)
    assert pipe(TEXTS[:2]) == results[:2]  # the batch does not change a result
    stamp = pipe.stamp()
    assert stamp["engine"] == "classify:bert" and stamp["model_name"] == path.name


def test_the_command_line_runs_a_checkpoint_folder_and_evaluates_it(folder, tmp_path):
    path, kind, _ = folder
    done = run(["classify", "-m", str(path), "-f", "jsonl", "-i", "lines"], stdin="\n".join(TEXTS[:4]) + "\n")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["result"] for line in lines] == toolkit.pipeline("classify", model=str(path))(TEXTS[:4])
    assert {line["stamp"]["engine"] for line in lines} == {"classify:bert"}
    data = tmp_path / "labelled.tsv"
    data.write_text("text\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in
                                               zip(TEXTS[:4], ["positive", "negative", "positive", "mixed"])))
    done = run(["evaluate", "classify", str(data), "-m", str(path), "-f", "json"])
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["engine"] == "classify:bert" and 0 <= report["accuracy"] <= 1


def test_explain_and_the_stamp_name_the_checkpoint_that_runs(folder):
    path, kind, _ = folder
    done = run(["classify", "-m", str(path), "--explain", "-f", "json"])
    assert done.returncode == 0, done.stderr
    explained = json.loads(done.stdout)
    assert explained["engine"] == "bert" and explained["checkpoint"] == {"folder": str(path), "model_type": kind}
    done = run(["classify", "-m", str(path), "--explain"])
    assert f"(a {kind} checkpoint: {path})" in done.stdout
    stamp = toolkit.pipeline("classify", model=str(path)).stamp()
    assert (stamp["model_checkpoint"], stamp["model_architecture"]) == (str(path), kind)
    # A model file's metadata may hold a "source" of its own (a translation model's source language): no checkpoint.
    assert "model_checkpoint" not in toolkit.pipeline("translate").stamp()


def test_a_folder_saved_with_vocab_txt_only_reads_the_same(folder, tmp_path):
    import shutil

    path, kind, _ = folder
    plain = tmp_path / "vocab-only"
    shutil.copytree(path, plain)
    (plain / "tokenizer.json").unlink()
    (plain / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    (plain / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    assert toolkit.pipeline("classify", model=str(plain))(TEXTS) == toolkit.pipeline("classify", model=str(path))(TEXTS)


def test_bad_folders_are_one_line_errors_with_exit_2(folder, tmp_path):
    import shutil

    path, kind, tensors = folder
    cases = {}
    missing = tmp_path / "missing-weights"
    shutil.copytree(path, missing)
    (missing / "model.safetensors").unlink()
    cases[missing] = "no model.safetensors"
    pickled = tmp_path / "pickled"
    shutil.copytree(path, pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    cases[pickled] = "does not read (a pickle can run code)"
    wrong = tmp_path / "wrong-shape"
    shutil.copytree(path, wrong)
    config = json.loads((wrong / "config.json").read_text())
    config["max_position_embeddings"] = 64
    (wrong / "config.json").write_text(json.dumps(config))
    cases[wrong] = "position_embeddings.weight' has shape [40, 32], the config needs [64, 32]"
    base = tmp_path / "no-head"
    shutil.copytree(path, base)
    config = json.loads((base / "config.json").read_text())
    config["id2label"] = {"0": "a", "1": "b"}
    (base / "config.json").write_text(json.dumps(config))
    cases[base] = "classifier.weight' has shape [3, 32], the config needs [2, 32]"
    for name, change, message in (
            ("bad-pad", {"pad_token_id": "zero"}, "pad_token_id 'zero' is not an id of the 29-token vocabulary"),
            ("small-vocab", {"vocab_size": 20}, "word_embeddings.weight' has shape [29, 32], the config needs [20, 32]"),
            ("odd-activation", {"activation": ["gelu"], "hidden_act": ["gelu"]}, "activation ['gelu']")):
        changed = tmp_path / name
        shutil.copytree(path, changed)
        config = json.loads((changed / "config.json").read_text())
        (changed / "config.json").write_text(json.dumps({**config, **change}))
        cases[changed] = message
    from safetensors.numpy import save_file

    fewer = tmp_path / "fewer-tokens"  # a model of 20 tokens beside a tokenizer of 29
    shutil.copytree(path, fewer)
    words = next(name for name in tensors if name.endswith("word_embeddings.weight"))
    save_file({**tensors, words: tensors[words][:20]}, str(fewer / "model.safetensors"))
    config = json.loads((fewer / "config.json").read_text())
    (fewer / "config.json").write_text(json.dumps({**config, "vocab_size": 20}))
    cases[fewer] = "the tokenizer has 29 tokens, the model 20"
    other = tmp_path / "t5"
    shutil.copytree(path, other)
    (other / "config.json").write_text(json.dumps({"model_type": "t5"}))
    cases[other] = "a 't5' checkpoint; classify runs bert, distilbert checkpoints"
    for bad, message in cases.items():
        done = run(["classify", "-m", str(bad), "--text", "great film"])
        assert done.returncode == 2, (bad.name, done.stderr)
        # One line that says what is wrong: nlp-tool's own, or click's after its usage lines (a missing model,
        # a checkpoint of another kind: usage errors).
        said = [line for line in done.stderr.splitlines() if line.startswith(("nlp-tool: error:", "Error:"))]
        assert len(said) == 1 and message in said[0] and "Traceback" not in done.stderr, (bad.name, done.stderr)
    with pytest.raises(ModelMismatchError):
        toolkit.pipeline("classify", model=str(other))
    with pytest.raises(ModelFileError, match="no sequence-classification head"):
        qa_only = tmp_path / "qa-head"
        shutil.copytree(path, qa_only)
        save_file({k: v for k, v in tensors.items() if not k.startswith(("classifier", "pre_classifier"))},
                  str(qa_only / "model.safetensors"))
        toolkit.pipeline("classify", model=str(qa_only))(["great film"])


def transformers_outputs(auto_class: str, path: Path, kind: str, ids: np.ndarray, types: np.ndarray,
                         padding: np.ndarray) -> object:
    """What transformers' ``auto_class`` makes of the checkpoint at ``path`` for these padded inputs."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    reference = getattr(transformers, auto_class).from_pretrained(str(path)).eval()
    inputs = {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(~padding, dtype=torch.long)}
    if kind == "bert":
        inputs["token_type_ids"] = torch.tensor(types)
    with torch.no_grad():
        return reference(**inputs)


def test_logits_and_labels_equal_transformers(folder):
    from toolkit.nn.bert import BertClassifier

    path, kind, _ = folder
    classifier = BertClassifier.from_pretrained(path)
    ids, types, padding = classifier.tokenizer.arrays(classifier.tokenizer.encode(TEXTS))
    outputs = transformers_outputs("AutoModelForSequenceClassification", path, kind, ids, types, padding)
    expected = outputs.logits.numpy()
    ours = classifier.logits(ids, types, padding)
    np.testing.assert_allclose(ours, expected, atol=1e-4)
    assert (ours.argmax(1) == expected.argmax(1)).all()


# -- question answering ------------------------------------------------------------------------------------------

QUESTION = "what ran?"
CONTEXT = "The film was great, the acting was not bad at all. A dog ran in the story, the music was good!"
LONG_CONTEXT = " ".join([CONTEXT] * 6)  # past the tiny models' 40 positions: read in windows


@pytest.fixture(scope="module", params=["bert", "distilbert"])
def qa_folder(request, tmp_path_factory) -> tuple[Path, str, dict]:
    path = tmp_path_factory.mktemp("qa-" + request.param) / f"tiny-{request.param}-qa"
    return path, request.param, checkpoint_folder(path, request.param, seed=7, head="qa")


def best_spans(start: np.ndarray, end: np.ndarray, context_tokens: np.ndarray, limit: int) -> list[tuple]:
    """Every (score, start token, end token) by brute force, best first: softmax over the context tokens and the
    first, the first then dropped, spans of at most ``limit`` tokens."""
    keep = context_tokens.copy()
    keep[0] = True
    p = [np.where(keep, np.exp(z - z[keep].max()), 0.0) for z in (start, end)]
    p = [q / q.sum() for q in p]
    p[0][0] = p[1][0] = 0.0
    found = [(p[0][i] * p[1][j], i, j) for i in range(len(start)) for j in range(i, min(i + limit, len(start)))
             if p[0][i] * p[1][j] > 0]
    return sorted(found, reverse=True)


def test_span_scores_equal_the_reference_and_answers_quote_the_context(qa_folder):
    from toolkit.nn.bert import BertReader

    path, kind, tensors = qa_folder
    reader = BertReader.from_pretrained(path)
    windows = reader.tokenizer.encode([(QUESTION, LONG_CONTEXT)])[0]
    windows = [windows, *windows.overflowing]
    assert len(windows) > 2  # the long context is read in overlapping windows
    for window in windows:
        ours = reader.span_logits(*reader.tokenizer.arrays([window]))[0]
        expected = _linear64(tensors, reference_states(tensors, kind, window.ids, window.type_ids), "qa_outputs")
        np.testing.assert_allclose(ours, expected, atol=1e-4)
    spans = reader.spans(QUESTION, CONTEXT, max_tokens=5, top_k=3)
    window = reader.tokenizer.encode([(QUESTION, CONTEXT)])[0]
    logits = reader.span_logits(*reader.tokenizer.arrays([window]))[0].astype(np.float64)
    context_tokens = np.array([kind_ == 1 for kind_ in window.sequence_ids])
    brute = best_spans(logits[:, 0], logits[:, 1], context_tokens, 5)[:3]
    assert [(s, e) for s, e, _ in spans] == [(window.offsets[i][0], window.offsets[j][1]) for _, i, j in brute]
    assert [score for _, _, score in spans] == pytest.approx([score for score, _, _ in brute])


def test_the_qa_pipeline_picks_the_engine_and_maps_answers_to_the_users_text(qa_folder):
    path, kind, _ = qa_folder
    pipe = toolkit.pipeline("qa", model=str(path), top_k=3, passages=0)
    assert pipe.engine_name == "bert"
    items = [{"question": QUESTION, "context": CONTEXT}, {"question": "who?", "context": LONG_CONTEXT}]
    results = pipe(items)  # the contract's check: every answer is the context's text at its offsets
    for item, result in zip(items, results):
        assert result["answer"] == item["context"][result["start"]:result["end"]] and result["answer"].strip()
        assert len(result["answers"]) == 3 and 0 < result["score"] <= 1
    assert pipe(items[1:]) == results[1:]
    assert pipe.stamp()["model_architecture"] == kind
    done = run(["qa", "-m", str(path), "--context", "-", "-f", "json", QUESTION], stdin=CONTEXT)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["result"]["answer"] == toolkit.pipeline("qa", model=str(path))(items[0])["answer"]


def test_a_classifier_is_refused_for_qa_and_a_reader_for_classify(qa_folder, folder):
    qa_path, _, _ = qa_folder
    classify_path, _, _ = folder
    with pytest.raises(ModelFileError, match="no question-answering head"):
        toolkit.pipeline("qa", model=str(classify_path))({"question": QUESTION, "context": CONTEXT})
    done = run(["classify", "-m", str(qa_path), "--text", "great film"])
    assert done.returncode == 2 and "no sequence-classification head" in done.stderr
    for task, head in (("qa", "a question-answering head"), ("classify", "a sequence-classification head")):
        with pytest.raises(OptionError, match=f"needs --model: a bert or distilbert checkpoint folder with {head}"):
            toolkit.pipeline(task, engine="bert")


def test_span_logits_equal_transformers(qa_folder):
    from toolkit.nn.bert import BertReader

    path, kind, _ = qa_folder
    reader = BertReader.from_pretrained(path)
    first = reader.tokenizer.encode([(QUESTION, LONG_CONTEXT)])[0]
    ids, types, padding = reader.tokenizer.arrays([first, *first.overflowing])
    out = transformers_outputs("AutoModelForQuestionAnswering", path, kind, ids, types, padding)
    expected = np.stack([out.start_logits.numpy(), out.end_logits.numpy()], axis=-1)
    ours = reader.span_logits(ids, types, padding)
    np.testing.assert_allclose(ours[~padding], expected[~padding], atol=1e-4)
