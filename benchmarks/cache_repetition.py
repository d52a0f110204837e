"""How much the default language model's samples repeat themselves, drawn with and without its continuous cache.

    python benchmarks/cache_repetition.py [--prompts 40] [--max-tokens 80]

Prompts: the first 12 words of the WikiText-2 *valid* lines longer than 40
words; each is continued once per setting with the generate task's default
sampling (temperature 0.8, top-p 0.95) and the same seeds. Reported per
setting, over all generated tokens: the share equal to the token before it,
the share of 3-grams that repeat an earlier 3-gram of the same sample, and
the mean distinct-2 (distinct token pairs / pairs per sample). The cache was
chosen for perplexity on real text; this is why `generate` does not draw
with it unless `--continuous-cache` asks (docs/generation.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VALID = ROOT.parent / "shared" / "data" / "wikitext2" / "valid.txt.gz"


def repetition(samples: list[list[int]]) -> dict[str, float]:
    tokens = sum(len(ids) for ids in samples)
    same = sum(ids[i] == ids[i - 1] for ids in samples for i in range(1, len(ids)))
    repeated = sum(len(grams) - len(set(grams)) for grams in
                   ([tuple(ids[i:i + 3]) for i in range(len(ids) - 2)] for ids in samples))
    distinct = [len(set(pairs)) / len(pairs) for pairs in
                ([tuple(ids[i:i + 2]) for i in range(len(ids) - 1)] for ids in samples) if pairs]
    return {"same as previous": same / tokens, "repeated 3-grams": repeated / tokens,
            "distinct-2": sum(distinct) / len(distinct)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=40)
    parser.add_argument("--max-tokens", type=int, default=80)
    args = parser.parse_args()

    import toolkit
    from toolkit.datasets import read_line_files

    lines = [record["text"] for record in read_line_files([str(VALID)], ("text",))]
    prompts = [" ".join(line.split()[:12]) for line in lines if len(line.split()) > 40][:args.prompts]
    print(f"{len(prompts)} prompts from {VALID.name}, {args.max_tokens} tokens each, default sampling")
    for use in (False, True):
        pipe = toolkit.pipeline("generate", continuous_cache=use, max_tokens=args.max_tokens, logprobs=True)
        samples = [[piece["token"] for piece in result["logprobs"]] for result in pipe(prompts)]
        scores = ", ".join(f"{name} {value:.3f}" for name, value in repetition(samples).items())
        print(f"continuous cache {'on ' if use else 'off'}: {scores}")


if __name__ == "__main__":
    main()
