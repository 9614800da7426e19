"""Could a richer calibrator than one temperature per head calibrate the early exits better?

For fitted models of ``research/training_objectives/objectives.py`` (its ``--work`` folder), every exit head's
logits are computed on the model's stored calibration split and on a large held-out split of
the test pool (``--ece-rows``, never trained or calibrated on). Three calibrators are fitted on
the calibration split and scored (ECE, 15 bins) on both:

* ``temperature``: skearly's temperature scaling (:func:`skearly.calibration.fit_temperature`);
* ``vector``: vector scaling (Guo et al., 2017), a scale and a bias per class, minimising the NLL
  (L-BFGS, started from the temperature);
* ``isotonic``: isotonic regression of correctness on the temperature-scaled top-class
  confidence (the quantity the exit criterion thresholds), the other classes rescaled to match.

It also reports each head's accuracy on both splits: a calibrator matches the accuracy of the
rows it was fitted on, so a gap between the two is an ECE no calibrator fitted there can remove.

    python -m research.exit_calibration.calibrators --work /tmp/skearly-objectives2 \
        --datasets rotten_tomatoes,tweets_3class

Outputs ``<out>/calibrators.csv`` and ``<out>/calibrators.md``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax
from sklearn.isotonic import IsotonicRegression

from benchmarks._common import command, header, start, write_results
from research.training_objectives.objectives import DATASETS, encode, head_logits
from skearly import EarlyExitTextClassifier
from skearly._utils.batching import unpack_calibration_inputs
from skearly.calibration import ece_noise_floor, expected_calibration_error, fit_temperature

Calibrator = Callable[[np.ndarray], np.ndarray]


def fit_vector_scaling(logits: np.ndarray, y: np.ndarray, temperature: float) -> Calibrator:
    """``softmax(logits * w + b)`` with ``w``, ``b`` per class minimising the NLL of ``y``."""
    n, k = logits.shape

    def nll_and_grad(params: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = params[:k], params[k:]
        log_p = log_softmax(logits * w + b, axis=1)
        grad = np.exp(log_p)
        grad[np.arange(n), y] -= 1
        grad /= n
        return float(-log_p[np.arange(n), y].mean()), np.concatenate([(grad * logits).sum(0), grad.sum(0)])

    start = np.concatenate([np.full(k, 1 / temperature), np.zeros(k)])
    params = minimize(nll_and_grad, start, jac=True, method="L-BFGS-B").x
    return lambda z: softmax(z * params[:k] + params[k:], axis=1)


def fit_isotonic(logits: np.ndarray, y: np.ndarray, temperature: float) -> Calibrator:
    """Isotonic map of the temperature-scaled top-class confidence; other classes share the rest."""
    proba = softmax(logits / temperature, axis=1)
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip")
    iso.fit(proba.max(1), proba.argmax(1) == y)

    def apply(z: np.ndarray) -> np.ndarray:
        p = softmax(z / temperature, axis=1)
        top, confidence = p.argmax(1), p.max(1)
        new = np.clip(iso.predict(confidence), 1e-6, 1 - 1e-6)
        out = p * ((1 - new) / np.maximum(1 - confidence, 1e-12))[:, None]
        out[np.arange(len(p)), top] = new
        return out

    return apply


def rows_for(folder: Path, name: str, args) -> list[dict]:
    clf = EarlyExitTextClassifier.load(folder / "model")
    _, X, _, y = DATASETS[name](args.n_train, args.n_test, args.ece_rows)
    encoded, y_cal = unpack_calibration_inputs(clf.calibration_inputs_)
    y_cal, y_held = np.asarray(y_cal), np.searchsorted(clf.classes_, y)
    cal, held = head_logits(clf, encoded), head_logits(clf, encode(clf, X))
    rows = []
    for layer, lc, lh in zip(clf.head_layers_, cal, held, strict=True):
        t = fit_temperature(lc, y_cal)
        calibrators = {
            "temperature": lambda z, t=t: softmax(z / t, axis=1),
            "vector": fit_vector_scaling(lc, y_cal, t),
            "isotonic": fit_isotonic(lc, y_cal, t),
        }
        row = {
            "layer": layer,
            "calibration_rows": len(y_cal),
            "heldout_rows": len(y_held),
            "accuracy_calibration": float((lc.argmax(1) == y_cal).mean()),
            "accuracy_heldout": float((lh.argmax(1) == y_held).mean()),
        }
        for key, calibrate in calibrators.items():
            row[f"{key}_ece_calibration"] = expected_calibration_error(calibrate(lc), y_cal)
            row[f"{key}_ece_heldout"] = expected_calibration_error(calibrate(lh), y_held)
        row["heldout_noise_floor"] = ece_noise_floor(calibrators["temperature"](lh))
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="the --work folder of the objectives study")
    parser.add_argument("--datasets", type=lambda s: s.split(","), default=["rotten_tomatoes", "tweets_3class"])
    parser.add_argument("--objectives", type=lambda s: s.split(","), default=["sum"])
    parser.add_argument("--n-train", type=int, default=2000, help="as in the objectives run")
    parser.add_argument("--n-test", type=int, default=1000, help="as in the objectives run")
    parser.add_argument("--ece-rows", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    command_line = command(__file__, argv)
    start(args.threads)
    records = []
    for name in args.datasets:
        for objective in args.objectives:
            for row in rows_for(args.work / f"{name}-{objective}", name, args):
                records.append({"dataset": name, "objective": objective, **row})
                print(records[-1], flush=True)
    table = pd.DataFrame.from_records(records)
    worst = table.groupby(["dataset", "objective"], sort=False)[
        [c for c in table.columns if c.endswith("_ece_heldout")] + ["heldout_noise_floor"]
    ].max()
    lines = header("Calibrators compared on the exit heads", command_line) + [
        "Models fitted by `python -m research.training_objectives.objectives` (see "
        "`research/training_objectives/results/objectives.md`).",
        "",
        "Each calibrator is fitted on the model's calibration split and scored by ECE (15 bins) on it and "
        "on held-out rows of the test pool (never trained or calibrated on). `temperature`: one temperature "
        "per head (skearly's); `vector`: a scale and a bias per class; `isotonic`: isotonic regression of "
        "correctness on the temperature-scaled top-class confidence. `heldout_noise_floor`: the ECE a "
        "perfectly calibrated head would show on the held-out rows.",
        "",
        "Worst exit per model, held-out rows:",
        "",
        worst.reset_index().to_markdown(index=False, floatfmt=".4f"),
        "",
        "Every head:",
        "",
        table.to_markdown(index=False, floatfmt=".4f"),
    ]
    write_results(args.out, "calibrators", table=table, lines=lines)
    print("\n".join(lines[:16]))


if __name__ == "__main__":
    main()
