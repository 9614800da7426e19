import numpy as np
import pytest

from skearly.datasets import (
    load_tweet_sentiment,
    load_tweet_sentiment_frame,
    load_tweet_sentiment_pairs,
    tweet_sentiment_path,
)


def test_frame_is_the_real_corpus():
    assert tweet_sentiment_path().is_file()
    frame = load_tweet_sentiment_frame()
    assert len(frame) > 37000
    assert not frame["text"].duplicated().any()
    assert set(frame["sentiment"]) == {"negative", "neutral", "positive"}
    assert len(load_tweet_sentiment_frame(min_confidence=0.9)) < len(frame)


def test_split_is_stratified_and_disjoint():
    X_train, X_test, y_train, y_test = load_tweet_sentiment(n_train=1000, n_test=300, random_state=1)
    assert len(X_train) == 1000 and len(X_test) == 300
    assert not set(X_train) & set(X_test)
    assert all(isinstance(x, str) for x in X_train)
    train_share = np.mean(y_train == "positive")
    assert abs(train_share - np.mean(y_test == "positive")) < 0.03


def test_binary_and_bad_classes():
    _, _, y_train, _ = load_tweet_sentiment(classes=("negative", "positive"), n_train=500)
    assert set(y_train) == {"negative", "positive"}
    with pytest.raises(ValueError, match="classes"):
        load_tweet_sentiment(classes=("negative", "angry"))


def test_pairs_are_honest_entailment():
    X_train, _, y_train, _ = load_tweet_sentiment_pairs(n_train=400)
    assert set(y_train) == {"entailment", "contradiction"}
    frame = load_tweet_sentiment_frame().set_index("text")
    for (tweet, hypothesis), label in zip(X_train[:50], y_train[:50]):
        named = hypothesis.split()[3]
        assert (named == frame.loc[tweet, "sentiment"]) == (label == "entailment")
