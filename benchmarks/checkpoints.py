"""Checkpoints made by other tools: BERT-family classification and question answering, MarianMT translation,
GPT-2's start-up, ours against transformers.

    python benchmarks/checkpoints.py [--threads 2] [--records 64] [--sentences 48] [--repeats 3]
                                     [--skip-small] [--skip-realistic] [--skip-bert] [--skip-marian] [--skip-startup]

For each shape (small: 2 layers, d=128; realistic: DistilBERT's 6 layers,
d=768, 12 heads, feed-forward 3072, vocabulary 30,522, 512 positions), a
DistilBERT checkpoint with random weights is written as Hugging Face writes
one (save_pretrained: config.json, model.safetensors, tokenizer.json; the
WordPiece vocabulary is WikiText-2's most frequent words), once with a
sequence-classification head and once with a question-answering head, and
run by both sides, each in a process of its own taking turns
(benchmarks/shared/contenders.py), 2 threads each:

- classification, records/s: IMDb test reviews (long: read up to the 512
  positions) and UCI Yelp sentences (short), through our
  ``toolkit.pipeline("classify", model=FOLDER)`` and through transformers'
  tokenizer + AutoModelForSequenceClassification at batch 1 and 8 (its best
  is the ratio's peer); the labels must agree;
- question answering, questions/s: SQuAD v1.1 dev questions with their
  contexts, each read in windows of 384 tokens sharing 128, ours through
  ``toolkit.nn.bert.BertReader.spans`` (one window at a time, unpadded),
  theirs through the tokenizer's overflowing windows, all of a question's
  windows in one batch, AutoModelForQuestionAnswering and the same span
  decoding; the best answers' offsets must agree;
- peak memory: each side's process after the shape's runs (ru_maxrss);
- the last column, for each BERT workload: theirs' useful rate, the FLOPs
  of the real tokens (padding left out; encoder_flops) divided by their
  time, against the GEMM peak timed in our process in each turn
  (benchmarks/shared/machine.py), and the fraction of that peak issue 21's
  1.5x would need. Above 1.00 the target is beyond the machine at float32:
  these are the same products on both sides, so only fewer FLOPs (which the
  issue's 1e-4 logits rule out) could reach it.

MarianMT, at a small shape (2+2 layers, d=128) and at Marian base's
(OPUS-MT's: 6+6 layers, d=512, 8 heads, feed-forward 2048, a vocabulary of
58,101 shared by both sides and the output): a checkpoint with random
weights written by save_pretrained with its tokenizer (sentencepiece models
trained on Multi30k's English and German, the vocabulary filled up to the
size). Random weights end a sentence anywhere or never, so EOS is set
aside (``final_logits_bias``) and every sentence decodes to the translate
task's output budget, 2 x its source subwords + 10 tokens, on both sides (a
real translation ends sooner: the workload is heavier on decoding than
real text, and the same for both). Sentences/s for beam-4 translation of
Multi30k test2016 English sentences: ours through
``toolkit.pipeline("translate", model=FOLDER)``, theirs through
MarianTokenizer + MarianMTModel.generate(num_beams=4, max_length=budget + 1,
bad_words_ids=[[pad]]), sentences sorted by length as ours are, at batch 1
and 8 (the ratio is against the faster); the translations must agree (with
theirs at batch 1, where each sentence has its own budget).

GPT-2's generation is measured by benchmarks/generate.py (its gpt2-small
rows run the same DecoderLM that reads GPT-2 checkpoints). Here, start-up:
a GPT-2 small checkpoint (124M parameters, random weights, a byte-level BPE
tokenizer trained on WikiText-2) written by save_pretrained, then the
seconds from launching a fresh Python process to its first generated token:
``nlp-tool generate -m FOLDER PROMPT --max-tokens 1`` against the same
through transformers (AutoTokenizer, AutoModelForCausalLM, generate with
max_new_tokens=1), the best of --repeats launches each (the file in the
page cache), against issue 21's 2 s.

Timings are medians of --repeats runs; ratios (ours / theirs, above 1: we
are faster) are what to compare across runs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# As in generate.py: this folder's kernels.py would stand in for the "kernels" package transformers imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.append(str(Path(__file__).resolve().parent / "shared"))
from contenders import Contender, peak_megabytes  # noqa: E402
from machine import needed  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SHAPES = {
    "small": {"dim": 128, "n_layers": 2, "n_heads": 4, "hidden_dim": 512, "vocab_size": 8000},
    "realistic": {"dim": 768, "n_layers": 6, "n_heads": 12, "hidden_dim": 3072, "vocab_size": 30522},
}
QA_LENGTH, QA_STRIDE = 384, 128


class Ours:
    def __init__(self, threads: int) -> None:
        self.pipes: dict[str, Any] = {}
        self.threads = threads

    def load(self, task: str, folder: str) -> None:
        import toolkit
        from toolkit.nn.bert import BertReader

        if task in ("classify", "translate"):
            self.pipes[task] = toolkit.pipeline(task, model=folder)
            self.pipes[task](["warm-up"])
        else:
            reader = BertReader.from_pretrained(Path(folder))
            reader.tokenizer.tokenizer.enable_truncation(QA_LENGTH, stride=QA_STRIDE, strategy="only_second")
            self.pipes[task] = reader

    def classify(self, texts: list[str]) -> tuple[list[str], float]:
        start = time.perf_counter()
        labels = [result["label"] for result in self.pipes["classify"](texts)]
        return labels, time.perf_counter() - start

    def translate(self, texts: list[str]) -> tuple[list[str], float]:
        start = time.perf_counter()
        done = [result["translation"] for result in self.pipes["translate"](texts)]
        return done, time.perf_counter() - start

    def qa(self, items: list[dict]) -> tuple[list[tuple[int, int]], float]:
        reader = self.pipes["qa"]
        start = time.perf_counter()
        best = [max(reader.spans(item["question"], item["context"], 15, 1), key=lambda span: span[2])[:2]
                for item in items]
        return best, time.perf_counter() - start

    def peak(self) -> float:
        return peak_megabytes()

    def gemm_rate(self) -> float:
        from machine import rate

        return rate("gemm")


class Theirs:
    def __init__(self, threads: int) -> None:
        import torch
        from transformers import logging as hf_logging

        torch.set_num_threads(threads)
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        self.models: dict[str, Any] = {}

    def versions(self) -> str:
        import torch
        import transformers

        return f"torch {torch.__version__} (threads={torch.get_num_threads()}), transformers {transformers.__version__}"

    def make(self, folder: str, shape: dict, head: str, vocab: list[str]) -> None:
        """A random DistilBERT checkpoint with ``head`` and a WordPiece tokenizer over ``vocab``, saved to
        ``folder`` as save_pretrained writes one."""
        import torch
        import transformers as T

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        (out / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
        T.BertTokenizerFast(vocab_file=str(out / "vocab.txt"), do_lower_case=True).save_pretrained(str(out))
        torch.manual_seed(0)
        config = T.DistilBertConfig(**shape, max_position_embeddings=512,
                                    id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1})
        model = (T.DistilBertForSequenceClassification if head == "classify" else
                 T.DistilBertForQuestionAnswering)(config)
        model.save_pretrained(str(out), safe_serialization=True)

    def make_marian(self, folder: str, shape: dict) -> None:
        """A random MarianMT checkpoint of ``shape`` with a tokenizer learnt from Multi30k's training sentences,
        saved to ``folder`` as save_pretrained writes one; EOS made likely, so that outputs end by themselves."""
        import io

        import sentencepiece
        import torch
        import transformers as T

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        vocab = {"</s>": 0, "<unk>": 1}
        for side, language in (("source", "en"), ("target", "de")):
            lines = gzip.open(DATA / "multi30k" / f"train.{language}.gz", "rt", encoding="utf-8").read().splitlines()
            model = io.BytesIO()
            sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=model,
                                                     vocab_size=8000, hard_vocab_limit=False, bos_id=-1, eos_id=1,
                                                     unk_id=2, pad_id=-1, minloglevel=2)
            (out / f"{side}.spm").write_bytes(model.getvalue())
            processor = sentencepiece.SentencePieceProcessor(model_proto=model.getvalue())
            for i in range(processor.get_piece_size()):
                vocab.setdefault(processor.id_to_piece(i), len(vocab))
        size = shape["vocab_size"]
        for i in range(size - 1 - len(vocab)):
            vocab[f"<unused{i}>"] = len(vocab)
        vocab["<pad>"] = pad = len(vocab)
        (out / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        T.MarianTokenizer(str(out / "source.spm"), str(out / "target.spm"), str(out / "vocab.json"),
                          source_lang="en", target_lang="de").save_pretrained(str(out))
        torch.manual_seed(0)
        config = T.MarianConfig(**{k: v for k, v in shape.items() if k != "vocab_size"}, vocab_size=size,
                                decoder_vocab_size=size, max_position_embeddings=512, activation_function="swish",
                                scale_embedding=True, pad_token_id=pad, decoder_start_token_id=pad, eos_token_id=0,
                                forced_eos_token_id=0)
        model = T.MarianMTModel(config)
        with torch.no_grad():
            # Random weights end a sentence anywhere or never: EOS is set aside, so that every sentence decodes
            # to the same budget on both sides (EOS forced at its end).
            model.final_logits_bias[0, 0] = -1e4
        model.save_pretrained(str(out), safe_serialization=True)

    def load(self, task: str, folder: str) -> None:
        import transformers as T

        if task == "translate":
            self.models[task] = (T.MarianTokenizer.from_pretrained(folder),
                                 T.MarianMTModel.from_pretrained(folder).eval())
            return
        auto = T.AutoModelForSequenceClassification if task == "classify" else T.AutoModelForQuestionAnswering
        self.models[task] = (T.AutoTokenizer.from_pretrained(folder), auto.from_pretrained(folder).eval())

    def classify(self, texts: list[str], batch: int) -> tuple[list[str], float]:
        import torch

        tokenizer, model = self.models["classify"]
        labels = []
        start = time.perf_counter()
        with torch.inference_mode():
            for i in range(0, len(texts), batch):
                inputs = tokenizer(texts[i:i + batch], truncation=True, max_length=512, padding=True,
                                   return_tensors="pt")
                labels += [model.config.id2label[int(k)] for k in model(**inputs).logits.argmax(-1)]
        return labels, time.perf_counter() - start

    def translate(self, texts: list[str], batch: int) -> tuple[list[str], float]:
        import torch

        from toolkit_plugins.translation.translator import LENGTH_EXTRA, LENGTH_RATIO

        tokenizer, model = self.models["translate"]
        done: dict[int, str] = {}
        start = time.perf_counter()
        lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
        # Sentences of similar lengths batched together, as ours are; each decodes to our output budget.
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        with torch.inference_mode():
            for i in range(0, len(texts), batch):
                rows = order[i:i + batch]
                inputs = tokenizer([texts[j] for j in rows], padding=True, return_tensors="pt")
                budget = max(min(512, int(LENGTH_RATIO * lengths[j]) + LENGTH_EXTRA) for j in rows)
                # OPUS-MT's generation_config: 4 beams (some use 6), padding never generated.
                out = model.generate(**inputs, num_beams=4, max_length=budget + 1,
                                     bad_words_ids=[[model.config.pad_token_id]])
                done.update(zip(rows, tokenizer.batch_decode(out, skip_special_tokens=True)))
        return [done[i] for i in range(len(texts))], time.perf_counter() - start

    def qa(self, items: list[dict]) -> tuple[list[tuple[int, int]], float]:
        import numpy as np
        import torch

        from toolkit.nn.bert import masked_softmax

        tokenizer, model = self.models["qa"]
        best = []
        start = time.perf_counter()
        with torch.inference_mode():
            for item in items:
                inputs = tokenizer(item["question"], item["context"], truncation="only_second", max_length=QA_LENGTH,
                                   stride=QA_STRIDE, return_overflowing_tokens=True, return_offsets_mapping=True,
                                   padding=True, return_tensors="pt")
                offsets = inputs.pop("offset_mapping").numpy()
                inputs.pop("overflow_to_sample_mapping")
                out = model(**inputs)
                found = []
                for w in range(len(offsets)):
                    inside = np.array([kind == 1 for kind in inputs.sequence_ids(w)])
                    keep = inside.copy()
                    keep[0] = True
                    p = [masked_softmax(z[w].numpy().astype(np.float64), keep) for z in (out.start_logits,
                                                                                         out.end_logits)]
                    p[0][0] = p[1][0] = 0.0
                    scores = np.tril(np.triu(np.outer(p[0], p[1])), 14)
                    i, j = np.unravel_index(int(np.argmax(scores)), scores.shape)
                    found.append((scores[i, j], int(offsets[w][i][0]), int(offsets[w][j][1])))
                best.append(max(found)[1:])
        return best, time.perf_counter() - start

    def peak(self) -> float:
        return peak_megabytes()


def vocabulary(size: int) -> list[str]:
    """WordPiece pieces: the special tokens, WikiText-2's most frequent words, then unused fillers."""
    import collections
    import re

    text = gzip.open(DATA / "wikitext2" / "train.txt.gz", "rt", encoding="utf-8").read().lower()
    words = collections.Counter(re.findall(r"[a-z]+|[^\sa-z]", text))
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [w for w, _ in words.most_common(size - 5)]
    return pieces + [f"[unused{i}]" for i in range(size - len(pieces))]


MARIAN = {
    "small": {"d_model": 128, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
              "decoder_attention_heads": 4, "encoder_ffn_dim": 512, "decoder_ffn_dim": 512, "vocab_size": 8000 * 2},
    "realistic": {"d_model": 512, "encoder_layers": 6, "decoder_layers": 6, "encoder_attention_heads": 8,
                  "decoder_attention_heads": 8, "encoder_ffn_dim": 2048, "decoder_ffn_dim": 2048,
                  "vocab_size": 58101},
}


def bench_marian(name: str, shape: dict, sentences: list[str], args: argparse.Namespace,
                 workdir: Path) -> list[str]:
    ours, theirs = Contender(Ours, args.threads), Contender(Theirs, args.threads)
    try:
        folder = str(workdir / f"marian-{name}")
        theirs.call("make_marian", folder=folder, shape=shape)
        ours.call("load", task="translate", folder=folder)
        theirs.call("load", task="translate", folder=folder)
        theirs.call("translate", texts=sentences[:2], batch=1)
        speed, mine, their_texts = batched_turns(ours, theirs, "translate", sentences, args.repeats)
        peer = max(speed["b1"], speed["b8"])
        same = sum(a == b for a, b in zip(mine, their_texts))
        return [f"| marian {name} | translate, beam 4 ({len(sentences)} sentences) | {speed['ours']:,.2f} |"
                f" {speed['b1']:,.2f} / {speed['b8']:,.2f} | **{speed['ours'] / peer:.2f}** |"
                f" {same}/{len(sentences)} | |",
                f"| marian {name} | peak memory, MB (ours / theirs) | {ours.call('peak'):,.0f} |"
                f" {theirs.call('peak'):,.0f} | | | |"]
    finally:
        ours.close()
        theirs.close()


def records(n: int) -> dict[str, list]:
    def lines(path: Path) -> list[dict]:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return [json.loads(line) for _, line in zip(range(n), handle)]

    squad = json.load(gzip.open(DATA / "squad" / "dev-v1.1.json.gz", "rt", encoding="utf-8"))["data"]
    questions = [{"question": qa["question"], "context": paragraph["context"]}
                 for article in squad for paragraph in article["paragraphs"] for qa in paragraph["qas"]][:n]
    return {"long": [r["text"] for r in lines(DATA / "imdb" / "test.jsonl.gz")],
            "short": [r["text"] for r in lines(DATA / "uci_sentiment_sentences" / "yelp.jsonl.gz")],
            "qa": questions}


def encoder_flops(shape: dict, tokens: int) -> float:
    """FLOPs of one sequence through a DistilBERT encoder: per layer the four d x d projections and the two
    feed-forward products (2 per multiply-add), and the two T x T x d attention products."""
    d, hidden, T = shape["dim"], shape["hidden_dim"], tokens
    return shape["n_layers"] * (2.0 * T * (4 * d * d + 2 * d * hidden) + 4.0 * T * T * d)


def workload_flops(shape: dict, folder: str, task: str, records: list) -> float:
    """The FLOPs a workload's real tokens cost, padding excluded: classify reads up to 512 positions of each
    text, qa each question-context window of QA_LENGTH sharing QA_STRIDE."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
    if task == "classify":
        tokenizer.enable_truncation(512)
        return sum(encoder_flops(shape, len(tokenizer.encode(text).ids)) for text in records)
    tokenizer.enable_truncation(QA_LENGTH, stride=QA_STRIDE, strategy="only_second")
    total = 0.0
    for item in records:
        first = tokenizer.encode(item["question"], item["context"])
        total += sum(encoder_flops(shape, len(window.ids)) for window in (first, *first.overflowing))
    return total


def bound_cell(flops: float, count: int, peer_speed: float, peak: float) -> str:
    """The peer's useful GFLOP/s (real tokens only) and what issue 21's 1.5x asks of the GEMM peak."""
    peer_rate = flops / count * peer_speed / 1e9
    return f"{peer_rate:,.0f} of {peak:,.0f}; {needed(1.5, peer_rate, peak)}"


def batched_turns(ours: Contender, theirs: Contender, method: str, texts: list[str],
                  repeats: int) -> tuple[dict[str, float], list, list]:
    """Texts per second of ours ("ours") and of theirs at batch 1 and 8 ("b1", "b8"), medians of ``repeats``
    turns, and each side's last outputs (theirs at batch 1: each text on its own); "peak": the GEMM peak's
    GFLOP/s, timed in each turn."""
    seconds: dict[str, list[float]] = {"ours": [], "b1": [], "b8": []}
    peaks = []
    for _ in range(repeats):
        mine, took = ours.call(method, texts=texts)
        seconds["ours"].append(took)
        for batch in (8, 1):
            their_outputs, took = theirs.call(method, texts=texts, batch=batch)
            seconds[f"b{batch}"].append(took)
        peaks.append(ours.call("gemm_rate"))
    speed = {key: len(texts) / statistics.median(value) for key, value in seconds.items()}
    return {**speed, "peak": statistics.median(peaks)}, mine, their_outputs


def bench_shape(name: str, shape: dict, data: dict, args: argparse.Namespace, workdir: Path) -> list[str]:
    ours, theirs = Contender(Ours, args.threads), Contender(Theirs, args.threads)
    rows = []
    try:
        vocab = vocabulary(shape["vocab_size"])
        folders = {task: str(workdir / f"{name}-{task}") for task in ("classify", "qa")}
        for task, folder in folders.items():
            theirs.call("make", folder=folder, shape=shape, head=task, vocab=vocab)
            ours.call("load", task=task, folder=folder)
            theirs.call("load", task=task, folder=folder)
        for kind in ("short", "long"):
            texts = data[kind]
            ours.call("classify", texts=texts[:4])  # warm-up
            for batch in (1, 8):
                theirs.call("classify", texts=texts[:8], batch=batch)
            speed, labels, theirs_labels = batched_turns(ours, theirs, "classify", texts, args.repeats)
            peer = max(speed["b1"], speed["b8"])
            bound = bound_cell(workload_flops(shape, folders["classify"], "classify", texts), len(texts), peer,
                               speed["peak"])
            rows.append(f"| {name} | classify {kind} ({len(texts)} texts) | {speed['ours']:,.1f} |"
                        f" {speed['b1']:,.1f} / {speed['b8']:,.1f} | **{speed['ours'] / peer:.2f}** |"
                        f" {sum(a == b for a, b in zip(labels, theirs_labels))}/{len(texts)} | {bound} |")
        items = data["qa"]
        ours.call("qa", items=items[:2])
        theirs.call("qa", items=items[:2])
        seconds = {"ours": [], "theirs": []}
        peaks = []
        for _ in range(args.repeats):
            mine, took = ours.call("qa", items=items)
            seconds["ours"].append(took)
            their_spans, took = theirs.call("qa", items=items)
            seconds["theirs"].append(took)
            peaks.append(ours.call("gemm_rate"))
        speed = {key: len(items) / statistics.median(value) for key, value in seconds.items()}
        same = sum(tuple(a) == tuple(b) for a, b in zip(mine, their_spans))
        bound = bound_cell(workload_flops(shape, folders["qa"], "qa", items), len(items), speed["theirs"],
                           statistics.median(peaks))
        rows.append(f"| {name} | qa ({len(items)} SQuAD dev questions) | {speed['ours']:,.1f} |"
                    f" {speed['theirs']:,.1f} | **{speed['ours'] / speed['theirs']:.2f}** | {same}/{len(items)} |"
                    f" {bound} |")
        rows.append(f"| {name} | peak memory, MB (ours / theirs) | {ours.call('peak'):,.0f} | {theirs.call('peak'):,.0f}"
                    f" | | | |")
        print(theirs.call("versions"), file=sys.stderr)
    finally:
        ours.close()
        theirs.close()
    return rows


THEIR_FIRST_TOKEN = """
import sys
from transformers import AutoModelForCausalLM, AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
model = AutoModelForCausalLM.from_pretrained(sys.argv[1]).eval()
ids = tokenizer("The history of the city", return_tensors="pt")
print(model.generate(**ids, max_new_tokens=1, do_sample=False, pad_token_id=tokenizer.eos_token_id)[0, -1].item())
"""


def startup(args: argparse.Namespace, workdir: Path) -> list[str]:
    """Seconds from launch to the first token of a GPT-2 small checkpoint, ours and theirs (fresh processes)."""
    import subprocess

    folder = workdir / "gpt2-small"
    subprocess.run([sys.executable, "-c", MAKE_GPT2, str(folder), str(DATA / "wikitext2" / "train.txt.gz")],
                   check=True, capture_output=True)
    commands = {"ours": [sys.executable, "-c", "from toolkit.cli import cli; cli()", "generate", "-m", str(folder),
                         "The history of the city", "--max-tokens", "1", "-q", "--temperature", "0"],
                "theirs": [sys.executable, "-c", THEIR_FIRST_TOKEN, str(folder)]}
    environment = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "OPENBLAS_NUM_THREADS": str(args.threads),
                   "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_OFFLINE": "1"}
    seconds: dict[str, list[float]] = {side: [] for side in commands}
    for _ in range(args.repeats):
        for side, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env=environment)
            seconds[side].append(time.perf_counter() - start)
    best = {side: min(values) for side, values in seconds.items()}
    return [f"| GPT-2 small (124M) | launch to first token, s | {best['ours']:.2f} | {best['theirs']:.2f} |"
            f" **{best['theirs'] / best['ours']:.2f}** | (target: ours <= 2 s) | |"]


MAKE_GPT2 = """
import gzip, sys
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
folder, corpus = sys.argv[1], sys.argv[2]
tokenizer = Tokenizer(models.BPE())
tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tokenizer.decoder = decoders.ByteLevel()
lines = gzip.open(corpus, "rt", encoding="utf-8").read().splitlines()
tokenizer.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=50257, special_tokens=["<|endoftext|>"],
                                                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
eos = tokenizer.token_to_id("<|endoftext|>")
PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>").save_pretrained(folder)
config = GPT2Config(vocab_size=50257, bos_token_id=eos, eos_token_id=eos)
GPT2LMHeadModel(config).save_pretrained(folder, safe_serialization=True)
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--records", type=int, default=64, help="texts and questions per workload (default 64)")
    p.add_argument("--sentences", type=int, default=48, help="Multi30k test sentences to translate (default 48)")
    p.add_argument("--repeats", type=int, default=3)
    for part in (*SHAPES, "bert", "marian", "startup"):
        p.add_argument(f"--skip-{part}", action="store_true")
    args = p.parse_args()
    data = records(args.records)
    print(f"BERT-family checkpoints (DistilBERT layout, random weights), {args.threads} threads each side, median of"
          f" {args.repeats} runs, turn by turn; theirs: transformers + PyTorch at batch 1 / batch 8 for classify (the"
          " ratio is against the faster), a question's windows in one batch for qa")
    print()
    print("| shape | workload | ours /s | theirs /s | ours / theirs | same answers |"
          " theirs' GFLOP/s of the GEMM peak; the limit |")
    print("|---|---|---:|---:|---:|---|---|")
    with tempfile.TemporaryDirectory() as workdir:
        for name, shape in SHAPES.items():
            if not getattr(args, f"skip_{name}") and not args.skip_bert:
                for row in bench_shape(name, shape, data, args, Path(workdir)):
                    print(row, flush=True)
        if not args.skip_marian:
            with gzip.open(DATA / "multi30k" / "test2016.en.gz", "rt", encoding="utf-8") as handle:
                sentences = [line.strip() for _, line in zip(range(args.sentences), handle)]
            for name, shape in MARIAN.items():
                if not getattr(args, f"skip_{name}"):
                    for row in bench_marian(name, shape, sentences, args, Path(workdir)):
                        print(row, flush=True)
        if not args.skip_startup:
            for row in startup(args, Path(workdir)):
                print(row, flush=True)


if __name__ == "__main__":
    main()
