"""How far are the jointly trained early heads from models of the same depth trained alone?

A training objective can only make an early exit faster at a given accuracy by making
its heads better. One bound on how much better: a model fine-tuned with a single head
at layer ``k`` (``head_layers=(k,)``: the encoder cut after layer ``k``, every step
spent on that head). For each data set, seed and layer this script measures on the
test split:

* ``joint_accuracy`` -- the accuracy of the head at layer ``k`` of a multi-exit model
  fitted by ``objectives.py`` (read from its ``--work`` folder; every row
  leaves at that head);
* ``alone_accuracy`` -- the accuracy of a model fine-tuned alone for layer ``k``, with
  the same rows, settings and ``random_state``.

Run ``python -m research.training_objectives.objectives fit`` with the same options first (it fits the joint
models)::

    python -m research.training_objectives.head_ceiling --objectives sum --seeds 0,1,2 --layers 1,2,3

Outputs ``<out>/head_ceiling.csv`` (one row per data set, seed, objective and layer) and
``<out>/head_ceiling.md``. Fitted single-head results are kept in ``--work``
(``<dataset>-alone<k>[-seed<s>]/result.json``): a rerun fits only what is missing.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._common import command, header, start, write_results
from skearly import EarlyExitTextClassifier

from .objectives import DATASETS, encode, head_logits


def _folder(work: Path, stem: str, seed: int) -> Path:
    return work / (stem + (f"-seed{seed}" if seed else ""))


def alone_accuracy(args, name: str, layer: int, seed: int, data) -> float:
    """Test accuracy of a model fine-tuned with one head, at ``layer`` (fitted once, then read back)."""
    folder = _folder(args.work, f"{name}-alone{layer}", seed)
    result = folder / "result.json"
    if not result.exists():
        X_train, X_test, y_train, y_test = data
        clf = EarlyExitTextClassifier(
            head_layers=(layer,),
            epochs=args.epochs,
            head_learning_rate=args.head_learning_rate,
            max_length=args.max_length,
            calibration_size=args.calibration_size,
            random_state=seed,
        ).fit(X_train, y_train)
        accuracy = float(np.mean(clf.set_params(threshold=1.0).predict(X_test) == y_test))
        folder.mkdir(parents=True, exist_ok=True)
        result.write_text(json.dumps({"accuracy": accuracy, "fit_seconds": clf.fit_time_}))
        print(f"{name} / alone at layer {layer} / seed {seed}: {accuracy:.4f}", flush=True)
    return json.loads(result.read_text())["accuracy"]


def joint_accuracies(folder: Path, X_test, y_test) -> dict[int, float]:
    """Test accuracy of every head of a fitted multi-exit model, by layer."""
    clf = EarlyExitTextClassifier.load(folder / "model")
    logits = head_logits(clf, encode(clf, X_test))
    return {
        int(layer): float(np.mean(clf.classes_[head.argmax(axis=1)] == y_test))
        for layer, head in zip(clf.network_.exit_layers, logits, strict=True)
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=lambda s: s.split(","), default=list(DATASETS))
    parser.add_argument("--objectives", type=lambda s: s.split(","), default=["sum"])
    parser.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[0])
    parser.add_argument("--layers", type=lambda s: [int(v) for v in s.split(",")], default=[1, 2, 3])
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--calibration-size", type=float, default=0.5)
    parser.add_argument("--head-learning-rate", type=float, default=1e-3)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--work", type=Path, default=Path("/tmp/skearly-objectives3"), help="fitted models")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    command_line, begin = command(__file__, argv), start(args.threads)
    records = []
    for name in args.datasets:
        data = DATASETS[name](args.n_train, args.n_test)
        _, X_test, _, y_test = data
        for seed in args.seeds:
            alone = {layer: alone_accuracy(args, name, layer, seed, data) for layer in args.layers}
            for objective in args.objectives:
                folder = _folder(args.work, f"{name}-{objective}", seed)
                if not (folder / "model").exists():
                    print(f"{name} / {objective} / seed {seed}: not fitted, left out", flush=True)
                    continue
                joint = joint_accuracies(folder, X_test, y_test)
                records += [
                    {
                        "dataset": name,
                        "seed": seed,
                        "objective": objective,
                        "layer": layer,
                        "joint_accuracy": joint[layer],
                        "alone_accuracy": alone[layer],
                        "joint_minus_alone_points": 100 * (joint[layer] - alone[layer]),
                        "full_depth_accuracy": joint[max(joint)],
                    }
                    for layer in args.layers
                ]
    table = pd.DataFrame(records)
    summary = (
        table.groupby(["dataset", "objective", "layer"], sort=False)
        .agg(
            seeds=("seed", "size"),
            joint_accuracy=("joint_accuracy", "mean"),
            alone_accuracy=("alone_accuracy", "mean"),
            joint_minus_alone_points=("joint_minus_alone_points", "mean"),
            min_points=("joint_minus_alone_points", "min"),
            max_points=("joint_minus_alone_points", "max"),
        )
        .reset_index()
    )
    lines = header("Early heads against models of the same depth trained alone", command_line) + [
        "Run after `python -m research.training_objectives.objectives fit` with the same data options, which "
        "fits the joint models.",
        "",
        f"all-MiniLM-L6-v2; {args.n_train} training rows (BBC News: {min(args.n_train, 2127 - args.n_test)}), "
        f"calibration_size={args.calibration_size}, {args.epochs} epochs, head_learning_rate="
        f"{args.head_learning_rate}, max_length={args.max_length}, no gradient clipping; test {args.n_test} rows "
        "(BBC News: as many as are left). `joint_accuracy`: the head at `layer` of the multi-exit model (every "
        "row leaving there); `alone_accuracy`: a model fine-tuned with only that head (`head_layers=(layer,)`), "
        "same rows, settings and `random_state`. Means over seeds, with the smallest and largest difference "
        f"(points). Whole run: {time.perf_counter() - begin:.0f} s.",
        "",
        summary.to_markdown(index=False, floatfmt=".4f"),
        "",
        "Every seed:",
        "",
        table.to_markdown(index=False, floatfmt=".4f"),
    ]
    write_results(args.out, "head_ceiling", table=table, lines=lines)
    print("\n".join(lines[10:]), flush=True)


if __name__ == "__main__":
    main()
