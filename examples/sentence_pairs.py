"""Sentence pairs: early exit on (text, hypothesis) inputs, encoded as ``[CLS] a [SEP] b [SEP]``.

No NLI corpus installs offline, so :func:`skearly.datasets.load_tweet_sentiment_pairs`
builds an NLI-style task from the real tweets: each tweet is paired with the hypothesis
``"The author feels <sentiment> about it."``, naming its true sentiment ("entailment")
or a wrong one ("contradiction"). Pairs go in as a list of 2-tuples, an ``(n, 2)``
array or a 2-column DataFrame; all three give the same predictions.

Run ``python examples/sentence_pairs.py`` (real encoder, a few minutes on a CPU) or add
``--tiny`` for a seconds-long run on a tiny random encoder.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import pandas as pd

from skearly import EarlyExitTextClassifier
from skearly.datasets import load_tweet_sentiment_pairs
from skearly.encoders import make_tiny_encoder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=3000, help="training pairs (default: 3000)")
    parser.add_argument("--n-test", type=int, default=1000, help="test pairs (default: 1000)")
    parser.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs (default: 2)")
    parser.add_argument("--tiny", action="store_true", help="use a tiny random encoder (seconds; for tests)")
    args = parser.parse_args(argv)

    X_train, X_test, y_train, y_test = load_tweet_sentiment_pairs(n_train=args.n_train, n_test=args.n_test)
    print(f"{len(X_train)} training pairs, e.g. {X_train[0]!r} -> {y_train[0]!r}")

    encoder = make_tiny_encoder(tempfile.mkdtemp()) if args.tiny else None  # None: packaged all-MiniLM-L6-v2
    clf = EarlyExitTextClassifier(encoder, threshold=0.9, epochs=args.epochs, random_state=0)
    clf.fit(X_train, y_train)  # a list of (text, hypothesis) tuples
    print(f"classes: {clf.classes_.tolist()}")

    print(f"\n{'threshold':>9} {'accuracy':>8} {'mean exit layer':>15}")
    for threshold in (1.0, 0.9, 0.7):
        clf.set_params(threshold=threshold)  # no refit
        print(f"{threshold:>9.2f} {clf.score(X_test, y_test):>8.3f} {clf.exit_layers_.mean():>15.2f}")

    frame = pd.DataFrame(X_test, columns=["tweet", "hypothesis"])
    same = np.array_equal(clf.predict(frame), clf.predict(X_test)) and np.array_equal(
        clf.predict(frame.to_numpy()), clf.predict(X_test)
    )
    print(f"\n2-column DataFrame and (n, 2) array give the same predictions as tuples: {same}")

    predicted, layers = clf.predict_with_exits(X_test[:3])
    for (tweet, hypothesis), label, layer in zip(X_test[:3], predicted, layers, strict=True):
        print(f"- {tweet[:50]!r} / {hypothesis!r} -> {label} (exit layer {layer})")


if __name__ == "__main__":
    main()
