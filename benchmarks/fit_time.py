"""Where fit time goes on a CPU, and what length-grouped batches and bf16 autocast save, at what accuracy.

For each data set and seed this script fits :class:`skearly.EarlyExitTextClassifier`
(the packaged all-MiniLM-L6-v2 encoder) under each configuration, interleaved so that
drift on the machine hits them alike (see below):

- ``random_fp32``: random training batches in fp32 (what ``fit`` did before
  ``group_by_length``, and with ``mixed_precision`` ignored on CPU);
- ``grouped_fp32``: length-grouped batches (``group_by_length=True``), fp32;
- ``grouped_bf16``: length-grouped batches and bf16 autocast in fine-tuning
  (``mixed_precision=True``: today's defaults on a CPU with native bf16).

After one warm-up fit per data set, the three run one after the other for each seed,
in an order that rotates from seed to seed.

Per fit it records the fit time, the training steps' time, real and padded tokens, the
test accuracy at full depth and at P1 (the loosest threshold within one point of full
depth, from :meth:`~skearly.EarlyExitTextClassifier.exit_curve`), the layer-count and
measured speed-up at P1 (batch 64, median of ``--repeats`` runs interleaved with full
depth's), and each exit's ECE after temperature scaling on the calibration split. The summary gives, per data set and
configuration, means and standard deviations over the seeds and the fit time as a ratio
of ``random_fp32``'s, measured in the same run.

Outputs ``<out>/<name>.csv`` (every fit), ``<out>/<name>.md`` and ``<out>/<name>.png``.

Run: ``python benchmarks/fit_time.py`` (about an hour on 2 cores); ``--quick`` for a smoke run
with the tiny encoder.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import (  # noqa: E402
    command,
    header,
    loosest_within_one_point,
    markdown_table,
    start,
    timed,
    write_results,
)

from skearly import EarlyExitTextClassifier  # noqa: E402
from skearly.datasets import load_rotten_tomatoes, load_snli, load_tweet_sentiment  # noqa: E402
from skearly.encoders import make_tiny_encoder  # noqa: E402

CONFIGS: dict[str, dict] = {
    "random_fp32": {"group_by_length": False, "mixed_precision": False},
    "grouped_fp32": {"group_by_length": True, "mixed_precision": False},
    "grouped_bf16": {"group_by_length": True, "mixed_precision": True},
}
BASELINE = "random_fp32"
THRESHOLDS = (1.0, 0.99, 0.98, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5)


def load(name: str, n_train: int, n_test: int):
    """Train and test split of one shipped data set (fixed split, seed 0)."""
    if name == "tweets":
        return load_tweet_sentiment(classes=("negative", "positive"), n_train=n_train, n_test=n_test, random_state=0)
    if name == "snli":
        return load_snli(n_train=n_train, n_test=n_test, random_state=0)
    if name == "rotten":
        return load_rotten_tomatoes(n_train=n_train, n_test=n_test, random_state=0)
    raise ValueError(f"unknown data set {name!r}: choose tweets, snli or rotten")


class _TrainingTokens(logging.Handler):
    """Keeps the token counts of the training loop's final log record (one per fine-tune)."""

    def __init__(self) -> None:
        super().__init__()
        self.last: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "real_tokens"):
            self.last = {
                "real_tokens": record.real_tokens,
                "padded_tokens": record.padded_tokens,
                "train_seconds": record.train_seconds,
            }


def measure(clf: EarlyExitTextClassifier, X_test, y_test, repeats: int) -> dict:
    """Accuracy at full depth and P1, layer-count and measured speed-up of P1 (batch 64)."""
    curve = clf.exit_curve(X_test, y_test, thresholds=THRESHOLDS)
    curve = curve[curve["kind"] == "threshold"]
    full = float(curve.loc[curve["threshold"] == 1.0, "accuracy"].iloc[0])
    p1 = loosest_within_one_point(curve, full)
    at_p1 = curve[curve["threshold"] == p1].iloc[0]
    clf.set_params(predict_batch_size=64)
    clf.predict(X_test[:64])  # warm-up
    times: dict[float, list[float]] = {1.0: [], p1: []}
    for _ in range(repeats):  # interleaved, so that drift on the machine hits both alike
        for threshold in times:
            clf.set_params(threshold=threshold)
            times[threshold].append(timed(lambda: clf.predict(X_test)))
    full_time, p1_time = float(np.median(times[1.0])), float(np.median(times[p1]))
    return {
        "accuracy_full": full,
        "p1": p1,
        "accuracy_p1": float(at_p1["accuracy"]),
        "layer_speedup_p1": float(at_p1["expected_speedup"]),
        "measured_speedup_p1": full_time / p1_time,
    }


def run_one(data: str, seed: int, config: str, splits, args, tokens: _TrainingTokens) -> dict:
    X_train, X_test, y_train, y_test = splits
    clf = EarlyExitTextClassifier(args.encoder, epochs=args.epochs, random_state=seed, **CONFIGS[config])
    clf.fit(X_train, y_train)
    report = clf.calibration_report_
    row = {
        "data": data,
        "seed": seed,
        "config": config,
        "n_train": len(X_train),
        "fit_s": clf.fit_time_,
        **tokens.last,
        "padding_ratio": tokens.last["padded_tokens"] / tokens.last["real_tokens"],
        **measure(clf, X_test, y_test, args.repeats),
        "ece_mean": float(report["ece_after"].mean()),
    }
    for layer, ece in zip(report["layer"], report["ece_after"]):
        row[f"ece_layer_{layer}"] = float(ece)
    print(
        f"{data} seed {seed} {config}: fit {row['fit_s']:.0f}s (steps {row['train_seconds']:.0f}s), "
        f"padding {row['padding_ratio']:.2f}x, accuracy {row['accuracy_full']:.3f} / P1={row['p1']} "
        f"{row['accuracy_p1']:.3f}, speed-up {row['layer_speedup_p1']:.2f} layers / "
        f"{row['measured_speedup_p1']:.2f} measured",
        flush=True,
    )
    return row


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Per data set and configuration: means (and seed standard deviations) and the fit-time ratio."""
    grouped = runs.groupby(["data", "config"], sort=False)
    table = grouped.agg(
        seeds=("seed", "count"),
        fit_s=("fit_s", "mean"),
        train_s=("train_seconds", "mean"),
        padding_ratio=("padding_ratio", "mean"),
        accuracy_full=("accuracy_full", "mean"),
        accuracy_full_sd=("accuracy_full", "std"),
        accuracy_p1=("accuracy_p1", "mean"),
        accuracy_p1_sd=("accuracy_p1", "std"),
        layer_speedup_p1=("layer_speedup_p1", "mean"),
        measured_speedup_p1=("measured_speedup_p1", "mean"),
        ece_mean=("ece_mean", "mean"),
    ).reset_index()
    # fit time against the baseline of the same data set and seed, then averaged over seeds
    base = runs[runs["config"] == BASELINE].set_index(["data", "seed"])["fit_s"]
    ratio = runs.assign(ratio=runs["fit_s"].to_numpy() / base.loc[list(zip(runs["data"], runs["seed"]))].to_numpy())
    table["fit_time_ratio"] = ratio.groupby(["data", "config"], sort=False)["ratio"].mean().to_numpy()
    return table


def plot(summary: pd.DataFrame):
    fig, ax = plt.subplots(figsize=(7, 3.6))
    datasets = list(dict.fromkeys(summary["data"]))
    width = 0.8 / len(CONFIGS)
    for i, config in enumerate(CONFIGS):
        part = summary[summary["config"] == config].set_index("data").reindex(datasets)
        ax.bar(np.arange(len(datasets)) + i * width, part["fit_s"], width, label=config)
    ax.set_xticks(np.arange(len(datasets)) + width * (len(CONFIGS) - 1) / 2, datasets)
    ax.set_ylabel("fit time (s, mean over seeds)")
    ax.set_title("fit time on CPU by training configuration")
    ax.legend()
    return fig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="tweets:3000,snli:2000,rotten:1500", help="name:n_train,...")
    parser.add_argument("--n-test", type=int, default=1000, help="test rows per data set")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="configurations, the baseline first")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats of predict, interleaved (median)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="tiny encoder, 200 rows, one seed (smoke run)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--name", default="fit_time")
    args = parser.parse_args(argv)
    args.encoder = None
    if args.quick:
        args.encoder = str(make_tiny_encoder(tempfile.mkdtemp()))
        args.datasets, args.n_test, args.seeds, args.repeats = "tweets:200", 100, "0", 1
    configs = args.configs.split(",")
    if configs[0] != BASELINE or not set(configs) <= set(CONFIGS):
        parser.error(f"--configs must start with {BASELINE} and name only {list(CONFIGS)}")
    began = start(args.threads)
    tokens = _TrainingTokens()
    logging.getLogger("skearly.training").addHandler(tokens)
    logging.getLogger("skearly.training").setLevel(logging.INFO)

    rows = []
    for spec in args.datasets.split(","):
        data, n_train = spec.split(":")
        splits = load(data, int(n_train), args.n_test)
        # warm-up: a short fit loads the encoder and the tokenizer once, outside the timed fits
        EarlyExitTextClassifier(args.encoder, epochs=1, random_state=0).fit(splits[0][:64], splits[2][:64])
        for turn, seed in enumerate(int(s) for s in args.seeds.split(",")):
            # the order rotates from seed to seed, so no configuration always runs first
            for config in configs[turn % len(configs) :] + configs[: turn % len(configs)]:
                rows.append(run_one(data, seed, config, splits, args, tokens))
    runs = pd.DataFrame(rows)
    summary = summarise(runs)
    minutes = (time.perf_counter() - began) / 60
    lines = header("Fit time on CPU: length-grouped batches and bf16 autocast", command(__file__, argv))
    lines += [
        f"Each data set: {args.epochs} epochs, batch 32, test on {args.n_test} rows; seeds {args.seeds}; "
        f"configurations interleaved per seed, their order rotating "
        f"from seed to seed, after one warm-up fit; {minutes:.0f} min in all. `fit_time_ratio` is the fit time over "
        f"{BASELINE}'s on the same data and seed (mean over seeds); `padding_ratio` is the tokens the layers "
        "processed over the real tokens; `train_s` the training steps alone. P1 is the loosest threshold within one "
        "point of full depth's test accuracy; its speed-ups are at batch 64 (layer count, and measured wall clock "
        "against threshold 1.0 in the same process); `ece_mean` is the mean over exits of the ECE after temperature "
        "scaling on the calibration split. `_sd`: standard deviation over the seeds.",
        "",
        markdown_table(summary),
        "",
        "Every fit:",
        "",
        markdown_table(runs.drop(columns=[c for c in runs.columns if c.startswith("ece_layer_")])),
    ]
    write_results(args.out, args.name, table=runs, lines=lines, figure=plot(summary))


if __name__ == "__main__":
    main()
