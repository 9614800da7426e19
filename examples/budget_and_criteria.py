"""Budget mode and exit criteria, on one fitted model.

``target_speedup`` asks for a layer-count speed-up instead of a threshold: the
threshold is picked from the calibration split kept at fit time (the highest one
that reaches the target), so ``set_params(target_speedup=...)`` needs no refit.
Then ``exit_curve`` compares the three exit criteria (the paper's calibrated
max-probability, DeeBERT's entropy, PABEE's patience) on the same fitted network.

By default it uses the real packaged encoder on real tweets; ``--tiny`` runs in
seconds on a tiny random encoder (used by the tests).
"""

from __future__ import annotations

import argparse
import tempfile

import pandas as pd

from skearly import EarlyExitTextClassifier, Patience
from skearly.datasets import load_tweet_sentiment
from skearly.encoders import make_tiny_encoder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=2000, help="training tweets (default: 2000)")
    parser.add_argument("--n-test", type=int, default=1000, help="test tweets (default: 1000)")
    parser.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs (default: 1)")
    parser.add_argument("--targets", default="1.5,2,3", help="comma-separated target speed-ups (default: 1.5,2,3)")
    parser.add_argument("--tiny", action="store_true", help="use a tiny random encoder (seconds; for tests)")
    args = parser.parse_args(argv)

    X_train, X_test, y_train, y_test = load_tweet_sentiment(
        classes=("negative", "positive"), n_train=args.n_train, n_test=args.n_test, random_state=0
    )
    encoder = make_tiny_encoder(tempfile.mkdtemp()) if args.tiny else None  # None: packaged all-MiniLM-L6-v2
    extra = {"learning_rate": 3e-3, "batch_size": 16} if args.tiny else {}
    clf = EarlyExitTextClassifier(encoder, epochs=args.epochs, random_state=0, **extra).fit(X_train, y_train)
    n_layers = clf.head_layers_[-1]
    print(f"fitted on {len(X_train)} tweets in {clf.fit_time_:.0f}s ({n_layers} layers)")

    print("\nbudget mode (max_proba): the threshold is chosen on the calibration split")
    print(f"{'target':>6} {'threshold':>9} {'achieved':>8} {'accuracy':>8}")
    for target in (float(t) for t in args.targets.split(",")):
        clf.set_params(target_speedup=target)  # no refit
        accuracy = clf.score(X_test, y_test)
        achieved = n_layers / clf.exit_layers_.mean()
        print(f"{target:>5.2f}x {clf.threshold_for_speedup(target):>9.4f} {achieved:>7.2f}x {accuracy:>8.3f}")
    clf.set_params(target_speedup=None)

    print("\nexit criteria on the same network (one pass each through all layers):")
    frames = []
    for name, criterion in [("max_proba", "max_proba"), ("entropy", "entropy"), ("patience(2)", Patience(2))]:
        curve = clf.set_params(exit_criterion=criterion).exit_curve(X_test, y_test, thresholds=[1.0, 0.95, 0.9, 0.8])
        frames.append(curve.assign(criterion=name))
    table = pd.concat(frames, ignore_index=True)
    table = table[table["kind"] == "threshold"]  # the oracles do not depend on the criterion
    columns = ["criterion", "threshold", "accuracy", "mean_exit_layer", "expected_speedup"]
    print(table[columns].round(3).to_string(index=False))
    print("(patience ignores the threshold below 1.0: it exits once 2 heads in a row agree)")

    clf.set_params(exit_criterion="entropy", target_speedup=2.0)  # budget mode works with any criterion
    accuracy = clf.score(X_test, y_test)
    print(f"\nentropy with target_speedup=2: {n_layers / clf.exit_layers_.mean():.2f}x, accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
