"""Measured speed/accuracy trade-off of early exit on real data, against full depth, the oracle and plain HF.

For each dataset this script fits :class:`skearly.EarlyExitTextClassifier` once (the
packaged all-MiniLM-L6-v2 encoder, real tweets from :mod:`skearly.datasets`), then on
the held-out test split measures, for a sweep of thresholds: accuracy, mean exit layer,
fraction of rows per exit and wall-clock predict throughput at batch size 1 and 64
(median of repeated runs). In the same run it measures the full-depth model
(threshold 1.0), a plain ``transformers`` sequence-classification model of the same
encoder fine-tuned the ordinary way with the same budget, the oracle exits, per-exit
calibration error, and the other exit criteria (entropy, patience) on the same fitted model.

Outputs ``<out>/<dataset>.csv``, ``<out>/<dataset>.md`` and ``<out>/<dataset>.png``.

Run: ``make benchmark`` (or ``python benchmarks/tradeoff.py``); ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from _common import (  # noqa: E402
    command,
    header,
    loosest_within_one_point,
    median_time,
    plain_predict,
    start,
    write_results,
)
from torch.nn import functional as F  # noqa: E402
from transformers import AutoModelForSequenceClassification  # noqa: E402

from skearly import EarlyExitTextClassifier, Entropy, MaxProbability, Patience  # noqa: E402
from skearly._utils.batching import n_batches, shuffled_batches, tokenize  # noqa: E402
from skearly.datasets import load_tweet_sentiment  # noqa: E402
from skearly.encoders import default_encoder_path  # noqa: E402

DATASETS: dict[str, dict] = {
    # easiest: polar tweets only (negative vs positive)
    "tweets_binary": {"classes": ("negative", "positive")},
    # hardest: three-way sentiment with the ambiguous neutral class
    "tweets_3class": {"classes": ("negative", "neutral", "positive")},
}


# ---------------------------------------------------------------------------- plain HF baseline
def fit_plain_hf(X, y, classes, args) -> tuple[torch.nn.Module, object, float]:
    """Fine-tune AutoModelForSequenceClassification the ordinary way: one head, same data and budget.

    Same encoder, epochs, batch size, learning rate, weight decay, warm-up and batch order as
    the estimator (which trains on 90% of the rows: the other 10% calibrate; the plain model
    gets those 90% too, so both see the same training rows).
    """
    from transformers import AutoTokenizer

    start = time.perf_counter()
    path = str(default_encoder_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(classes), local_files_only=True)
    y_index = np.searchsorted(classes, y)
    encoded = tokenize(tokenizer, X, None, 128)
    labels = torch.as_tensor(y_index)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01, fused=True)
    total = args.epochs * n_batches(len(X), 32)
    warmup = max(1, round(0.1 * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
    )
    model.train()
    rng = np.random.default_rng(0)
    for _ in range(args.epochs):
        for batch in shuffled_batches(encoded, 32, rng):
            logits = model(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask, token_type_ids=batch.token_type_ids
            ).logits
            loss = F.cross_entropy(logits, labels[batch.rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
    model.eval()
    return model, tokenizer, time.perf_counter() - start


# ---------------------------------------------------------------------------------- measuring
def measure_config(clf, X, y, X_b1, args, **params) -> dict:
    """Accuracy, exits and throughput at batch 64 and batch 1 of the fitted estimator under ``params``."""
    clf.set_params(**params, predict_batch_size=64)
    clf.predict(X[:64])  # warm-up
    t64 = median_time(lambda: clf.predict(X), args.repeats, len(X))
    y_pred = clf.predict(X)
    layers = clf.exit_layers_.copy()
    clf.set_params(predict_batch_size=1)
    t1 = median_time(lambda: clf.predict(X_b1), args.repeats, len(X_b1)) if args.batch1 else None
    clf.set_params(predict_batch_size=64)
    row = {
        "accuracy": float(np.mean(y_pred == y)),
        "mean_exit_layer": float(layers.mean()),
        "layer_speedup": clf.head_layers_[-1] / float(layers.mean()),
        "seconds_b64": t64.seconds,
        "texts_per_s_b64": t64.throughput,
        "seconds_b1": None if t1 is None else t1.seconds,
        "texts_per_s_b1": None if t1 is None else t1.throughput,
    }
    for layer in clf.head_layers_:
        row[f"exit_{layer}"] = float(np.mean(layers == layer))
    return row


def oracle_rows(clf, X, y) -> list[dict]:
    """Earliest exit agreeing with the final head, and earliest correct exit: ``exit_curve``'s oracle rows."""
    curve = clf.exit_curve(X, y, thresholds=[1.0])
    names = {"oracle": "oracle (agrees with final)", "oracle_correct": "oracle (correct)"}
    rows = []
    for _, row in curve[curve["kind"].isin(names)].iterrows():
        rows.append(
            {
                "config": names[row["kind"]],
                "accuracy": row["accuracy"],
                "mean_exit_layer": row["mean_exit_layer"],
                "layer_speedup": row["expected_speedup"],
                **{f"exit_{layer}": row[f"frac_layer_{layer}"] for layer in clf.head_layers_},
            }
        )
    return rows


def criteria_rows(clf, X, y, X_b1, args) -> list[dict]:
    """The other exit rules on the same fitted model (timed at batch 64 only unless --batch1-criteria)."""
    rows = []
    settings = [(Entropy(), t) for t in args.entropy_thresholds] + [(Patience(k), 0.5) for k in (1, 2, 3)]
    saved = args.batch1
    args.batch1 = args.batch1_criteria
    for criterion, threshold in settings:
        row = measure_config(clf, X, y, X_b1, args, exit_criterion=criterion, threshold=threshold)
        rows.append({"config": f"{criterion!r}", "threshold": threshold, **row})
    args.batch1 = saved
    clf.set_params(exit_criterion=MaxProbability())
    return rows


def p1_threshold(table: pd.DataFrame) -> float:
    """Loosest threshold whose accuracy is within 1 point of full depth."""
    full = table.loc[table["config"] == "full depth", "accuracy"].iloc[0]
    return loosest_within_one_point(table[table["config"] == "early exit"], full)


def run_dataset(name: str, spec: dict, args) -> pd.DataFrame:
    X_train, X_test, y_train, y_test = load_tweet_sentiment(
        classes=spec["classes"], n_train=args.n_train, n_test=args.n_test, random_state=0
    )
    X_b1 = X_test[: args.n_test_b1]
    print(f"\n=== {name}: train {len(X_train)}, test {len(X_test)} (batch-1 timing on {len(X_b1)})", flush=True)

    clf = EarlyExitTextClassifier(epochs=args.epochs, random_state=0, verbose=args.verbose)
    clf.fit(X_train, y_train)
    print(f"early-exit fit: {clf.fit_time_:.1f}s", flush=True)
    n_fit_rows = len(X_train) - int(np.ceil(clf.calibration_size * len(X_train)))
    plain, plain_tokenizer, plain_fit = fit_plain_hf(X_train[:n_fit_rows], y_train[:n_fit_rows], clf.classes_, args)
    print(f"plain HF fit: {plain_fit:.1f}s", flush=True)

    rows = []
    full = measure_config(clf, X_test, y_test, X_b1, args, threshold=1.0, exit_criterion=MaxProbability())
    rows.append({"config": "full depth", "threshold": 1.0, **full})
    for threshold in args.thresholds:
        row = measure_config(clf, X_test, y_test, X_b1, args, threshold=threshold)
        rows.append({"config": "early exit", "threshold": threshold, **row})
        print(f"  threshold {threshold}: acc {row['accuracy']:.3f} layer {row['mean_exit_layer']:.2f}", flush=True)

    plain_predict(plain, plain_tokenizer, X_test[:64], 64)  # warm-up
    t64 = median_time(lambda: plain_predict(plain, plain_tokenizer, X_test, 64), args.repeats, len(X_test))
    t1 = (
        median_time(lambda: plain_predict(plain, plain_tokenizer, X_b1, 1), args.repeats, len(X_b1))
        if args.batch1
        else None
    )
    plain_pred = clf.classes_[plain_predict(plain, plain_tokenizer, X_test, 64)]
    rows.append(
        {
            "config": "plain HF (AutoModelForSequenceClassification)",
            "accuracy": float(np.mean(plain_pred == y_test)),
            "mean_exit_layer": float(clf.n_layers_),
            "layer_speedup": 1.0,
            "seconds_b64": t64.seconds,
            "texts_per_s_b64": t64.throughput,
            "seconds_b1": None if t1 is None else t1.seconds,
            "texts_per_s_b1": None if t1 is None else t1.throughput,
        }
    )
    rows.extend(oracle_rows(clf, X_test, y_test))
    rows.extend(criteria_rows(clf, X_test, y_test, X_b1, args))

    table = pd.DataFrame(rows)
    for b in ("b64", "b1"):
        table[f"speedup_{b}"] = full[f"seconds_{b}"] / table[f"seconds_{b}"] if full[f"seconds_{b}"] else np.nan
        table[f"efficiency_{b}"] = table[f"speedup_{b}"] / table["layer_speedup"]
    table.attrs.update(
        fit_seconds=clf.fit_time_, plain_fit_seconds=plain_fit, calibration=clf.calibration_report_, name=name
    )
    return table


# --------------------------------------------------------------------------------- reporting
def write_outputs(table: pd.DataFrame, out: Path, args) -> None:
    name = table.attrs["name"]
    p1 = p1_threshold(table)
    shown = [
        "config",
        "threshold",
        "accuracy",
        "mean_exit_layer",
        "layer_speedup",
        "texts_per_s_b64",
        "speedup_b64",
        "efficiency_b64",
        "texts_per_s_b1",
        "speedup_b1",
        "efficiency_b1",
    ]
    fmt = table[shown].copy()
    fmt.insert(0, "P1", np.where((fmt["config"] == "early exit") & (fmt["threshold"] == p1), "**P1**", ""))
    calib = table.attrs["calibration"]
    fit_ratio = table.attrs["fit_seconds"] / table.attrs["plain_fit_seconds"]
    full_b64 = table.loc[table["config"] == "full depth", "seconds_b64"].iloc[0]
    plain_b64 = table.loc[table["config"].str.startswith("plain"), "seconds_b64"].iloc[0]
    lines = header(name, args.command) + [
        f"Train {args.n_train} tweets ({args.epochs} epochs), test {args.n_test} (batch-1 timing on "
        f"{args.n_test_b1}), timings are medians of {args.repeats} runs. "
        "`speedup_*` = full-depth seconds / seconds (measured), `layer_speedup` = 6 / mean exit layer, "
        "`efficiency_*` = measured / layer speed-up. P1 = loosest threshold within 1 point of full depth.",
        "",
        fmt.to_markdown(index=False, floatfmt=".3f"),
        "",
        f"- Fit time, all exit heads + calibration: {table.attrs['fit_seconds']:.1f}s; plain single-head "
        f"fine-tuning: {table.attrs['plain_fit_seconds']:.1f}s; ratio {fit_ratio:.3f}.",
        f"- Full depth (threshold 1.0) vs plain HF forward, batch 64: {full_b64:.3f}s vs {plain_b64:.3f}s "
        f"(ratio {full_b64 / plain_b64:.3f}).",
        "",
        "Per-exit calibration on the held-out calibration split (before/after temperature scaling):",
        "",
        calib.to_markdown(index=False, floatfmt=".4f"),
        "",
        f"![trade-off]({name}.png)",
    ]
    write_results(out, name, table=table, lines=lines, figure=plot(table))
    print("\n".join(lines[8:15]), flush=True)


def plot(table: pd.DataFrame):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sweep = table[table["config"] == "early exit"].sort_values("threshold", ascending=False)
    full = table[table["config"] == "full depth"].iloc[0]
    plain = table[table["config"].str.startswith("plain")].iloc[0]
    ax.plot(sweep["speedup_b64"], sweep["accuracy"], "o-", label="early exit (max-prob), batch 64")
    for _, r in sweep.iterrows():
        ax.annotate(
            f"{r['threshold']:g}",
            (r["speedup_b64"], r["accuracy"]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    if sweep["speedup_b1"].notna().any():
        ax.plot(sweep["speedup_b1"], sweep["accuracy"], "s--", alpha=0.6, label="early exit, batch 1")
    ax.plot([1.0], [full["accuracy"]], "k*", markersize=12, label="full depth (threshold 1.0)")
    ax.plot([plain["speedup_b64"]], [plain["accuracy"]], "rD", label="plain HF model")
    oracle = table[table["config"] == "oracle (agrees with final)"].iloc[0]
    ax.plot([oracle["layer_speedup"]], [oracle["accuracy"]], "g^", markersize=10, label="oracle bound (layer count)")
    ax.axhline(full["accuracy"] - 0.01, color="grey", lw=0.8, ls=":", label="full depth - 1 point")
    ax.set_xlabel("measured speed-up over full depth (wall clock)")
    ax.set_ylabel("test accuracy")
    ax.set_title(table.attrs["name"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return fig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated, from: " + ", ".join(DATASETS))
    parser.add_argument("--n-train", type=int, default=3000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--n-test-b1", type=int, default=300, help="test rows timed at batch size 1")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (median)")
    parser.add_argument(
        "--thresholds",
        type=lambda s: [float(t) for t in s.split(",")],
        default=[0.99, 0.98, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6],
    )
    parser.add_argument(
        "--entropy-thresholds", type=lambda s: [float(t) for t in s.split(",")], default=[0.9, 0.8, 0.7, 0.6, 0.5]
    )
    parser.add_argument("--no-batch1", dest="batch1", action="store_false", help="skip batch-1 timings")
    parser.add_argument("--batch1-criteria", action="store_true", help="also time other criteria at batch 1")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in about a minute")
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.n_test, args.n_test_b1, args.epochs, args.repeats = 300, 200, 30, 1, 1
    args.command = command(__file__, argv)
    begin = start(args.threads)
    for name in args.datasets.split(","):
        write_outputs(run_dataset(name, DATASETS[name], args), args.out, args)
    print(f"\ntotal benchmark time: {time.perf_counter() - begin:.0f}s", flush=True)


if __name__ == "__main__":
    main()
