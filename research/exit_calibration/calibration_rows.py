"""How many calibration rows does temperature scaling need before every exit's ECE stays under 0.03?

``fit`` fits one temperature per exit head on its calibration split. This script
takes fitted multi-exit models (``research/training_objectives/objectives.py``'s, from ``--work``),
runs every head once over the data set's whole test pool (rows never trained or
calibrated on), and then, for many random draws, splits that pool into

* an evaluation set of ``--eval-rows`` rows, and
* calibration sets of each size in ``--sizes``, taken from the other rows,

fits the temperatures on each calibration set exactly as ``fit`` does
(:func:`skearly.calibration.fit_temperature`) and measures every exit's ECE (15 bins)

* **in sample** -- on the calibration rows themselves, as ``calibration_report_`` shows it;
* **held out** -- on the evaluation rows.

Per data set and size it reports the worst exit's ECE (mean and 90th percentile over the
draws), the share of draws in which *every* exit stays at or under 0.03, the worst exit's
noise floor on both (:func:`skearly.calibration.ece_noise_floor`: the ECE a perfectly
calibrated head scores on that many rows), and, as a bound, the held-out ECE when the
temperatures are fitted on the evaluation rows themselves.

    python -m research.exit_calibration.calibration_rows --datasets tweets_binary,tweets_3class,snli,rotten_tomatoes

Outputs ``<out>/calibration_rows.csv`` and ``<out>/calibration_rows.md`` (+ ``.png``).
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

from benchmarks._common import command, header, start, write_results  # noqa: E402
from research.training_objectives.objectives import DATASETS, encode, head_logits  # noqa: E402
from skearly import EarlyExitTextClassifier  # noqa: E402
from skearly.calibration import (  # noqa: E402
    calibrated_proba,
    ece_noise_floor,
    expected_calibration_error,
    fit_temperature,
)

TARGET = 0.03


def worst_exit(logits: np.ndarray, y: np.ndarray, temperatures: list[float], floor: bool = True) -> tuple[float, float]:
    """The largest ECE over the exits of heads' ``logits`` on labels ``y``, and the largest noise floor (or NaN)."""
    probas = [calibrated_proba(head, t) for head, t in zip(logits, temperatures, strict=True)]
    ece = max(expected_calibration_error(p, y) for p in probas)
    return ece, max(ece_noise_floor(p, n_resamples=50) for p in probas) if floor else float("nan")


def measure(logits: np.ndarray, y: np.ndarray, sizes: list[int], eval_rows: int, draws: int, seed: int):
    """One record per draw and calibration size (see the module docstring)."""
    rng = np.random.default_rng(seed)
    records = []
    for draw in range(draws):
        order = rng.permutation(len(y))
        evaluation, rest = order[:eval_rows], order[eval_rows:]
        own = [fit_temperature(head[evaluation], y[evaluation]) for head in logits]
        bound, eval_floor = worst_exit(logits[:, evaluation], y[evaluation], own)
        for size in sizes:
            if size > len(rest):
                continue
            rows = rest[:size]
            temperatures = [fit_temperature(head[rows], y[rows]) for head in logits]
            in_sample, in_floor = worst_exit(logits[:, rows], y[rows], temperatures)
            held_out, _ = worst_exit(logits[:, evaluation], y[evaluation], temperatures, floor=False)
            records.append(
                {
                    "draw": draw,
                    "calibration_rows": size,
                    "worst_ece_in_sample": in_sample,
                    "worst_floor_in_sample": in_floor,
                    "worst_ece_heldout": held_out,
                    "worst_floor_heldout": eval_floor,
                    "worst_ece_heldout_own_temperatures": bound,
                }
            )
    return records


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    def q90(values):
        return float(np.quantile(values, 0.9))

    def share_ok(values):
        return float(np.mean(np.asarray(values) <= TARGET))

    return (
        table.groupby(["dataset", "calibration_rows"], sort=False)
        .agg(
            draws=("draw", "size"),
            in_sample_mean=("worst_ece_in_sample", "mean"),
            in_sample_share_ok=("worst_ece_in_sample", share_ok),
            in_sample_floor=("worst_floor_in_sample", "mean"),
            heldout_mean=("worst_ece_heldout", "mean"),
            heldout_q90=("worst_ece_heldout", q90),
            heldout_share_ok=("worst_ece_heldout", share_ok),
            heldout_floor=("worst_floor_heldout", "mean"),
            heldout_own_temperatures=("worst_ece_heldout_own_temperatures", "mean"),
        )
        .reset_index()
    )


def plot(summary: pd.DataFrame):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, group in summary.groupby("dataset", sort=False):
        (line,) = axes[0].plot(group["calibration_rows"], group["heldout_mean"], "o-", label=f"{name}: held out")
        axes[0].plot(group["calibration_rows"], group["in_sample_mean"], "x--", color=line.get_color())
        axes[1].plot(group["calibration_rows"], group["heldout_share_ok"], "o-", label=name, color=line.get_color())
    axes[0].axhline(TARGET, color="grey", lw=0.8)
    axes[0].set_ylabel("worst exit's ECE (mean over draws; dashed: in sample)")
    axes[1].set_ylabel(f"share of draws with every exit's held-out ECE <= {TARGET}")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("calibration rows")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=lambda s: s.split(","), default=["tweets_binary", "tweets_3class", "snli"])
    parser.add_argument("--model", default="sum", help="which fitted model of --work: <dataset>-<model>/model")
    parser.add_argument("--sizes", type=lambda s: [int(v) for v in s.split(",")], default=[250, 500, 1000, 2000, 4000])
    parser.add_argument("--eval-rows", type=int, default=2000)
    parser.add_argument("--draws", type=int, default=30)
    parser.add_argument("--pool-rows", type=int, default=10000, help="most test-pool rows to use per data set")
    parser.add_argument("--n-train", type=int, default=2000, help="as the models were fitted with")
    parser.add_argument("--n-test", type=int, default=1000, help="as the models were fitted with")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--work", type=Path, default=Path("/tmp/skearly-objectives3"), help="fitted models")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    command_line, begin = command(__file__, argv), start(args.threads)
    records, pools = [], {}
    for name in args.datasets:
        clf = EarlyExitTextClassifier.load(args.work / f"{name}-{args.model}" / "model")
        _, X_pool, _, y_pool = DATASETS[name](args.n_train, args.n_test, args.pool_rows)
        logits = head_logits(clf, encode(clf, X_pool))
        y = np.searchsorted(clf.classes_, y_pool)
        pools[name] = len(y)
        eval_rows = min(args.eval_rows, len(y) // 2)
        for record in measure(logits, y, args.sizes, eval_rows, args.draws, seed=0):
            records.append({"dataset": name, "pool_rows": len(y), "eval_rows": eval_rows, **record})
        print(f"{name}: {len(y)} pool rows, {eval_rows} evaluation rows", flush=True)
    table = pd.DataFrame(records)
    summary = summarise(table)
    lines = header("Calibration rows needed for every exit's ECE to stay under 0.03", command_line) + [
        "Models fitted by `python -m research.training_objectives.objectives fit` (see "
        "`research/training_objectives/results/objectives_noclip.md`).",
        "",
        f"Models: `{args.model}` (all-MiniLM-L6-v2, a head after each of its 6 layers, fitted on {args.n_train} rows "
        "with half of them calibrating, seed 0). Pool: the data set's test pool ("
        + ", ".join(f"{k} {v} rows" for k, v in pools.items())
        + f"), never trained or calibrated on, run once through every head. {args.draws} random draws: each "
        "splits the pool into evaluation rows (`eval_rows` in the CSV: "
        f"{args.eval_rows}, or half the pool when smaller) and calibration sets of each size from the other rows; "
        "temperatures are fitted on each calibration set as `fit` does. Columns: the worst exit's ECE (15 bins) "
        "in sample (on the calibration rows, as `calibration_report_` shows it) and held out (on the evaluation "
        f"rows), its mean and 90th percentile over the draws, the share of draws with every exit <= {TARGET}, "
        "the worst exit's noise floor (the ECE a perfectly calibrated head scores on that many rows), and "
        "`heldout_own_temperatures`: the held-out worst exit when the temperatures are fitted on the "
        f"evaluation rows themselves (the best one temperature per head can do there). Whole run: "
        f"{time.perf_counter() - begin:.0f} s.",
        "",
        summary.to_markdown(index=False, floatfmt=".4f"),
        "",
        "![calibration rows](calibration_rows.png)",
    ]
    write_results(args.out, "calibration_rows", table=table, lines=lines, figure=plot(summary))
    print("\n".join(lines[10:]), flush=True)


if __name__ == "__main__":
    main()
