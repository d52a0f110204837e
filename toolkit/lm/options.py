"""The options of the engines that run a language model (generate, chat): how they sample, and how they
train; and the sampler and generators the sampling options make."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from toolkit.engine import Option
from toolkit.training import trainer_options

if TYPE_CHECKING:
    import numpy as np

    from toolkit.nn.sampling import Sampling

SAMPLING_OPTIONS: dict[str, Option] = {
    "max_tokens": Option(int, 64, "Tokens to generate at most.", minimum=1, maximum=4096),
    "min_tokens": Option(int, 1, "Tokens to generate at least before the model may end the text (0: it may end"
                         " at once, leaving no text).", minimum=0, maximum=4096),
    "temperature": Option(float, 0.8, "Sampling temperature (0: greedy, the most probable token each time).",
                          minimum=0),
    "top_k": Option(int, 0, "Sample among the k most probable tokens only (0: all; 1: greedy).", minimum=0),
    "top_p": Option(float, 0.95, "Sample among the most probable tokens that together reach this probability"
                    " (1: all).", minimum=0, min_open=True, maximum=1),
    "repetition_penalty": Option(float, 1.0, "Above 1, tokens already in the prompt or the text become less"
                                 " likely (their log-probability is multiplied by it).", minimum=1),
    "seed": Option(int, 0, "Seed of the sampling: the same seed, prompt and options give the same text.",
                   minimum=0),
}


def train_options(epochs: int, patience: int, continuous_cache: bool = False) -> dict[str, Option]:
    """The train options of a language model on the shared trainer, with the engine's ``epochs`` and
    ``patience`` defaults; with ``continuous_cache`` for an engine that generates and scores text with one."""
    cache = {"continuous_cache": Option(
        bool, True, "After training, choose a continuous cache on the validation data (Grave et al. 2017: the"
        " words of the recent text made more likely, beyond the context), stored with the model: `evaluate`"
        " scores with it, `generate --continuous-cache` samples with it. None without validation data, or when"
        " it does not lower validation perplexity.")}
    return {**(cache if continuous_cache else {}),
        **trainer_options(epochs=epochs, patience=patience),
        "batch_blocks": Option(int, 16, "Blocks of --context-length tokens per batch.", minimum=1),
        "context_length": Option(int, 128, "Tokens the model reads at once (its positions).", minimum=8,
                                 maximum=4096),
        "learning_rate": Option(float, 1e-3, "Peak AdamW learning rate, reached after the warm-up, then decayed"
                                " linearly to zero over the epochs.", minimum=0, min_open=True),
        "warmup": Option(int, 500, "Warm-up steps.", minimum=1),
        "weight_decay": Option(float, 0.01, "AdamW weight decay.", minimum=0),
        "clip": Option(float, 1.0, "Gradient clipping: maximum global L2 norm.", minimum=0, min_open=True),
        "vocab_size": Option(int, 8000, "Subword vocabulary size.", minimum=8),
        "subword_model": Option(str, "unigram", "sentencepiece algorithm.", choices=("unigram", "bpe")),
        "symbols": Option(str, (), "A string kept as one token wherever it occurs (repeatable), e.g. <unk>.",
                          multiple=True),
        # The styles of toolkit.text.corpus_style, spelled out: importing it would compile its patterns at every
        # start of the command line.
        "text_style": Option(str, "auto", "How the training texts are written: plain, spaced (punctuation set"
                             " apart: Hi , Jim .) or wikitext (also city 's, role @-@ playing); the model reads"
                             " prompts in that style and writes plain text. auto: found from the texts.",
                             choices=("auto", "plain", "spaced", "wikitext")),
        "dim": Option(int, 256, "Model width.", minimum=1),
        "heads": Option(int, 4, "Attention heads.", minimum=1),
        "layers": Option(int, 4, "Transformer blocks.", minimum=1),
        "ffn": Option(int, 1024, "Feed-forward inner width.", minimum=1),
        "dropout": Option(float, 0.1, "Dropout rate.", minimum=0, maximum=1, max_open=True),
    }


def sampling(settings: dict[str, Any]) -> Sampling:
    """The sampler of an engine's ``settings`` (its sampling options)."""
    from toolkit.nn.sampling import Sampling

    return Sampling(settings["temperature"], settings["top_k"], settings["top_p"], settings["repetition_penalty"],
                    settings["min_tokens"])


def sample_rng(settings: dict[str, Any], sample: int) -> np.random.Generator:
    """The generator of sample number ``sample`` under the ``seed`` of ``settings``: each sample draws from its
    own, so that a text does not depend on what is decoded beside it."""
    import numpy as np

    return np.random.default_rng([settings["seed"], sample])
