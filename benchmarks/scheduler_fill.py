"""How full the refilling scheduler's layer calls are, and what padding that costs, by padding tolerance.

A GPU runs a layer call in about the same time whether it holds 10 rows or 64, so what
early exit saves there depends on how full the calls stay as rows exit. This benchmark
counts, without timing anything (the counts are the same on every machine), what each
scheduler setting makes of the same input:

* ``calls``: layer calls; ``fill``: mean rows per call over the batch size;
* ``padded_tokens_vs_shrinking``: rows x width summed over the calls, over the shrinking
  scheduler's (every setting runs the same rows through the same layers, so the real tokens
  are equal and the difference is padding);
* ``flush_share``: the share of the calls made after the last input batch came in (the
  refilling scheduler's flush of its queues);
* ``exit_layers_unlike_shrinking``: rows whose exit layer differs from the shrinking
  scheduler's (0: the settings only regroup rows).

Settings: ``shrinking``, and ``refilling`` at each ``--tolerances`` value of
:class:`~skearly.inference.RefillingScheduler`'s ``padding_tolerance`` (0: a row never shares a
call wider than its own input batch would have been). Widths are rounded up to a multiple of
``--length-multiple``: 8 by default, as the engine does on CUDA; 1 is the CPU setting. The
fit is ``engine.py``'s (read from ``--cache`` when it has run); the texts are the whole test
split of the packaged binary tweets.

Run: ``python benchmarks/scheduler_fill.py`` (writes ``benchmarks/results/scheduler_fill.{csv,md,png}``);
the CPU setting: ``python benchmarks/scheduler_fill.py --length-multiple 1 --batches 64 --name scheduler_fill_cpu``.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import pandas as pd
import torch
from _common import command, header, markdown_table, start, write_results

from skearly import EarlyExitTextClassifier, MaxProbability
from skearly.datasets import load_tweet_sentiment
from skearly.encoders import DEFAULT_ENCODER, resolve_encoder
from skearly.inference import InferenceEngine, RefillingScheduler, ShrinkingScheduler
from skearly.inference._layer_pass import ExitPass


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default=None, help="packaged encoder name or folder (default: MiniLM-L6)")
    parser.add_argument("--n-train", type=int, default=3000, help="training tweets (engine.py's fit)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batches", default="64,512")
    parser.add_argument("--thresholds", default="0.9,0.8,0.7,0.6")
    parser.add_argument("--tolerances", default="0,0.125,0.25,0.5,inf")
    parser.add_argument("--length-multiple", type=int, default=8, help="8: the CUDA setting; 1: the CPU one")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--cache", default=".bench-cache", help="fit cache folder (memory=)")
    parser.add_argument("--out", default=os.environ.get("OUT") or "benchmarks/results", help="default: $OUT if set")
    parser.add_argument("--name", default="scheduler_fill")
    return parser.parse_args(argv)


class _CallLog:
    """Shapes of the layer calls of one predict, and how many came before the input ran out."""

    def __init__(self, network) -> None:
        self.shapes: list[tuple[int, int]] = []
        self.before_flush = 0
        self._network = network
        self._run_layer = network.run_layer
        self._embedded = ExitPass.embedded

    def __enter__(self) -> _CallLog:
        def run_layer(index, hidden, context):
            self.shapes.append((int(hidden.shape[0]), int(hidden.shape[1])))
            return self._run_layer(index, hidden, context)

        def embedded(exit_pass, encoded, batch_size):
            yield from self._embedded(exit_pass, encoded, batch_size)
            self.before_flush = len(self.shapes)  # the scheduler asked for more input: there is none

        self._network.run_layer = run_layer
        ExitPass.embedded = embedded
        return self

    def __exit__(self, *exc) -> None:
        del self._network.run_layer
        ExitPass.embedded = self._embedded


def measure(clf, X, batch_size: int, threshold: float, tolerances: list[float], multiple: int) -> list[dict]:
    """One row per scheduler setting: calls, fill, padding against shrinking, flush share, exit layers."""
    settings = [("shrinking", None, ShrinkingScheduler())]
    settings += [("refilling", t, RefillingScheduler(padding_tolerance=t)) for t in tolerances]
    rows, reference = [], None
    for name, tolerance, scheduler in settings:
        engine = InferenceEngine(
            clf.network_,
            clf.tokenizer_,
            clf.temperatures_,
            clf.max_length,
            batch_size,
            torch.device("cpu"),
            scheduler,
            length_multiple=multiple,
        )
        with _CallLog(clf.network_) as log:
            _, layers = engine.predict(X, None, MaxProbability(), threshold)
        shapes = np.array(log.shapes)
        padded = int((shapes[:, 0] * shapes[:, 1]).sum())
        reference = reference or (padded, layers)
        rows.append(
            {
                "batch": batch_size,
                "threshold": threshold,
                "scheduler": name,
                "padding_tolerance": tolerance,
                "mean_exit_layer": float(layers.mean()),
                "calls": len(shapes),
                "fill": float(shapes[:, 0].mean() / batch_size),
                "padded_tokens_vs_shrinking": padded / reference[0],
                "flush_share": 1.0 - log.before_flush / len(shapes),
                "exit_layers_unlike_shrinking": int(np.count_nonzero(layers != reference[1])),
            }
        )
        print(rows[-1], flush=True)
    return rows


def figure(table: pd.DataFrame):
    import matplotlib.pyplot as plt

    refilling = table[table["scheduler"] == "refilling"]
    batches = sorted(table["batch"].unique())
    fig, axes = plt.subplots(2, len(batches), figsize=(5.2 * len(batches), 7), squeeze=False)
    labels = [("inf" if np.isinf(t) else f"{t:g}") for t in sorted(refilling["padding_tolerance"].unique())]
    for column, batch in enumerate(batches):
        for threshold, part in refilling[refilling["batch"] == batch].groupby("threshold"):
            shrinking = table[(table["batch"] == batch) & (table["threshold"] == threshold)]
            shrinking = shrinking[shrinking["scheduler"] == "shrinking"]
            line = axes[0, column].plot(labels, part["fill"], marker="o", label=f"threshold {threshold:g}")[0]
            axes[0, column].axhline(float(shrinking["fill"].iloc[0]), color=line.get_color(), ls=":", lw=1)
            axes[1, column].plot(labels, part["padded_tokens_vs_shrinking"], marker="o", color=line.get_color())
        axes[0, column].set(title=f"batch {batch}", ylabel="fill (mean rows per call / batch)", ylim=(0, 1.02))
        axes[1, column].set(xlabel="padding_tolerance", ylabel="padded tokens / shrinking's")
        axes[1, column].axhline(1.0, color="grey", lw=1)
        axes[0, column].legend(title="refilling (dotted: shrinking)", fontsize=8)
    return fig


def main(argv=None) -> pd.DataFrame:
    args = parse_args(argv)
    start(args.threads)
    torch.manual_seed(0)
    # engine.py's training tweets (the training subsample does not depend on n_test, so its cached fit
    # serves), and the whole test split
    X_train, X, y_train, _ = load_tweet_sentiment(
        classes=("negative", "positive"), n_train=args.n_train, n_test=None, random_state=0
    )
    clf = EarlyExitTextClassifier(
        resolve_encoder(args.encoder),
        epochs=args.epochs,
        device="auto",  # as engine.py, whose cached fit this reads
        random_state=0,
        memory=args.cache,
        max_length=args.max_length,
    ).fit(X_train, y_train)
    clf.network_.eval()
    tolerances = [float(t) for t in args.tolerances.split(",")]
    rows = []
    with torch.inference_mode():
        for batch_size in (int(b) for b in args.batches.split(",")):
            for threshold in (float(t) for t in args.thresholds.split(",")):
                rows += measure(clf, X, batch_size, threshold, tolerances, args.length_multiple)
    table = pd.DataFrame(rows)
    lines = header("Refilling scheduler: call fill and padding by padding tolerance", command(sys.argv[0], argv)) + [
        f"- encoder: {args.encoder or DEFAULT_ENCODER} ({clf.n_layers_} layers, exit heads after "
        f"{', '.join(map(str, clf.head_layers_))}), fit on {len(X_train)} binary tweets ({args.epochs} epochs)",
        f"- texts: the {len(X)} tweets of the binary test split; widths rounded up to a multiple of "
        f"{args.length_multiple} ({'as on CUDA' if args.length_multiple == 8 else 'CUDA rounds to 8'}); "
        f"max_length {args.max_length}",
        "- counts, not timings (the same on every machine): calls = layer calls; fill = mean rows per call / batch "
        "size; padded_tokens_vs_shrinking = sum of rows x width over the calls / the shrinking scheduler's (the "
        "real tokens are equal); flush_share = share of the calls made after the last input batch came in; "
        "exit_layers_unlike_shrinking = rows exiting at another layer than with the shrinking scheduler",
        "",
        markdown_table(table),
    ]
    write_results(args.out, args.name, table=table, lines=lines, figure=figure(table))
    print(f"wrote {args.out}/{args.name}.csv, .md and .png")
    return table


if __name__ == "__main__":
    main()
