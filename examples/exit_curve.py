"""Every speed/accuracy trade-off of one fitted model, from one pass over the test set.

``exit_curve`` runs each test row through every layer once, then replays the exit
rule for each threshold: accuracy, mean exit layer, layer-count speed-up and the
share of rows leaving at each layer, plus two oracle rows (exit at the earliest
layer that agrees with the last one / that is correct), which bound what a better
exit rule could reach. ``ExitCurveDisplay`` plots it (saved to ``--out``).

By default it uses the real packaged encoder on real tweets; ``--tiny`` runs in
seconds on a tiny random encoder (used by the tests).
"""

from __future__ import annotations

import argparse
import tempfile

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from skearly import EarlyExitTextClassifier, ExitCurveDisplay
from skearly.datasets import load_tweet_sentiment
from skearly.encoders import make_tiny_encoder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=2000, help="training tweets (default: 2000)")
    parser.add_argument("--n-test", type=int, default=1000, help="test tweets (default: 1000)")
    parser.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs (default: 1)")
    parser.add_argument("--out", default="exit_curve.png", help="where to save the plot (default: exit_curve.png)")
    parser.add_argument("--tiny", action="store_true", help="use a tiny random encoder (seconds; for tests)")
    args = parser.parse_args(argv)

    X_train, X_test, y_train, y_test = load_tweet_sentiment(
        classes=("negative", "positive"), n_train=args.n_train, n_test=args.n_test, random_state=0
    )
    encoder = make_tiny_encoder(tempfile.mkdtemp()) if args.tiny else None  # None: packaged all-MiniLM-L6-v2
    extra = {"learning_rate": 3e-3, "batch_size": 16} if args.tiny else {}
    clf = EarlyExitTextClassifier(encoder, epochs=args.epochs, random_state=0, **extra).fit(X_train, y_train)
    print(f"fitted on {len(X_train)} tweets in {clf.fit_time_:.0f}s; exit curve on {len(X_test)} test tweets:")

    curve = clf.exit_curve(X_test, y_test)  # one pass through all layers, every threshold replayed
    print(curve.round(3).to_string(index=False))

    display = ExitCurveDisplay.from_estimator(clf, X_test, y_test, name="max_proba")
    display.ax_.set_title(f"{len(X_test)} test tweets, {clf.n_layers_} layers")
    display.figure_.tight_layout()
    display.figure_.savefig(args.out, dpi=120)
    plt.close(display.figure_)
    print(f"plot saved to {args.out}")


if __name__ == "__main__":
    main()
