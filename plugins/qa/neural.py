"""The ``reader`` engine: the neural span reader of toolkit_plugins.qa.reader behind the common QA pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from toolkit_plugins.qa.common import ENCODERS, Job, QAEngine, Span
from toolkit.engine import LoadsModel, Option
from toolkit.training import trainer_options

if TYPE_CHECKING:
    import numpy as np

MODEL_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL_FILE = MODEL_DIR / "squad-reader.nlpt"
TRAINING_SCRIPT = "scripts/train_default_reader.py"
# Passages run through the network together.
CHUNK = 32


class ReaderEngine(LoadsModel, QAEngine):
    name = "reader"
    description = "Neural span reader (question-passage attention, start/end pointers) trained on SQuAD."
    default_model = str(DEFAULT_MODEL_FILE)
    default_model_hint = f"train it with `python {TRAINING_SCRIPT}`, pass --model FILE, or use --engine window (no model)"
    train_options: ClassVar[dict[str, Option]] = {
        **trainer_options(epochs=20),
        "batch": Option(int, 32, "Questions per training step.", minimum=1),
        "learning_rate": Option(float, 1e-3, "Peak Adam learning rate (after a linear warm-up).", minimum=0,
                                min_open=True),
        "dim": Option(int, 96, "Width of the reader's hidden layers.", minimum=1),
        "encoder": Option(str, "attention", "How passage and question are read: attention (convolution +"
                          " self-attention blocks) or gru (bidirectional GRUs, which need an even dim).",
                          choices=ENCODERS),
        "vocab_size": Option(int, 30000, "Largest word vocabulary (most frequent lower-cased words).", minimum=1),
        "dropout": Option(float, 0.1, "Dropout rate in training.", minimum=0, maximum=1, max_open=True),
        "word_vectors": Option(bool, False, "Start the word vectors from PPMI + SVD vectors of the training contexts"
                               " and questions (and of vector_texts), computed at the start of training, then"
                               " fine-tuned; otherwise they start random."),
        "vector_texts": Option(str, "", "Comma-separated unlabeled text files added to the text of word_vectors:"
                               " .jsonl (a text, article or context field per line) or .txt (a document per line),"
                               " either may be .gz."),
        "valid_limit": Option(int, 2000, "Validation questions scored after each epoch (0: all; it may change"
                              " when resuming).", minimum=0),
    }

    def __init__(self, model: str | None = None, **options: Any) -> None:
        from toolkit.nn import ModelFileError
        from toolkit.nn.layer_configs import MAX_LEN, check_size

        super().__init__(model, **options)
        meta = self.model_metadata()
        try:
            self.window = check_size("the reader's", "window", meta.get("window"), 1, MAX_LEN)
            self.overlap = check_size("the reader's", "overlap", meta.get("overlap"), 0, self.window - 1)
        except ValueError as error:
            raise ModelFileError(f"{self.model}: {error}") from None

    def _load(self) -> tuple[Any, Any, dict]:
        """(SpanReader, Featurizer, metadata) of the model file; ModelFileError for one that makes no reader."""
        from toolkit_plugins.qa.reader import Featurizer, SpanReader
        from toolkit.nn import ModelFileError, load_model

        model, meta = load_model(self.model)
        vocab = meta.get("vocab")
        if not isinstance(model, SpanReader):
            raise ModelFileError(f"{self.model}: the architecture is a {type(model).__name__}, not a SpanReader")
        if (not isinstance(vocab, list) or len(vocab) > model.config["vocab_size"]
                or not all(isinstance(word, str) for word in vocab)):
            raise ModelFileError(f"{self.model}: the vocabulary is not a list of at most"
                                 f" {model.config['vocab_size']} words")
        if self.window > model.config["max_len"]:
            raise ModelFileError(f"{self.model}: passages of {self.window} tokens, but the reader reads at most"
                                 f" {model.config['max_len']}")
        return model, Featurizer(vocab, model.config["char_buckets"]), meta

    def loaded_metadata(self) -> dict:
        return self._loaded()[2]

    @classmethod
    def train(cls, records: list[dict], output: str, *, valid: list[dict] | None = None, seed: int = 0,
              progress: bool | None = None, **options: Any) -> dict:
        """Fit the reader on ``records`` ({"question", "context", "answers"}); the best epoch on ``valid`` is kept."""
        from toolkit_plugins.qa.squad import to_examples
        from toolkit_plugins.qa.training import train_reader
        from toolkit.engine import train_settings

        settings = train_settings(cls, options)
        examples = to_examples(records)
        held = to_examples(valid, "validation data") if valid else None
        return train_reader(cls, examples, held, output, settings, seed, progress)

    def _candidates(self, jobs: list[Job]) -> list[list[Span]]:
        import numpy as np

        from toolkit.threads import serial_blas

        model, featurizer, _ = self._loaded()
        limit = model.config["max_question"]
        for job in jobs:
            if len(job.question_tokens) > limit:
                raise ValueError(f"the question has {len(job.question_tokens)} tokens; the reader reads at most {limit}")
        logits, owners = [], []
        # Each question's passages are read in batches of their own, with single-threaded BLAS: BLAS
        # kernels round a row of a product differently by the product's shape and the row's place in
        # it (OpenBLAS's Haswell kernels on an AMD Zen 5), and a threaded BLAS partitions products by
        # what else runs. Batched with other questions, or run beside another call, a question got
        # other answers than alone.
        with serial_blas:
            for j, job in enumerate(jobs):
                pairs = [(job.question_tokens, job.tokens[p.first : p.last]) for p in job.passages]
                for i in range(0, len(pairs), CHUNK):
                    chunk = pairs[i : i + CHUNK]
                    (s, e), _ = model.forward(featurizer.batch(chunk), train=False)
                    logits += [(s[b, : len(p)].astype(np.float64), e[b, : len(p)].astype(np.float64))
                               for b, (_, p) in enumerate(chunk)]
                    owners += [j] * len(chunk)
        results: list[list[Span]] = [[] for _ in jobs]
        per_job: list[list[int]] = [[] for _ in jobs]
        for k, j in enumerate(owners):
            per_job[j].append(k)
        keep = self.settings["top_k"] + 4
        for j, ks in enumerate(per_job):
            # One softmax over the start (end) positions of all the passages read:
            # span scores are then probabilities comparable across passages.
            norm_s = _logsumexp(np.concatenate([logits[k][0] for k in ks]))
            norm_e = _logsumexp(np.concatenate([logits[k][1] for k in ks]))
            for passage, k in zip(jobs[j].passages, ks):
                s, e = logits[k][0] - norm_s, logits[k][1] - norm_e
                results[j] += [Span(passage.first + a, passage.first + b, score)
                               for a, b, score in best_spans(s, e, self.settings["max_answer_tokens"], keep)]
        return results


def _logsumexp(x: np.ndarray) -> float:
    import numpy as np

    top = x.max()
    return float(top + np.log(np.exp(x - top).sum()))


def best_spans(start: np.ndarray, end: np.ndarray, max_tokens: int, count: int) -> list[tuple[int, int, float]]:
    """The ``count`` best (first, last, probability) spans with first <= last < first + max_tokens, from log-probabilities."""
    import numpy as np

    T = len(start)
    scores = start[:, None] + end[None, :]
    offsets = np.arange(T)[None, :] - np.arange(T)[:, None]
    scores[(offsets < 0) | (offsets >= max_tokens)] = -np.inf
    flat = scores.reshape(-1)
    count = min(count, T * min(T, max_tokens))
    top = np.argpartition(-flat, count - 1)[:count] if count < flat.size else np.arange(flat.size)
    top = top[np.argsort(-flat[top], kind="stable")]
    return [(int(i // T), int(i % T), float(np.exp(flat[i]))) for i in top if np.isfinite(flat[i])]
