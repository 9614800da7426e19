"""Does the refilling scheduler, with a padding tolerance, beat the shrinking one on a CPU at batch 64?

On a CPU the engine's default is the shrinking scheduler. At low thresholds most of its
layer calls after the first layer hold a handful of rows, and a call of a few rows costs
far more per row than a full one (the layer's weights are read once per call). The
refilling scheduler fills calls with the waiting rows of several input batches, but with
``padding_tolerance=0`` rows of neighbouring batches rarely fit one call at the CPU's
width multiple of 1 (``benchmarks/results/scheduler_fill_cpu.md``); a tolerance lets them.

This study times, at batch 64 on the packaged MiniLM-L6's cached ``engine.py`` fit, the
shrinking scheduler at full depth (the reference) and at each threshold the shrinking
scheduler and the refilling one at each tolerance. Each configuration predicts all the test
tweets in one call (refilling can only merge rows of the input batches of one call), the
configurations interleaved in an order that rotates from run to run; speed-ups over full
depth are paired within a run, then the median over runs; efficiency is that over the
layer-count speed-up by tokens.

Run from the repository root (after ``engine.py`` has cached its fit):
``python -m research.cpu_refilling.cpu_refilling``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks._common import command, header, markdown_table, start, write_results
from research.fixed_cost.fixed_cost import load_fit
from skearly import MaxProbability
from skearly._utils.batching import tokenize
from skearly.inference import InferenceEngine, RefillingScheduler, ShrinkingScheduler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--thresholds", default="0.9,0.8,0.7,0.6")
    parser.add_argument("--tolerances", default="0,0.25,inf")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    start(2)
    torch.manual_seed(0)
    clf, temperatures, X = load_fit("MiniLM-L6")
    network = clf.network_
    tokens = tokenize(clf.tokenizer_, X, None, 128).lengths().astype(np.float64)
    depth = network.n_layers_used
    schedulers = {"shrinking": ShrinkingScheduler()}
    for tolerance in (float(t) for t in args.tolerances.split(",")):
        schedulers[f"refilling {tolerance:g}"] = RefillingScheduler(padding_tolerance=tolerance)
    configs = [("shrinking", 1.0)]
    configs += [(name, float(t)) for t in args.thresholds.split(",") for name in schedulers]
    engines = {
        name: InferenceEngine(network, clf.tokenizer_, temperatures, 128, args.batch, torch.device("cpu"), scheduler)
        for name, scheduler in schedulers.items()
    }
    seconds = {c: np.zeros(args.repeats) for c in configs}
    exits = {}
    with torch.inference_mode():
        for name, threshold in configs:  # warm-up, and the exit layers
            exits[(name, threshold)] = engines[name].predict(X, None, MaxProbability(), threshold)[1]
        for repeat in range(args.repeats):
            turn = repeat % len(configs)
            for name, threshold in configs[turn:] + configs[:turn]:
                tick = time.perf_counter()
                engines[name].predict(X, None, MaxProbability(), threshold)
                seconds[(name, threshold)][repeat] = time.perf_counter() - tick
            print(f"run {repeat + 1}/{args.repeats} done", flush=True)
    full = seconds[("shrinking", 1.0)]
    rows = []
    for config in configs[1:]:
        name, threshold = config
        layers = exits[config]
        layer_speedup = float((tokens * depth).sum() / (tokens * layers).sum())
        speedup = float(np.median(full / seconds[config]))
        vs_shrinking = seconds[("shrinking", threshold)] / seconds[config]  # one ratio per run
        rows.append(
            {
                "threshold": threshold,
                "scheduler": name,
                "mean_exit_layer": float(layers.mean()),
                "exit_layers_unlike_shrinking": int(np.count_nonzero(layers != exits[("shrinking", threshold)])),
                "seconds": float(np.median(seconds[config])),
                "speedup_vs_full_depth": speedup,
                "layer_speedup_tokens": layer_speedup,
                "efficiency_tokens": speedup / layer_speedup,
                "speedup_vs_shrinking": float(np.median(vs_shrinking)),
                "speedup_vs_shrinking_q25": float(np.percentile(vs_shrinking, 25)),
                "speedup_vs_shrinking_q75": float(np.percentile(vs_shrinking, 75)),
            }
        )
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    lines = header("Refilling against shrinking on a CPU at batch 64 (cpu_refilling)", command(__file__, argv)) + [
        f"- packaged all-MiniLM-L6-v2, engine.py's cached fit (3,000 binary tweets); the {len(X)} test tweets at "
        f"batch {args.batch}, all in one predict call per configuration; full depth: {float(np.median(full)):.2f} s",
        f"- {args.repeats} runs, every configuration once per run, the order rotating; speedup_vs_full_depth and "
        "speedup_vs_shrinking are paired within a run (the two times' ratio), median over runs (_q25, _q75: the "
        "quartiles of those ratios over the runs, their spread); seconds: median",
        "- efficiency_tokens = speedup_vs_full_depth / layer_speedup_tokens (sum tokens x depth / sum tokens x exit "
        "layer)",
        "",
        markdown_table(table),
    ]
    write_results(args.out, "cpu_refilling", table=table, lines=lines)


if __name__ == "__main__":
    main()
