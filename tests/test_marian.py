"""MarianMT checkpoints (toolkit.nn.marian) for translate: read without PyTorch, checked against a reference
written here from the checkpoint's own tensor names, and against transformers where it is installed (logits,
tokenizer, greedy and beam-4 outputs token for token)."""

from __future__ import annotations

import io
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import toolkit

CORPUS = ["the dog runs in the park", "a man reads a book", "two children play football", "the woman is singing",
          "der hund läuft im park", "ein mann liest ein buch", "zwei kinder spielen fußball", "die frau singt"]
TEXTS = ["the dog reads a book", "two men", "a woman is singing in the park", "children",
         "the park is big and the dog runs", "Zwölf Äpfel, bitte!"]
D, HEADS, LAYERS, FFN, POSITIONS = 32, 4, 2, 64, 64


def _spm(folder: Path, name: str) -> list[str]:
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 5), model_writer=model, vocab_size=40, model_type="unigram",
        hard_vocab_limit=False, character_coverage=1.0, bos_id=-1, eos_id=1, unk_id=2, pad_id=-1,
        minloglevel=2)
    (folder / name).write_bytes(model.getvalue())
    processor = sentencepiece.SentencePieceProcessor(model_proto=model.getvalue())
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())]


def marian_folder(folder: Path, seed: int = 0, codes: tuple[str, ...] = (), eos_bias: float = 3.0,
                  **config_changes: object) -> dict[str, np.ndarray]:
    """A tiny MarianMT checkpoint as transformers saves one (en->de), random weights; its tensors."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    pieces = _spm(folder, "source.spm") + _spm(folder, "target.spm")
    vocab = {"</s>": 0, "<unk>": 1}
    for piece in [*codes, *pieces]:
        vocab.setdefault(piece, len(vocab))
    vocab["<pad>"] = pad = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "MarianTokenizer", "source_lang": "en", "target_lang": "de", "separate_vocabs": False,
        "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>", "model_max_length": 512}))
    rng, t, V = np.random.default_rng(seed), {}, len(vocab)

    def linear(name: str, d_in: int, d_out: int) -> None:
        t[name + ".weight"] = rng.normal(0, 0.2, (d_out, d_in)).astype(np.float32)
        t[name + ".bias"] = rng.normal(0, 0.1, d_out).astype(np.float32)

    def norm(name: str) -> None:
        t[name + ".weight"] = (1 + rng.normal(0, 0.1, D)).astype(np.float32)
        t[name + ".bias"] = rng.normal(0, 0.1, D).astype(np.float32)

    t["model.shared.weight"] = rng.normal(0, 0.3, (V, D)).astype(np.float32)
    bias = rng.normal(0, 1.0, (1, V)).astype(np.float32)
    bias[0, 0] = eos_bias  # EOS likely enough that outputs end at different lengths
    t["final_logits_bias"] = bias
    for side, attentions in (("encoder", ("self_attn",)), ("decoder", ("self_attn", "encoder_attn"))):
        for i in range(LAYERS):
            block = f"model.{side}.layers.{i}."
            for attention in attentions:
                for module in ("q_proj", "k_proj", "v_proj", "out_proj"):
                    linear(f"{block}{attention}.{module}", D, D)
                norm(f"{block}{attention}_layer_norm")
            linear(block + "fc1", D, FFN)
            linear(block + "fc2", FFN, D)
            norm(block + "final_layer_norm")
    save_file(t, str(folder / "model.safetensors"))
    config = {"model_type": "marian", "architectures": ["MarianMTModel"], "vocab_size": V, "decoder_vocab_size": V,
              "d_model": D, "encoder_layers": LAYERS, "decoder_layers": LAYERS, "encoder_attention_heads": HEADS,
              "decoder_attention_heads": HEADS, "encoder_ffn_dim": FFN, "decoder_ffn_dim": FFN,
              "max_position_embeddings": POSITIONS, "activation_function": "swish", "scale_embedding": True,
              "pad_token_id": pad, "decoder_start_token_id": pad, "eos_token_id": 0, "forced_eos_token_id": 0,
              "share_encoder_decoder_embeddings": True, "tie_word_embeddings": True, "is_encoder_decoder": True,
              "dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0, **config_changes}
    (folder / "config.json").write_text(json.dumps(config))
    return t


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("marian") / "opus-mt-en-de"
    return path, marian_folder(path)


def reference_logits(t: dict[str, np.ndarray], src: list[int], tgt: list[int]) -> np.ndarray:
    """Logits (len(tgt), V) for one unpadded source and target prefix, in float64, written from Marian's paper
    and Hugging Face's tensor names alone: post-norm layers, [sin | cos] positions, sqrt(d) embedding scale."""
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731

    def linear(x, name):
        return x @ t[name + ".weight"].astype(np.float64).T + t[name + ".bias"]

    def norm(x, name):
        return ((x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * t[name + ".weight"]
                + t[name + ".bias"])

    def attention(x, memory, name, causal):
        dh = D // HEADS
        q = linear(x, name + ".q_proj").reshape(len(x), HEADS, dh).transpose(1, 0, 2)
        k, v = (linear(memory, name + p).reshape(len(memory), HEADS, dh).transpose(1, 0, 2)
                for p in (".k_proj", ".v_proj"))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(dh)
        if causal:
            scores = np.where(np.tril(np.ones((len(x), len(memory)), bool)), scores, -np.inf)
        w = np.exp(scores - scores.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
        return linear((w @ v).transpose(1, 0, 2).reshape(len(x), D), name + ".out_proj")

    position = np.arange(POSITIONS)[:, None] / np.power(10000, 2 * (np.arange(D) // 2) / D)
    positions = np.concatenate([np.sin(position[:, 0::2]), np.cos(position[:, 1::2])], axis=1)
    table = t["model.shared.weight"].astype(np.float64)

    def ffn(x, block):
        h = linear(x, block + "fc1")
        return norm(x + linear(h * sig(h), block + "fc2"), block + "final_layer_norm")

    x = table[src] * math.sqrt(D) + positions[:len(src)]
    for i in range(LAYERS):
        block = f"model.encoder.layers.{i}."
        x = ffn(norm(x + attention(x, x, block + "self_attn", False), block + "self_attn_layer_norm"), block)
    memory = x
    y = table[tgt] * math.sqrt(D) + positions[:len(tgt)]
    for i in range(LAYERS):
        block = f"model.decoder.layers.{i}."
        y = norm(y + attention(y, y, block + "self_attn", True), block + "self_attn_layer_norm")
        y = norm(y + attention(y, memory, block + "encoder_attn", False), block + "encoder_attn_layer_norm")
        y = ffn(y, block)
    return y @ table.T + t["final_logits_bias"][0]


def _padded(rows: list[list[int]], pad: int) -> np.ndarray:
    out = np.full((len(rows), max(map(len, rows))), pad, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


def test_logits_equal_the_reference_with_padding_and_a_cache(folder):
    from toolkit.nn.marian import MarianMT
    from toolkit.text.pretrained_tokenizer import MarianTokenizer

    path, t = folder
    model, tokenizer = MarianMT.from_pretrained(path), MarianTokenizer(path)
    sources = [ids + [0] for ids in tokenizer.encode(TEXTS)]
    pad = model.pad_id
    tgt = np.array([[pad, 5, 9, 13, 2, 7]] * len(TEXTS))
    ours = model.logits(_padded(sources, pad), tgt)
    for row, src in enumerate(sources):
        np.testing.assert_allclose(ours[row], reference_logits(t, src, list(tgt[row])), atol=1e-4)
    # Fed one token at a time through the cache, the logits are the whole prefix's.
    cache = model.start(_padded(sources, pad))
    for j in range(tgt.shape[1]):
        np.testing.assert_allclose(model.step(tgt[:, j:j + 1], cache), ours[:, j], atol=1e-4)


def test_the_engine_translates_from_the_folder_with_its_pair(folder):
    path, _ = folder
    translate = toolkit.pipeline("translate", model=str(path))
    assert translate.engine.name == "marian"
    [result] = translate(["the dog reads a book. Two men."])
    assert result["sentences"] == 2 and isinstance(result["translation"], str) and result["score"] < 0
    stamp = translate.engine.stamp()
    assert (stamp["source"], stamp["target"], stamp["model_architecture"]) == ("en", "de", "marian")
    # Greedy search is beam 1; the top two of a beam of four come best first.
    assert toolkit.pipeline("translate", model=str(path), beam=1)(["two men"])[0]["sentences"] == 1
    [listed] = toolkit.pipeline("translate", model=str(path), top_k=2)(["the dog"])
    scores = [h["score"] for h in listed["hypotheses"]]
    assert len(scores) == 2 and scores[0] >= scores[1]
    report = translate.engine.evaluate([{"source": "the dog runs", "target": "der hund läuft"}])
    assert (report["engine"], report["source"], report["records"]) == ("translate:marian", "en", 1)
    assert 0 <= report["chrf"] <= 100


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from toolkit.cli import cli; cli()", *args], capture_output=True,
                          text=True, timeout=120)


def test_the_command_line_runs_a_folder_and_refuses_another_pair(folder):
    path, _ = folder
    done = run(["translate", "-m", str(path), "--format", "json", "--text", "the dog runs"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["stamp"]["engine"] == "translate:marian"
    done = run(["translate", "-m", str(path), "--to", "fr", "--text", "the dog runs"])
    assert done.returncode == 2 and "translates en->de, not en->fr" in done.stderr


def test_a_model_of_several_targets_needs_its_target_token(tmp_path):
    from toolkit.text.pretrained_tokenizer import MarianTokenizer

    path = tmp_path / "opus-mt-en-mul"
    marian_folder(path, codes=(">>fr<<", ">>es<<"))
    tokenizer = MarianTokenizer(path)
    assert tokenizer.codes == [">>es<<", ">>fr<<"]
    assert tokenizer.encode([">>fr<< the dog"])[0][0] == tokenizer.vocab[">>fr<<"]
    done = run(["translate", "-m", str(path), "--text", "the dog"])
    assert done.returncode == 2 and "give --target of es, fr" in done.stderr
    assert toolkit.pipeline("translate", model=str(path), target="fr", beam=1)(["the dog"])[0]["sentences"] == 1


def test_bad_folders_are_one_line_errors_with_exit_2(folder, tmp_path):
    path, tensors = folder
    cases = {}

    def copy(name: str) -> Path:
        shutil.copytree(path, tmp_path / name)
        return tmp_path / name

    (copy("no-spm") / "source.spm").unlink()
    cases[tmp_path / "no-spm"] = "no source.spm"
    pickled = copy("pickled")
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    cases[pickled] = "does not read (a pickle can run code)"
    for name, change, message in (
            ("wider", {"encoder_ffn_dim": 128}, "fc1.weight' has shape [64, 32], the config needs [128, 32]"),
            ("odd-activation", {"activation_function": "mish"}, "activation 'mish'"),
            ("bad-eos", {"eos_token_id": 10_000}, "eos_token_id 10000 is not an id"),
            ("t5", {"model_type": "t5"}, "a 't5' checkpoint; translate runs marian checkpoints")):
        changed = copy(name)
        config = json.loads((changed / "config.json").read_text())
        (changed / "config.json").write_text(json.dumps({**config, **change}))
        cases[changed] = message
    for bad, message in cases.items():
        done = run(["translate", "-m", str(bad), "--text", "the dog"])
        assert done.returncode == 2, (bad.name, done.stderr)
        said = [line for line in done.stderr.splitlines() if line.startswith(("nlp-tool: error:", "Error:"))]
        assert len(said) == 1 and message in said[0] and "Traceback" not in done.stderr, (bad.name, done.stderr)


# -- against transformers ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reference(folder):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    path, _ = folder
    model = transformers.MarianMTModel.from_pretrained(str(path)).eval()
    tokenizer = transformers.MarianTokenizer.from_pretrained(str(path))
    return torch, model, tokenizer


def test_tokenizer_and_logits_equal_transformers(folder, reference):
    from toolkit.nn.marian import MarianMT
    from toolkit.text.pretrained_tokenizer import MarianTokenizer

    torch, model, their_tokenizer = reference
    path, _ = folder
    ours, tokenizer = MarianMT.from_pretrained(path), MarianTokenizer(path)
    assert [ids + [0] for ids in tokenizer.encode(TEXTS)] == [their_tokenizer(text)["input_ids"] for text in TEXTS]
    ids = [[int(i) for i in row] for row in np.random.default_rng(1).integers(0, len(tokenizer), (20, 9))]
    assert tokenizer.decode(ids) == their_tokenizer.batch_decode(ids, skip_special_tokens=True)
    batch = their_tokenizer(TEXTS, return_tensors="pt", padding=True)
    tgt = np.array([[ours.pad_id, 5, 9, 13, 2, 7]] * len(TEXTS))
    with torch.no_grad():
        expected = model(**batch, decoder_input_ids=torch.tensor(tgt)).logits.numpy()
    np.testing.assert_allclose(ours.logits(batch["input_ids"].numpy(), tgt), expected, atol=1e-4)


@pytest.mark.parametrize("beam", [1, 4])
def test_greedy_and_beam_outputs_equal_transformers(folder, reference, beam):
    from toolkit.nn.decoding import greedy, transformers_beam_search
    from toolkit.nn.marian import MarianMT

    torch, model, their_tokenizer = reference
    path, _ = folder
    ours = MarianMT.from_pretrained(path)
    batch = their_tokenizer(TEXTS, return_tensors="pt", padding=True)
    src = batch["input_ids"].numpy()
    endings = set()
    for max_length in (4, 9, 20):
        with torch.no_grad():
            out = model.generate(**batch, num_beams=beam, max_length=max_length, bad_words_ids=[[ours.pad_id]],
                                 do_sample=False, num_return_sequences=beam if beam > 1 else 1,
                                 output_scores=True, return_dict_in_generate=True)
        theirs = [[int(i) for i in row[1:] if i != ours.pad_id] for row in out.sequences.numpy()]
        theirs = [row[:-1] if row and row[-1] == ours.eos_id else row for row in theirs]
        if beam == 1:
            found = [[h] for h in greedy(ours, src, max_length - 1)]
        else:
            found = transformers_beam_search(ours, src, beam, max_length - 1, top_k=beam)
        assert [h.ids for hyps in found for h in hyps] == theirs, max_length
        if beam > 1:
            np.testing.assert_allclose([h.score for hyps in found for h in hyps], out.sequences_scores.numpy(),
                                       atol=1e-4)
        # Outputs ended by EOS, and by the length limit (transformers forces EOS there: max_length - 2 tokens).
        endings |= {"eos" if len(row) < max_length - 2 else "limit" for row in theirs}
    assert endings == {"eos", "limit"}


def test_separate_embeddings_and_an_untied_head_equal_transformers(folder, reference, tmp_path):
    from safetensors.numpy import save_file

    from toolkit.nn.marian import MarianMT

    torch, _, their_tokenizer = reference
    import transformers

    path, tensors = folder
    own = tmp_path / "separate"
    shutil.copytree(path, own)
    rng = np.random.default_rng(5)
    shared = tensors["model.shared.weight"]
    changed = {name: value for name, value in tensors.items() if name != "model.shared.weight"}
    changed["model.encoder.embed_tokens.weight"] = shared
    changed["model.decoder.embed_tokens.weight"] = rng.normal(0, 0.3, shared.shape).astype(np.float32)
    changed["lm_head.weight"] = rng.normal(0, 0.3, shared.shape).astype(np.float32)
    save_file(changed, str(own / "model.safetensors"))
    config = json.loads((own / "config.json").read_text())
    (own / "config.json").write_text(json.dumps({**config, "share_encoder_decoder_embeddings": False,
                                                 "tie_word_embeddings": False}))
    ours = MarianMT.from_pretrained(own)
    theirs = transformers.MarianMTModel.from_pretrained(str(own)).eval()
    batch = their_tokenizer(TEXTS, return_tensors="pt", padding=True)
    tgt = np.array([[ours.pad_id, 5, 9, 13, 2, 7]] * len(TEXTS))
    with torch.no_grad():
        expected = theirs(**batch, decoder_input_ids=torch.tensor(tgt)).logits.numpy()
    np.testing.assert_allclose(ours.logits(batch["input_ids"].numpy(), tgt), expected, atol=1e-4)
