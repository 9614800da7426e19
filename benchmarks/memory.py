"""Peak memory growth of ``predict`` on a large input (200,000 real tweets by default).

Fits an :class:`~skearly.EarlyExitTextClassifier` on a few hundred real tweets
(one epoch), warms it up with one small ``predict``, then predicts a large list
of tweets (the corpus cycled) at a threshold where many rows exit early, while a
background thread samples the process's resident set size (RSS). The figure
reported is the peak RSS during that ``predict`` minus the RSS just before it:
the memory the call itself needs on top of its input. Where the kernel allows,
the peak is also read from ``VmHWM`` after resetting it (``/proc/self/clear_refs``).

The real packaged encoder is used only with ``--encoder real`` (or ``auto``
when its fit finishes within ``--real-fit-limit`` seconds); otherwise the tiny
random test encoder, which exercises the same code paths (chunked tokenization,
length-sorted batches, shrinking batches) at a fraction of the cost.

Linux only (reads ``/proc``); uses ``psutil`` for the RSS when it is installed.

Examples
--------
python benchmarks/memory.py --encoder tiny
python benchmarks/memory.py --encoder real --n-predict 20000
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
from _common import command, header

RESULTS = Path(__file__).resolve().parent / "results" / "memory.md"
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


def _maybe_mib(n_bytes: float | None) -> str:
    return "n/a (not glibc)" if n_bytes is None else mib(n_bytes)


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.1f} MiB"


def tiny_classifier(encoder: str, predict_batch_size: int):
    """Settings under which the tiny random encoder learns something in one epoch."""
    from skearly import EarlyExitTextClassifier

    return EarlyExitTextClassifier(
        encoder,
        epochs=1,
        batch_size=16,
        learning_rate=3e-3,
        calibration_size=0.2,
        random_state=0,
        max_length=64,
        predict_batch_size=predict_batch_size,
    )


def fit_real_within_limit(args, X_train, y_train, folder: Path) -> bool:
    """Fit on the real encoder in a child process, saved to ``folder``; False if it takes longer than the limit."""
    import multiprocessing as mp

    context = mp.get_context("spawn")
    child = context.Process(target=_fit_real_child, args=(args.predict_batch_size, X_train, y_train, str(folder)))
    child.start()
    child.join(args.real_fit_limit)
    if child.is_alive():
        child.terminate()
        child.join()
        return False
    return child.exitcode == 0


def _fit_real_child(predict_batch_size: int, X_train, y_train, folder: str) -> None:
    from skearly import EarlyExitTextClassifier

    clf = EarlyExitTextClassifier(
        None,
        epochs=1,
        batch_size=16,
        calibration_size=0.2,
        random_state=0,
        max_length=64,
        predict_batch_size=predict_batch_size,
    )
    clf.fit(X_train, y_train).save(folder)


def pick_threshold(clf, texts: list[str], last_layer: int, target: float = 0.6) -> float:
    """The threshold (0.34 to 0.99) whose share of ``texts`` exiting before the last head is closest to ``target``."""
    best, best_gap = 0.99, np.inf
    for threshold in np.round(np.arange(0.34, 1.0, 0.01), 2):
        _, layers = clf.set_params(threshold=float(threshold)).predict_with_exits(texts)
        gap = abs(np.mean(layers < last_layer) - target)
        if gap < best_gap:
            best, best_gap = float(threshold), gap
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--encoder",
        choices=["tiny", "real", "auto"],
        default="tiny",
        help="tiny: random 4-layer test encoder (default); real: the packaged all-MiniLM-L6-v2;\n"
        "auto: real if its fit ends within --real-fit-limit seconds, else tiny",
    )
    parser.add_argument("--n-train", type=int, default=300, help="training tweets (default 300)")
    parser.add_argument("--n-predict", type=int, default=200_000, help="texts to predict (default 200,000)")
    parser.add_argument("--n-warmup", type=int, default=2_000, help="texts of the warm-up predict (default 2,000)")
    parser.add_argument(
        "--threshold", type=float, default=None, help="exit threshold (default: the one where ~60%% of rows exit early)"
    )
    parser.add_argument("--predict-batch-size", type=int, default=64, help="rows per inference batch (default 64)")
    parser.add_argument("--real-fit-limit", type=float, default=120.0, help="seconds allowed for the real fit (auto)")
    parser.add_argument("--interval", type=float, default=0.002, help="RSS sampling interval in seconds")
    parser.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"markdown report (default {RESULTS})")
    args = parser.parse_args(argv)

    import torch

    from skearly import EarlyExitTextClassifier
    from skearly.datasets import load_tweet_sentiment, load_tweet_sentiment_frame
    from skearly.encoders import make_tiny_encoder

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    X_train, _, y_train, _ = load_tweet_sentiment(n_train=args.n_train, random_state=0)
    corpus = load_tweet_sentiment_frame()["text"].tolist()
    texts = [corpus[i % len(corpus)] for i in range(args.n_predict)]  # the caller's input: allocated before
    warmup = corpus[-args.n_warmup :]

    workdir = Path(tempfile.mkdtemp(prefix="skearly-memory-"))
    encoder_name, clf = None, None
    start = time.perf_counter()
    if args.encoder in ("real", "auto"):
        folder = workdir / "real-model"
        if args.encoder == "real":
            _fit_real_child(args.predict_batch_size, X_train, y_train, str(folder))
            ok = True
        else:
            ok = fit_real_within_limit(args, X_train, y_train, folder)
        if ok:
            clf, encoder_name = EarlyExitTextClassifier.load(folder), "real packaged all-MiniLM-L6-v2 (6 layers)"
        else:
            print(f"real-encoder fit did not finish within {args.real_fit_limit:.0f}s: using the tiny encoder")
    if clf is None:
        encoder = str(make_tiny_encoder(workdir / "tiny-encoder"))
        clf = tiny_classifier(encoder, args.predict_batch_size).fit(X_train, y_train)
        encoder_name = "tiny random test encoder (4 layers, hidden 32; skearly.encoders.make_tiny_encoder)"
    fit_seconds = time.perf_counter() - start
    print(f"encoder: {encoder_name}; fitted on {len(X_train)} tweets in {fit_seconds:.1f}s")

    last_layer = clf.head_layers_[-1]
    threshold = args.threshold if args.threshold is not None else pick_threshold(clf, warmup[:500], last_layer)
    clf.set_params(threshold=threshold)
    clf.predict(warmup)  # warm-up: lazy imports, allocator pools, thread pools
    baseline = rss_bytes()
    kernel_reset = reset_peak()
    print(f"predicting {len(texts):,} texts at threshold {threshold} (baseline RSS {mib(baseline)}) ...")
    start = time.perf_counter()
    with PeakSampler(args.interval) as sampler:
        _, layers = clf.predict_with_exits(texts)
    seconds = time.perf_counter() - start
    kernel_peak = kernel_peak_bytes() if kernel_reset else None
    peak = max(sampler.peak, kernel_peak or 0)
    growth = peak - baseline
    output_bytes = len(texts) * (8 * len(clf.classes_) + 8 + clf.classes_.itemsize)  # proba, exit layers, labels
    early = float(np.mean(layers < last_layer))
    gc.collect()
    retained = rss_bytes() - baseline  # outputs still alive + freed memory the C allocator keeps
    trimmed = None
    if malloc_trim():
        trimmed = rss_bytes() - baseline

    print(f"peak RSS growth during predict: {mib(growth)} ({growth / len(texts):,.0f} bytes per text)")
    print(f"  sampler peak {mib(sampler.peak)} over {sampler.samples:,} samples; kernel VmHWM {mib(kernel_peak or 0)}")
    print(f"  outputs alone: {mib(output_bytes)}; mean exit layer {layers.mean():.2f} of {last_layer}; ")
    print(f"  {early:.0%} of rows exited early; {seconds:.1f}s ({len(texts) / seconds:,.0f} texts/s)")
    print(f"  after predict returned: {mib(retained)} above baseline; after malloc_trim: {_maybe_mib(trimmed)}")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        "\n".join(
            header("Memory of `predict` on a large input", command(__file__, argv))
            + [
                "| quantity | value |",
                "|---|---|",
                f"| encoder | {encoder_name} |",
                f"| training | {len(X_train)} real tweets, 1 epoch, {fit_seconds:.1f} s |",
                f"| texts predicted | {len(texts):,} real tweets (the {len(corpus):,}-tweet corpus cycled) |",
                f"| threshold / criterion | {threshold} / {clf.exit_criterion} |",
                f"| rows exiting early | {early:.1%} (mean exit layer {layers.mean():.2f} of {last_layer}) |",
                f"| RSS before predict (after warm-up) | {mib(baseline)} |",
                f"| peak RSS during predict | {mib(peak)} |",
                f"| **peak RSS growth** | **{mib(growth)}** ({growth / len(texts):,.0f} bytes per text) |",
                f"| of which outputs (proba, exit layers, labels) | {mib(output_bytes)} |",
                f"| RSS above baseline once predict returned (outputs alive) | {mib(retained)} |",
                f"| same, after glibc `malloc_trim(0)` | {_maybe_mib(trimmed)} |",
                f"| predict time | {seconds:.1f} s ({len(texts) / seconds:,.0f} texts/s) |",
                f"| RSS measured by | {'psutil' if _has_psutil() else '/proc/self/statm'} sampled every "
                f"{args.interval * 1000:g} ms ({sampler.samples:,} samples)"
                f"{' + kernel VmHWM after clear_refs' if kernel_reset else ''} |",
                "",
                "`predict` validates all rows, then tokenizes and runs them in chunks of 8,192 rows, so the",
                "memory it needs beyond the caller's input is the outputs plus one chunk's tokens and activations.",
                "The peak RSS is higher: the C allocator keeps memory freed by earlier chunks (the many",
                "differently shaped tensors of shrinking batches fragment its heap) instead of returning it to",
                "the OS. That memory is free for reuse, and `malloc_trim(0)` hands it back (row above).",
                "It does not accept iterators or generators (`TypeError`): pass a list, or call it chunk by chunk.",
                "",
            ]
        ),
        encoding="utf-8",
    )
    print(f"wrote {args.output}")
    return 0


def _has_psutil() -> bool:
    try:
        import psutil  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
