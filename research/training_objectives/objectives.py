"""Compare the training objectives (``objective="sum"``, ``"depth_weighted"``, ``"layer_weighted"``, ``"distill"``).

For each dataset (binary negative/positive tweets and 3-class tweets, from
:func:`skearly.datasets.load_tweet_sentiment`; Rotten Tomatoes snippets, SNLI
pairs and BBC News topics from :mod:`skearly.datasets`) and each objective
(``distill_a1`` is ``SelfDistillation(alpha=1.0)``: early heads learn only
from the final head; ``distill_t1``, ``distill_t4`` and ``distill_a025`` are
``SelfDistillation`` with ``temperature=1``, ``temperature=4`` and ``alpha=0.25``;
``early_weighted`` is ``LayerWeighted(power=-1.0)``: head ``i`` weighted by ``1 / layer``;
``distill_staged`` and ``distill_staged_a1`` are ``SelfDistillation(warmup_epochs=1)`` and
``SelfDistillation(alpha=1.0, warmup_epochs=1)``: one epoch of the summed loss, then distillation;
every objective uses ``--head-learning-rate`` for the heads, except
``sum_paper_lr``, the paper's recipe: the summed loss with one learning rate; every objective
trains without gradient clipping, the estimator's default, except ``sum_clip1``: the summed loss
with the global gradient norm clipped at 1.0, as every fit did before ``max_grad_norm``), the script
fine-tunes :class:`skearly.EarlyExitTextClassifier` on the packaged
all-MiniLM-L6-v2 encoder (same data, seed and budget for every objective) and
measures on the held-out test split:

* full-depth accuracy (threshold 1.0);
* every threshold of a fine grid at once with :meth:`~skearly.EarlyExitTextClassifier.exit_curve`
  (one pass through all layers), giving the area under the accuracy / layer
  speed-up curve and the oracle rows;
* P1, the loosest threshold within 1 point of the model's own full-depth
  accuracy (chosen on the test split, identically for every objective), and its
  **measured** wall-clock speed-up: ``predict`` at batch 64 at P1 and at full
  depth, timed side by side (interleaved repeats, median) in one run;
* the share of the oracle's savings reached at P1:
  ``(last layer - mean exit layer at P1) / (last layer - oracle mean exit layer)``,
  the oracle exiting each row at the earliest head agreeing with the final one;
* ECE per exit after temperature scaling, on the calibration split (with its
  bootstrap interval, from ``calibration_report_``), on the test split, and on a
  larger held-out split (``--ece-rows``, default 4,000 rows of the test pool),
  each with its noise floor (:func:`skearly.calibration.ece_noise_floor`).

Two stages, so that only the timing holds the machine-wide timing lock (from the repository root)::

    python -m research.training_objectives.objectives fit    # fine-tune, save models, exit curves, test ECE
    flock /tmp/skearly-timing.lock python -m research.training_objectives.objectives time   # time, write results

Outputs ``<out>/objectives.csv`` (one row per dataset and objective),
``<out>/objectives_curves.csv`` (every exit-curve row), ``<out>/objectives.md`` and
``<out>/objectives.png`` (``objectives_<tag>.*`` with ``--tag``). ``--seed`` fits with another
``random_state`` (the data splits stay the same) into its own model folders, to see how much
a comparison moves from one seed to the next. ``--quick`` makes a smoke run in a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from benchmarks._common import command, environment, start, timed, write_results  # noqa: E402
from skearly import EarlyExitTextClassifier  # noqa: E402
from skearly._utils.batching import tokenize, unpack_calibration_inputs  # noqa: E402
from skearly.calibration import calibrated_proba, ece_noise_floor, expected_calibration_error  # noqa: E402
from skearly.datasets import load_bbc_news, load_rotten_tomatoes, load_snli, load_tweet_sentiment  # noqa: E402
from skearly.network import all_head_logits  # noqa: E402
from skearly.objectives import LayerWeighted, SelfDistillation  # noqa: E402

#: name -> loader(n_train, n_test, rows): ``rows`` test rows (default ``n_test``) from the same split, so a
#: larger held-out sample keeps the training rows of an ``(n_train, n_test)`` fit
DATASETS = {
    "tweets_binary": lambda n, m, rows=None: load_tweet_sentiment(
        classes=("negative", "positive"), n_train=n, n_test=rows or m, random_state=0
    ),
    "tweets_3class": lambda n, m, rows=None: load_tweet_sentiment(
        classes=("negative", "neutral", "positive"), n_train=n, n_test=rows or m, random_state=0
    ),
    "rotten_tomatoes": lambda n, m, rows=None: load_rotten_tomatoes(n_train=n, n_test=rows or m),
    "snli": lambda n, m, rows=None: load_snli(n_train=n, n_test=rows or m),
    "bbc_news": lambda n, m, rows=None: load_bbc_news(n_train=min(n, 2127 - m), n_test=rows or m),
}
#: name in the tables -> (the estimator's ``objective``, whether the heads get ``--head-learning-rate``,
#: the estimator's ``max_grad_norm``); ``sum_paper_lr`` is the paper's recipe: the summed loss with one
#: learning rate for encoder and heads; ``sum_clip1`` clips the global gradient norm at 1.0
OBJECTIVES = {
    "sum": ("sum", True, None),
    "depth_weighted": ("depth_weighted", True, None),
    "distill": ("distill", True, None),
    "distill_a1": (SelfDistillation(alpha=1.0), True, None),
    "distill_t1": (SelfDistillation(temperature=1.0), True, None),
    "distill_t4": (SelfDistillation(temperature=4.0), True, None),
    "distill_a025": (SelfDistillation(alpha=0.25), True, None),
    "sum_paper_lr": ("sum", False, None),
    "sum_clip1": ("sum", True, 1.0),
    "early_weighted": (LayerWeighted(-1.0), True, None),
    "distill_staged": (SelfDistillation(warmup_epochs=1), True, None),
    "distill_staged_a1": (SelfDistillation(alpha=1.0, warmup_epochs=1), True, None),
}
THRESHOLDS = sorted({round(t, 3) for t in (*np.arange(0.30, 0.995, 0.01), 0.995, 0.999, 1.0)}, reverse=True)


def model_folder(args, name: str, objective: str) -> Path:
    """Where one fitted model lives in ``--work`` (seed 0 keeps the original names)."""
    return args.work / (f"{name}-{objective}" + (f"-seed{args.seed}" if args.seed else ""))


def load(name: str, args) -> tuple[list, list, np.ndarray, np.ndarray]:
    return DATASETS[name](args.n_train, args.n_test)


def p1_row(curve: pd.DataFrame) -> pd.Series:
    """The threshold row with the highest layer speed-up whose accuracy is within 1 point of full depth."""
    sweep = curve[curve["kind"] == "threshold"]
    full = sweep.loc[sweep["threshold"] == 1.0, "accuracy"].iloc[0]
    ok = sweep[sweep["accuracy"] >= full - 0.01 - 1e-12]
    return ok.sort_values(["expected_speedup", "threshold"], ascending=[False, False]).iloc[0]


def area_under_curve(curve: pd.DataFrame) -> float:
    """Mean accuracy over layer speed-ups from 1 to the largest reached (trapezoids on the threshold sweep)."""
    sweep = curve[curve["kind"] == "threshold"].sort_values("expected_speedup")
    x, y = sweep["expected_speedup"].to_numpy(), sweep["accuracy"].to_numpy()
    return float(np.trapezoid(y, x) / (x[-1] - x[0])) if x[-1] > x[0] else float(y[0])


def encode(clf: EarlyExitTextClassifier, X):
    """Tokenize rows ``X`` (texts, or ``(text, text)`` pairs) as the fitted model does."""
    pairs = len(X) > 0 and isinstance(X[0], tuple)
    first, second = ([a for a, _ in X], [b for _, b in X]) if pairs else (X, None)
    return tokenize(clf.tokenizer_, first, second, clf.max_length)


def head_logits(clf: EarlyExitTextClassifier, encoded) -> np.ndarray:
    """Uncalibrated logits of every head on tokenized rows (one pass through all layers)."""
    with torch.inference_mode():
        return np.asarray(all_head_logits(clf.network_, encoded, 64, torch.device("cpu")), dtype=np.float64)


def head_proba(clf: EarlyExitTextClassifier, encoded) -> np.ndarray:
    """Calibrated probabilities of every head on tokenized rows (one pass through all layers)."""
    logits = head_logits(clf, encoded)
    return np.stack([calibrated_proba(head, t) for head, t in zip(logits, clf.temperatures_, strict=True)])


def _ece_and_floor(clf: EarlyExitTextClassifier, X, y) -> tuple[list[float], list[float]]:
    """Per-exit ECE of rows ``X`` (texts or pairs) with labels ``y``, and its noise floor."""
    proba = head_proba(clf, encode(clf, X))
    y_index = np.searchsorted(clf.classes_, y)
    return [expected_calibration_error(p, y_index) for p in proba], [ece_noise_floor(p) for p in proba]


def calibration_check(clf: EarlyExitTextClassifier, X_test, y_test) -> dict[str, list[float]]:
    """ECE per exit on the test split, and the noise floor of the ECE on both splits.

    The floor (:func:`skearly.calibration.ece_noise_floor`) is the ECE a perfectly calibrated
    head with the same confidences would show on a split of that size.
    """
    test_ece, test_floor = _ece_and_floor(clf, X_test, y_test)
    calibration = head_proba(clf, unpack_calibration_inputs(clf.calibration_inputs_)[0])
    return {
        "test_ece": test_ece,
        "test_ece_floor": test_floor,
        "calibration_ece_floor": [ece_noise_floor(proba) for proba in calibration],
    }


def heldout_check(clf: EarlyExitTextClassifier, name: str, args) -> dict:
    """ECE per exit on a larger held-out split (``--ece-rows`` rows of the test pool, never trained on).

    The 1,000-row test split leaves the ECE's noise floor near 0.03, the very target; on 4,000 rows
    it is about half that, so an ECE there tells calibration error from sampling noise.
    """
    _, X, _, y = DATASETS[name](args.n_train, args.n_test, args.ece_rows)
    ece, floor = _ece_and_floor(clf, X, y)
    return {"heldout_rows": len(y), "heldout_ece": ece, "heldout_ece_floor": floor}


# ----------------------------------------------------------------------------------- stage 1: fit
def fit_stage(args) -> None:
    args.work.mkdir(parents=True, exist_ok=True)
    for name in args.datasets:
        X_train, X_test, y_train, y_test = load(name, args)
        for objective in args.objectives:
            folder = model_folder(args, name, objective)
            folder.mkdir(parents=True, exist_ok=True)
            try:  # claim the model, so that several fit processes can share the list
                os.close(os.open(folder / "claimed", os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                print(f"{name} / {objective}: fitted (or being fitted) by another run", flush=True)
                continue
            spec, own_head_rate, max_grad_norm = OBJECTIVES[objective]
            clf = EarlyExitTextClassifier(
                objective=spec,
                max_grad_norm=max_grad_norm,
                epochs=args.epochs,
                head_learning_rate=args.head_learning_rate if own_head_rate else None,
                max_length=args.max_length,
                calibration_size=args.calibration_size,
                random_state=args.seed,
                verbose=args.verbose,
            )
            clf.fit(X_train, y_train)
            print(f"{name} / {objective}: fitted in {clf.fit_time_:.0f}s", flush=True)
            curve = clf.exit_curve(X_test, y_test, thresholds=THRESHOLDS)
            clf.save(folder / "model")
            curve.to_csv(folder / "curve.csv", index=False)
            clf.calibration_report_.to_csv(folder / "calibration.csv", index=False)
            meta = {"fit_seconds": clf.fit_time_, "loss_curve": clf.loss_curve_}
            meta.update(calibration_check(clf, X_test, y_test))
            (folder / "done.json").write_text(json.dumps(meta))


# ------------------------------------------------------------------------------ stage 2: timing
def time_pair(clf: EarlyExitTextClassifier, X: list[str], threshold: float, repeats: int) -> tuple[float, float]:
    """Median seconds of ``predict`` at full depth and at ``threshold``, interleaved (batch 64)."""
    clf.set_params(predict_batch_size=64, threshold=1.0)
    clf.predict(X[:64])  # warm-up
    full, early = [], []
    for _ in range(repeats):
        for value, out in ((1.0, full), (threshold, early)):
            clf.set_params(threshold=value)
            out.append(timed(lambda: clf.predict(X)))
    return float(np.median(full)), float(np.median(early))


def time_stage(args) -> None:
    records, curves, calibrations = [], [], []
    for name in args.datasets:
        _, X_test, _, y_test = load(name, args)
        for objective in args.objectives:
            folder = model_folder(args, name, objective)
            if not (folder / "done.json").exists():
                print(f"{name} / {objective}: not fitted, left out", flush=True)
                continue
            meta = json.loads((folder / "done.json").read_text())
            stale_test = "test_ece_floor" not in meta  # fitted by an older version of this script
            stale_heldout = meta.get("heldout_request") != args.ece_rows  # not measured yet, or on another size
            if stale_test or stale_heldout:
                model = EarlyExitTextClassifier.load(folder / "model")
                if stale_test:
                    meta.update(calibration_check(model, X_test, y_test))
                if stale_heldout:
                    meta.update(heldout_check(model, name, args), heldout_request=args.ece_rows)
                (folder / "done.json").write_text(json.dumps(meta))
            curve = pd.read_csv(folder / "curve.csv")
            calib = pd.read_csv(folder / "calibration.csv")
            p1 = p1_row(curve)
            timing_file = folder / "timing.json"
            if not timing_file.exists() and not args.skip_timing:  # timed once per model: later runs reuse it
                clf = EarlyExitTextClassifier.load(folder / "model")
                t_full, t_p1 = time_pair(clf, X_test, float(p1["threshold"]), args.repeats)
                accuracy = float(np.mean(clf.predict(X_test) == y_test))  # at P1: must equal the curve's
                assert abs(accuracy - p1["accuracy"]) < 1e-9, (accuracy, p1["accuracy"])
                timing_file.write_text(json.dumps({"full": t_full, "p1": t_p1, "environment": environment()}))
            timing = json.loads(timing_file.read_text()) if timing_file.exists() else {}
            t_full, t_p1 = timing.get("full", np.nan), timing.get("p1", np.nan)
            sweep = curve[curve["kind"] == "threshold"]
            oracle = curve[curve["kind"] == "oracle"].iloc[0]
            last = int(calib["layer"].max())
            record = {
                "dataset": name,
                "objective": objective,
                "full_accuracy": float(sweep.loc[sweep["threshold"] == 1.0, "accuracy"].iloc[0]),
                "p1_threshold": float(p1["threshold"]),
                "p1_accuracy": float(p1["accuracy"]),
                "p1_mean_exit_layer": float(p1["mean_exit_layer"]),
                "p1_layer_speedup": float(p1["expected_speedup"]),
                "p1_measured_speedup_b64": t_full / t_p1,
                "p1_efficiency": t_full / t_p1 / float(p1["expected_speedup"]),
                "seconds_full_b64": t_full,
                "seconds_p1_b64": t_p1,
                "auc_accuracy_speedup": area_under_curve(curve),
                "oracle_mean_exit_layer": float(oracle["mean_exit_layer"]),
                "oracle_layer_speedup": float(oracle["expected_speedup"]),
                "oracle_savings_share": (last - float(p1["mean_exit_layer"]))
                / (last - float(oracle["mean_exit_layer"])),
                "calibration_rows": int(calib["n_rows"].iloc[0]),
                "max_ece_after_calib": float(calib["ece_after"].max()),
                "max_ece_test": float(max(meta["test_ece"])),
                "max_ece_test_above_floor": float(np.max(np.subtract(meta["test_ece"], meta["test_ece_floor"]))),
                "heldout_rows": int(meta["heldout_rows"]),
                "max_ece_heldout": float(max(meta["heldout_ece"])),
                "max_ece_heldout_floor": float(max(meta["heldout_ece_floor"])),
                "fit_seconds": meta["fit_seconds"],
            }
            records.append(record)
            print(
                f"{name} / {objective}: full {record['full_accuracy']:.4f}, P1 {record['p1_threshold']} "
                f"acc {record['p1_accuracy']:.4f}, measured x{record['p1_measured_speedup_b64']:.2f} "
                f"(layers x{record['p1_layer_speedup']:.2f}), AUC {record['auc_accuracy_speedup']:.4f}",
                flush=True,
            )
            curves.append(curve.assign(dataset=name, objective=objective))
            calibrations.append(
                calib.assign(
                    dataset=name,
                    objective=objective,
                    ece_noise_floor=meta["calibration_ece_floor"],
                    ece_test=meta["test_ece"],
                    ece_test_floor=meta["test_ece_floor"],
                    ece_heldout=meta["heldout_ece"],
                    ece_heldout_floor=meta["heldout_ece_floor"],
                    heldout_rows=meta["heldout_rows"],
                )
            )
    write_outputs(pd.DataFrame(records), pd.concat(curves), pd.concat(calibrations), args)


# --------------------------------------------------------------------------------- reporting
def write_outputs(table: pd.DataFrame, curves: pd.DataFrame, calib: pd.DataFrame, args) -> None:
    out = args.out
    base = table[table["objective"] == "sum"].set_index("dataset")
    table["speedup_vs_sum"] = table["p1_measured_speedup_b64"] / table["dataset"].map(base["p1_measured_speedup_b64"])
    table["full_accuracy_delta_points"] = 100 * (table["full_accuracy"] - table["dataset"].map(base["full_accuracy"]))
    stem = f"objectives_{args.tag}" if args.tag else "objectives"
    # --skip-timing: the measured columns hold only timings kept from earlier runs (NaN where none)
    time_stage_words = "time --skip-timing" if args.skip_timing else "time"
    write_results(out, f"{stem}_curves", table=curves)
    shown = [
        "dataset",
        "objective",
        "full_accuracy",
        "full_accuracy_delta_points",
        "p1_threshold",
        "p1_accuracy",
        "p1_layer_speedup",
        "p1_measured_speedup_b64",
        "p1_efficiency",
        "speedup_vs_sum",
        "auc_accuracy_speedup",
        "oracle_layer_speedup",
        "oracle_savings_share",
        "max_ece_after_calib",
        "max_ece_test",
        "max_ece_test_above_floor",
        "heldout_rows",
        "max_ece_heldout",
        "max_ece_heldout_floor",
        "fit_seconds",
    ]
    ece_cols = [
        "dataset",
        "objective",
        "layer",
        "temperature",
        "accuracy",
        "ece_before",
        "ece_after",
        "ece_after_low",
        "ece_after_high",
        "ece_noise_floor",
        "ece_test",
        "ece_test_floor",
        "ece_heldout",
        "ece_heldout_floor",
        "heldout_rows",
        "n_rows",
    ]
    lines = [
        "# Training objectives compared",
        "",
        f"Environment: {environment()}",
        "",
        f"Commands: `{args.command.format(stage='fit')}`, then "
        f"`flock /tmp/skearly-timing.lock {args.command.format(stage=time_stage_words)}` (models and timings are "
        "kept in "
        "`--work`: rerunning a stage redoes only what is missing).",
        "",
        f"Each model: all-MiniLM-L6-v2 (6 layers, a head after every layer), {args.n_train} training rows "
        f"(BBC News: {min(args.n_train, 2127 - args.n_test)}; {args.epochs} epochs; head_learning_rate="
        f"{args.head_learning_rate} except sum_paper_lr (heads at the encoder's rate); no gradient clipping "
        f"except sum_clip1 (max_grad_norm=1.0); max_length={args.max_length}; "
        f"calibration_size={args.calibration_size}, so "
        f"{int(np.ceil(args.calibration_size * args.n_train))} calibration rows), "
        f"random_state={args.seed} (train/test split: seed 0); test "
        f"{args.n_test} rows. Exit rule: calibrated max probability. P1 = the threshold with the largest "
        "layer speed-up whose test accuracy is within 1 point of the same model's full depth (picked on the "
        "test split from a 0.30-1.00 grid by `exit_curve`). `p1_measured_speedup_b64` = wall-clock seconds of "
        f"`predict` at full depth / at P1, batch 64, CPU, median of {args.repeats} interleaved repeats in one "
        "run (under the timing lock; other jobs still ran on the machine: `p1_efficiency` = measured / layer "
        "speed-up, about 0.9-1.0 when undisturbed, shows how far a timing can be trusted; compare objectives "
        "by `p1_layer_speedup` when it is far lower). `auc_accuracy_speedup` = mean test accuracy over layer "
        "speed-ups 1-6. "
        "`oracle_savings_share` = layers saved at P1 / layers saved by the oracle (each row at the earliest "
        "head agreeing with the final one). ECE: 15 bins, after temperature scaling; `max_ece_after_calib` on "
        "the calibration split (where the temperatures were fitted), `max_ece_test` on the test split; "
        "`max_ece_test_above_floor` = the largest gap, over the exits, between the test ECE and its noise floor "
        "(the ECE a perfectly calibrated head with the same confidences shows on a split of this size, "
        "`skearly.calibration.ece_noise_floor`): what is left of the ECE once sampling noise is accounted for. "
        f"`max_ece_heldout`: the worst exit's ECE on a larger held-out split (`heldout_rows`: up to {args.ece_rows} "
        "rows of the test pool, as many as it has; never trained or calibrated on), where the noise floor "
        "(`max_ece_heldout_floor`, worst exit) is about half the 1,000-row one: the measurement that can tell "
        "an ECE of 0.03 from noise.",
        "",
        table[shown].to_markdown(index=False, floatfmt=".4f"),
        "",
        "Per-exit calibration (`ece_after_low`/`high`: 90% bootstrap interval on the calibration split; "
        "`ece_noise_floor`: the ECE of a perfectly calibrated head on the calibration split; `ece_test` and "
        "`ece_test_floor`: the same on the test split):",
        "",
        calib[ece_cols].to_markdown(index=False, floatfmt=".4f"),
        "",
        f"![objectives]({stem}.png)",
    ]
    write_results(out, stem, table=table, lines=lines, figure=plot(table, curves))
    print("\n".join(lines[6:10]), flush=True)


def plot(table: pd.DataFrame, curves: pd.DataFrame):
    names = list(dict.fromkeys(table["dataset"]))
    fig, axes = plt.subplots(1, len(names), figsize=(6.5 * len(names), 4.5), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for objective in dict.fromkeys(table["objective"]):
            curve = curves[(curves["dataset"] == name) & (curves["objective"] == objective)]
            if curve.empty:  # an objective run on some data sets only
                continue
            sweep = curve[curve["kind"] == "threshold"].sort_values("expected_speedup")
            (line,) = ax.plot(sweep["expected_speedup"], sweep["accuracy"], "-", label=objective)
            row = table[(table["dataset"] == name) & (table["objective"] == objective)].iloc[0]
            ax.plot([row["p1_layer_speedup"]], [row["p1_accuracy"]], "o", color=line.get_color())
            oracle = curve[curve["kind"] == "oracle"].iloc[0]
            ax.plot([oracle["expected_speedup"]], [oracle["accuracy"]], "^", color=line.get_color())
        ax.set_xlabel("layer speed-up over full depth (6 / mean exit layer)")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{name} (dots: P1, triangles: oracle)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=("fit", "time"))
    parser.add_argument("--datasets", type=lambda s: s.split(","), default=list(DATASETS))
    parser.add_argument(
        "--objectives", type=lambda s: s.split(","), default=list(OBJECTIVES), help=", ".join(OBJECTIVES)
    )
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--calibration-size", type=float, default=0.2)
    parser.add_argument("--head-learning-rate", type=float, default=None, help="the estimator's head_learning_rate")
    parser.add_argument("--max-length", type=int, default=128, help="the estimator's max_length")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (median)")
    parser.add_argument("--seed", type=int, default=0, help="estimator random_state (train/test split fixed)")
    parser.add_argument("--tag", default="", help="outputs objectives_<tag>.* instead of objectives.*")
    parser.add_argument(
        "--ece-rows", type=int, default=4000, help="rows of the larger held-out split the ECE is also measured on"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--work", type=Path, default=Path("/tmp/skearly-objectives"), help="fitted models")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--skip-timing", action="store_true", help="write the results with only the timings already measured"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)
    rest = [a for a in (argv or sys.argv[1:]) if a not in ("fit", "time", "--skip-timing")]
    args.command = f"{command(__file__, [])} {{stage}} " + " ".join(shlex.quote(a) for a in rest)
    if args.quick:
        args.n_train, args.n_test, args.epochs, args.repeats, args.ece_rows = 300, 200, 1, 1, 400
    begin = start(args.threads)
    (fit_stage if args.stage == "fit" else time_stage)(args)
    print(f"{args.stage} stage: {time.perf_counter() - begin:.0f}s", flush=True)


if __name__ == "__main__":
    main()
