"""exit_curve (every threshold from one pass), its display, and the target_speedup budget mode."""

import copy
import functools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import tiny_classifier  # noqa: E402
from sklearn.metrics import balanced_accuracy_score, f1_score  # noqa: E402

from skearly import ExitCurveDisplay, MaxProbability, Patience  # noqa: E402
from skearly.exit_criteria import resolve_criterion  # noqa: E402
from skearly.exit_curve import DEFAULT_THRESHOLDS, layer_speedup, threshold_for_speedup  # noqa: E402
from skearly.inference._engine import simulate_exits  # noqa: E402

THRESHOLDS = [1.0, 0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5001]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _threshold_rows(curve):
    return curve[curve["kind"] == "threshold"].reset_index(drop=True)


@pytest.mark.parametrize("criterion", ["max_proba", "entropy", "patience"])
def test_exit_curve_agrees_with_predict_at_each_threshold(fitted, toy_data, criterion):
    _, _, X_test, y_test = toy_data
    clf = copy.deepcopy(fitted).set_params(exit_criterion=criterion)
    curve = clf.exit_curve(X_test, y_test, thresholds=THRESHOLDS)
    rows = _threshold_rows(curve)
    assert rows["threshold"].tolist() == THRESHOLDS
    for _, row in rows.iterrows():
        clf.set_params(threshold=row["threshold"])
        assert row["accuracy"] == clf.score(X_test, y_test), row["threshold"]
        assert row["mean_exit_layer"] == clf.exit_layers_.mean(), row["threshold"]
        assert row["expected_speedup"] == pytest.approx(4 / clf.exit_layers_.mean())
        for layer in clf.head_layers_:
            assert row[f"frac_layer_{layer}"] == pytest.approx(np.mean(clf.exit_layers_ == layer))


def test_exit_curve_layout_defaults_and_fractions(fitted, toy_data):
    _, _, X_test, y_test = toy_data
    clf = copy.deepcopy(fitted)
    network, threshold = clf.network_, clf.threshold
    curve = clf.exit_curve(X_test, y_test)
    assert list(curve.columns) == [
        "kind",
        "threshold",
        "accuracy",
        "mean_exit_layer",
        "expected_speedup",
        "frac_layer_1",
        "frac_layer_2",
        "frac_layer_3",
        "frac_layer_4",
    ]
    assert curve["kind"].tolist() == ["threshold"] * len(DEFAULT_THRESHOLDS) + ["oracle", "oracle_correct"]
    assert _threshold_rows(curve)["threshold"].tolist() == list(DEFAULT_THRESHOLDS)
    assert curve.loc[curve["kind"] != "threshold", "threshold"].isna().all()
    fractions = curve.filter(like="frac_layer_").to_numpy()
    np.testing.assert_allclose(fractions.sum(axis=1), 1.0)
    assert np.all((fractions >= 0) & (fractions <= 1))
    full = curve.iloc[0]
    assert full["mean_exit_layer"] == 4.0 and full["expected_speedup"] == 1.0 and full["frac_layer_4"] == 1.0
    # speed-up grows as the threshold falls (max_proba)
    assert np.all(np.diff(_threshold_rows(curve)["expected_speedup"]) >= 0)
    assert clf.network_ is network and clf.threshold == threshold  # nothing refitted or changed


def test_oracles(fitted, toy_data):
    _, _, X_test, y_test = toy_data
    clf = copy.deepcopy(fitted)
    curve = clf.exit_curve(X_test, y_test, thresholds=THRESHOLDS).set_index("kind", append=True)
    oracle = curve.xs("oracle", level="kind").iloc[0]
    oracle_correct = curve.xs("oracle_correct", level="kind").iloc[0]
    full_depth_accuracy = clf.set_params(threshold=1.0).score(X_test, y_test)
    full_predictions = clf.predict(X_test)
    # the oracle keeps every full-depth prediction, so the full-depth accuracy ...
    assert oracle["accuracy"] == full_depth_accuracy
    # ... and exits no later than any threshold that also keeps every full-depth prediction
    for threshold in THRESHOLDS:
        clf.set_params(threshold=threshold)
        if np.array_equal(clf.predict(X_test), full_predictions):
            assert oracle["mean_exit_layer"] <= clf.exit_layers_.mean()
    # exiting at the earliest correct head is at least as accurate as any threshold
    assert oracle_correct["accuracy"] >= curve["accuracy"].max() - 1e-12
    assert oracle["mean_exit_layer"] < 4.0


def test_exit_curve_with_a_metric_function(fitted, toy_data):
    _, _, X_test, y_test = toy_data
    clf = copy.deepcopy(fitted)
    curve = clf.exit_curve(X_test, y_test, thresholds=[1.0, 0.8], scoring=balanced_accuracy_score)
    assert "score" in curve.columns and "accuracy" not in curve.columns
    clf.set_params(threshold=0.8)
    assert curve["score"].iloc[1] == balanced_accuracy_score(y_test, clf.predict(X_test))
    macro_f1 = functools.partial(f1_score, average="macro")
    assert clf.exit_curve(X_test, y_test, thresholds=[0.8], scoring=macro_f1)["score"].iloc[0] == pytest.approx(
        macro_f1(y_test, clf.predict(X_test))
    )


def test_exit_curve_string_labels_and_input_checks(fitted, toy_data):
    _, _, X_test, y_test = toy_data
    clf = copy.deepcopy(fitted)
    with pytest.raises(ValueError, match="threshold"):
        clf.exit_curve(X_test, y_test, thresholds=[0.9, 1.5])
    with pytest.raises(ValueError, match="different lengths"):
        clf.exit_curve(X_test, y_test[:-1])
    with pytest.raises(TypeError, match="scoring"):
        clf.exit_curve(X_test, y_test, scoring="f1_macro")
    # labels the model never saw are simply wrong
    curve = clf.exit_curve(X_test, np.full(len(y_test), 7), thresholds=[0.9])
    assert curve["accuracy"].iloc[0] == 0.0


def test_display_from_estimator(fitted, toy_data):
    _, _, X_test, y_test = toy_data
    clf = copy.deepcopy(fitted)
    display = ExitCurveDisplay.from_estimator(clf, X_test, y_test, thresholds=THRESHOLDS)
    assert display.figure_ is display.ax_.figure
    x, y = display.line_.get_data()
    assert len(x) == len(THRESHOLDS) and np.all(np.diff(x) >= 0)
    assert len(display.annotations_) == len(set(zip(display.speedup, display.score)))
    assert display.oracle_ is not None
    assert display.ax_.get_xlabel().startswith("expected speed-up") and display.ax_.get_ylabel() == "accuracy"
    curve = clf.exit_curve(X_test, y_test, thresholds=THRESHOLDS)
    assert display.oracle_score == curve.loc[curve["kind"] == "oracle", "accuracy"].iloc[0]


def test_display_from_curve_on_given_axes(fitted, toy_data, tmp_path):
    _, _, X_test, y_test = toy_data
    clf = copy.deepcopy(fitted)
    fig, ax = plt.subplots()
    curve = clf.exit_curve(X_test, y_test, scoring=balanced_accuracy_score)
    display = ExitCurveDisplay.from_curve(curve, estimator_name="tiny").plot(ax=ax, annotate=False, color="k")
    assert display.ax_ is ax and display.figure_ is fig
    assert display.annotations_ == [] and display.ax_.get_ylabel() == "score"
    assert display.line_.get_label() == "tiny"
    fig.savefig(tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 0


# ---------------------------------------------------------------- budget mode
def test_calibration_proba_is_stored(fitted):
    proba = fitted.calibration_proba_
    assert proba.shape == (4, 48, 2)  # 4 heads, 20% of 240 rows, 2 classes
    np.testing.assert_allclose(proba.sum(axis=2), 1.0, atol=1e-5)


@pytest.mark.parametrize("target", [1.5, 2.0])
def test_target_speedup_is_reached_on_held_out_data(fitted, toy_data, target):
    _, _, X_test, _ = toy_data
    clf = copy.deepcopy(fitted)
    network = clf.network_
    clf.set_params(target_speedup=target)  # no refit
    clf.predict(X_test)
    achieved = 4 / clf.exit_layers_.mean()
    assert achieved == pytest.approx(target, rel=0.10)
    assert clf.network_ is network
    # on the calibration split itself the chosen threshold reaches the target, and is the highest that does
    threshold = clf.threshold_for_speedup(target)
    heads = simulate_exits(resolve_criterion(clf.exit_criterion), clf.calibration_proba_, threshold)
    assert layer_speedup(heads, clf.head_layers_) >= target
    higher = np.nextafter(np.float32(threshold), np.float32(2))
    heads = simulate_exits(resolve_criterion(clf.exit_criterion), clf.calibration_proba_, float(higher))
    assert layer_speedup(heads, clf.head_layers_) < target


def test_target_speedup_overrides_threshold(fitted, toy_data):
    _, _, X_test, _ = toy_data
    clf = copy.deepcopy(fitted).set_params(target_speedup=2.0)
    layers = [clf.set_params(threshold=t).predict_with_exits(X_test)[1] for t in (1.0, 0.6)]
    np.testing.assert_array_equal(layers[0], layers[1])
    clf.set_params(threshold=clf.threshold_for_speedup(2.0), target_speedup=None)
    np.testing.assert_array_equal(clf.predict_with_exits(X_test)[1], layers[0])
    assert copy.deepcopy(fitted).threshold_for_speedup(1.0) == 1.0
    assert clf.set_params(target_speedup=1.0).predict_with_exits(X_test)[1].tolist() == [4] * len(X_test)


def test_target_speedup_uses_the_exit_criterion(fitted, toy_data):
    _, _, X_test, _ = toy_data
    clf = copy.deepcopy(fitted).set_params(target_speedup=2.0)
    thresholds = {c: clf.set_params(exit_criterion=c).threshold_for_speedup(2.0) for c in ("max_proba", "entropy")}
    assert thresholds["max_proba"] != thresholds["entropy"]
    clf.set_params(exit_criterion="entropy").predict(X_test)
    assert 4 / clf.exit_layers_.mean() == pytest.approx(2.0, rel=0.15)
    # patience(3) can exit at layer 3 at the earliest: speed-up 4/3 at most, so a higher target warns
    clf.set_params(exit_criterion=Patience(3), target_speedup=2.0)
    with pytest.warns(UserWarning, match="No threshold reaches"):
        clf.predict(X_test)
    assert np.all(clf.exit_layers_ >= 3)


@pytest.mark.parametrize("target", [0.5, 4.5, "fast", float("nan")])
def test_target_speedup_is_validated(fitted, toy_data, target):
    _, _, X_test, _ = toy_data
    clf = copy.deepcopy(fitted).set_params(target_speedup=target)
    with pytest.raises((ValueError, TypeError), match="target_speedup"):
        clf.predict(X_test)
    with pytest.raises((ValueError, TypeError), match="target_speedup"):
        clf.threshold_for_speedup(target)


def test_target_speedup_is_validated_at_fit(tiny_encoder, toy_data):
    X_train, y_train, _, _ = toy_data
    with pytest.raises(ValueError, match="target_speedup"):
        tiny_classifier(tiny_encoder, target_speedup=0.9).fit(X_train, y_train)


def test_target_speedup_needs_calibration_data(tiny_encoder, toy_data):
    X_train, y_train, X_test, _ = toy_data
    clf = tiny_classifier(tiny_encoder, epochs=1, calibration_size=0.0).fit(X_train, y_train)
    assert clf.calibration_proba_.shape == (4, 0, 2)
    with pytest.raises(ValueError, match="calibration_size=0"):
        clf.set_params(target_speedup=2.0).predict(X_test)


def test_threshold_for_speedup_hand_made():
    # 4 rows, 2 heads at layers 1 and 2; head-1 confidences 0.9, 0.8, 0.7, 0.6
    first = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    proba = np.stack([first, np.tile([0.5, 0.5], (4, 1))]).astype(np.float32)
    # speed-up 2 / mean exit layer: 2 rows out at layer 1 -> 2 / 1.5 = 4/3
    assert threshold_for_speedup(MaxProbability(), proba, (1, 2), 4 / 3) == pytest.approx(0.8)
    assert threshold_for_speedup(MaxProbability(), proba, (1, 2), 1.0) == 1.0
    assert threshold_for_speedup(MaxProbability(), proba, (1, 2), 2.0) == pytest.approx(0.6)
