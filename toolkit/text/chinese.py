"""Chinese word segmentation for the tokenizer's ``cjk="jieba"`` mode, by jieba (imported on first use).

A model trained on jieba's words must get the same words when it predicts,
so the segmenter is a ``jieba.Tokenizer`` of its own with jieba's default
dictionary, never jieba's global one, which the program using us may have
changed (``jieba.load_userdict``, ``jieba.add_word``). Its dictionary is read
from the package (about 0.5 s, once per process) rather than from the
marshal cache jieba keeps in the shared temporary folder: that cache saves
almost nothing here, and a file anyone can write there is not one to
unmarshal.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_LOCK = threading.Lock()


@functools.cache
def _segmenter() -> Any:
    import logging
    import warnings

    try:
        with warnings.catch_warnings():
            # jieba 0.42 imports pkg_resources, which recent setuptools warns about on import.
            warnings.simplefilter("ignore")
            import jieba
    except ImportError:
        raise ImportError("cjk='jieba' segments Chinese words with jieba, which is not installed:"
                          " pip install jieba") from None
    # Without this, every process prints jieba's "Building prefix dict ..." lines on stderr.
    jieba.setLogLevel(logging.WARNING)
    segmenter = jieba.Tokenizer()
    with segmenter.get_dict_file() as words:
        segmenter.FREQ, segmenter.total = segmenter.gen_pfdict(words)
    segmenter.initialized = True
    return segmenter


def segment(run: str) -> list[str]:
    """The words of ``run``, a run of Chinese characters, by jieba's default dictionary and HMM."""
    with _LOCK:  # two threads' first calls must not build two dictionaries
        segmenter = _segmenter()
    return segmenter.lcut(run, HMM=True)
