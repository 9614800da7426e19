"""Wall-clock trade-off of the inference engine's schedulers, against full depth and the plain HF forward.

Fits :class:`skearly.EarlyExitTextClassifier` once on real binary tweets (packaged
all-MiniLM-L6-v2, 6 layers, or ``--encoder all-mpnet-base-v2``, 12; ``--data bbc`` for BBC News;
cached with ``memory=`` so reruns skip the fit), then for each
batch size and threshold times ``predict`` of the same texts, interleaved, with

* ``plain HF``: ``AutoModelForSequenceClassification`` of the same encoder, tokenize +
  one forward per length-sorted batch (fp32 on CPU, bf16 autocast on CUDA): what a user
  would otherwise run;
* ``old engine`` (CUDA only): the shrinking scheduler with torch's default attention-kernel
  choice (the engine before the refilling scheduler); on a CPU the kernel choice does not
  apply, so that row would time the shrinking engine twice and is left out;
* ``shrinking`` and ``refilling``: the two schedulers of the current engine;
* ``refilling 0.25`` (only when ``--schedulers`` names it): the refilling scheduler with
  ``padding_tolerance=0.25``.

Timing is interleaved: every configuration predicts the test texts in turn, in an order
that rotates from run to run, and the reported time is the median of ``--repeats`` runs.
``--block-rows`` can cut the texts into blocks that are interleaved the same way (a
configuration's time is then the sum over its blocks), at the price of one ``predict`` call
per block. Speed-ups (over full depth, over the plain HF forward) are paired: the ratio of the two
configurations' times within each run, then the median over runs, so that a machine whose speed
drifts from run to run moves both sides of each ratio alike; ``texts_per_s`` is the median time.
``cost_vs_full_depth`` is the inverse of the speed-up over the configuration's full depth.

Every engine row records its own accuracy and exit layers (the engine tests check that
they agree row for row). Efficiency is measured speed-up over the same configuration's
full depth divided by the layer-count speed-up, by rows (6 / mean exit layer) and by
tokens (sum of tokens x 6 / sum of tokens x exit layer: long rows cost more and exit
later). Tokenizing and padding the input (inside every timed ``predict``) is also timed
alone (``tokenize_pad_s``). What full depth spends outside its layer calls (tokenizing, embedding,
the exit head every row needs, the engine's own work) does not shrink with the threshold, so
instrumented passes measure its share (``outside_layers_share_full_depth``) and the efficiency
that share allows at each threshold if the layers scaled perfectly (``efficiency_bound_tokens``).
On CUDA, one pass per configuration under
``torch.cuda.set_sync_debug_mode("warn")`` counts real host syncs; everywhere,
:class:`skearly._utils.host_syncs.HostSyncCounter` counts would-be syncs per layer call.

``--backend`` runs the engine rows through an inference backend (``bf16``, ``int8`` ...)
with the temperatures ``predict`` uses on it; the plain HF forward stays what a user
would otherwise run.

Run on CPU: ``python benchmarks/engine.py`` (writes ``benchmarks/results/engine_cpu.{csv,md}``).
On a GPU: ``python benchmarks/gpu.py`` (``gpu.{csv,md}``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from contextlib import nullcontext

import numpy as np
import pandas as pd
import torch
from _common import command, header, markdown_table, median_time, plain_predict, timed, write_results
from transformers import AutoModelForSequenceClassification

from skearly import EarlyExitTextClassifier, MaxProbability
from skearly._utils.batching import sorted_batches, tokenize
from skearly._utils.devices import resolve_device
from skearly._utils.host_syncs import HostSyncCounter
from skearly.datasets import load_bbc_news, load_tweet_sentiment
from skearly.encoders import DEFAULT_ENCODER, resolve_encoder
from skearly.inference import (
    InferenceEngine,
    RefillingScheduler,
    ShrinkingScheduler,
    resolve_backend,
    simulate_exits,
)

ENGINES = {
    "old engine": dict(scheduler=ShrinkingScheduler(), choose_attention_kernels=False),
    "shrinking": dict(scheduler=ShrinkingScheduler(), choose_attention_kernels=True),
    "refilling": dict(scheduler=RefillingScheduler(), choose_attention_kernels=True),
    "refilling 0.25": dict(scheduler=RefillingScheduler(padding_tolerance=0.25), choose_attention_kernels=True),
}
#: Rows timed only when ``--schedulers`` names them.
OPT_IN = frozenset({"refilling 0.25"})


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
    parser.add_argument(
        "--block-rows", default="1:20,*:128", help="texts per interleaved timing block, by batch size ('*': others)"
    )
    parser.add_argument(
        "--schedulers",
        default=None,
        help="comma-separated engine rows to time, from: "
        + ", ".join(ENGINES)
        + " (default: all the device has, but "
        + ", ".join(sorted(OPT_IN))
        + ")",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--encoder", default=None, help="packaged encoder name or folder (default: the packaged MiniLM-L6)"
    )
    parser.add_argument(
        "--data", default=None, help="'bbc' (BBC News), or a CSV with text,sentiment columns (default: packaged tweets)"
    )
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument(
        "--backend", default="torch", help="inference backend of the engine rows (the plain HF forward stays fp32)"
    )
    parser.add_argument("--cache", default=".bench-cache", help="fit cache folder (memory=)")
    parser.add_argument("--out", default=os.environ.get("OUT") or "benchmarks/results", help="default: $OUT if set")
    parser.add_argument("--name", default="engine_cpu")
    parser.add_argument("--fit-only", action="store_true", help="fit (into the cache) and stop: no timing")
    parser.set_defaults(**defaults)
    return parser.parse_args(argv)


def load_data(args):
    if args.data == "bbc":
        return load_bbc_news(n_train=args.n_train, n_test=args.n_test, random_state=0)
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


def block_rows(spec: str, batch_size: int) -> int:
    """Texts per timing block at ``batch_size``, from ``--block-rows`` (``"1:10,*:256"``)."""
    sizes = dict(item.split(":") for item in spec.split(","))
    return int(sizes.get(str(batch_size), sizes.get("*", "1000000000")))


def engines(device: torch.device, wanted: str | None = None) -> list[str]:
    """The engine configurations to time: ``wanted`` (comma-separated) or, by default, every one the device has.

    ``old engine`` differs from ``shrinking`` only on CUDA, so a CPU leaves it out; the rows
    of :data:`OPT_IN` are timed only when named.
    """
    names = [name for name in ENGINES if device.type == "cuda" or name != "old engine"]
    if wanted is None:
        return [name for name in names if name not in OPT_IN]
    chosen = [name.strip() for name in wanted.split(",")]
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        raise SystemExit(f"--schedulers: unknown or not on {device.type}: {unknown}; choose from {names}")
    return chosen


def kernels(device: torch.device):
    """The engine's scaled-dot-product attention kernels on CUDA (no cuDNN), so the HF baseline uses the same."""
    if device.type != "cuda":
        return nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def host_syncs(engine: InferenceEngine, X, threshold: float) -> tuple[float, float]:
    """Would-be host syncs per layer call (CPU proxy) and, on CUDA, real syncs per layer call."""
    counter = HostSyncCounter()
    runner = engine.runner
    run_layer = runner.run_layer

    def counted(index, hidden, context):
        with counter.phase("layer"):
            return run_layer(index, hidden, context)

    runner.run_layer = counted
    try:
        with counter:
            engine.predict(X, None, MaxProbability(), threshold)
        real = float("nan")
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")
                try:
                    engine.predict(X, None, MaxProbability(), threshold)
                finally:
                    torch.cuda.set_sync_debug_mode(0)
            real = sum("synchroniz" in str(w.message) for w in caught) / max(counter.calls["layer"], 1)
    finally:
        del runner.run_layer
    return counter.total_syncs() / max(counter.calls["layer"], 1), real


def layer_seconds(engine: InferenceEngine, X, threshold: float) -> tuple[float, float]:
    """One predict's wall-clock seconds and the part spent inside layer calls (host clock around each call).

    On CUDA the device is synchronized around every layer call, so the split is a
    diagnosis, not a timing of the real (asynchronous) run.
    """
    runner = engine.runner
    run_layer = runner.run_layer
    inside = [0.0]
    sync = torch.cuda.synchronize if engine.device.type == "cuda" else (lambda: None)

    def clocked(index, hidden, context):
        sync()
        begin = time.perf_counter()
        out = run_layer(index, hidden, context)
        sync()
        inside[0] += time.perf_counter() - begin
        return out

    runner.run_layer = clocked
    try:
        begin = time.perf_counter()
        engine.predict(X, None, MaxProbability(), threshold)
        sync()
        total = time.perf_counter() - begin
    finally:
        del runner.run_layer
    return total, inside[0]


def paired_speedup(baseline: list[float], other: list[float]) -> float:
    """Median over runs of ``baseline / other``, each ratio taken within one run (the two timed side by side)."""
    return float(np.median(np.asarray(baseline) / np.asarray(other)))


def efficiency_bound(total_s: float, layer_s: float, layer_speedup: float) -> float:
    """The efficiency a run reaches if its layer time shrinks by ``layer_speedup`` and nothing else changes.

    ``total_s`` and ``layer_s`` are full depth's time and its time inside layer calls:
    what lies outside the layers (tokenizing, embedding, the exit head every row
    needs, the engine's own work) is paid whatever the threshold, which caps the
    measured speed-up below the layer-count one.
    """
    outside = total_s - layer_s
    return total_s / (outside + layer_s / layer_speedup) / layer_speedup


def main(argv=None, **defaults) -> pd.DataFrame:
    args = parse_args(argv, **defaults)
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    path = resolve_encoder(args.encoder)  # a packaged name (all-mpnet-base-v2) or a folder
    X_train, X_test, y_train, y_test = load_data(args)
    clf = EarlyExitTextClassifier(
        path, epochs=args.epochs, device=args.device, random_state=0, memory=args.cache, max_length=args.max_length
    )
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    print(f"fit: {time.perf_counter() - start:.1f}s on {len(X_train)} texts", flush=True)
    if args.fit_only:
        return pd.DataFrame()
    network = clf.network_.to(device).eval()
    # the engine rows run the backend's layer runner with the temperatures predict uses on it
    layer_runner = resolve_backend(args.backend).prepare(network, device)
    temperatures = clf.calibration_report(args.backend)["temperature"].to_numpy()
    n_classes = len(clf.classes_)
    plain = AutoModelForSequenceClassification.from_pretrained(path, num_labels=n_classes, local_files_only=True)
    plain = plain.to(device).eval()
    thresholds = [float(t) for t in args.thresholds.split(",")]
    mixed = device.type == "cuda"
    depth = clf.head_layers_[-1]
    names = engines(device, args.schedulers)

    def engine(name: str, batch_size: int) -> InferenceEngine:
        return InferenceEngine(
            layer_runner,
            clf.tokenizer_,
            temperatures,
            args.max_length,
            batch_size,
            device,
            mixed_precision=mixed,
            **ENGINES[name],
        )

    rows = []
    for batch_size in [int(b) for b in args.batches.split(",")]:
        X = X_test[: args.b1_rows] if batch_size == 1 else X_test
        y = y_test[: len(X)]
        tokens = tokenize(clf.tokenizer_, X, None, args.max_length).lengths().astype(np.float64)
        pad = median_time(
            lambda X=X, b=batch_size: list(sorted_batches(tokenize(clf.tokenizer_, X, None, args.max_length), b)),
            args.repeats,
            len(X),
        )
        quality = {}
        replayed = {}
        for name in names:
            # every head's probabilities from one pass, as exit_curve and score replay thresholds on them
            head_proba = engine(name, batch_size).head_proba(X, None)
            for threshold in thresholds:
                proba, layers = engine(name, batch_size).predict(X, None, MaxProbability(), threshold)
                quality[(name, threshold)] = (float(np.mean(clf.classes_[proba.argmax(1)] == y)), layers)
                replay = np.asarray(clf.head_layers_)[simulate_exits(MaxProbability(), head_proba, threshold)]
                replayed[(name, threshold)] = int(np.count_nonzero(replay != layers))
        configs = [("plain HF", None)] + [(name, t) for name in names for t in thresholds]
        seconds: dict[tuple, list[float]] = {c: [] for c in configs}

        def runner(name, threshold, X, batch_size=batch_size):
            if name == "plain HF":

                def plain_run():
                    with kernels(device):
                        return plain_predict(plain, clf.tokenizer_, X, batch_size, device, mixed)

                return plain_run
            eng = engine(name, batch_size)
            return lambda: eng.predict(X, None, MaxProbability(), threshold)

        block = block_rows(args.block_rows, batch_size)
        blocks = [X[start : start + block] for start in range(0, len(X), block)]
        for config in configs:  # warm-up (also plans kernels for the shapes seen)
            timed(runner(*config, X), device)
        for repeat in range(args.repeats):
            total = dict.fromkeys(configs, 0.0)
            for number, part in enumerate(blocks):  # every configuration on each block, in a rotating order
                turn = (repeat * len(blocks) + number) % len(configs)
                for config in configs[turn:] + configs[:turn]:
                    total[config] += timed(runner(*config, part), device)
            for config in configs:
                seconds[config].append(total[config])
        plain_s = float(np.median(seconds[("plain HF", None)]))
        rows.append(
            {
                "batch": batch_size,
                "config": "plain HF",
                "threshold": None,
                "n_texts": len(X),
                "texts_per_s": len(X) / plain_s,
                "speedup_vs_plain_hf": 1.0,
                "tokenize_pad_s": pad.seconds,
            }
        )
        for name in names:
            full = seconds.get((name, 1.0))
            # full depth's time inside and outside the layers, medians of interleaved instrumented passes
            splits = [layer_seconds(engine(name, batch_size), X, 1.0) for _ in range(args.repeats)]
            full_total, full_layers = (float(np.median(column)) for column in zip(*splits))
            for threshold in thresholds:
                s = float(np.median(seconds[(name, threshold)]))
                accuracy, layers = quality[(name, threshold)]
                by_rows = depth / layers.mean()
                by_tokens = float(tokens.sum() * depth / (tokens * layers).sum())
                # ratios paired within each run (same blocks, interleaved), then the median over runs: a
                # machine whose speed drifts between runs moves both sides of a ratio alike
                measured = paired_speedup(full, seconds[(name, threshold)]) if full else float("nan")
                syncs, cuda_syncs = host_syncs(engine(name, batch_size), X, threshold) if batch_size > 1 else (0, 0)
                rows.append(
                    {
                        "batch": batch_size,
                        "config": name,
                        "threshold": threshold,
                        "n_texts": len(X),
                        "accuracy": accuracy,
                        "mean_exit_layer": float(layers.mean()),
                        "layer_speedup_rows": by_rows,
                        "layer_speedup_tokens": by_tokens,
                        "texts_per_s": len(X) / s,
                        "speedup_vs_full_depth": measured,
                        "cost_vs_full_depth": 1.0 / measured,
                        "efficiency_rows": measured / by_rows,
                        "efficiency_tokens": measured / by_tokens,
                        "outside_layers_share_full_depth": 1.0 - full_layers / full_total,
                        "efficiency_bound_tokens": efficiency_bound(full_total, full_layers, by_tokens),
                        "speedup_vs_plain_hf": paired_speedup(seconds[("plain HF", None)], seconds[(name, threshold)]),
                        "tokenize_pad_s": pad.seconds,
                        "exit_layers_unlike_replay": replayed[(name, threshold)],
                        "syncs_per_layer_call": syncs,
                        "cuda_syncs_per_layer_call": cuda_syncs,
                    }
                )
        print(pd.DataFrame(rows).tail(1 + len(names) * len(thresholds)).to_string(index=False), flush=True)

    table = pd.DataFrame(rows)
    data = "tweets (negative vs positive)" if args.data is None else f"{args.data} ({n_classes} classes)"
    # gpu.py runs this main with its own settings: the command names the script that was run
    lines = header(f"Engine schedulers: measured trade-off ({args.name})", command(sys.argv[0], argv), device) + [
        f"- encoder: {args.encoder or DEFAULT_ENCODER} ({depth} layers, an exit head after layers "
        f"{', '.join(map(str, clf.head_layers_))})",
        f"- backend of the engine rows: {args.backend!r} (plain HF: fp32{' + bf16 autocast' if mixed else ''})",
        f"- data: {len(X_train)} training texts of {data}, {args.epochs} epochs, max_length {args.max_length}, fit "
        f"{'read from the cache' if clf.fit_time_ < 5 else f'{clf.fit_time_:.0f}s'}; {len(X_test)} test texts "
        f"({args.b1_rows} at batch 1); median of {args.repeats} runs; in each run every configuration predicts "
        f"every block of texts in turn, the order rotating from block to block (--block-rows {args.block_rows}: "
        "texts per block by batch size; a block larger than the test set is one predict call per run)",
        "- speed-ups (vs full depth, vs plain HF) are paired: the two times' ratio within each run, median over "
        "runs; texts_per_s: median time",
        "- efficiency = (full-depth time / time) / layer-count speed-up, by rows (depth / mean exit layer) and by "
        "tokens (sum tokens x depth / sum tokens x exit layer), per configuration",
        "- outside_layers_share_full_depth: share of full depth's time spent outside layer calls (tokenizing, "
        "embedding, the exit head every row needs, the engine's own work; median of --repeats instrumented passes); "
        "efficiency_bound_tokens: the efficiency by tokens if the layer time shrank by the layer-count speed-up and "
        "that outside time stayed as it is: full / (outside + layers / layer_speedup_tokens) / layer_speedup_tokens",
        "- tokenize_pad_s: tokenizing and padding the input alone (inside every timed predict); "
        "syncs_per_layer_call: would-be host syncs (HostSyncCounter); cuda_syncs_per_layer_call: "
        "set_sync_debug_mode warnings (CUDA only); exit_layers_unlike_replay: rows whose exit layer differs from the "
        "one replayed on every head's probabilities of one full pass (what exit_curve and score do)",
        "",
        markdown_table(table),
    ]
    write_results(args.out, args.name, table=table, lines=lines)
    print(f"wrote {args.out}/{args.name}.csv and .md")
    return table


if __name__ == "__main__":
    main()
