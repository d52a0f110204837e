"""Language identification: the ISO 639-1 code of a text's language, or ``"und"`` when it cannot tell.

    >>> detect("Der Hund schläft im Garten.")
    'de'
    >>> detect_many(["Where is the station?", "这部电影太好看了", "12:30 !!"])
    ['en', 'zh', 'und']
    >>> ranked("Der Hund schläft im Garten.", k=2)   # doctest: +SKIP
    [('de', 0.958), ('lb', 0.033)]

The model is py3langid's (a maintained fork of langid.py: a naive Bayes
classifier over byte n-grams, 140 languages, shipped inside the package);
``benchmarks/language_id.py`` compares it with the other candidates and
docs/languages.md records why it was chosen. This module adds what the
library does not do, in this order:

1. ``"und"`` for text without a letter (empty, digits, punctuation, emoji):
   the library would still name a language for ``"12:30"``.
2. Only a bounded prefix is read (:data:`PREFIX_CHARS`), HTML tags taken
   out: the first sentence or two decide, and a review costs no more than a
   tweet.
3. Scripts written without spaces are decided by script, as the library
   would on clean text, but without being swayed by a few Latin words.
   Mixed-script policy: the script with the most letters wins. When
   Han/kana letters are the most, the text is Chinese, or Japanese if at
   least a tenth of them are kana (Chinese never writes kana; Japanese
   prose is about half kana); Hangul the most, Korean. Otherwise the
   CJK/Hangul letters are dropped and the model decides among the rest.
4. Codes: ISO 639-1 where one exists, including the macrolanguage it
   belongs to (Cantonese and Wu are reported as "zh", Egyptian Arabic as
   "ar"); ISO 639-3 for languages that have no two-letter code ("ext").
5. Speed: the model's own classify() walks each byte in Python and scores
   in float16, too slow for the budget of issue 24 (<= 5 % of a classify
   run). The same model is scored here with a tighter walk and one numpy
   product for a whole batch; tests check the results agree with
   py3langid's classify() on its own input.

py3langid (and numpy) are imported on first use only: ``nlp-tool --help``
must not pay for them. Loading the model takes about a second and 140 MB
(docs/languages.md).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable
from typing import Any

UNDETERMINED = "und"

#: How much of a text is read: the first this many characters (cut back to
#: the last space when one is near), after leading white space.
PREFIX_CHARS = 128

# Scripts with no spaces between words. Kana is apart from Han because it
# tells Japanese from Chinese; Hangul because Korean is its only language.
_HAN = "\u3005\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_KANA = "\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_HANGUL = "\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff\uffa0-\uffdc"
_HAN_RE = re.compile(f"[{_HAN}]")
_KANA_RE = re.compile(f"[{_KANA}]")
_HANGUL_RE = re.compile(f"[{_HANGUL}]")
_CJK_RE = re.compile(f"[{_HAN}{_KANA}{_HANGUL}]")
# A letter or a digit that is not a decimal digit (``\w`` minus ``\d`` and ``_``);
# the few non-letters it lets through (superscripts, vulgar fractions) are
# filtered by str.isalpha in _has_letter.
_LETTER_RE = re.compile(r"[^\W\d_]")
# HTML tags as toolkit.text.tokenizer finds them: "<" then a letter, "/" or "!--".
_TAG_RE = re.compile(r"<(?:/?[A-Za-z][^<>]*|!--.*?--)>", re.DOTALL)

# ISO 639-3 codes of the model mapped to the ISO 639-1 code of their
# macrolanguage (or their own two-letter code: kik is "ki"). "zxx" is the
# model's "no linguistic content".
_CODES = {
    "yue": "zh", "wuu": "zh", "ary": "ar", "arz": "ar", "gug": "gn", "uzs": "uz",
    "fuv": "ff", "sdh": "ku", "ltg": "lv", "kik": "ki", "zxx": UNDETERMINED,
}


def iso_code(label: str) -> str:
    """The code this module reports for one of the model's labels (``"yue"`` -> ``"zh"``)."""
    return _CODES.get(label, label)


def _check_text(text: Any, where: str = "") -> str:
    if not isinstance(text, str):
        raise TypeError(f"language detection takes a str{where}, not {type(text).__name__}"
                        f"{': decode bytes first' if isinstance(text, (bytes, bytearray)) else ''}")
    return text


def _prefix(text: str) -> str:
    if "<" in text:
        # Markup is no language: "<br />" alone is "und", not Scottish Gaelic.
        text = _TAG_RE.sub(" ", text[: 4 * PREFIX_CHARS])
    text = text.lstrip()
    if len(text) <= PREFIX_CHARS:
        return text
    cut = text.rfind(" ", PREFIX_CHARS // 2, PREFIX_CHARS)
    # A cut word would add n-grams of a word that is not in the text.
    return text[:cut if cut > 0 else PREFIX_CHARS]


def _has_letter(text: str) -> bool:
    match = _LETTER_RE.search(text)
    while match is not None:
        if match.group().isalpha():
            return True
        match = _LETTER_RE.search(text, match.end())
    return False


def _by_script(text: str) -> tuple[str | None, str]:
    """(code, "") when the script decides, else (None, the text the model should read)."""
    if text.isascii() or not _CJK_RE.search(text):
        return None, text
    han, kana = len(_HAN_RE.findall(text)), len(_KANA_RE.findall(text))
    hangul = len(_HANGUL_RE.findall(text))
    other = len(_LETTER_RE.findall(text)) - han - kana - hangul
    cjk = han + kana
    if cjk >= other and cjk >= hangul:
        return ("ja" if kana * 10 >= cjk else "zh"), ""
    if hangul > other:
        return "ko", ""
    return None, _CJK_RE.sub(" ", text)


def _encode(text: str) -> bytes:
    # As py3langid encodes its input: the model was trained on NFC text and
    # lower-cases text written all in capitals.
    if text.isupper():
        text = text.lower()
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return text.encode("utf-8", errors="surrogatepass")


# The rearranged model, kept in nlp-tool's cache (toolkit.files.cache_dir): unpacking py3langid's took a second
# and 160 MB at every start; mapped from this file it takes milliseconds, and only the weights' rows that a
# text's features read. Named after py3langid's version and this layout's.
CACHE_NAME = "language-id-{version}-1"
ARRAYS = ("walk_table", "start", "emits", "ptc", "pc", "codes", "pool_order", "pool_starts")


class _Model:
    """py3langid's model, rearranged for a faster walk and for scoring a batch at once."""

    def __init__(self) -> None:
        import numpy as np

        arrays = _cached_arrays()
        # A memoryview of uint32: indexing it from Python is faster than indexing numpy, and a mapped table is
        # not copied (the walk reads few of its pages).
        self.walk_table = memoryview(np.ascontiguousarray(arrays["walk_table"], dtype=np.uint32)).cast("B").cast("I")
        self.start, self.emits = int(arrays["start"]), arrays["emits"]
        self.ptc, self.pc, self.n_features = arrays["ptc"], arrays["pc"], arrays["ptc"].shape[0]
        self.codes = [str(code) for code in arrays["codes"]]
        self.pool_order, self.pool_starts = arrays["pool_order"], arrays["pool_starts"]

    def walk(self, data: bytes) -> list[int]:
        """The transitions taken over ``data``; this loop is most of the cost, so it does nothing else."""
        table, offset, taken = self.walk_table, self.start, []
        append = taken.append
        for byte in data:
            position = offset + byte
            offset = table[position]
            append(position)
        return taken

    def probabilities(self, texts: list[bytes]) -> Any:
        """(len(texts), len(self.codes)) probabilities."""
        import numpy as np

        taken: list[int] = []
        lengths = []
        for data in texts:
            steps = self.walk(data)
            taken.extend(steps)
            lengths.append(len(steps))
        features = self.emits[np.asarray(taken, dtype=np.int64)]
        doc = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        keep = features >= 0
        keys, counts = np.unique(doc[keep] * self.n_features + features[keep], return_counts=True)
        rows, feats = np.divmod(keys, self.n_features)
        # py3langid's score: the sum over features of log(1 + count) * the
        # feature's weight for the language, plus the language's prior. A
        # sparse product does it without copying a row of weights per feature.
        if len(texts) == 1:  # building a sparse matrix costs more than this
            scores = (self.ptc[feats] * np.log1p(counts.astype(np.float32))[:, None]).sum(axis=0, keepdims=True)
        else:
            from scipy.sparse import csr_matrix  # 0.1 s to import: not for one text

            x = csr_matrix((np.log1p(counts.astype(np.float32)), feats,
                            np.searchsorted(rows, np.arange(len(texts) + 1))), shape=(len(texts), self.n_features))
            scores = np.asarray(x @ self.ptc)
        scores += self.pc
        # py3langid's calibration: the temperature grows with the square root of the length.
        scores /= np.sqrt(np.maximum([len(t) for t in texts], 1)).astype(np.float32)[:, None]
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        return np.add.reduceat(scores[:, self.pool_order], self.pool_starts, axis=1)


def _rearranged() -> dict[str, Any]:
    """py3langid's model as :class:`_Model` reads it."""
    import numpy as np
    from py3langid.langid import MODEL_DIR, MODEL_FILE
    from py3langid.modelio import load_model

    ptc, pc, classes, nextmove, row, output = load_model(MODEL_DIR / MODEL_FILE)
    # The DFA: state s reads byte b into state nextmove[row[s] * 256 + b] and emits feature output[state] (-1 for
    # none). Stored here by transition instead of by state, the walk needs one look-up per byte: where each
    # transition leads (as the offset of its row) and what it emits.
    to_state = np.frombuffer(nextmove, dtype=np.dtype(nextmove.typecode))
    row_offset = np.frombuffer(row, dtype=np.dtype(row.typecode)).astype(np.uint32) << 8
    codes = [iso_code(label) for label in classes]
    unique = list(dict.fromkeys(codes))
    # Labels that share a code (yue/wuu/zh, and the model's own aliases such as two scripts of Serbian) pool
    # their probability: columns put side by side by code, then summed by runs. Not a product with a 0/1 matrix:
    # a BLAS call this small, its threads waking on a loaded machine, cost more than the rest of the scoring.
    code_of = np.array([unique.index(c) for c in codes])
    pool_order = np.argsort(code_of, kind="stable")
    # float32: products in float16 run at a tenth of the speed.
    return {"walk_table": row_offset[to_state], "start": np.int64(row_offset[0]),
            "emits": np.asarray(output, dtype=np.int32)[to_state], "ptc": ptc.astype(np.float32),
            "pc": pc.astype(np.float32), "codes": np.array(unique), "pool_order": pool_order,
            "pool_starts": np.flatnonzero(np.r_[True, np.diff(code_of[pool_order]) != 0])}


def _cached_arrays() -> dict[str, Any]:
    """:func:`_rearranged`, mapped from nlp-tool's cache when it is there (written there when it is not and can
    be: a folder of .npy files, which numpy maps where a .npz it would read whole)."""
    import importlib.metadata
    import os
    import shutil
    import tempfile

    import numpy as np

    from toolkit.files import cache_dir

    folder = cache_dir() / CACHE_NAME.format(version=importlib.metadata.version("py3langid"))
    try:
        return {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
    except (OSError, ValueError):
        pass
    arrays = _rearranged()
    temporary = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        temporary = tempfile.mkdtemp(dir=folder.parent)
        for name, value in arrays.items():
            np.save(os.path.join(temporary, f"{name}.npy"), value)
        os.rename(temporary, folder)  # whole, or not at all (another process may have put it there first)
    except OSError:  # a cache that cannot be written costs time, not results
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    return arrays


_model: _Model | None = None
_lock = threading.Lock()


def _get_model() -> _Model:
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                _model = _Model()
    return _model


def _ranked_many(texts: Iterable[str], k: int) -> list[list[tuple[str, float]]]:
    results: list[list[tuple[str, float]] | None] = []
    pending: list[tuple[int, bytes]] = []
    for i, text in enumerate(texts):
        part = _prefix(_check_text(text, f" (input {i})"))
        if not _has_letter(part):
            results.append([(UNDETERMINED, 1.0)])
            continue
        code, rest = _by_script(part)
        if code is not None:
            results.append([(code, 1.0)])
            continue
        results.append(None)
        pending.append((i, _encode(rest)))
    if pending:
        model = _get_model()
        probabilities = model.probabilities([data for _, data in pending])
        order = probabilities.argsort(axis=1)[:, ::-1][:, :k]
        for (i, _), best, row in zip(pending, order, probabilities):
            results[i] = [(model.codes[j], float(row[j])) for j in best]
    return results  # type: ignore[return-value]


def ranked_many(texts: Iterable[str], k: int = 3) -> list[list[tuple[str, float]]]:
    """For each text, its ``k`` likeliest languages with their probabilities, likeliest first.

    A text decided without the model (no letter: ``"und"``; Chinese,
    Japanese or Korean by script) has one entry, with probability 1.0.
    The probabilities are py3langid's calibrated ones, pooled by code.
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError("ranked_many takes a list of str; for one text use ranked()")
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    return _ranked_many(texts, k)


def ranked(text: str, k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` likeliest languages of ``text`` with their probabilities (see :func:`ranked_many`)."""
    return ranked_many([_check_text(text)], k)[0]


def detect_many(texts: Iterable[str]) -> list[str]:
    """The language of each text, as :func:`detect` says it; faster than one call per text.

    The model's work is one numpy product per call, so batches of a few
    dozen texts cost a third less per text than single calls.
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError("detect_many takes a list of str; for one text use detect()")
    return [best[0][0] for best in _ranked_many(texts, 1)]


def detect(text: str) -> str:
    """The ISO 639-1 code of the language of ``text`` (ISO 639-3 when the language has none), or ``"und"``.

    ``"und"`` when the text holds no letter: empty, white space, digits,
    punctuation, symbols or emoji. Only the first :data:`PREFIX_CHARS`
    characters are read. Mixed scripts: see the module's docstring.
    """
    return detect_many([_check_text(text)])[0]
