"""Inference backends side by side: accuracy, calibration and throughput against the plain HF fp32 forward.

Fits :class:`skearly.EarlyExitTextClassifier` once on real binary tweets (packaged
all-MiniLM-L6-v2, cached on disk with ``memory=`` so reruns do not refit), then for each
backend (``torch`` fp32, ``int8``, ``onnx``, ``onnx-int8`` and, with ``--compile``,
``torch.compile`` of the layers) measures on the held-out test split:

* accuracy at full depth and at P1, the loosest threshold whose accuracy is within 1 point
  of the **fp32** full-depth model (one pass through all layers per backend, every threshold
  replayed from it, as ``exit_curve`` does);
* the expected calibration error of every exit head, with the temperatures ``predict`` uses on
  that backend (refitted on the backend's own logits of the calibration split when the backend's
  ``refits_temperatures`` is true: ``clf.calibration_report(backend)``) and, for comparison, with
  the fit-time (fp32) temperatures;
* predict throughput at batch 64 and batch 1 (median of repeats, all backends and the plain
  HF forward interleaved in one loop), and its ratio to the plain Hugging Face
  ``AutoModelForSequenceClassification`` fp32 forward of the same encoder at the same batch size;
* the time to build each backend's runner and to refit its temperatures (first predict only).

Outputs ``<out>/backends.csv``, ``<out>/backends_ece.csv`` (per backend and exit: temperatures,
ECE and ECE increase over fp32), ``<out>/backends.md`` and ``<out>/backends.png``.
Run: ``python benchmarks/backends.py`` (``--quick`` for a smoke run; ``--quick --repeats 0
--out /tmp/b`` skips the timings).
"""

from __future__ import annotations

import argparse
import copy
import fcntl
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from _common import (  # noqa: E402
    CPU,
    command,
    header,
    loosest_within_one_point,
    plain_predict,
    start,
    timed,
    write_results,
)
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

from skearly import EarlyExitTextClassifier  # noqa: E402
from skearly.calibration import calibrated_head_proba, expected_calibration_error  # noqa: E402
from skearly.datasets import load_tweet_sentiment  # noqa: E402
from skearly.encoders import default_encoder_path  # noqa: E402
from skearly.exit_criteria import resolve_criterion  # noqa: E402
from skearly.exit_curve import exit_curve_from_proba  # noqa: E402
from skearly.inference import CachedBackend, InferenceEngine, resolve_backend, resolve_scheduler  # noqa: E402


class CompiledLayers:
    """Layer runner of a network copy whose layers go through ``torch.compile`` (dynamic shapes)."""

    def __init__(self, network) -> None:
        self._network = copy.deepcopy(network).eval()
        self.exit_layers, self.n_layers_used, self.n_classes = (
            self._network.exit_layers,
            self._network.n_layers_used,
            self._network.n_classes,
        )
        self.heads = self._network.heads
        layers = self._network.encoder.encoder.layer
        self._layers = [torch.compile(layers[i], dynamic=True) for i in range(self.n_layers_used)]

    def embed(self, *args):
        return self._network.embed(*args)

    def layer_context(self, hidden, mask):
        return self._network.layer_context(hidden, mask)

    def run_layer(self, index, hidden, context):
        return self._layers[index](hidden, context)

    def exit_logits(self, head, hidden, mask):
        return self._network.exit_logits(head, hidden, mask)


class CompileBackend(CachedBackend):
    """``torch.compile`` of each layer (measured here only; not registered in skearly)."""

    name = "torch.compile"

    def build(self, network):
        return CompiledLayers(network)


def head_logits(clf, backend, X) -> np.ndarray:
    """Logits of every head on ``X`` through ``backend``'s runner (one full pass; temperatures applied later)."""
    engine = InferenceEngine(
        runner=resolve_backend(backend).prepare(clf.network_, CPU),
        tokenizer=clf.tokenizer_,
        temperatures=clf.temperatures_,
        max_length=clf.max_length,
        batch_size=64,
        device=CPU,
        scheduler=resolve_scheduler("auto", CPU),
    )
    return engine.head_logits(list(X), None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=3000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--n-test-b1", type=int, default=200, help="test rows timed at batch size 1")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--head-learning-rate", type=float, default=None, help="the estimator's head_learning_rate")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats; 0: accuracy and ECE only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory", default="/tmp/skearly-backends-cache", help="fit cache folder")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile of the layers (unstable here)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--lock", default=None, help="file to flock around the measurements (not the fit)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.n_test, args.n_test_b1, args.epochs = 300, 200, 20, 1
        args.repeats = min(args.repeats, 1)
    command_line = command(__file__, argv)
    begin = start(args.threads)

    X_train, X_test, y_train, y_test = load_tweet_sentiment(
        classes=("negative", "positive"), n_train=args.n_train, n_test=args.n_test, random_state=0
    )
    clf = EarlyExitTextClassifier(
        epochs=args.epochs, head_learning_rate=args.head_learning_rate, random_state=0, memory=args.memory
    ).fit(X_train, y_train)
    print(f"fit (or cache read): {time.perf_counter() - begin:.1f}s", flush=True)
    table, ece_table = measure(clf, X_test, y_test, args)
    write(table, ece_table, args, command_line)


@contextmanager
def timing_lock(path: str | None):
    """Hold an exclusive flock on ``path`` (no-op for ``None``): no other timing run overlaps."""
    if path is None:
        yield
        return
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        print("timing (lock held)", flush=True)
        yield


def measure(clf, X_test, y_test, args) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accuracy, calibration and interleaved timings of every backend (see the module docstring)."""
    backends = ["torch", "int8", "onnx", "onnx-int8"] + ([CompileBackend()] if args.compile else [])
    names = [b if isinstance(b, str) else b.name for b in backends]

    # accuracy and calibration: one full pass per backend, every threshold replayed from it
    thresholds = [1.0, 0.99, 0.98, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6]
    criterion = resolve_criterion("max_proba")
    curves, ece, build_s, calibration_s, refitted = {}, [], {}, {}, {}
    y_index = np.searchsorted(clf.classes_, y_test)
    for backend, name in zip(backends, names):
        t = time.perf_counter()
        resolve_backend(backend).prepare(clf.network_, CPU)
        build_s[name] = time.perf_counter() - t
        t = time.perf_counter()
        report = clf.calibration_report(backend)  # the temperatures predict uses with this backend (cached)
        calibration_s[name] = time.perf_counter() - t
        refitted[name] = bool(report["refitted"].all())
        temperatures = report["temperature"].to_numpy()
        logits = head_logits(clf, backend, X_test)
        proba = calibrated_head_proba(logits, temperatures)
        fit_time_proba = calibrated_head_proba(logits, clf.temperatures_)
        curves[name] = exit_curve_from_proba(proba, y_test, clf.classes_, clf.head_layers_, criterion, thresholds)
        for head, layer in enumerate(clf.head_layers_):
            ece.append(
                {
                    "backend": name,
                    "temperatures_refitted": refitted[name],
                    "layer": layer,
                    "temperature": temperatures[head],
                    "fit_temperature": clf.temperatures_[head],
                    "ece": expected_calibration_error(proba[head], y_index),
                    "ece_fit_temperatures": expected_calibration_error(fit_time_proba[head], y_index),
                }
            )
        print(f"{name}: built in {build_s[name]:.1f}s, temperatures in {calibration_s[name]:.1f}s", flush=True)
    ece_long = pd.DataFrame(ece)
    fp32_ece = ece_long[ece_long["backend"] == "torch"].set_index("layer")["ece"]
    ece_long["ece_increase_vs_fp32"] = ece_long["ece"] - ece_long["layer"].map(fp32_ece)
    ece_long["ece_increase_vs_fp32_fit_temperatures"] = ece_long["ece_fit_temperatures"] - ece_long["layer"].map(
        fp32_ece
    )
    fp32_full = curves["torch"].query("kind == 'threshold' and threshold == 1.0")["accuracy"].iloc[0]
    settings = {}
    for name, curve in curves.items():
        sweep = curve[curve["kind"] == "threshold"]
        settings[name] = {"full depth": 1.0, "P1": loosest_within_one_point(sweep, fp32_full)}

    # throughput: every backend and the plain HF forward interleaved in one loop
    path = str(default_encoder_path())
    plain = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2, local_files_only=True).eval()
    plain_tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    X_b1 = list(X_test[: args.n_test_b1])
    seconds: dict[tuple[str, str, int], list[float]] = {}

    def record(key, fn):
        seconds.setdefault(key, []).append(timed(fn))

    with timing_lock(args.lock):
        for _ in range(args.repeats):
            for batch, X in ((64, list(X_test)), (1, X_b1)):
                record(("plain HF fp32", "full depth", batch), partial(plain_predict, plain, plain_tokenizer, X, batch))
                for backend, name in zip(backends, names):
                    for setting, threshold in settings[name].items():
                        clf.set_params(backend=backend, threshold=threshold, predict_batch_size=batch)
                        clf.predict(X[:8])  # warm-up (shapes)
                        record((name, setting, batch), partial(clf.predict, X))
    rows = []
    n_rows = {64: len(X_test), 1: len(X_b1)}

    def throughput(key) -> float:  # NaN without timings (--repeats 0)
        return n_rows[key[2]] / np.median(seconds[key]) if key in seconds else np.nan

    plain_tps = {b: throughput(("plain HF fp32", "full depth", b)) for b in (64, 1)}
    for name in ["plain HF fp32", *names]:
        for setting in ("full depth", "P1"):
            if name == "plain HF fp32" and setting == "P1":
                continue
            row = {"backend": name, "setting": setting}
            if name in curves:
                threshold = settings[name][setting]
                point = curves[name].query("kind == 'threshold' and threshold == @threshold").iloc[0]
                own = ece_long[ece_long["backend"] == name]
                row.update(
                    threshold=threshold,
                    accuracy=point["accuracy"],
                    accuracy_loss_vs_fp32_full=fp32_full - point["accuracy"],
                    mean_exit_layer=point["mean_exit_layer"],
                    temperatures_refitted=refitted[name],
                    max_ece_increase_vs_fp32=own["ece_increase_vs_fp32"].max(),
                    max_ece_increase_vs_fp32_fit_temperatures=own["ece_increase_vs_fp32_fit_temperatures"].max(),
                    build_seconds=build_s[name],
                    temperature_refit_seconds=calibration_s[name],
                )
            for batch in (64, 1):
                tps = throughput((name, setting, batch))
                row[f"texts_per_s_b{batch}"] = tps
                row[f"speedup_vs_plain_b{batch}"] = tps / plain_tps[batch]
            rows.append(row)
    columns = ["backend", "setting", "threshold", "accuracy", "accuracy_loss_vs_fp32_full", "mean_exit_layer"]
    columns += ["texts_per_s_b64", "speedup_vs_plain_b64", "texts_per_s_b1", "speedup_vs_plain_b1"]
    columns += ["temperatures_refitted", "max_ece_increase_vs_fp32", "max_ece_increase_vs_fp32_fit_temperatures"]
    table = pd.DataFrame(rows)[columns + ["build_seconds", "temperature_refit_seconds"]]
    return table, ece_long


def write(table: pd.DataFrame, ece_long: pd.DataFrame, args, command_line: str) -> None:
    write_results(args.out, "backends_ece", table=ece_long)
    names = list(dict.fromkeys(ece_long["backend"]))
    ece_table = ece_long.pivot(index="layer", columns="backend", values="ece")[names].reset_index()
    ece_summary = ece_long.groupby("backend", sort=False).agg(
        temperatures_refitted=("temperatures_refitted", "all"),
        max_ece_increase_vs_fp32=("ece_increase_vs_fp32", "max"),
        max_ece_increase_vs_fp32_fit_temperatures=("ece_increase_vs_fp32_fit_temperatures", "max"),
    )
    lines = header("Inference backends: binary tweets, MiniLM-L6, CPU", command_line) + [
        f"Train {args.n_train} tweets ({args.epochs} epochs, head_learning_rate={args.head_learning_rate}), "
        f"test {args.n_test} (batch-1 timing on "
        f"{args.n_test_b1}); timings are medians of {args.repeats} interleaved runs on the CPU. "
        "P1 = loosest threshold whose accuracy is within 1 point of the fp32 (`torch`) full-depth model. "
        "`speedup_vs_plain_b*` = throughput / throughput of the plain HF `AutoModelForSequenceClassification` "
        "fp32 forward at the same batch size (timed in the same loop; untrained head, speed only). "
        "`max_ece_increase_vs_fp32` = worst exit head's ECE minus fp32's at that head (test split), with the "
        "temperatures `predict` uses on that backend: refitted on the backend's own logits of the calibration "
        "split when `temperatures_refitted` (`clf.calibration_report(backend)`); "
        "`max_ece_increase_vs_fp32_fit_temperatures` = the same with the fit-time (fp32) temperatures, i.e. "
        "without the refit. `build_seconds` / `temperature_refit_seconds` = first-predict cost of building the "
        "runner / of the calibration pass that refits the temperatures.",
        "",
        table.assign(temperatures_refitted=table["temperatures_refitted"].map({True: "yes", False: "no"}))
        .fillna({"temperatures_refitted": ""})
        .to_markdown(index=False, floatfmt=".3f"),
        "",
        "ECE of every exit head on the test split (15 bins), per backend, with the temperatures `predict` uses "
        "(per-head temperatures and the fit-time comparison in `backends_ece.csv`):",
        "",
        ece_table.to_markdown(index=False, floatfmt=".4f"),
        "",
        "Worst per-exit ECE increase over fp32, with the backend's temperatures and with the fit-time ones:",
        "",
        ece_summary.reset_index().to_markdown(index=False, floatfmt=".4f"),
        "",
        "![backends](backends.png)",
    ]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, group in table[table["backend"] != "plain HF fp32"].groupby("backend", sort=False):
        ax.plot(group["speedup_vs_plain_b64"], group["accuracy"], "o-", label=name)
    ax.axvline(1.0, color="red", lw=0.8, ls="--", label="plain HF fp32")
    ax.axvline(5.0, color="grey", lw=0.8, ls=":", label="5x target")
    ax.set_xlabel("throughput / plain HF fp32 forward (batch 64, CPU)")
    ax.set_ylabel("test accuracy")
    ax.set_title("backends x early exit: full depth (left point) and P1 (right point)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    write_results(args.out, "backends", table=table, lines=lines, figure=fig)
    print("\n".join(lines[8:]), flush=True)


if __name__ == "__main__":
    main()
