"""Bad input gets a clear ValueError / TypeError / NotFittedError that names the problem."""

import copy

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_classifier
from sklearn.exceptions import NotFittedError

from skearly import EarlyExitTextClassifier

TEXTS = ["good film", "bad film", "great plot", "awful plot"]
LABELS = [1, 0, 1, 0]


@pytest.mark.parametrize(
    ("X", "y", "error", "match"),
    [
        ([], [], ValueError, "X is empty"),
        (TEXTS, LABELS[:3], ValueError, "different lengths: 4 texts but 3 labels"),
        (["good", 3, "bad", "x"], LABELS, TypeError, r"X\[1\] must be a string, got int"),
        (["good", None, "bad", "x"], LABELS, ValueError, r"X\[1\] is missing"),
        (["good", "ok", float("nan"), "x"], LABELS, ValueError, r"X\[2\] is missing"),
        (["good", b"bytes", "bad", "x"], LABELS, TypeError, r"X\[1\] must be a string, got bytes"),
        ("good film", [1], TypeError, "single string"),
        (None, LABELS, TypeError, "got None"),
        (np.zeros((4, 3)), LABELS, ValueError, r"shape \(4, 3\)"),
        (pd.DataFrame({"a": TEXTS, "b": TEXTS, "c": TEXTS}), LABELS, ValueError, "got 3 columns"),
        ([("a", "b"), ("c",), ("d", "e"), ("f", "g")], LABELS, ValueError, r"X\[1\] must be a pair of 2 texts"),
        ([("a", "b"), "c", ("d", "e"), ("f", "g")], LABELS, TypeError, r"X\[1\] must be a \(text, text\) pair"),
        (TEXTS, [1, 1, 1, 1], ValueError, "only one class"),
        (TEXTS, [1, None, 0, 1], ValueError, r"missing labels .* rows \[1\]"),
        (TEXTS, [1.0, np.nan, 0.0, 1.0], ValueError, "missing labels"),
        (TEXTS, [0.5, 1.5, 0.1, 2.2], ValueError, "continuous"),
        (TEXTS, None, ValueError, "requires y to be passed"),
    ],
)
def test_bad_fit_input(tiny_encoder, X, y, error, match):
    with pytest.raises(error, match=match):
        tiny_classifier(tiny_encoder, epochs=1, calibration_size=0.0).fit(X, y)


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.5, float("nan")])
def test_threshold_out_of_range_fails_at_fit_and_predict(tiny_encoder, fitted, threshold):
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\]"):
        tiny_classifier(tiny_encoder, threshold=threshold).fit(TEXTS, LABELS)
    clf = copy.deepcopy(fitted).set_params(threshold=threshold)
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\]"):
        clf.predict(TEXTS)


def test_threshold_of_wrong_type(fitted):
    with pytest.raises(TypeError, match="threshold must be a real number"):
        copy.deepcopy(fitted).set_params(threshold="high").predict(TEXTS)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"epochs": -1}, ValueError, "epochs"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate"),
        ({"head_learning_rate": -1e-3}, ValueError, "head_learning_rate"),
        ({"head_learning_rate": "fast"}, TypeError, "head_learning_rate"),
        ({"max_grad_norm": 0.0}, ValueError, "max_grad_norm"),
        ({"max_grad_norm": "1.0"}, TypeError, "max_grad_norm"),
        ({"max_length": 1.5}, TypeError, "max_length"),
        ({"calibration_size": 1.0}, ValueError, "calibration_size"),
        ({"pooling": "max"}, ValueError, "pooling"),
        ({"head_layers": [3, 2]}, ValueError, "strictly increasing"),
        ({"head_layers": [0, 9]}, ValueError, "this encoder has 4 layers"),
        ({"head_layers": "all"}, TypeError, "head_layers"),
        ({"exit_criterion": "nope"}, ValueError, "exit_criterion"),
        ({"device": "cuda:banana"}, ValueError, "device"),
    ],
)
def test_bad_parameters(tiny_encoder, params, error, match):
    with pytest.raises(error, match=match):
        tiny_classifier(tiny_encoder, **params).fit(TEXTS, LABELS)


def test_predict_before_fit():
    clf = EarlyExitTextClassifier()
    for method in (clf.predict, clf.predict_proba, clf.predict_with_exits):
        with pytest.raises(NotFittedError):
            method(TEXTS)


def test_missing_encoder_path(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        EarlyExitTextClassifier(str(tmp_path / "nope")).fit(TEXTS, LABELS)
    with pytest.raises(ValueError, match="no config.json"):
        EarlyExitTextClassifier(str(tmp_path)).fit(TEXTS, LABELS)


def test_hub_name_not_cached_fails_fast_without_network(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ValueError, match="not found locally"):
        EarlyExitTextClassifier("some-org/some-model").fit(TEXTS, LABELS)


def test_bad_predict_input(fitted):
    clf = copy.deepcopy(fitted)
    with pytest.raises(ValueError, match="X is empty"):
        clf.predict([])
    with pytest.raises(TypeError, match=r"X\[0\] must be a string"):
        clf.predict([1.5])


def test_too_little_data_for_calibration(tiny_encoder):
    with pytest.raises(ValueError, match="Too few samples"):
        tiny_classifier(tiny_encoder, calibration_size=0.5).fit(TEXTS[:3], LABELS[:3])


def test_empty_and_long_texts_are_predicted(fitted):
    clf = copy.deepcopy(fitted)
    texts = ["", "   ", "good " * 2000, "😀 مرحبا e\u0301"]
    assert clf.predict(texts).shape == (4,)


def test_check_number_takes_none_only_when_optional():
    from skearly._utils.validation import check_number

    assert check_number("max_grad_norm", None, kind=float, low=0, low_open=True, optional=True) is None
    assert check_number("max_grad_norm", 2, kind=float, low=0, low_open=True, optional=True) == 2.0
    with pytest.raises(TypeError, match="max_grad_norm"):
        check_number("max_grad_norm", None, kind=float, low=0, low_open=True)
    with pytest.raises(ValueError, match="max_grad_norm"):
        check_number("max_grad_norm", -1.0, kind=float, low=0, low_open=True, optional=True)
