"""The "transformer" generation engine: a GPT-2-layout language model trained here, prompts in, text out.

Each input is a prompt; the result is its continuation. All prompts of a
batch (times ``samples``) decode together on one key/value cache; each
sample draws from its own generator, seeded by ``seed`` and its number, so
a prompt's text depends on the seed and the options, not on its batch.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar, Iterator

from toolkit.contracts import TaskContract
from toolkit.engine import Engine, LoadsModel, Option, train_settings
from toolkit.errors import OptionError
from toolkit.lm.options import SAMPLING_OPTIONS, sample_rng, sampling, train_options

TASK, ENGINE = "generate", "transformer"
MODEL_DIR = Path(__file__).resolve().parent / "models"
TRAINING_SCRIPT = "scripts/train_default_generator.py"
FINISH_REASONS = ("length", "stop", "end")


def _check_result(item: Any, result: dict) -> str | None:
    if result["finish"] not in FINISH_REASONS:
        return f"finish is {result['finish']!r}, not one of {', '.join(FINISH_REASONS)}"
    return None


CONTRACT = TaskContract(
    task=TASK,
    inputs="text",
    description="Continuation of a prompt by a language model.",
    results={"text": "str", "prompt_tokens": "int", "tokens": "int", "finish": "str"},
    options={
        **SAMPLING_OPTIONS,
        "stop": Option(str, (), "End the text where this string appears, without it (repeatable).",
                       multiple=True),
        "samples": Option(int, 1, "Texts per prompt (with different draws; listed under 'samples').", minimum=1,
                          maximum=64, aliases=("-n",)),
        "logprobs": Option(bool, False, "List each generated token with its log-probability under the model."),
    },
    check=_check_result,
    arguments="texts",
)


class TransformerGenerator(LoadsModel, Engine):
    """Text generation with a decoder-only transformer on the compiled kernels."""

    task = TASK
    name = ENGINE
    description = "GPT-style transformer language model (sampling, KV cache), trainable on plain text."
    version = "1.0"
    inputs = "text"
    contract = CONTRACT
    options = {
        **CONTRACT.options,
        "continuous_cache": Option(
            bool, False, "Draw tokens from the model mixed with its continuous cache (a model trained with one), the"
            " probabilities `evaluate` scores. Off by default: fed its own samples, the cache makes them repeat"
            " themselves (benchmarks/cache_repetition.py)."),
    }
    record_fields: ClassVar[tuple[str, ...]] = ("text",)
    train_options: ClassVar[dict[str, Option]] = train_options(epochs=10, patience=2, continuous_cache=True)
    default_model = str(MODEL_DIR / "wikitext2.nlpt")
    default_model_hint = (f"train it with `python {TRAINING_SCRIPT}`, or pass --model FILE, a GPT-2 checkpoint folder"
                          " or a GPT-2 model id in the local Hugging Face cache")
    takes_model = True
    checkpoint_types = ("gpt2",)

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        if self.settings["samples"] > 1 and self.settings["temperature"] == 0:
            raise OptionError("several samples of greedy decoding (temperature 0) would all be the same text;"
                              " give a temperature above 0")
        folder = self.checkpoint_folder()
        if folder is None and self.model is not None and Path(self.model).is_file():
            metadata = self.model_metadata()  # refuses a model of another task now, not at the first input
            if self.settings["continuous_cache"] and metadata.get("continuous_cache") is None:
                raise OptionError(f"--continuous-cache: the model {self.model} has no continuous cache (one is"
                                  " chosen when a model is trained with validation data); drop the option")
        elif folder is not None and self.settings["continuous_cache"]:
            raise OptionError("--continuous-cache: a GPT-2 checkpoint has no continuous cache; drop the option")

    def _load(self) -> tuple[Any, dict]:
        from toolkit.lm.generator import Generator

        folder = self.checkpoint_folder()
        if folder is not None:
            generator = Generator.from_pretrained(folder)
            config = generator.model.get_config()
            return generator, {"name": Path(self.model).name, "version": None, "checkpoint": str(folder),
                               "architecture": "gpt2", "context": config["max_len"]}
        self.model_metadata()
        return Generator.from_model_file(self.model)

    @property
    def generator(self) -> Any:
        """The loaded :class:`~toolkit.lm.generator.Generator`."""
        return self._loaded()[0]

    def loaded_metadata(self) -> dict:
        return self._loaded()[1]

    # -- generation ---------------------------------------------------------------

    def run(self, inputs: list) -> list[dict]:
        s = self.settings
        generator = self.generator
        prompts = generator.prompts(inputs, s["max_tokens"])
        n = s["samples"]
        rows = [p for p in prompts for _ in range(n)]
        samples = generator.generate(rows, sampling(s), s["max_tokens"],
                                     [sample_rng(s, k) for _ in prompts for k in range(n)], s["stop"],
                                     s["continuous_cache"])
        results = []
        for i, prompt in enumerate(prompts):
            own = [self._sample_result(sample) for sample in samples[i * n:(i + 1) * n]]
            result = {**own[0], "prompt_tokens": prompt.tokens}
            if prompt.cut:
                # Said, not hidden: the model read only the prompt's end.
                result["prompt_cut"] = prompt.cut
            if n > 1:
                result["samples"] = own
            results.append(result)
        return results

    def _sample_result(self, sample: Any) -> dict:
        result = {"text": sample.text, "tokens": len(sample.ids), "finish": sample.finish}
        if self.settings["logprobs"]:
            pieces = self.generator.vocab.pieces(sample.ids)
            result["logprobs"] = [{"token": piece, "logprob": round(lp, 4)}
                                  for piece, lp in zip(pieces, sample.logprobs)]
        return result

    def stream(self, text: str) -> Iterator[str]:
        """The first sample's text for the prompt ``text``, in pieces as they are generated."""
        s = self.settings
        generator = self.generator
        prompt = generator.prompts([text], s["max_tokens"])[0]
        yield from generator.stream(prompt, sampling(s), s["max_tokens"], sample_rng(s, 0), s["stop"],
                                    s["continuous_cache"])

    def format_text(self, result: dict) -> str:
        if "samples" in result:
            return "\n\n".join(sample["text"] for sample in result["samples"])
        return result["text"]

    # -- training and evaluation --------------------------------------------------

    @classmethod
    def read_data(cls, path: str, encoding: str = "utf-8") -> list[dict] | None:
        """A plain-text file's lines as records (blank lines too: each line ends a text); None for other files
        (CSV/TSV/JSONL with a text field)."""
        from toolkit.datasets import read_line_files
        from toolkit.lm.corpus import is_plain_text

        return read_line_files([path], ("text",), encoding) if is_plain_text(path) else None

    @classmethod
    def train(cls, records: list[dict], output: str, *, valid: list[dict] | None = None, seed: int = 0,
              progress: bool | None = None, **options: Any) -> dict:
        """Learn subwords and a language model from the texts of ``records``, or go on from the checkpoint
        with ``resume=True``; write one model file. ``valid`` picks the best epoch by its perplexity."""
        from toolkit.lm.training import texts_of, train_language_model

        settings = train_settings(cls, options)
        texts = texts_of(records, "training data")
        held = texts_of(valid, "validation data") if valid else None
        return train_language_model(cls, texts, held, settings, output, seed, progress)

    def evaluate(self, records: list[dict]) -> dict:
        """Perplexity of the model on the texts of ``records``: per token, per word and bits per byte."""
        from toolkit.lm.training import perplexities, texts_of

        texts = texts_of(records, "evaluation data")
        start = time.perf_counter()
        scores = perplexities(self.generator, texts)
        seconds = time.perf_counter() - start
        return {"engine": f"{TASK}:{ENGINE}", "model": self.model, "records": len(texts), **scores,
                "tokens_per_second": round(scores["tokens"] / seconds) if seconds else None}
