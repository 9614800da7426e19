"""learned_nothing: the last head's accuracy against the majority share, beyond the noise of the split."""

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skearly.training import learned_nothing, warn_if_learned_nothing


def _proba(predicted: np.ndarray, n_classes: int = 2) -> np.ndarray:
    return np.eye(n_classes)[predicted]


def test_majority_class_predictions_learned_nothing():
    labels = np.array([0] * 124 + [1] * 76)  # the case: a 0.62 majority share on 200 rows ...
    predicted = np.zeros(200, dtype=int)
    predicted[124:127] = 1  # ... and about 0.634 accuracy, from nearly always predicting the majority
    nothing, accuracy, majority, margin = learned_nothing(_proba(predicted), labels)
    assert majority == pytest.approx(0.62) and accuracy == pytest.approx(0.635)
    assert nothing and margin == pytest.approx(2 * np.sqrt(0.62 * 0.38 / 200))


def test_accurate_predictions_learned_something():
    labels = np.array([0, 1] * 50)
    predicted = labels.copy()
    predicted[:10] = 1 - predicted[:10]  # 90% accuracy against a 50% majority
    assert learned_nothing(_proba(predicted), labels)[0] is False


def test_too_few_rows_tell_nothing():
    labels = np.array([0, 1, 0, 1])  # even 100% could not clear 0.5 + 2 * 0.25
    assert learned_nothing(_proba(np.zeros(4, dtype=int)), labels)[0] is False


def test_the_warning_names_what_to_try():
    labels = np.array([0, 1] * 100)
    proba = np.stack([_proba(np.zeros(200, dtype=int))] * 3)  # 3 heads, all predicting class 0
    with pytest.warns(ConvergenceWarning, match=r"0.500 on 200 rows.*more epochs, more training data"):
        assert warn_if_learned_nothing(proba, {"labels": labels})
    assert not warn_if_learned_nothing(proba[:, :0], {"labels": labels[:0]})  # no calibration split
    assert not warn_if_learned_nothing(proba, None)
