"""The "transformer" translation engine: language pairs from installed model files, text in, text out.

Each model file translates one pair (its metadata says which). Without
``--model`` the engine picks the installed model of the pair asked for and,
when there is none, says which pairs are installed. Inputs are split into
paragraphs (blank lines) and sentences; all sentences of a batch are
translated together and put back in place, paragraph breaks kept.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, ClassVar

from toolkit.contracts import TaskContract
from toolkit.engine import Engine, LoadsModel, Option, train_settings
from toolkit.errors import ModelMismatchError, ModelNotFoundError, OptionError
from toolkit.training import history_report, model_header, trainer_options

TASK, ENGINE = "translate", "transformer"
MODEL_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_PAIR = ("en", "de")
TRAINING_SCRIPT = "scripts/train_default_translator.py"
PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
LANGUAGE = re.compile(r"[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")


def installed_pairs() -> dict[tuple[str, str], Path]:
    """(source, target) -> model file, for the translation models installed in the plugin's model folder."""
    from toolkit.nn import read_metadata

    pairs: dict[tuple[str, str], Path] = {}
    for path in sorted(MODEL_DIR.glob("*.nlpt")):
        try:
            meta = read_metadata(path)
        except Exception:  # a broken file in the folder must not hide the good ones
            continue
        if meta.get("task") == TASK and meta.get("engine") == ENGINE:
            pairs.setdefault((meta.get("source"), meta.get("target")), path)
    return pairs


def _pair_list(pairs: dict[tuple[str, str], Path]) -> str:
    return ", ".join(f"{s}->{t}" for s, t in sorted(pairs)) or "none"


def _language_of_side(side: str, texts: list[str]) -> str:
    """The language of one side of the training pairs, when the identifier is sure of one for at least 80 % of
    a sample of its texts (toolkit.languages.training_languages); OptionError when it cannot tell."""
    from toolkit.languages import training_languages

    found = training_languages(texts, share=0.8)
    if not found:
        raise OptionError(f"cannot tell the {side} language of the pairs from their texts: give the pair with"
                          " --source CODE --target CODE")
    return found[0]


def _check_language(name: str, value: str) -> str:
    if value and not LANGUAGE.fullmatch(value):
        raise OptionError(f"option {name!r} must be a language code such as en or de, not {value!r}")
    return value


CONTRACT = TaskContract(
    task=TASK,
    inputs="text",
    description="Translation of a text, sentence by sentence, keeping its paragraphs.",
    results={"translation": "str", "score": "number", "sentences": "int"},
    options={
        "source": Option(str, "", "Source language code (default: the model's; en without --model).",
                         aliases=("--from",)),
        "target": Option(str, "", "Target language code (default: the model's; de without --model).",
                         aliases=("--to",)),
    },
)


class TranslationEngine(Engine):
    """What every translation engine shares: options, sentence splitting and reassembly, results, evaluation.

    A subclass loads (``_loaded()``) a
    :class:`~toolkit_plugins.translation.translator.Translator` and its
    metadata, which names the pair (``source``, ``target``).
    """

    task = TASK
    inputs = "text"
    contract = CONTRACT
    options = {
        **CONTRACT.options,
        "beam": Option(int, 4, "Beam size (1: greedy search, fastest).", minimum=1),
        "length_penalty": Option(float, 0.6, "Beam search length penalty alpha (0: none; larger: longer outputs).",
                                 minimum=0),
        "top_k": Option(int, 1, "Translations listed per input, best first (at most --beam).", minimum=1),
    }
    record_fields: ClassVar[tuple[str, ...]] = ("source", "target")
    line_file_flags: ClassVar[dict[str, str]] = {"src": "source", "ref": "target"}  # sacrebleu's words

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        for key in ("source", "target"):
            _check_language(key, self.settings[key])
        if self.settings["top_k"] > self.settings["beam"]:
            raise OptionError(f"option 'top_k' must be at most the beam size {self.settings['beam']},"
                              f" not {self.settings['top_k']}")

    def _check_pair(self, have: tuple[str | None, str | None], installed: str = "") -> None:
        """ModelMismatchError when --source/--target ask for another pair than the model's ``have``."""
        source, target = self.settings["source"], self.settings["target"]
        if (source and have[0] and source != have[0]) or (target and have[1] and target != have[1]):
            raise ModelMismatchError(f"{self.model} translates {have[0]}->{have[1]}, not {source or have[0]}->"
                                     f"{target or have[1]}{installed}")

    @property
    def translator(self) -> Any:
        """The loaded :class:`~toolkit_plugins.translation.translator.Translator` (network and vocabularies)."""
        return self._loaded()[0]

    def loaded_metadata(self) -> dict:
        return self._loaded()[1]

    def stamp(self) -> dict:
        meta = self._loaded()[1]
        return {**super().stamp(), "source": meta.get("source"), "target": meta.get("target")}

    # -- translation ---------------------------------------------------------

    def translate_sentences(self, sentences: list[str]) -> list[list[Any]]:
        """The top_k translations (text, score) of each sentence, with this engine's beam settings."""
        s = self.settings
        return self.translator.translate(sentences, s["beam"], s["length_penalty"], s["top_k"])

    def run(self, inputs: list) -> list[dict]:
        from toolkit.text.sentences import split_sentences

        layout: list[list[list[int]]] = []  # per input, per paragraph: indices into `sentences`
        sentences: list[str] = []
        for text in inputs:
            paragraphs = []
            for paragraph in PARAGRAPH_BREAK.split(text.strip()):
                found = [s.text for s in split_sentences(paragraph)]
                paragraphs.append(list(range(len(sentences), len(sentences) + len(found))))
                sentences += found
            layout.append([p for p in paragraphs if p])
        translated = self.translate_sentences(sentences) if sentences else []
        results = []
        for paragraphs in layout:
            ranks = max((len(translated[j]) for p in paragraphs for j in p), default=1)
            hypotheses = []
            for k in range(ranks):
                picks = [[translated[j][min(k, len(translated[j]) - 1)] for j in p] for p in paragraphs]
                hypotheses.append({
                    "translation": "\n\n".join(" ".join(t.text for t in p) for p in picks),
                    "score": round(sum(t.score for p in picks for t in p), 4),
                })
            result = {**hypotheses[0], "sentences": sum(map(len, paragraphs))}
            best = [translated[j][0] for p in paragraphs for j in p]
            if any(t.pieces > 1 or t.copied for t in best):
                # Said, not hidden: a sentence cut at the model's positions is translated part by part, and a
                # word longer than MAX_WORD_CHARS is copied as it is.
                result["pieces"] = sum(t.pieces for t in best)
                result["copied_words"] = sum(t.copied for t in best)
            if self.settings["top_k"] > 1:
                result["hypotheses"] = hypotheses
            results.append(result)
        return results

    def format_text(self, result: dict) -> str:
        return result["translation"]

    def evaluate(self, records: list[dict]) -> dict:
        """Corpus BLEU and chrF (sacrebleu, detokenized, cased) of this engine's translations of ``records``."""
        from toolkit_plugins.translation.batches import check_pairs
        from toolkit_plugins.translation.translator import score_corpus

        sources, references = check_pairs(records, "evaluation data")
        start = time.perf_counter()
        hypotheses = [result["translation"] for result in self.run(sources)]
        seconds = time.perf_counter() - start
        meta = self._loaded()[1]
        return {"engine": f"{self.task}:{self.name}", "model": self.model, "source": meta.get("source"),
                "target": meta.get("target"), "records": len(sources), "beam": self.settings["beam"],
                **score_corpus(hypotheses, references),
                "sentences_per_second": round(len(sources) / seconds, 1) if seconds else None}


class TransformerTranslator(LoadsModel, TranslationEngine):
    """Neural machine translation with a transformer encoder-decoder on the compiled kernels."""

    name = ENGINE
    description = "Transformer encoder-decoder translation (greedy or beam search), trainable on sentence pairs."
    version = "1.0"
    train_options: ClassVar[dict[str, Option]] = {
        **trainer_options(epochs=20),
        # The verb's names for the language codes; --src is evaluate's source-text file.
        "source": Option(str, "", "Source language code stored in the model (e.g. en; default: the language"
                         " the identifier finds in 80 % of the sources).", aliases=("--from",),
                         deprecated=("src",)),
        "target": Option(str, "", "Target language code stored in the model (e.g. de; default: as for"
                         " --source, from the targets).", aliases=("--to",),
                         deprecated=("tgt",)),
        "batch_tokens": Option(int, 3000, "Padded tokens per batch (sentences of similar length are batched).",
                               minimum=1),
        "learning_rate": Option(float, 1e-3, "Peak Adam learning rate, reached after the warm-up.", minimum=0,
                                min_open=True, deprecated=("lr",)),
        "warmup": Option(int, 800, "Warm-up steps (then the rate decays as 1/sqrt(step)).", minimum=1),
        "clip": Option(float, 1.0, "Gradient clipping: maximum global L2 norm.", minimum=0, min_open=True),
        "label_smoothing": Option(float, 0.1, "Label smoothing of the cross-entropy.", minimum=0, maximum=1,
                                  max_open=True),
        "vocab_size": Option(int, 8000, "Subword vocabulary size (per language unless shared).", minimum=1),
        "shared_vocab": Option(bool, True, "One subword vocabulary and embedding for both languages."),
        "subword_model": Option(str, "unigram", "sentencepiece algorithm.", choices=("unigram", "bpe")),
        "dim": Option(int, 256, "Model width.", minimum=1),
        "heads": Option(int, 4, "Attention heads.", minimum=1),
        "encoder_layers": Option(int, 3, "Encoder layers.", minimum=1),
        "decoder_layers": Option(int, 3, "Decoder layers.", minimum=1),
        "ffn": Option(int, 1024, "Feed-forward inner width.", minimum=1),
        "dropout": Option(float, 0.1, "Dropout rate.", minimum=0, maximum=1, max_open=True),
        "max_len": Option(int, 128, "Longest sentence in subwords (longer training pairs are skipped).", minimum=8),
    }
    default_model = str(MODEL_DIR / f"{DEFAULT_PAIR[0]}-{DEFAULT_PAIR[1]}.nlpt")

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        if model is None:
            source, target = self.settings["source"], self.settings["target"]
            self.model = str(self._installed_model(source or DEFAULT_PAIR[0], target or DEFAULT_PAIR[1]))
        meta = self.model_metadata()
        self._check_pair((meta.get("source"), meta.get("target")),
                         f" (installed pairs: {_pair_list(installed_pairs())})")

    @staticmethod
    def _installed_model(source: str, target: str) -> Path:
        pairs = installed_pairs()
        if (source, target) in pairs:
            return pairs[(source, target)]
        hint = (f"; train the default en->de model with `python {TRAINING_SCRIPT}`"
                if (source, target) == DEFAULT_PAIR else "")
        raise ModelNotFoundError(
            f"no installed translation model for {source}->{target} (installed pairs: {_pair_list(pairs)}){hint};"
            f" or pass --model FILE (train one with `nlp-tool train {TASK} PAIRS.tsv --src {source} --tgt {target}`)"
        )

    def _load(self) -> tuple[Any, dict]:
        """(Translator, metadata) of the model file."""
        from toolkit_plugins.translation.translator import Translator
        from toolkit.nn import ModelFileError, read_model_file

        config, arrays = read_model_file(self.model)
        try:
            translator = Translator.from_arrays(config["architecture"], arrays)
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"{self.model}: not a usable translation model ({error})") from None
        return translator, config.get("metadata", {})

    # -- training and evaluation -------------------------------------------

    @classmethod
    def train(cls, records: list[dict], output: str, *, valid: list[dict] | None = None, seed: int = 0,
              progress: bool | None = None, **options: Any) -> dict:
        """Learn subwords and a transformer from ``records`` ({"source", "target"}), or go on from the checkpoint
        with ``resume=True``; write one model file. ``valid`` picks the best epoch (without it nothing is held
        out). Ctrl-C raises :class:`~toolkit.nn.TrainingInterrupted` with the checkpoint kept and no model written."""
        import numpy as np

        from toolkit_plugins.translation.batches import check_pairs
        from toolkit_plugins.translation.trainer import fit_translator
        from toolkit.nn import save_arrays

        settings = train_settings(cls, options)
        for key in ("source", "target"):
            _check_language(key, settings[key])
        if settings["dim"] % settings["heads"]:
            # Checked here, before the data is read and subwords are learnt, rather than where the
            # network is built: a bad pair of options is a usage error, not a training failure.
            raise OptionError(f"dim {settings['dim']} is not divisible by heads {settings['heads']}: each attention"
                              " head takes dim / heads of the width; choose a --dim that is a multiple of --heads")
        sources, targets = check_pairs(records)
        for key, texts in (("source", sources), ("target", targets)):
            settings[key] = settings[key] or _language_of_side(key, texts)
        held = check_pairs(valid, "validation data") if valid else None
        start = time.perf_counter()
        translator, history, figures = fit_translator(sources, targets, held, settings, output, seed, progress)
        metrics = None
        if held is not None:
            from toolkit_plugins.translation.translator import score_corpus

            hypotheses = [t[0].text for t in translator.translate(held[0], beam=4)]
            metrics = {"records": len(held[0]), "beam": 4, **score_corpus(hypotheses, held[1])}
        seconds = time.perf_counter() - start
        metadata = model_header(cls, output, settings, seed, texts=sources, records=len(sources),
                                valid_records=len(held[0]) if held else None, seconds=seconds,
                                **history_report(history), **figures)
        metadata.update({
            "source": settings["source"], "target": settings["target"],
            "vocab": {"shared": translator.src_vocab is translator.tgt_vocab,
                      "source_pieces": len(translator.src_vocab), "target_pieces": len(translator.tgt_vocab),
                      "model": settings["subword_model"]},
            "metrics": metrics,
        })
        # float16 weights: half the file, no measurable loss (they are used as float32).
        save_arrays(output, translator.to_arrays(np.float16), metadata, architecture=translator.model.to_config())
        report = {"engine": f"{TASK}:{ENGINE}", "model": str(output), "name": metadata["name"],
                  "source": settings["source"], "target": settings["target"], "records": len(sources),
                  "seconds": round(seconds, 2), **history_report(history), **figures}
        if metrics is not None:
            report["metrics"] = metrics
        return report
