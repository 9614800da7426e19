"""Shared fixtures: a tiny random encoder and a small learnable text task (fast, offline)."""

from __future__ import annotations

import numpy as np
import pytest

from skearly import EarlyExitTextClassifier
from skearly.encoders import make_tiny_encoder

POSITIVE = ["great", "good", "love", "excellent", "happy", "wonderful", "best", "nice"]
NEGATIVE = ["bad", "awful", "hate", "terrible", "sad", "worst", "poor", "ugly"]
FILLER = ["the", "movie", "was", "really", "a", "plot", "this", "and", "film", "actor", "quite", "so"]


def make_texts(n: int, seed: int = 0, n_classes: int = 2) -> tuple[list[str], np.ndarray]:
    """Short texts whose label is given by which word list they draw from (third class: fillers only)."""
    rng = np.random.RandomState(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % n_classes
        words = list(rng.choice(FILLER, size=rng.randint(2, 9)))
        if label < 2:
            vocab = POSITIVE if label == 1 else NEGATIVE
            for _ in range(rng.randint(1, 3)):
                words.insert(rng.randint(len(words) + 1), rng.choice(vocab))
        texts.append(" ".join(words))
        labels.append(label)
    return texts, np.asarray(labels)


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> str:
    return str(make_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder")))


def tiny_classifier(encoder: str, **params) -> EarlyExitTextClassifier:
    """Settings under which the tiny encoder learns the toy task in about a second."""
    defaults = dict(epochs=4, learning_rate=3e-3, batch_size=16, calibration_size=0.2, random_state=0)
    defaults.update(params)
    return EarlyExitTextClassifier(encoder, **defaults)


@pytest.fixture(scope="session")
def toy_data():
    X_train, y_train = make_texts(240, seed=0)
    X_test, y_test = make_texts(120, seed=1)
    return X_train, y_train, X_test, y_test


@pytest.fixture(scope="session")
def fitted(tiny_encoder, toy_data) -> EarlyExitTextClassifier:
    X_train, y_train, _, _ = toy_data
    return tiny_classifier(tiny_encoder).fit(X_train, y_train)
