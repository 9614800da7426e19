"""Issue 23: what a model is fitted on, loaded from and configured with is checked, never silently wrong.

One test (or parametrised case) per case of the issue: each gets a documented error type
(``ValueError``, ``TypeError``) with a message naming the parameter or file. The Spark and
MLflow cases live in ``tests/integrations``; the persisted-state ones in ``tests/test_persistence.py``.
"""

from __future__ import annotations

import copy
import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import make_texts, tiny_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import f1_score, get_scorer, make_scorer

from skearly import EarlyExitTextClassifier
from skearly.exit_criteria import Patience
from skearly.exit_curve import ExitCurveDisplay
from skearly.model_selection import EarlyExitThresholdCV
from skearly.objectives import LayerWeighted, SelfDistillation, TrainingObjective


class _NoTraining(Exception):
    """Raised by a patched training loop: reaching it means a check came too late."""


@pytest.fixture
def no_training(monkeypatch):
    """Make any fine-tune fail loudly, to prove that a check runs before training."""
    from skearly.training import _fit_cache

    def refuse(*args, **kwargs):
        raise _NoTraining("training started")

    monkeypatch.setattr(_fit_cache, "train_jointly", refuse)


def _copy_encoder(tiny_encoder, tmp_path, drop=()):
    folder = tmp_path / "encoder"
    shutil.copytree(tiny_encoder, folder)
    for name in drop:
        (folder / name).unlink()
    return folder


# ------------------------------------------------------------------- encoder folders
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


def test_encoder_folder_without_tokenizer_files_is_refused_before_training(
    tiny_encoder, toy_data, tmp_path, no_training
):
    folder = _copy_encoder(tiny_encoder, tmp_path)
    for name in TOKENIZER_FILES:
        (folder / name).unlink(missing_ok=True)
    X, y, _, _ = toy_data
    with pytest.raises(ValueError, match="no tokenizer vocabulary.*tokenizer.json"):
        tiny_classifier(str(folder)).fit(X, y)


def test_encoder_with_a_trivial_vocabulary_is_refused_before_training(tiny_encoder, toy_data, tmp_path, no_training):
    folder = _copy_encoder(tiny_encoder, tmp_path, drop=["tokenizer.json"])
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n", encoding="utf-8")
    X, y, _, _ = toy_data
    with pytest.raises(ValueError, match="trivial vocabulary"):
        tiny_classifier(str(folder)).fit(X, y)


def test_encoder_folder_without_weights_is_a_value_error(tiny_encoder, toy_data, tmp_path, no_training):
    folder = _copy_encoder(tiny_encoder, tmp_path, drop=["model.safetensors"])
    X, y, _, _ = toy_data
    with pytest.raises(ValueError, match="has no weights.*model.safetensors"):
        tiny_classifier(str(folder)).fit(X, y)


def test_unsupported_model_type_is_read_from_config_before_the_weights(tiny_encoder, toy_data, tmp_path, no_training):
    folder = _copy_encoder(tiny_encoder, tmp_path, drop=["model.safetensors"])
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "gpt2"}), encoding="utf-8")
    X, y, _, _ = toy_data
    with pytest.raises(ValueError, match="model_type='gpt2'.*supported families.*bert"):
        tiny_classifier(str(folder)).fit(X, y)


def test_unreadable_config_is_a_value_error(tiny_encoder, toy_data, tmp_path, no_training):
    folder = _copy_encoder(tiny_encoder, tmp_path)
    (folder / "config.json").write_text("{not json", encoding="utf-8")
    X, y, _, _ = toy_data
    with pytest.raises(ValueError, match="config.json .* not readable JSON"):
        tiny_classifier(str(folder)).fit(X, y)


# ------------------------------------------------------------------- input kind
@pytest.fixture(scope="module")
def pair_fitted(tiny_encoder):
    X, y = make_texts(160, seed=3)
    pairs = pd.DataFrame({"premise": X, "hypothesis": X[::-1]})
    return tiny_classifier(tiny_encoder, epochs=1).fit(pairs, y)


def test_fit_records_the_input_kind(fitted, pair_fitted):
    assert fitted.input_kind_ == {"pairs": False, "columns": None}
    assert pair_fitted.input_kind_ == {"pairs": True, "columns": ["premise", "hypothesis"]}


def test_model_fitted_on_texts_refuses_pairs(fitted, toy_data):
    _, _, X_test, _ = toy_data
    two_columns = pd.DataFrame({"text": X_test, "extra": X_test})
    for method in (fitted.predict, fitted.predict_proba, fitted.predict_with_exits):
        with pytest.raises(ValueError, match="holds text pairs.*fitted on single texts"):
            method(two_columns)
    with pytest.raises(ValueError, match="fitted on single texts"):
        fitted.score(list(zip(X_test, X_test, strict=True)), np.zeros(len(X_test)))
    fitted.predict(pd.DataFrame({"anything": X_test[:3]}))  # a 1-column DataFrame is single texts: fine


def test_model_fitted_on_pairs_refuses_single_texts_and_other_columns(pair_fitted, toy_data):
    _, _, X_test, y_test = toy_data
    with pytest.raises(ValueError, match="holds single texts.*fitted on text pairs.*'premise', 'hypothesis'"):
        pair_fitted.predict(X_test)
    swapped = pd.DataFrame({"hypothesis": X_test, "premise": X_test})
    with pytest.raises(ValueError, match="columns \\['hypothesis', 'premise'\\].*\\['premise', 'hypothesis'\\]"):
        pair_fitted.exit_curve(swapped, y_test)
    pair_fitted.predict(list(zip(X_test[:3], X_test[:3], strict=True)))  # pairs without column names: fine


# ------------------------------------------------------------------- parameters checked at fit
def test_target_speedup_beyond_the_head_layers_is_refused_at_fit(tiny_encoder, toy_data, no_training):
    X, y, _, _ = toy_data
    with pytest.raises(ValueError, match=r"target_speedup must be in \[1, 2\]"):
        tiny_classifier(tiny_encoder, head_layers=[1, 2], target_speedup=3.0).fit(X, y)


def test_warmup_epochs_beyond_epochs_is_refused_at_fit(tiny_encoder, toy_data, no_training):
    X, y, _, _ = toy_data
    clf = tiny_classifier(tiny_encoder, epochs=2, objective=SelfDistillation(warmup_epochs=2))
    with pytest.raises(ValueError, match="warmup_epochs=2.*epochs=2.*never start"):
        clf.fit(X, y)


def test_patience_longer_than_the_heads_is_refused_at_fit_and_predict(tiny_encoder, fitted, toy_data, no_training):
    X, y, X_test, _ = toy_data
    with pytest.raises(ValueError, match=r"Patience\(patience=3\).*\(2\).*patience <= 2"):
        tiny_classifier(tiny_encoder, head_layers=[2, 4], exit_criterion=Patience(3)).fit(X, y)
    clf = copy.deepcopy(fitted).set_params(exit_criterion=Patience(len(fitted.head_layers_) + 1))
    with pytest.raises(ValueError, match="needs more agreeing heads"):
        clf.predict(X_test)


def test_unsupported_device_type_is_refused_before_training(tiny_encoder, fitted, toy_data, no_training):
    X, y, X_test, _ = toy_data
    with pytest.raises(ValueError, match="device='mps' is not supported.*'cpu' and 'cuda'"):
        tiny_classifier(tiny_encoder, device="mps").fit(X, y)
    with pytest.raises(ValueError, match="device='meta' is not supported"):
        copy.deepcopy(fitted).set_params(device="meta").predict(X_test)


# ------------------------------------------------------------------- strategy parameters at construction
@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: LayerWeighted(power=1000), ValueError, r"power must be in \[-10.0, 10.0\]"),
        (lambda: LayerWeighted(power=float("nan")), ValueError, "power"),
        (lambda: LayerWeighted(power="1"), TypeError, "power must be a real number"),
        (lambda: SelfDistillation(temperature=float("inf")), ValueError, r"temperature must be in \(0, 100.0\]"),
        (lambda: SelfDistillation(temperature=0), ValueError, "temperature"),
        (lambda: SelfDistillation(alpha=float("nan")), ValueError, "alpha"),
        (lambda: SelfDistillation(warmup_epochs=1.5), TypeError, "warmup_epochs must be an int"),
        (lambda: Patience(0), ValueError, "patience"),
        (lambda: Patience(2.0), TypeError, "patience must be an int"),
        (lambda: Patience(True), TypeError, "patience must be an int"),
    ],
)
def test_strategy_parameters_are_checked_at_construction(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_numpy_numbers_are_accepted_by_strategies():
    assert Patience(np.int64(2)).patience == 2 and type(Patience(np.int64(2)).patience) is int
    assert SelfDistillation(temperature=np.float32(3.0), warmup_epochs=np.int32(1)).warmup_epochs == 1
    assert LayerWeighted(power=np.int64(-2)).power == -2.0


# ------------------------------------------------------------------- training
class _NaNObjective(TrainingObjective):
    name = ""

    def loss(self, logits, target, *, exit_layers, epoch, n_epochs):
        return sum(head.float().mean() for head in logits) * float("nan")


def test_non_finite_loss_stops_fit(tiny_encoder, toy_data):
    X, y, _, _ = toy_data
    with pytest.raises(ValueError, match=r"training loss became nan at epoch 1, step 1.*learning_rate"):
        tiny_classifier(tiny_encoder, objective=_NaNObjective()).fit(X, y)


def test_fit_on_shuffled_labels_warns_that_it_learned_nothing(tiny_encoder):
    X, y = make_texts(400, seed=5)
    shuffled = np.random.default_rng(0).permutation(y)
    with pytest.warns(ConvergenceWarning, match="learned nothing.*more epochs, more training data"):
        tiny_classifier(tiny_encoder, epochs=2, calibration_size=0.25).fit(X, shuffled)


def test_fit_that_learns_does_not_warn(tiny_encoder, toy_data):
    X, y, _, _ = toy_data
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = tiny_classifier(tiny_encoder).fit(X, y)
    assert clf.calibration_report_["accuracy"].iloc[-1] > 0.8


# ------------------------------------------------------------------- threshold search and exit curves
class _FitMustNotRun(EarlyExitTextClassifier):
    def fit(self, X, y):
        raise _NoTraining("the search started")


def test_threshold_search_refuses_a_single_string_before_searching(tiny_encoder):
    search = EarlyExitThresholdCV(_FitMustNotRun(tiny_encoder), cv=2)
    with pytest.raises(TypeError, match="single string"):
        search.fit("one text only", [0] * 13)


@pytest.mark.parametrize("scorer", [get_scorer("accuracy"), make_scorer(f1_score, average="macro")])
def test_threshold_search_refuses_scorer_objects(tiny_encoder, toy_data, scorer):
    X, y, _, _ = toy_data
    search = EarlyExitThresholdCV(_FitMustNotRun(tiny_encoder), cv=2, scoring=scorer)
    with pytest.raises(TypeError, match=r"scorer called as scoring\(estimator, X, y\).*scoring\(y_true, y_pred\)"):
        search.fit(X, y)


def test_exit_curve_refuses_scorer_objects(fitted, toy_data):
    _, _, X_test, y_test = toy_data
    with pytest.raises(TypeError, match="is a scorer"):
        fitted.exit_curve(X_test, y_test, scoring=get_scorer("accuracy"))


@pytest.mark.parametrize(
    "table, error, match",
    [
        (pd.DataFrame({"threshold": [0.9], "accuracy": [0.8]}), ValueError, r"lacks the column\(s\) \['kind'"),
        (
            pd.DataFrame({"kind": ["threshold"], "threshold": [0.9], "expected_speedup": [1.2]}),
            ValueError,
            "accuracy or score",
        ),
        (
            pd.DataFrame({"kind": ["oracle"], "threshold": [np.nan], "expected_speedup": [2.0], "score": [0.9]}),
            ValueError,
            "no row of kind 'threshold'",
        ),
        ([{"kind": "threshold"}], TypeError, "curve must be the DataFrame"),
    ],
)
def test_exit_curve_display_refuses_a_wrong_table(table, error, match):
    with pytest.raises(error, match=match):
        ExitCurveDisplay.from_curve(table)
