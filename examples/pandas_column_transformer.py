"""Early exit inside a pandas workflow: a DataFrame with a text column and others, a ColumnTransformer, a Pipeline.

The real tweets come as a DataFrame (``text``, ``sentiment``, ``confidence``). A
``ColumnTransformer`` picks the ``text`` column out of a frame that also holds other
columns (here the annotators' ``confidence`` and a made-up ``n_words``), and the
pipeline feeds it to :class:`~skearly.EarlyExitTextClassifier`. Two things to know:

* ``ColumnTransformer`` needs 2-D blocks, so select the column **as a list**,
  ``["text"]``: the estimator takes the resulting ``(n, 1)`` block as one text per row.
  (A bare ``"text"`` makes ``"passthrough"`` fail with "should be 2D".)
* Outside a ColumnTransformer, ``frame["text"]`` is a 1-D ``pandas.Series``, which the
  estimator takes directly.

Run ``python examples/pandas_column_transformer.py`` (real encoder, a few minutes on a
CPU) or add ``--tiny`` for a seconds-long run on a tiny random encoder.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from skearly import EarlyExitTextClassifier
from skearly.datasets import load_tweet_sentiment_frame
from skearly.encoders import make_tiny_encoder


def load_frames(n_train: int, n_test: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Negative and positive tweets with two extra columns, split into stratified train/test frames."""
    frame = load_tweet_sentiment_frame()
    frame = frame[frame["sentiment"].isin(["negative", "positive"])].reset_index(drop=True)
    frame["n_words"] = frame["text"].str.split().str.len()
    train, test = train_test_split(
        frame, train_size=n_train, test_size=n_test, stratify=frame["sentiment"], random_state=0
    )
    return train, test


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=2000, help="training tweets (default: 2000)")
    parser.add_argument("--n-test", type=int, default=1000, help="test tweets (default: 1000)")
    parser.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs (default: 1)")
    parser.add_argument("--tiny", action="store_true", help="use a tiny random encoder (seconds; for tests)")
    args = parser.parse_args(argv)

    train, test = load_frames(args.n_train, args.n_test)
    features = ["text", "confidence", "n_words"]
    print(f"train frame {train[features].shape}, columns {features}; label column 'sentiment'")

    encoder = make_tiny_encoder(tempfile.mkdtemp()) if args.tiny else None  # None: packaged all-MiniLM-L6-v2
    model = Pipeline(
        [
            # ["text"], not "text": ColumnTransformer blocks are 2-D; the other columns are dropped
            ("select", ColumnTransformer([("text", "passthrough", ["text"])], remainder="drop")),
            ("clf", EarlyExitTextClassifier(encoder, threshold=0.9, epochs=args.epochs, random_state=0)),
        ]
    )
    model.fit(train[features], train["sentiment"])
    print(f"pipeline accuracy: {model.score(test[features], test['sentiment']):.3f}")

    # the same fitted classifier on the 1-D Series that selecting one column by name gives
    column = test["text"]
    clf = model.named_steps["clf"]
    print(f"test['text'] is a {type(column).__name__} with ndim={column.ndim}")
    same = np.array_equal(clf.predict(column), model.predict(test[features]))
    print(f"Series input gives the pipeline's predictions: {same}")
    print(f"mean exit layer: {clf.exit_layers_.mean():.2f} of {clf.n_layers_}")

    # columns in another order, extra columns: the ColumnTransformer selects by name
    shuffled = test[["n_words", "confidence", "text"]]
    print(f"columns reordered, same predictions: {np.array_equal(model.predict(shuffled), clf.predict(column))}")

    report = test.assign(predicted=model.predict(test[features]), text=test["text"].str.slice(0, 60))
    print(report[["text", "sentiment", "predicted"]].head(5).to_string(index=False))


if __name__ == "__main__":
    main()
