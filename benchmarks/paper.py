"""The paper's experiment (Schwartz et al., ACL 2020) on the data and encoders that install offline, on CPU.

For each encoder (the 6-layer all-MiniLM-L6-v2, the 12-layer all-mpnet-base-v2) and each
data set of :mod:`skearly.datasets` (Rotten Tomatoes snippets for SST, BBC News for AG News,
SNLI, tweets), this script:

1. fine-tunes an early-exit model with an exit head after **every** layer, and one with the
   paper's **sparse** layout (layers 1, 4, 6 and 12 of 12; scaled to the depth for shallower
   encoders: 1, 2, 3, 6 of 6);
2. sweeps the threshold with ``exit_curve`` (accuracy, mean exit layer, layer-count speed-up
   for every threshold from one pass) and measures the wall-clock speed-up over full depth of
   the sparse model at batch 64 and batch 1 for each threshold;
3. fine-tunes the paper's baselines, **truncated models of equal cost**: the first k layers
   plus one head, trained separately (``head_layers=(k,)``), for each k of the sparse layout
   below the top, and times them the same way;
4. compares them: the accuracy early exit reaches at a measured speed-up at least the
   truncated model's, against the truncated model's accuracy.

Outputs ``<out>/paper_<encoder>.csv`` (every row), ``.md`` (the summary per data set:
full-depth accuracy, the loosest threshold within 1 point, its mean exit layer, its
measured speed-up at batch 1 and 64, and early exit vs truncated) and ``.png``.

Timing: run it alone, under the machine-wide lock, e.g.
``flock /tmp/skearly-timing.lock python benchmarks/paper.py --encoders minilm6``.
``--quick`` runs tiny sizes (a smoke test of the whole pipeline, not a result).
The 12-layer encoder needs ``make install-mpnet`` first.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import command, header, loosest_within_one_point, median_time, start, write_results  # noqa: E402
from transformers import AutoConfig  # noqa: E402

from skearly import EarlyExitTextClassifier  # noqa: E402
from skearly.datasets import load_bbc_news, load_rotten_tomatoes, load_snli, load_tweet_sentiment  # noqa: E402
from skearly.encoders import resolve_encoder  # noqa: E402

#: name -> (loader(n_train, n_test), max_length, what it stands for in the paper)
DATASETS: dict[str, tuple[Callable, int, str]] = {
    "rotten_tomatoes": (lambda n, m: load_rotten_tomatoes(n_train=n, n_test=m), 64, "SST (its source sentences)"),
    # half the articles held out: 1,063 test rows (cut to --n-test) instead of the default split's 426
    "bbc_news": (lambda n, m: load_bbc_news(n_train=n, n_test=m, test_size=0.5), 256, "AG News (news topics)"),
    "snli": (lambda n, m: load_snli(n_train=n, n_test=m), 64, "SNLI itself"),
    "tweets": (lambda n, m: load_tweet_sentiment(n_train=n, n_test=m), 64, "(not in the paper)"),
}
ENCODERS = {"minilm6": "all-MiniLM-L6-v2", "mpnet12": "all-mpnet-base-v2"}
PAPER_SPARSE = (1, 4, 6, 12)  # of 12 layers


def sparse_layout(n_layers: int) -> tuple[int, ...]:
    """The paper's sparse exits (1, 4, 6, 12 of 12) scaled to an encoder of ``n_layers``."""
    return tuple(sorted({max(1, round(layer * n_layers / 12)) for layer in PAPER_SPARSE}))


def fit(encoder: str, X, y, max_length: int, args, head_layers) -> EarlyExitTextClassifier:
    """Fine-tune one model; a single head (a truncated baseline) always trains with the plain loss."""
    single_head = head_layers is not None and len(head_layers) == 1
    clf = EarlyExitTextClassifier(
        encoder,
        head_layers=head_layers,
        objective="sum" if single_head else args.objective,
        calibration_size=args.calibration_size,
        max_length=max_length,
        epochs=args.epochs,
        head_learning_rate=args.head_learning_rate,
        max_grad_norm=args.max_grad_norm,
        random_state=0,
        verbose=args.verbose,
    )
    return clf.fit(X, y)


def timed(clf, X, X_b1, args, threshold: float) -> dict:
    """Measured seconds at batch 64 (``X``) and batch 1 (``X_b1``) at ``threshold``."""
    clf.set_params(threshold=threshold, predict_batch_size=64)
    clf.predict(X[:64])  # warm-up
    t64 = median_time(lambda: clf.predict(X), args.repeats, len(X))
    clf.set_params(predict_batch_size=1)
    t1 = median_time(lambda: clf.predict(X_b1), args.repeats, len(X_b1))
    clf.set_params(predict_batch_size=64)
    return {"seconds_b64": t64.seconds, "seconds_b1": t1.seconds}


def p1_threshold(curve: pd.DataFrame) -> float:
    """The smallest threshold whose accuracy is within 1 point of full depth (threshold 1.0)."""
    return loosest_within_one_point(curve, curve.loc[curve["threshold"] == 1.0, "accuracy"].iloc[0])


def curve_rows(clf, X, y, X_b64, X_b1, args, layout: str, time_it: bool) -> list[dict]:
    """Accuracy and mean exit layer at every threshold (one ``exit_curve`` pass).

    With ``time_it``, the thresholds of ``args.timed`` and the loosest threshold within one
    point are timed too (each timing is a full predict, so not every threshold is timed).
    """
    curve = clf.exit_curve(X, y, thresholds=args.thresholds)
    curve = curve[curve["kind"] == "threshold"]
    to_time = set(args.timed) | {p1_threshold(curve)}
    rows = []
    for _, point in curve.iterrows():
        row = {
            "config": f"early exit ({layout})",
            "head_layers": ",".join(map(str, clf.head_layers_)),
            "threshold": point["threshold"],
            "accuracy": point["accuracy"],
            "mean_exit_layer": point["mean_exit_layer"],
            "layer_speedup": point["expected_speedup"],
        }
        if time_it and point["threshold"] in to_time:
            row.update(timed(clf, X_b64, X_b1, args, point["threshold"]))
        rows.append(row)
    return rows


def truncated_row(encoder, k, X_train, y_train, X, y, X_b64, X_b1, max_length, args, n_layers) -> dict:
    clf = fit(encoder, X_train, y_train, max_length, args, head_layers=(k,))
    clf.set_params(threshold=1.0)
    return {
        "config": f"truncated ({k} layers)",
        "head_layers": str(k),
        "threshold": 1.0,
        "accuracy": float(clf.score(X, y)),
        "mean_exit_layer": float(k),
        "layer_speedup": n_layers / k,
        **timed(clf, X_b64, X_b1, args, 1.0),
        "fit_seconds": clf.fit_time_,
    }


def run(encoder_key: str, dataset: str, args) -> pd.DataFrame:
    encoder = ENCODERS[encoder_key]
    load, max_length, _ = DATASETS[dataset]
    max_length = min(max_length, args.max_length_cap or max_length)
    X_train, X_test, y_train, y_test = load(args.n_train, args.n_test)
    X_b64, X_b1 = X_test[: args.n_test_b64], X_test[: args.n_test_b1]
    print(f"\n=== {encoder_key} / {dataset}: train {len(X_train)}, test {len(X_test)}", flush=True)

    rows, fit_seconds = [], {}
    if not args.skip_every_layer:
        every = fit(encoder, X_train, y_train, max_length, args, head_layers=None)
        rows += curve_rows(every, X_test, y_test, X_b64, X_b1, args, "every layer", time_it=False)
        fit_seconds["every layer"] = every.fit_time_
    n_layers = int(AutoConfig.from_pretrained(resolve_encoder(encoder)).num_hidden_layers)
    sparse = fit(encoder, X_train, y_train, max_length, args, head_layers=sparse_layout(n_layers))
    fit_seconds["sparse"] = sparse.fit_time_
    rows += curve_rows(sparse, X_test, y_test, X_b64, X_b1, args, "sparse", time_it=True)
    for k in () if args.skip_truncated else sparse.head_layers_[:-1]:
        rows.append(
            truncated_row(encoder, k, X_train, y_train, X_test, y_test, X_b64, X_b1, max_length, args, n_layers)
        )
        print(f"  truncated {k}: acc {rows[-1]['accuracy']:.3f}", flush=True)

    table = pd.DataFrame(rows).assign(encoder=encoder_key, dataset=dataset, n_layers=n_layers)
    full = table[(table["config"] == "early exit (sparse)") & (table["threshold"] == 1.0)].iloc[0]
    for b in ("b64", "b1"):
        table[f"speedup_{b}"] = full[f"seconds_{b}"] / table[f"seconds_{b}"]
    table.attrs["fit_seconds"] = fit_seconds
    return table


def early_exit_at_speed(sparse: pd.DataFrame, speedup: float) -> float | None:
    """Early exit's accuracy at a measured b64 ``speedup``, linear between its timed thresholds.

    ``None`` when ``speedup`` lies beyond the fastest timed threshold.
    """
    timed_points = sparse.dropna(subset=["speedup_b64"]).sort_values("speedup_b64")
    if speedup > timed_points["speedup_b64"].max():
        return None
    return float(np.interp(speedup, timed_points["speedup_b64"], timed_points["accuracy"]))


def summary(table: pd.DataFrame) -> dict:
    """One row per (encoder, data set): full depth, P1 (loosest threshold within 1 point), EE vs truncated."""
    sparse = table[table["config"] == "early exit (sparse)"]
    full = sparse[sparse["threshold"] == 1.0].iloc[0]
    p1 = sparse[sparse["threshold"] == p1_threshold(sparse)].iloc[0]
    verdicts = []
    for _, trunc in table[table["config"].str.startswith("truncated")].iterrows():
        accuracy = early_exit_at_speed(sparse, trunc["speedup_b64"])
        if accuracy is None:
            fastest = sparse.dropna(subset=["speedup_b64"]).sort_values("speedup_b64").iloc[-1]
            verdicts.append(
                f"{trunc['head_layers']}L ({trunc['speedup_b64']:.2f}x, {trunc['accuracy']:.3f}): beyond early "
                f"exit's fastest point ({fastest['speedup_b64']:.2f}x, {fastest['accuracy']:.3f})"
            )
        else:
            verdict = "wins" if accuracy > trunc["accuracy"] else "loses"
            verdicts.append(
                f"{trunc['head_layers']}L ({trunc['speedup_b64']:.2f}x): {accuracy:.3f} vs {trunc['accuracy']:.3f} "
                f"({verdict})"
            )
    return {
        "encoder": full["encoder"],
        "dataset": full["dataset"],
        "full_depth_accuracy": full["accuracy"],
        "p1_threshold": p1["threshold"],
        "p1_accuracy": p1["accuracy"],
        "p1_mean_exit_layer": p1["mean_exit_layer"],
        "p1_layer_speedup": p1["layer_speedup"],
        "p1_speedup_b1": p1["speedup_b1"],
        "p1_speedup_b64": p1["speedup_b64"],
        "early exit vs truncated, equal measured b64 speed": "; ".join(verdicts),
    }


def plot(tables: list[pd.DataFrame]):
    fig, axes = plt.subplots(1, len(tables), figsize=(4.5 * len(tables), 4), squeeze=False)
    for ax, table in zip(axes[0], tables):
        sparse = table[table["config"] == "early exit (sparse)"].dropna(subset=["speedup_b64"])
        sparse = sparse.sort_values("speedup_b64")
        every = table[table["config"] == "early exit (every layer)"].sort_values("layer_speedup")
        trunc = table[table["config"].str.startswith("truncated")]
        ax.plot(sparse["speedup_b64"], sparse["accuracy"], "o-", label="early exit, sparse (measured b64)")
        ax.plot(every["layer_speedup"], every["accuracy"], ".:", label="early exit, every layer (layer count)")
        ax.plot(trunc["speedup_b64"], trunc["accuracy"], "rD", label="truncated, equal cost (measured b64)")
        ax.set_title(f"{table['encoder'].iloc[0]} / {table['dataset'].iloc[0]}")
        ax.set_xlabel("speed-up over full depth")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy")
    axes[0][0].legend(fontsize=7, loc="lower left")
    return fig


def report(tables: list[pd.DataFrame], encoder_key: str, command_line: str, args, out: Path) -> None:
    """Write ``paper_<encoder>.{csv,md,png}`` for the data sets done so far."""
    name = f"paper_{encoder_key}" + (f"_{args.tag}" if args.tag else "")
    fits = "; ".join(
        f"{t['dataset'].iloc[0]}: " + ", ".join(f"{k} {v:.0f} s" for k, v in t.attrs["fit_seconds"].items())
        for t in tables
    )
    lines = header(f"The paper's experiment: {encoder_key} ({ENCODERS[encoder_key]})", command_line) + [
        f"Train {args.n_train} rows per data set ({args.epochs} epochs, head_learning_rate="
        f"{args.head_learning_rate} and max_grad_norm={args.max_grad_norm} for every model; "
        f"objective {args.objective!r} for the early-exit models, the "
        f"plain loss for the one-head truncated ones; {args.calibration_size:.0%} of the rows calibrate), test "
        f"{args.n_test} rows for accuracy; wall-clock timing on the first {args.n_test_b64} test rows at batch 64 "
        f"and the first {args.n_test_b1} at batch 1, medians of {args.repeats} runs, side by side in one process. "
        f"Inputs are cut at {args.max_length_cap or 'the data set default'} tokens. Speed-ups are over the sparse "
        "model at threshold 1.0 (full depth).",
        "",
        pd.DataFrame([summary(t) for t in tables]).to_markdown(index=False, floatfmt=".3f"),
        "",
        f"Fit times: {fits}.",
        "",
        f"![accuracy vs speed-up]({name}.png)",
    ]
    write_results(out, name, table=pd.concat(tables), lines=lines, figure=plot(tables))
    print("\n".join(lines[8:]), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoders", default="minilm6,mpnet12", help="comma-separated, from: " + ", ".join(ENCODERS))
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated, from: " + ", ".join(DATASETS))
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--n-test-b64", type=int, default=512, help="test rows timed at batch size 64")
    parser.add_argument("--n-test-b1", type=int, default=150, help="test rows timed at batch size 1")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--head-learning-rate", type=float, default=None, help="the estimator's head_learning_rate (every model)"
    )
    parser.add_argument(
        "--max-grad-norm",
        type=float,
        default=None,
        help="the estimator's max_grad_norm for every model (default: None, no clipping)",
    )
    parser.add_argument(
        "--max-length-cap", type=int, default=None, help="cut every input at this many tokens (default: per data set)"
    )
    parser.add_argument(
        "--objective", default="sum", help="objective of the multi-exit models (default: the paper's sum)"
    )
    parser.add_argument(
        "--calibration-size", type=float, default=0.1, help="the estimator's calibration_size (default 0.1)"
    )
    parser.add_argument(
        "--skip-every-layer", action="store_true", help="fit only the sparse layout (the every-layer curve is untimed)"
    )
    parser.add_argument(
        "--skip-truncated", action="store_true", help="fit no truncated baselines (early exit's own curve only)"
    )
    parser.add_argument("--tag", default="", help="suffix of the output names: paper_<encoder>_<tag>.*")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (median)")
    parser.add_argument(
        "--thresholds",
        type=lambda s: [float(t) for t in s.split(",")],
        default=[1.0, 0.99, 0.98, 0.97, 0.95, 0.93, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.5, 0.01],
        help="thresholds swept with exit_curve (accuracy, layer counts)",
    )
    parser.add_argument(
        "--timed",
        type=lambda s: [float(t) for t in s.split(",")],
        default=[1.0, 0.95, 0.9, 0.8, 0.7, 0.01],
        help="thresholds also timed (plus the loosest within 1 point); 0.01 sends every row out at the first head",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results (quick: /tmp)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of the pipeline")
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.n_test, args.n_test_b64, args.n_test_b1, args.epochs, args.repeats = 150, 60, 60, 10, 1, 1
        args.thresholds, args.timed = [1.0, 0.9, 0.7, 0.01], [1.0, 0.01]
    out = args.out or (Path("/tmp/skearly-paper-quick") if args.quick else Path(__file__).parent / "results")
    command_line = command(__file__, argv)
    begin = start(args.threads)
    for encoder_key in args.encoders.split(","):
        tables = []
        for dataset in args.datasets.split(","):
            tables.append(run(encoder_key, dataset, args))
            report(tables, encoder_key, command_line, args, out)  # after every data set: a crash loses nothing done
    print(f"\ntotal benchmark time: {time.perf_counter() - begin:.0f}s; outputs in {out}", flush=True)


if __name__ == "__main__":
    main()
