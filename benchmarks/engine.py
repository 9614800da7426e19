"""Wall-clock trade-off of the inference engine's schedulers, against full depth and the plain HF forward.

Fits :class:`skearly.EarlyExitTextClassifier` once on real binary tweets (packaged
all-MiniLM-L6-v2, 6 layers; cached with ``memory=`` so reruns skip the fit), then for each
batch size and threshold times ``predict`` of the same texts, interleaved, with

* ``plain HF``: ``AutoModelForSequenceClassification`` of the same encoder, tokenize +
  one forward per length-sorted batch (fp32 on CPU, bf16 autocast on CUDA): what a user
  would otherwise run;
* ``old engine``: the shrinking scheduler with torch's default attention-kernel choice
  (the engine before the refilling scheduler);
* ``shrinking`` and ``refilling``: the two schedulers of the current engine.

Accuracy and exit layers are the same for every engine configuration (tested row for row
in ``tests/test_inference.py``); the table reports them once per threshold. Efficiency is
measured speed-up over the same configuration's full depth divided by the layer-count
speed-up (6 / mean exit layer).

Run on CPU: ``python benchmarks/engine.py`` (writes ``benchmarks/results/engine_cpu.{csv,md}``).
On a GPU: ``python benchmarks/gpu.py`` (``gpu.{csv,md}``).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd
import torch
from _common import command, header, plain_predict, timed, write_results
from transformers import AutoModelForSequenceClassification

from skearly import EarlyExitTextClassifier, MaxProbability
from skearly._utils.devices import resolve_device
from skearly.datasets import load_tweet_sentiment
from skearly.encoders import default_encoder_path
from skearly.inference import InferenceEngine, RefillingScheduler, ShrinkingScheduler

ENGINES = {
    "old engine": dict(scheduler=ShrinkingScheduler(), choose_attention_kernels=False),
    "shrinking": dict(scheduler=ShrinkingScheduler(), choose_attention_kernels=True),
    "refilling": dict(scheduler=RefillingScheduler(), choose_attention_kernels=True),
}


def parse_args(argv=None, **defaults) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n-train", type=int, default=3000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--b1-rows", type=int, default=300, help="texts timed at batch size 1")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--thresholds", default="1.0,0.9,0.8,0.7")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--encoder", default=None, help="encoder folder (default: the packaged MiniLM-L6)")
    parser.add_argument("--data", default=None, help="CSV with text,sentiment columns instead of the packaged tweets")
    parser.add_argument("--cache", default=".bench-cache", help="fit cache folder (memory=)")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default="engine_cpu")
    parser.add_argument("--fit-only", action="store_true", help="fit (into the cache) and stop: no timing")
    parser.set_defaults(**defaults)
    return parser.parse_args(argv)


def load_data(args):
    if args.data is None:
        return load_tweet_sentiment(
            classes=("negative", "positive"), n_train=args.n_train, n_test=args.n_test, random_state=0
        )
    from sklearn.model_selection import train_test_split

    frame = pd.read_csv(args.data)
    frame = frame[frame["sentiment"].isin(["negative", "positive"])]
    X, y = frame["text"].tolist(), frame["sentiment"].to_numpy()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=args.n_test, stratify=y, random_state=0)
    return X_train[: args.n_train], X_test, y_train[: args.n_train], y_test


def main(argv=None, **defaults) -> pd.DataFrame:
    args = parse_args(argv, **defaults)
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    path = args.encoder or str(default_encoder_path())
    X_train, X_test, y_train, y_test = load_data(args)
    clf = EarlyExitTextClassifier(path, epochs=args.epochs, device=args.device, random_state=0, memory=args.cache)
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    print(f"fit: {time.perf_counter() - start:.1f}s on {len(X_train)} texts", flush=True)
    if args.fit_only:
        return pd.DataFrame()
    network = clf.network_.to(device).eval()
    plain = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2, local_files_only=True)
    plain = plain.to(device).eval()
    thresholds = [float(t) for t in args.thresholds.split(",")]
    mixed = device.type == "cuda"

    def engine(name: str, batch_size: int) -> InferenceEngine:
        return InferenceEngine(
            network,
            clf.tokenizer_,
            clf.temperatures_,
            128,
            batch_size,
            device,
            mixed_precision=mixed,
            **ENGINES[name],
        )

    rows = []
    for batch_size in [int(b) for b in args.batches.split(",")]:
        X = X_test[: args.b1_rows] if batch_size == 1 else X_test
        y = y_test[: len(X)]
        quality = {}
        for threshold in thresholds:
            proba, layers = engine("refilling", batch_size).predict(X, None, MaxProbability(), threshold)
            quality[threshold] = (float(np.mean(clf.classes_[proba.argmax(1)] == y)), float(layers.mean()))
        configs = [("plain HF", None)] + [(name, t) for name in ENGINES for t in thresholds]
        seconds: dict[tuple, list[float]] = {c: [] for c in configs}

        def runner(name, threshold, X=X, batch_size=batch_size):
            if name == "plain HF":
                return lambda: plain_predict(plain, clf.tokenizer_, X, batch_size, device, mixed)
            eng = engine(name, batch_size)
            return lambda: eng.predict(X, None, MaxProbability(), threshold)

        for config in configs:  # warm-up (also plans kernels for the shapes seen)
            timed(runner(*config), device)
        for _ in range(args.repeats):
            for config in configs:
                seconds[config].append(timed(runner(*config), device))
        plain_s = float(np.median(seconds[("plain HF", None)]))
        rows.append(
            {
                "batch": batch_size,
                "config": "plain HF",
                "threshold": None,
                "n_texts": len(X),
                "texts_per_s": len(X) / plain_s,
                "speedup_vs_plain_hf": 1.0,
            }
        )
        for name in ENGINES:
            full_s = float(np.median(seconds[(name, 1.0)])) if 1.0 in thresholds else float("nan")
            for threshold in thresholds:
                s = float(np.median(seconds[(name, threshold)]))
                accuracy, mean_layer = quality[threshold]
                layer_speedup = clf.head_layers_[-1] / mean_layer
                measured = full_s / s
                rows.append(
                    {
                        "batch": batch_size,
                        "config": name,
                        "threshold": threshold,
                        "n_texts": len(X),
                        "accuracy": accuracy,
                        "mean_exit_layer": mean_layer,
                        "layer_speedup": layer_speedup,
                        "texts_per_s": len(X) / s,
                        "speedup_vs_full_depth": measured,
                        "efficiency": measured / layer_speedup,
                        "speedup_vs_plain_hf": plain_s / s,
                    }
                )
        print(pd.DataFrame(rows).tail(1 + len(ENGINES) * len(thresholds)).to_string(index=False), flush=True)

    table = pd.DataFrame(rows)
    # gpu.py runs this main with its own settings: the command names the script that was run
    lines = header(f"Engine schedulers: measured trade-off ({args.name})", command(sys.argv[0], argv), device) + [
        f"- data: {len(X_train)} training tweets (negative vs positive), {args.epochs} epochs, fit "
        f"{'read from the cache' if clf.fit_time_ < 5 else f'{clf.fit_time_:.0f}s'}; {len(X_test)} test tweets "
        f"({args.b1_rows} at batch 1); median of {args.repeats} interleaved runs",
        "- efficiency = (full-depth time / time) / (6 / mean exit layer), per configuration",
        "",
        table.to_markdown(index=False, floatfmt=".3f"),
    ]
    write_results(args.out, args.name, table=table, lines=lines)
    print(f"wrote {args.out}/{args.name}.csv and .md")
    return table


if __name__ == "__main__":
    main()
