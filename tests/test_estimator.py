import copy
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_texts, tiny_classifier
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skearly import EarlyExitTextClassifier


def test_init_only_stores_parameters():
    clf = EarlyExitTextClassifier(threshold=5.0, epochs=-1, encoder="/does/not/exist")
    assert clf.get_params()["threshold"] == 5.0  # validated in fit, not in __init__
    assert not [k for k in vars(clf) if k.endswith("_")]


def test_fit_learns_the_task_and_sets_fitted_attributes(fitted, toy_data):
    _, _, X_test, y_test = toy_data
    clf = copy.deepcopy(fitted).set_params(threshold=1.0)
    # 0.85, not 0.9: a fit under CUDA numerics (bf16 autocast) reached 0.883 on this toy task; chance is 0.5
    assert clf.score(X_test, y_test) >= 0.85
    assert list(clf.classes_) == [0, 1]
    assert clf.n_layers_ == 4 and clf.head_layers_ == (1, 2, 3, 4)
    assert clf.temperatures_.shape == (4,) and np.all(clf.temperatures_ > 0)
    report = clf.calibration_report_
    assert list(report.columns) == [
        "layer",
        "temperature",
        "accuracy",
        "ece_before",
        "ece_after",
        "nll_before",
        "nll_after",
        "ece_after_low",
        "ece_after_high",
        "ece_noise_floor",
        "n_rows",
    ]
    # temperature scaling minimises NLL on the calibration split: it can only improve it
    assert np.all(report["nll_after"] <= report["nll_before"] + 1e-9)
    assert len(clf.loss_curve_) == 4 and clf.loss_curve_[-1] < clf.loss_curve_[0]


def test_predict_proba_is_a_distribution_over_classes(fitted, toy_data):
    _, _, X_test, _ = toy_data
    proba = copy.deepcopy(fitted).predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)


def test_threshold_moves_exits_without_refit(fitted, toy_data):
    _, _, X_test, _ = toy_data
    clf = copy.deepcopy(fitted)
    network = clf.network_
    means = []
    for threshold in [1.0, 0.99, 0.9, 0.7, 0.5001]:
        clf.set_params(threshold=threshold)
        clf.predict(X_test)
        assert clf.network_ is network  # no refit
        assert set(np.unique(clf.exit_layers_)) <= set(clf.head_layers_)
        means.append(clf.exit_layers_.mean())
    assert means[0] == 4.0  # threshold 1.0: full depth for every row
    assert all(a >= b for a, b in zip(means, means[1:])), means
    assert means[-1] < means[0]


def test_exit_layers_and_predict_with_exits_agree(fitted, toy_data):
    _, _, X_test, _ = toy_data
    clf = copy.deepcopy(fitted).set_params(threshold=0.8)
    y_pred = clf.predict(X_test)
    layers = clf.exit_layers_.copy()
    clf.exit_layers_ = None
    y2, layers2 = clf.predict_with_exits(X_test)
    assert clf.exit_layers_ is None  # untouched: race-free
    np.testing.assert_array_equal(y_pred, y2)
    np.testing.assert_array_equal(layers, layers2)


@pytest.mark.parametrize("container", [list, np.array, pd.Series, tuple])
def test_accepts_text_containers(fitted, toy_data, container):
    _, _, X_test, _ = toy_data
    clf = copy.deepcopy(fitted)
    expected = clf.predict(X_test)
    np.testing.assert_array_equal(clf.predict(container(X_test)), expected)


def test_one_column_frame_and_2d_array_are_texts(fitted, toy_data):
    _, _, X_test, _ = toy_data
    clf = copy.deepcopy(fitted)
    expected = clf.predict(X_test)
    np.testing.assert_array_equal(clf.predict(pd.DataFrame({"text": X_test})), expected)
    np.testing.assert_array_equal(clf.predict(np.array(X_test, dtype=object)[:, None]), expected)


def test_string_labels_and_three_classes(tiny_encoder):
    X, y = make_texts(180, seed=3, n_classes=3)
    names = np.array(["neg", "pos", "neutral"])[y]
    clf = tiny_classifier(tiny_encoder).fit(X, names)
    assert list(clf.classes_) == ["neg", "neutral", "pos"]
    assert set(clf.predict(X)) <= set(clf.classes_)
    assert clf.predict_proba(X).shape == (180, 3)


def test_sentence_pairs_as_tuples_and_frame(tiny_encoder):
    X, y = make_texts(200, seed=4)
    # label = whether the second text carries the same sentiment as the first
    rng = np.random.RandomState(0)
    partner = rng.permutation(len(X))
    pairs = [(X[i], X[j]) for i, j in enumerate(partner)]
    same = (y == y[partner]).astype(int)
    clf = tiny_classifier(tiny_encoder, epochs=2).fit(pairs, same)
    proba_tuples = clf.predict_proba(pairs[:50])
    frame = pd.DataFrame(pairs[:50], columns=["premise", "hypothesis"])
    np.testing.assert_allclose(clf.predict_proba(frame), proba_tuples)
    # token types mark the second segment: swapping the texts changes the input
    assert clf.tokenizer_(pairs[0][0], pairs[0][1])["token_type_ids"][-1] == 1


def test_head_layers_subset(tiny_encoder, toy_data):
    X_train, y_train, X_test, _ = toy_data
    clf = tiny_classifier(tiny_encoder, head_layers=[2, 3], epochs=2).fit(X_train, y_train)
    assert clf.head_layers_ == (2, 3)
    assert len(clf.network_.heads) == 2
    clf.set_params(threshold=0.5001).predict(X_test)
    assert set(np.unique(clf.exit_layers_)) <= {2, 3}


@pytest.mark.parametrize(("params", "head_rate"), [({}, 1e-3), ({"head_learning_rate": None}, 3e-3)])
def test_heads_learn_at_1e_3_by_default_and_at_the_encoder_rate_with_none(
    tiny_encoder, toy_data, monkeypatch, params, head_rate
):
    import skearly.training._loop

    rates = []
    build = skearly.training._loop._optimizer

    def spy(network, config):
        optimizer = build(network, config)
        rates.append({group["lr"] for group in optimizer.param_groups})
        return optimizer

    monkeypatch.setattr(skearly.training._loop, "_optimizer", spy)
    X_train, y_train, _, _ = toy_data
    tiny_classifier(tiny_encoder, epochs=1, **params).fit(X_train[:64], y_train[:64])
    assert rates == [{3e-3, head_rate}]


@pytest.mark.parametrize(("params", "clipped_at"), [({}, []), ({"max_grad_norm": 1.0}, [1.0, 1.0])])
def test_fit_clips_gradients_only_when_max_grad_norm_is_set(tiny_encoder, toy_data, monkeypatch, params, clipped_at):
    calls = []
    clip = torch.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm, *args, **kwargs):
        calls.append(max_norm)
        return clip(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    X_train, y_train, _, _ = toy_data
    tiny_classifier(tiny_encoder, epochs=1, batch_size=32, calibration_size=0.0, **params).fit(
        X_train[:64], y_train[:64]
    )
    assert calls == clipped_at  # 64 rows, batch 32: two steps


def test_random_state_makes_fits_bit_identical(tiny_encoder, toy_data):
    X_train, y_train, X_test, _ = toy_data
    a = tiny_classifier(tiny_encoder, epochs=1, random_state=7).fit(X_train, y_train).set_params(threshold=0.7)
    b = tiny_classifier(tiny_encoder, epochs=1, random_state=7).fit(X_train, y_train).set_params(threshold=0.7)
    np.testing.assert_array_equal(a.predict_proba(X_test), b.predict_proba(X_test))
    np.testing.assert_array_equal(a.exit_layers_, b.exit_layers_)
    c = tiny_classifier(tiny_encoder, epochs=1, random_state=8).fit(X_train, y_train)
    assert not np.array_equal(a.predict_proba(X_test), c.set_params(threshold=0.7).predict_proba(X_test))


def test_calibration_size_zero_keeps_unit_temperatures(tiny_encoder, toy_data):
    X_train, y_train, X_test, _ = toy_data
    clf = tiny_classifier(tiny_encoder, epochs=1, calibration_size=0.0).fit(X_train, y_train)
    np.testing.assert_array_equal(clf.temperatures_, 1.0)
    assert clf.calibration_inputs_["input_ids"].shape[0] == 0 and clf.calibration_inputs_["labels"].shape == (0,)
    # a fast backend has nothing to refit on: temperatures stay 1, no warning, no crash
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = clf.calibration_report("int8")
        y_pred = clf.set_params(backend="int8").predict(X_test)
    assert y_pred.shape == (len(X_test),)
    np.testing.assert_array_equal(report["temperature"], 1.0)
    assert not report["refitted"].any()
    np.testing.assert_array_equal(clf._engine().temperatures, 1.0)


def test_calibration_inputs_are_the_tokenized_calibration_split(fitted):
    from skearly._utils.batching import unpack_calibration_inputs
    from skearly.calibration import calibrated_head_proba
    from skearly.network._full_pass import all_head_logits

    inputs = fitted.calibration_inputs_
    n_rows = int(fitted.calibration_report_["n_rows"].iloc[0])
    assert inputs["input_ids"].shape == inputs["attention_mask"].shape == (n_rows, inputs["input_ids"].shape[1])
    assert inputs["input_ids"].dtype == np.int32 and inputs["labels"].dtype == np.int64
    encoded, labels = unpack_calibration_inputs(inputs)
    lengths = encoded.lengths()
    assert inputs["input_ids"].shape[1] == lengths.max()  # trimmed to the longest row, not max_length
    assert all(
        ids[0] == fitted.tokenizer_.cls_token_id and ids[-1] == fitted.tokenizer_.sep_token_id
        for ids in encoded.input_ids
    )
    assert (inputs["input_ids"][inputs["attention_mask"] == 0] == inputs["pad_token_id"]).all()
    # the stored rows reproduce the fit-time calibration probabilities through the fitted network
    with torch.inference_mode():
        logits = all_head_logits(fitted.network_, encoded, fitted.batch_size, torch.device("cpu"))
    np.testing.assert_allclose(
        calibrated_head_proba(logits, fitted.temperatures_), fitted.calibration_proba_, atol=1e-6
    )
    assert np.mean(logits[-1].argmax(1) == labels) == pytest.approx(fitted.calibration_report_["accuracy"].iloc[-1])


def test_clone_pipeline_gridsearch_cross_val(tiny_encoder, toy_data):
    X_train, y_train, _, _ = toy_data
    clf = tiny_classifier(tiny_encoder)
    cloned = clone(clf)
    assert cloned.get_params() == clf.get_params()
    lower = FunctionTransformer(lambda X: [x.lower() for x in X])
    pipe = make_pipeline(lower, clf).fit(X_train, y_train)
    assert pipe.score(X_train, y_train) > 0.8
    search = GridSearchCV(clf, {"threshold": [0.6, 0.9, 1.0]}, cv=2).fit(X_train, y_train)
    assert search.best_params_["threshold"] in (0.6, 0.9, 1.0)
    scores = cross_val_score(clf, X_train, y_train, cv=2)
    assert scores.shape == (2,) and np.all(scores > 0.7)


def test_fit_prints_nothing_when_not_verbose(tiny_encoder, toy_data, capsys):
    X_train, y_train, _, _ = toy_data
    tiny_classifier(tiny_encoder, epochs=1).fit(X_train[:40], y_train[:40])
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "LOAD REPORT" not in captured.err


def test_predict_time_engine_parameters_need_no_refit(fitted, toy_data):
    _, _, X_test, _ = toy_data
    clf = copy.deepcopy(fitted).set_params(threshold=0.8)
    network = clf.network_
    expected = clf.predict(X_test)
    layers = clf.exit_layers_.copy()
    for scheduler in ("shrinking", "refilling", "auto"):
        clf.set_params(scheduler=scheduler, backend="torch")
        np.testing.assert_array_equal(clf.predict(X_test), expected)
        np.testing.assert_array_equal(clf.exit_layers_, layers)
        assert clf.network_ is network


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"scheduler": "fastest"}, ValueError, "scheduler must be"),
        ({"scheduler": 2}, TypeError, "scheduler must be"),
        ({"backend": "tensorrt"}, ValueError, "backend must be one of"),
        ({"backend": None}, TypeError, "backend must be"),
    ],
)
def test_bad_engine_parameters(fitted, toy_data, tiny_encoder, params, error, match):
    X_train, y_train, X_test, _ = toy_data
    with pytest.raises(error, match=match):
        tiny_classifier(tiny_encoder, **params).fit(X_train, y_train)
    with pytest.raises(error, match=match):
        copy.deepcopy(fitted).set_params(**params).predict(X_test)


@pytest.mark.parametrize("name", ["group_by_length", "mixed_precision"])
def test_fit_time_switches_must_be_bools(tiny_encoder, toy_data, name):
    X_train, y_train, _, _ = toy_data
    with pytest.raises(TypeError, match=f"{name} must be a bool, got 'yes'"):
        tiny_classifier(tiny_encoder, **{name: "yes"}).fit(X_train, y_train)
