"""Where does a text's time outside the encoder layers go, at batch 1, with a 6- and a 12-layer encoder?

``benchmarks/engine.py`` measures the share of full depth's time spent outside the layer
calls (``outside_layers_share_full_depth``): it is paid at every threshold, so it caps the
efficiency of low thresholds. This study splits that time into its parts, per text, by
wrapping the engine's seams with a clock: tokenizing (and padding), embedding, building
the layer context (attention mask, MPNet's position bias), the exit heads, and the rest
(the engine's own work and the exit decisions). It times full depth and one low
threshold, interleaved block by block in a rotating order, on the fits that
``benchmarks/engine.py`` caches (same arguments, so they are read from ``.bench-cache/``):

* all-MiniLM-L6-v2 (6 layers, width 384), 3,000 training tweets (``engine_cpu``);
* all-mpnet-base-v2 (12 layers, width 768), 2,000 training tweets (``engine_cpu_mpnet``;
  ``make install-mpnet`` first).

Run from the repository root: ``python -m research.fixed_cost.fixed_cost``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import skearly.inference._engine as engine_module
from benchmarks._common import command, header, markdown_table, start, write_results
from skearly import EarlyExitTextClassifier, MaxProbability
from skearly.datasets import load_tweet_sentiment
from skearly.encoders import resolve_encoder
from skearly.inference import InferenceEngine, ShrinkingScheduler

#: name -> (packaged encoder, training tweets, test tweets): engine.py's arguments for its cached fit.
FITS = {"MiniLM-L6": ("all-MiniLM-L6-v2", 3000, 1000), "MPNet-12": ("all-mpnet-base-v2", 2000, 300)}
#: The seams timed (object attribute names), as reported.
PARTS = ("tokenize", "embed", "layer_context", "run_layer", "exit_logits")


class _Clock:
    """Seconds spent in each wrapped callable, under the configuration being timed."""

    def __init__(self) -> None:
        self.config: object = None
        self.repeat = 0
        self.seconds: dict[tuple[object, str, int], float] = {}

    def wrap(self, owner, name: str) -> None:
        function = getattr(owner, name)

        def clocked(*args, **kwargs):
            begin = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                key = (self.config, name, self.repeat)
                self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - begin

        setattr(owner, name, clocked)


def load_fit(name: str) -> tuple[EarlyExitTextClassifier, np.ndarray, list[str]]:
    """The cached ``engine.py`` fit of ``FITS[name]``, its fp32 temperatures and its test tweets."""
    encoder, n_train, n_test = FITS[name]
    path = resolve_encoder(encoder)
    X_train, X_test, y_train, _ = load_tweet_sentiment(
        classes=("negative", "positive"), n_train=n_train, n_test=n_test, random_state=0
    )
    clf = EarlyExitTextClassifier(
        path, epochs=2, device="auto", random_state=0, memory=".bench-cache", max_length=128
    ).fit(X_train, y_train)
    clf.network_.eval()
    return clf, clf.calibration_report("torch")["temperature"].to_numpy(), list(X_test)


def measure(name: str, threshold: float, n_texts: int, block: int, repeats: int) -> list[dict]:
    """Per-text milliseconds of each part at full depth and at ``threshold``, batch 1."""
    clf, temperatures, X_test = load_fit(name)
    network = clf.network_
    engine = InferenceEngine(network, clf.tokenizer_, temperatures, 128, 1, torch.device("cpu"), ShrinkingScheduler())
    clock = _Clock()
    for part in PARTS[1:]:
        clock.wrap(network, part)
    clock.wrap(engine_module, "tokenize")
    texts = X_test[:n_texts]
    thresholds = (1.0, threshold)
    for t in thresholds:  # warm-up
        engine.predict(texts[:block], None, MaxProbability(), t)
    clock.seconds.clear()
    totals = {t: np.zeros(repeats) for t in thresholds}
    exits = {}
    for repeat in range(repeats):
        clock.repeat = repeat
        for number, begin in enumerate(range(0, len(texts), block)):
            turn = (number + repeat) % 2
            for t in thresholds[turn:] + thresholds[:turn]:
                clock.config = t
                tick = time.perf_counter()
                _, layers = engine.predict(texts[begin : begin + block], None, MaxProbability(), t)
                totals[t][repeat] += time.perf_counter() - tick
                exits.setdefault(t, {})[begin] = layers
    rows = []
    for t in thresholds:
        # per run: ms per text of the whole and of each part; every figure is the median over the runs
        per_run = {p: np.array([clock.seconds.get((t, p, r), 0.0) for r in range(repeats)]) for p in PARTS}
        outside = totals[t] - per_run["run_layer"]
        rest = outside - sum(per_run[p] for p in PARTS if p != "run_layer")
        ms = 1e3 / len(texts)
        rows.append(
            {
                "encoder": name,
                "threshold": t,
                "mean_exit_layer": float(np.mean(np.concatenate(list(exits[t].values())))),
                "total_ms": float(np.median(totals[t])) * ms,
                "layers_ms": float(np.median(per_run["run_layer"])) * ms,
                "outside_ms": float(np.median(outside)) * ms,
                "outside_share": float(np.median(outside / totals[t])),
                "tokenize_ms": float(np.median(per_run["tokenize"])) * ms,
                "embed_ms": float(np.median(per_run["embed"])) * ms,
                "layer_context_ms": float(np.median(per_run["layer_context"])) * ms,
                "exit_heads_ms": float(np.median(per_run["exit_logits"])) * ms,
                "rest_ms": float(np.median(rest)) * ms,
            }
        )
        print(rows[-1], flush=True)
    return rows


def run_study(
    argv: list[str] | None,
    measure_one: Callable[[str, float, int, int, int], list[dict]],
    *,
    stem: str,
    title: str,
    n_texts: int,
    repeats: int,
    notes: Callable[[argparse.Namespace], list[str]],
) -> None:
    """The command line both studies of this folder share: parse, measure each encoder, write ``--name``."""
    parser = argparse.ArgumentParser(description=sys.modules[measure_one.__module__].__doc__)
    parser.add_argument("--encoders", default=",".join(FITS))
    parser.add_argument("--threshold", type=float, default=0.6)
    parser.add_argument("--n-texts", type=int, default=n_texts)
    parser.add_argument("--block", type=int, default=20, help="texts per predict call (as engine.py at batch 1)")
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--name", default=stem, help="results file stem")
    args = parser.parse_args(argv)
    start(2)
    torch.manual_seed(0)
    rows = []
    for name in args.encoders.split(","):  # predict runs under inference mode; the (cached) fit must not
        rows += measure_one(name, args.threshold, args.n_texts, args.block, args.repeats)
    table = pd.DataFrame(rows)
    script = sys.modules[measure_one.__module__].__file__
    lines = header(title, command(script, argv)) + notes(args) + ["", markdown_table(table)]
    write_results(args.out, args.name, table=table, lines=lines)


def main(argv: list[str] | None = None) -> None:
    run_study(
        argv,
        measure,
        stem="fixed_cost",
        title="Time outside the encoder layers at batch 1 (fixed_cost)",
        n_texts=100,
        repeats=5,
        notes=lambda args: [
            f"- binary tweets, the first {args.n_texts} test tweets at batch 1, in predict calls of {args.block}; "
            f"full depth and threshold {args.threshold} interleaved call by call, the order rotating; every "
            f"figure is the median over {args.repeats} runs of that run's milliseconds per text",
            "- the parts are the engine's seams, each timed by a clock around its call: tokenize (tokenizing and "
            "padding), embed, layer_context (attention mask; MPNet's position bias), exit_heads (the heads' "
            "logits); rest = outside - those parts: the engine's own work, temperature, softmax and the exit "
            "decisions",
        ],
    )


if __name__ == "__main__":
    main()
