"""Does tokenizing a long text from a prefix cut the tokenize time of long articles, with the same tokens?

Times ``skearly._utils.batching.tokenize`` (prefix when provably exact) against the tokenizer
on whole texts (``truncation=True``), on BBC News articles and on tweets, at several
``max_length``, interleaved, median of ``--repeats``; checks the tokens are identical.

Run from the repository root: ``python -m research.long_text_tokenize.tokenize_prefix``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from transformers import AutoTokenizer

from benchmarks._common import command, header, markdown_table, start, write_results
from skearly._utils.batching import tokenize
from skearly.datasets import load_bbc_news_frame, load_tweet_sentiment_frame
from skearly.encoders import default_encoder_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    start(None)
    tokenizer = AutoTokenizer.from_pretrained(default_encoder_path(), local_files_only=True)
    data = {
        "bbc_news": list(load_bbc_news_frame()["text"]),
        "tweets": list(load_tweet_sentiment_frame()["text"][:2000]),
    }
    rows = []
    for name, texts in data.items():
        for max_length in (64, 128, 256, 512):
            whole_s, prefix_s = [], []
            for _ in range(args.repeats):
                begin = time.perf_counter()
                whole = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
                whole_s.append(time.perf_counter() - begin)
                begin = time.perf_counter()
                prefix = tokenize(tokenizer, texts, None, max_length).input_ids
                prefix_s.append(time.perf_counter() - begin)
            rows.append(
                {
                    "data": name,
                    "n_texts": len(texts),
                    "mean_chars": float(np.mean([len(t) for t in texts])),
                    "max_length": max_length,
                    "whole_ms_per_1000": 1000 * float(np.median(whole_s)) / len(texts) * 1000,
                    "prefix_ms_per_1000": 1000 * float(np.median(prefix_s)) / len(texts) * 1000,
                    "speedup": float(np.median(whole_s) / np.median(prefix_s)),
                    "identical_tokens": whole == prefix,
                }
            )
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    lines = header("Tokenizing long texts from a prefix", command(__file__, argv))
    lines += [
        f"Milliseconds per 1,000 texts (median of {args.repeats}, interleaved), the packaged MiniLM tokenizer.",
        "",
        markdown_table(table),
    ]
    write_results(args.out, "tokenize_prefix", table=table, lines=lines)


if __name__ == "__main__":
    main()
