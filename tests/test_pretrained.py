"""Pretrained checkpoints of other tools (toolkit.nn.pretrained): GPT-2 folders for the generate task."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import toolkit
from toolkit.errors import ModelFileError, ModelMismatchError
from toolkit.nn.gpt2 import gpt2_model, gpt2_tensors
from toolkit.nn.language_model import DecoderLM
from toolkit.nn.pretrained import checkpoint_folder, open_checkpoint

TEXTS = ["the cat sat on the mat", "a dog ran in the fog", "über naïve café"] * 10


def gpt2_folder(folder: Path, prefix: str = "") -> DecoderLM:
    """A tiny GPT-2 checkpoint as Hugging Face writes one: config.json, model.safetensors, tokenizer.json."""
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(TEXTS, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer.save(str(folder / "tokenizer.json"))
    vocab, eos = tokenizer.get_vocab_size(), tokenizer.token_to_id("<|endoftext|>")
    model = DecoderLM(vocab, dim=32, heads=4, layers=2, ffn=64, dropout=0.0, max_len=48, pad_id=eos, eos_id=eos,
                      seed=3)
    save_file({prefix + name: value for name, value in gpt2_tensors(model).items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({
        "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": vocab, "n_embd": 32, "n_head": 4,
        "n_layer": 2, "n_inner": 64, "n_positions": 48, "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5, "bos_token_id": eos, "eos_token_id": eos}))
    return model


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> tuple[Path, DecoderLM]:
    path = tmp_path_factory.mktemp("gpt2") / "tiny-gpt2"
    return path, gpt2_folder(path)


def test_a_checkpoint_reads_back_the_same_network(folder):
    path, model = folder
    loaded = gpt2_model(open_checkpoint(path))
    ids = np.array([[5, 17, 42, 8, 99]])
    np.testing.assert_array_equal(loaded.forward(ids)[0], model.forward(ids)[0])


def test_the_lm_head_models_prefix_is_read(tmp_path):
    model = gpt2_folder(tmp_path / "prefixed", prefix="transformer.")
    ids = np.array([[1, 2, 3]])
    np.testing.assert_array_equal(gpt2_model(open_checkpoint(tmp_path / "prefixed")).forward(ids)[0],
                                  model.forward(ids)[0])


def test_generate_runs_a_checkpoint_folder(folder):
    path, _ = folder
    generate = toolkit.pipeline("generate", model=str(path), temperature=0, max_tokens=12, logprobs=True)
    result = generate("the cat")
    assert result["tokens"] + (result["finish"] == "end") >= 1 and result["finish"] in ("length", "end")
    assert len(result["logprobs"]) == result["tokens"]
    assert generate.stamp()["model_name"] == "tiny-gpt2"
    assert "".join(generate.stream("the cat")) == result["text"]
    # Byte-level pieces read any script: nothing is refused as unknown.
    assert toolkit.pipeline("generate", model=str(path), max_tokens=3)("日本語")["prompt_tokens"] > 0


def test_a_model_id_is_found_in_the_local_hugging_face_cache(folder, tmp_path, monkeypatch):
    path, _ = folder
    snapshot = tmp_path / "hub" / "models--someone--tiny-gpt2" / "snapshots" / "abc123"
    shutil.copytree(path, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert checkpoint_folder("someone/tiny-gpt2") == snapshot
    assert checkpoint_folder("someone/absent") is None
    result = toolkit.pipeline("generate", model="someone/tiny-gpt2", temperature=0, max_tokens=5)("a dog")
    assert result == toolkit.pipeline("generate", model=str(path), temperature=0, max_tokens=5)("a dog")


def copy_with(folder: Path, target: Path, change) -> Path:
    from safetensors.numpy import load_file, save_file

    shutil.copytree(folder, target)
    tensors = load_file(str(target / "model.safetensors"))
    change(tensors)
    save_file(tensors, str(target / "model.safetensors"))
    return target


def test_a_wrong_shape_or_a_missing_tensor_is_named(folder, tmp_path):
    path, _ = folder
    narrow = copy_with(path, tmp_path / "narrow", lambda t: t.update({"h.1.mlp.c_fc.weight": np.zeros((32, 8),
                                                                                                     np.float32)}))
    with pytest.raises(ModelFileError, match=r"tensor 'h.1.mlp.c_fc.weight' has shape \[32, 8\], the config needs"
                                             r" \[32, 64\]"):
        gpt2_model(open_checkpoint(narrow))
    missing = copy_with(path, tmp_path / "missing", lambda t: t.pop("ln_f.bias"))
    with pytest.raises(ModelFileError, match="tensor 'ln_f.bias' is missing"):
        gpt2_model(open_checkpoint(missing))


def test_pickled_weights_are_refused_with_the_way_to_convert_them(folder, tmp_path):
    path, _ = folder
    pickled = tmp_path / "pickled"
    shutil.copytree(path, pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    with pytest.raises(ModelFileError, match="pytorch_model.bin, which nlp-tool does not read.*safe_serialization"):
        open_checkpoint(pickled)
    garbage = tmp_path / "garbage"
    shutil.copytree(path, garbage)
    (garbage / "model.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(ModelFileError, match="not a safetensors file"):
        open_checkpoint(garbage)


def test_a_checkpoint_of_another_architecture_is_refused(folder, tmp_path):
    path, _ = folder
    bert = tmp_path / "bert"
    shutil.copytree(path, bert)
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelMismatchError, match="a 'bert' checkpoint"):
        toolkit.pipeline("generate", model=str(bert))
    done = subprocess.run([sys.executable, "-c", "from toolkit.cli import cli; cli()", "generate", "-m", str(bert),
                           "hello"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "a 'bert' checkpoint" in done.stderr and "Traceback" not in done.stderr


def test_logits_and_greedy_text_equal_transformers(folder):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    path, model = folder
    reference = transformers.GPT2LMHeadModel.from_pretrained(str(path)).eval()
    ids = np.array([[5, 17, 42, 8, 99, 3]])
    with torch.no_grad():
        expected = reference(torch.tensor(ids)).logits.numpy()
        greedy = reference.generate(torch.tensor(ids), max_new_tokens=10, min_new_tokens=10, do_sample=False,
                                    pad_token_id=model.eos_id)[0, ids.shape[1]:].tolist()
    np.testing.assert_allclose(gpt2_model(open_checkpoint(path)).forward(ids)[0], expected, atol=1e-4)
    from toolkit.nn.sampling import Decoding, Sampling

    decoding = Decoding(model, [ids[0].tolist()], Sampling(temperature=0), 10, [np.random.default_rng(0)],
                        forbidden=[model.eos_id])
    list(decoding)
    assert decoding.results[0].ids == greedy


def test_a_checkpoint_no_engine_of_the_task_runs_is_refused_naming_that(tmp_path):
    t5 = tmp_path / "t5-small"
    t5.mkdir()
    (t5 / "config.json").write_text(json.dumps({"model_type": "t5"}))
    done = subprocess.run([sys.executable, "-c", "from toolkit.cli import cli; cli()", "translate", "-m", str(t5),
                           "--text", "Hello."], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "a 't5' checkpoint; translate runs marian checkpoints" in done.stderr
    with pytest.raises(ModelMismatchError, match="summarize runs no checkpoints of other tools"):
        toolkit.pipeline("summarize", model=str(t5))
