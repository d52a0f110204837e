"""The dual encoder of the retrieval engine: the conversation's last turns and a candidate response, each made
a unit vector; a response's score is the cosine of the two.

Both sides share the article's text CNN as their tower (word ids ->
Embedding -> Conv1D(ReLU) -> GlobalMaxPool1D, the fused kernel), and each
has a dense head of its own: a reply is not a paraphrase of what it answers,
so the two sides must be free to map words differently. Training takes a
batch of (context, response) pairs and scores every context against every
response of the batch: softmax cross-entropy picks the true response of
each context among the batch's, and the true context of each response
(in-batch negatives, as in ConveRT and the dual encoders after it). The
cosines are multiplied by ``scale`` first, or their spread (at most 2) would
keep the softmax nearly flat.

A model file holds the three parts' weights (``0.`` the tower, ``1.`` the
context head, ``2.`` the response head), the tokenizer and the sizes in its
metadata, and, as text arrays, the responses of its training dialogues: the
replies of the engine when no ``--corpus`` is given. Encoding the shipped
model's 63,000 responses takes seconds, so the vectors of a model's
responses are kept in the cache folder (:func:`toolkit.files.cache_dir`)
for the next run: the first reply of a conversation then waits for none.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from toolkit.errors import ModelFileError
from toolkit.nn import Layer

if TYPE_CHECKING:
    from toolkit.nn.trainer import History

    from toolkit_plugins.chat.ranking import Exchange
    from toolkit.text import WordTokenizer

WIDTH = 3  # words a filter sees: short turns ("Thank you .") must fill at least one window
ENCODE_BATCH = 256
EPS = 1e-6
RESPONSES = ("responses.text", "responses.ends")
CACHE_FOLDER = "chat-retrieval"


class Parts(Layer):
    """The tower and the two heads as one layer, so that the optimizer, the trainer and the checkpoints see
    every parameter (paths ``0.``, ``1.``, ``2.``)."""

    def __init__(self, tower: Layer, context: Layer, response: Layer) -> None:
        super().__init__()
        self.parts = [tower, context, response]

    def children(self) -> list[Layer]:
        return self.parts


def build_parts(vocab_size: int, settings: dict[str, Any], seed: int) -> Parts:
    import toolkit.nn as nn

    filters, dim = settings["filters"], settings["dim"]
    tower: list[Layer] = [nn.Embedding(vocab_size, settings["embedding"], padding_idx=0, seed=seed),
                          nn.Conv1D(settings["embedding"], filters, WIDTH, activation="relu", seed=seed + 1),
                          nn.GlobalMaxPool1D()]
    if settings["dropout"]:
        tower.append(nn.Dropout(settings["dropout"], seed=seed + 2))
    return Parts(nn.Sequential(tower), nn.Dense(filters, dim, seed=seed + 3), nn.Dense(filters, dim, seed=seed + 4))


class DualEncoder:
    """A tokenizer and the :class:`Parts`; contexts are the last ``context_turns`` turns, of which the last
    ``context_words`` words are read, and a response's first ``response_words``."""

    #: The SHA-256 of the model file's config (which covers its arrays' digests) it was read from; None for an
    #: encoder not read from a file, whose vectors are never cached.
    digest: str | None = None

    def __init__(self, tokenizer: WordTokenizer, parts: Parts, context_turns: int, context_words: int,
                 response_words: int, scale: float) -> None:
        self.tokenizer, self.parts = tokenizer, parts
        self.context_turns, self.context_words, self.response_words = context_turns, context_words, response_words
        self.scale = scale

    # -- inputs -------------------------------------------------------------------

    def context_text(self, turns: Sequence[str]) -> str:
        return " ".join(turns[-self.context_turns:])

    def context_ids(self, histories: Sequence[Sequence[str]]) -> list[list[int]]:
        return [ids[-self.context_words:] for ids in
                self.tokenizer.texts_to_sequences([self.context_text(turns) for turns in histories])]

    def response_ids(self, responses: Sequence[str]) -> list[list[int]]:
        return [ids[:self.response_words] for ids in self.tokenizer.texts_to_sequences(responses)]

    # -- encoding -----------------------------------------------------------------

    def _encode(self, sequences: Sequence[list[int]], side: int, train: bool = False) -> tuple[np.ndarray, Any]:
        """The unit vectors of ``sequences`` through the tower and head ``side`` (1: context, 2: response),
        and their backprop."""
        from toolkit.text import pad_sequences

        tower, head = self.parts.parts[0], self.parts.parts[side]
        # At least WIDTH padding ids after every text: each then has its windows that run off its end and one
        # of padding alone, and more padding only repeats that one, so a text's vector does not depend on the
        # longest text of its batch.
        width = max(map(len, sequences), default=0) + WIDTH
        pooled, back_tower = tower.forward(pad_sequences(sequences, maxlen=width, padding="post"), train)
        z, back_head = head.forward(pooled, train)
        norm = np.sqrt((z * z).sum(axis=1, keepdims=True)) + np.float32(EPS)
        u = z / norm

        def backprop(du: np.ndarray) -> None:
            back_tower(back_head((du - u * (u * du).sum(axis=1, keepdims=True)) / norm))

        return u, backprop

    def encode(self, sequences: Sequence[list[int]], side: int) -> np.ndarray:
        """:meth:`_encode` at inference, in batches of texts of about the same length (padding is work)."""
        out = np.zeros((len(sequences), self.parts.parts[side].out_features), dtype=np.float32)
        order = np.argsort([len(ids) for ids in sequences], kind="stable")
        for start in range(0, len(order), ENCODE_BATCH):
            rows = order[start:start + ENCODE_BATCH]
            out[rows] = self._encode([sequences[i] for i in rows], side)[0]
        return out

    def encode_contexts(self, histories: Sequence[Sequence[str]]) -> np.ndarray:
        return self.encode(self.context_ids(histories), 1)

    def encode_responses(self, responses: Sequence[str]) -> np.ndarray:
        return self.encode(self.response_ids(responses), 2)

    def response_vectors(self, responses: Sequence[str]) -> np.ndarray:
        """The vectors of ``responses`` as the replies are scored with them: rounded to float16 (as the cache
        keeps them, so that a reply does not depend on where they came from), read from the cache when an
        earlier run left them there, else encoded and cached. A damaged cache file is encoded anew; one that
        cannot be written costs the next run the time, never this one its reply."""
        import hashlib

        from toolkit.errors import NlpToolError
        from toolkit.files import cache_dir
        from toolkit.nn import read_model_file, save_arrays

        if self.digest is None:
            return self.encode_responses(responses).astype(np.float16)
        key = hashlib.sha256(f"{self.digest}\0".encode() + "\0".join(responses).encode()).hexdigest()
        path = cache_dir() / CACHE_FOLDER / f"{key}.nlpt"
        shape = (len(responses), self.parts.parts[2].out_features)
        if path.is_file():
            try:
                cached = read_model_file(path)[1].get("vectors")
            except (NlpToolError, OSError):
                cached = None
            if cached is not None and cached.shape == shape and cached.dtype == np.float16:
                return cached
        vectors = self.encode_responses(responses).astype(np.float16)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_arrays(path, {"vectors": vectors}, {"kind": "chat retrieval response vectors",
                                                     "responses": len(responses)})
        except (OSError, ValueError):
            pass
        return vectors

    def rank(self, found: Sequence[Exchange]) -> dict:
        """Recall@1 among 10 and MRR (:func:`toolkit_plugins.chat.ranking.rank`) of the true responses of
        ``found``, scored by this encoder against the turns before each."""
        from toolkit_plugins.chat.ranking import rank

        contexts = self.encode_contexts([exchange.history for exchange in found])
        vectors = self.encode_responses([exchange.response for exchange in found])
        return rank(found, lambda n, candidates: vectors[candidates] @ contexts[n])

    def train_step(self, contexts: Sequence[list[int]], responses: Sequence[list[int]]) -> float:
        """Forward and backward on a batch of pairs, each response the true one of its context and a negative
        of every other; the gradients accumulate in the parts. Return the loss (both directions' mean)."""
        from toolkit.nn import softmax_cross_entropy

        c, back_c = self._encode(contexts, 1, train=True)
        r, back_r = self._encode(responses, 2, train=True)
        logits = np.float32(self.scale) * (c @ r.T)
        targets = np.arange(len(contexts))
        by_context, grad_c = softmax_cross_entropy(logits, targets)
        by_response, grad_r = softmax_cross_entropy(logits.T, targets)
        grad = (grad_c + grad_r.T) * np.float32(self.scale / 2)
        back_c(grad @ r)
        back_r(grad.T @ c)
        return (by_context + by_response) / 2

    # -- model files --------------------------------------------------------------

    def to_metadata(self) -> dict:
        return {"parts": [part.to_config() for part in self.parts.parts], "tokenizer": self.tokenizer.to_config(),
                "context_turns": self.context_turns, "context_words": self.context_words,
                "response_words": self.response_words, "scale": self.scale}

    def to_arrays(self, dtype: type = np.float16) -> dict[str, np.ndarray]:
        return {name: value.astype(dtype) for name, value, _ in self.parts.named_parameters()}

    @classmethod
    def from_arrays(cls, meta: dict, arrays: dict[str, np.ndarray]) -> DualEncoder:
        """Rebuild from a model file's ``dual_encoder`` metadata and arrays; ValueError, TypeError or KeyError
        for numbers that do not make one, found before anything is built."""
        from toolkit.nn.layer_configs import MAX_LEN, check_size, layer_from_arrays
        from toolkit.text import WordTokenizer

        configs = meta["parts"]
        if not isinstance(configs, list) or len(configs) != 3:
            raise ValueError("a dual encoder has three parts: the tower and two heads")
        sizes = {key: check_size("the dual encoder", key, meta[key], 1, MAX_LEN)
                 for key in ("context_turns", "context_words", "response_words")}
        scale = meta["scale"]
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < 1e4:
            raise ValueError(f"the dual encoder's scale must be a number above 0 and below 10000, not {scale!r}")
        parts = Parts(*(layer_from_arrays(config, arrays, f"{i}.") for i, config in enumerate(configs)))
        return cls(WordTokenizer.from_config(meta["tokenizer"]), parts, scale=float(scale), **sizes)


def read_dual_encoder(path: str) -> tuple[DualEncoder, list[str], dict]:
    """The dual encoder of the model file ``path``, the responses it carries and the file's metadata;
    ModelFileError for a file that holds no usable dual encoder."""
    from toolkit.nn import read_model_file, texts_from_arrays

    config, arrays = read_model_file(path)
    metadata = config.get("metadata", {})
    try:
        encoder = DualEncoder.from_arrays(metadata["dual_encoder"], arrays)
        encoder.digest = config["config_sha256"]
        responses = texts_from_arrays(*(arrays[name] for name in RESPONSES)) if RESPONSES[0] in arrays else []
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: not a usable dual encoder ({type(error).__name__}: {error})") from None
    return encoder, responses, metadata


# -- training ---------------------------------------------------------------------


def fit_dual_encoder(dialogues: list[list[str]], valid: list[list[str]] | None, settings: dict[str, Any],
                     output: str, seed: int, progress: bool | None) -> tuple[DualEncoder, History]:
    """Train a dual encoder on the (context, response) pairs of ``dialogues`` (or go on from the checkpoint
    with ``resume``); with ``valid`` the epoch of the best Recall@1 among 10 on it is kept."""
    import toolkit.nn as nn
    from toolkit.text import WordTokenizer
    from toolkit.training import make_trainer, resumed

    from toolkit_plugins.chat.ranking import exchanges

    saved = resumed(settings, output, seed)
    if saved is None:
        tokenizer = WordTokenizer(num_words=settings["vocab_size"]).fit(turn for turns in dialogues for turn in turns)
    else:
        tokenizer = WordTokenizer.from_config(saved.setup["tokenizer"])
    encoder = DualEncoder(tokenizer, build_parts(tokenizer.vocab_size, settings, seed), settings["context_turns"],
                          settings["context_words"], settings["response_words"], settings["scale"])
    pairs = [exchange for exchange in exchanges(dialogues) if exchange.response.strip()]
    contexts = encoder.context_ids([exchange.history for exchange in pairs])
    responses = encoder.response_ids([exchange.response for exchange in pairs])
    held = exchanges(valid) if valid else None

    def step(rows: np.ndarray) -> float:
        return encoder.train_step([contexts[i] for i in rows], [responses[i] for i in rows])

    def batches(epoch: int, rng: np.random.Generator) -> list[np.ndarray]:
        # Seeded by the epoch: a resumed run cuts the epoch it stopped in as it was cut before. A last batch
        # of one pair has no negative and is left out.
        order = np.random.default_rng([seed, epoch]).permutation(len(pairs))
        cut = [order[i:i + settings["batch"]] for i in range(0, len(order), settings["batch"])]
        return [rows for rows in cut if len(rows) > 1]

    def validate() -> dict[str, float]:
        return {"recall_at_1": encoder.rank(held)["recall_at_1"]}

    trainer = make_trainer(
        encoder.parts, nn.Adam(encoder.parts, settings["learning_rate"]), step, batches, settings, output, seed,
        progress, saved=saved, validate=validate if held else None, monitor="recall_at_1", mode="max",
        setup={"tokenizer": tokenizer.to_config()}, throughput=("pairs", len),
    )
    return encoder, trainer.run()


def train_dual_encoder(engine_class: type, dialogues: list[list[str]], valid: list[list[str]] | None,
                       settings: dict[str, Any], output: str, seed: int, progress: bool | None) -> dict:
    """Train the dual encoder of ``engine_class`` and write its model file: the weights as float16, the
    encoder's metadata, the responses of ``dialogues`` (each once) when ``keep_responses``, and the model
    header with the best epoch's Recall@1 on ``valid`` as its metric. Return the report."""
    from toolkit.nn import save_arrays, text_arrays
    from toolkit.training import best_scores, history_report, model_header

    start = time.perf_counter()
    encoder, history = fit_dual_encoder(dialogues, valid, settings, output, seed, progress)
    seconds = time.perf_counter() - start
    arrays = encoder.to_arrays()
    bank: list[str] = []
    if settings["keep_responses"]:
        bank = list(dict.fromkeys(turn.strip() for turns in dialogues for turn in turns[1:] if turn.strip()))
        arrays.update(zip(RESPONSES, text_arrays(bank)))
    metadata = model_header(engine_class, output, settings, seed, texts=[turn for turns in dialogues for turn in turns],
                            records=len(dialogues),
                            valid_records=len(valid) if valid else None, seconds=seconds, **history_report(history))
    metadata["dual_encoder"] = encoder.to_metadata()
    metadata["responses"] = len(bank)
    metrics = best_scores(history)
    if metrics is not None:
        metadata["metrics"] = metrics
    save_arrays(output, arrays, metadata)
    report = {"engine": f"{engine_class.task}:{engine_class.name}", "model": str(output), "name": metadata["name"],
              "records": len(dialogues), "responses": len(bank), "seconds": round(seconds, 2),
              **history_report(history)}
    if "metrics" in metadata:
        report["metrics"] = metadata["metrics"]
    return report
