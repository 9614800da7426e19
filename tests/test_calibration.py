import warnings

import numpy as np
import pytest

from skearly.calibration import (
    calibrated_proba,
    ece_interval,
    ece_noise_floor,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    warn_if_too_small,
)


def test_fit_temperature_recovers_the_true_temperature():
    rng = np.random.RandomState(0)
    logits = rng.normal(scale=4.0, size=(20000, 3))
    true_t = 2.5
    proba = calibrated_proba(logits, true_t)
    y = np.array([rng.choice(3, p=p) for p in proba])
    t = fit_temperature(logits, y)
    assert abs(t - true_t) < 0.1
    assert negative_log_likelihood(logits, y, t) < negative_log_likelihood(logits, y, 1.0)


def test_temperature_keeps_predictions():
    logits = np.random.RandomState(1).normal(size=(50, 4))
    np.testing.assert_array_equal(calibrated_proba(logits, 3.0).argmax(1), logits.argmax(1))


def test_ece_hand_made():
    # all confidences 0.8, accuracy 0.5 -> ECE 0.3
    proba = np.tile([[0.8, 0.2]], (4, 1))
    y = np.array([0, 0, 1, 1])
    assert abs(expected_calibration_error(proba, y) - 0.3) < 1e-12
    # perfectly calibrated: confidence 1.0, all right
    assert expected_calibration_error(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1])) == 0.0
    assert np.isnan(expected_calibration_error(np.empty((0, 2)), np.empty(0, dtype=int)))


def test_no_data_gives_unit_temperature():
    assert fit_temperature(np.empty((0, 2)), np.empty(0, dtype=int)) == 1.0


def test_fit_temperature_is_bounded_and_never_worse_than_one():
    from skearly.calibration import TEMPERATURE_BOUNDS

    rng = np.random.RandomState(2)
    # labels independent of the logits: the best temperature is huge, clipped to the upper bound
    logits = rng.normal(scale=5.0, size=(300, 2))
    y = rng.randint(0, 2, size=300)
    t = fit_temperature(logits, y)
    assert TEMPERATURE_BOUNDS[0] <= t <= TEMPERATURE_BOUNDS[1]
    assert negative_log_likelihood(logits, y, t) <= negative_log_likelihood(logits, y, 1.0)
    # labels that follow the logits: a temperature below 1 sharpens them, and the fit finds one
    sharp = rng.normal(scale=0.5, size=(500, 2))
    t_sharp = fit_temperature(sharp, sharp.argmax(1))
    assert TEMPERATURE_BOUNDS[0] <= t_sharp < 1.0
    assert negative_log_likelihood(sharp, sharp.argmax(1), t_sharp) < negative_log_likelihood(sharp, sharp.argmax(1))


def test_ece_interval_is_reproducible_and_narrows_with_rows():
    rng = np.random.RandomState(3)

    def sample(n):
        proba = calibrated_proba(rng.normal(scale=2.0, size=(n, 3)), 1.0)
        y = np.array([rng.choice(3, p=p) for p in proba])
        return proba, y

    proba, y = sample(300)
    low, high = ece_interval(proba, y)
    assert (low, high) == ece_interval(proba, y)  # fixed seed
    assert 0 <= low <= high
    big_low, big_high = ece_interval(*sample(3000))
    assert big_high - big_low < high - low
    assert np.isnan(ece_interval(np.empty((0, 3)), np.empty(0, dtype=int))).all()


def test_ece_noise_floor_is_the_ece_of_a_perfectly_calibrated_head():
    rng = np.random.default_rng(5)

    def sample_proba(n):
        return calibrated_proba(rng.normal(scale=2.0, size=(n, 3)), 1.0)

    proba = sample_proba(1000)
    floor = ece_noise_floor(proba)
    assert floor == ece_noise_floor(proba)  # fixed seed
    # labels drawn from the probabilities themselves: calibrated by construction, yet their ECE is the floor
    drawn = [expected_calibration_error(proba, np.array([rng.choice(3, p=p) for p in proba])) for _ in range(60)]
    assert 0.01 < floor < 0.06
    assert abs(np.mean(drawn) - floor) < 0.15 * floor
    # the floor shrinks as 1/sqrt(rows)
    assert ece_noise_floor(sample_proba(16000)) < 0.4 * floor
    # an overconfident head sits far above its floor
    sharp = calibrated_proba(np.log(proba), 0.3)
    y = np.array([rng.choice(3, p=p) for p in proba])
    assert expected_calibration_error(sharp, y) > 3 * ece_noise_floor(sharp)
    assert np.isnan(ece_noise_floor(np.empty((0, 3))))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "15"])
def test_ece_functions_reject_a_bad_bin_or_draw_count(bad):
    proba, y = np.array([[0.8, 0.2], [0.3, 0.7]]), np.array([0, 0])
    with pytest.raises(ValueError, match="n_bins must be an integer >= 1"):
        expected_calibration_error(proba, y, n_bins=bad)
    with pytest.raises(ValueError, match="n_bins must be an integer >= 1"):
        ece_noise_floor(proba, n_bins=bad)
    with pytest.raises(ValueError, match="n_resamples must be an integer >= 1"):
        ece_noise_floor(proba, n_resamples=bad)


def test_ece_matches_the_per_bin_definition():
    rng = np.random.default_rng(11)
    proba = calibrated_proba(rng.normal(scale=2.0, size=(500, 4)), 1.0)
    y = rng.integers(0, 4, size=500)
    confidence, correct = proba.max(1), proba.argmax(1) == y
    bins = np.clip(np.ceil(confidence * 15).astype(int) - 1, 0, 14)
    expected = sum(
        (bins == b).sum() * abs(correct[bins == b].mean() - confidence[bins == b].mean()) for b in np.unique(bins)
    ) / len(y)
    assert abs(expected_calibration_error(proba, y) - expected) < 1e-12


def test_small_calibration_split_warns_with_its_size():
    with pytest.warns(UserWarning, match=r"only 60 rows \(fewest in one class: 30\).*at least 100 rows"):
        assert warn_if_too_small(np.arange(60) % 2, 2)
    with pytest.warns(UserWarning, match="fewest in one class: 5"):
        warn_if_too_small(np.r_[np.zeros(300, int), np.ones(5, int)], 2)
    with pytest.warns(UserWarning, match="fewest in one class: 0"):
        warn_if_too_small(np.zeros(300, int), 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_too_small(np.arange(200) % 2, 2)
        assert not warn_if_too_small(np.empty(0, dtype=int), 2)  # calibration off: nothing to warn about


def test_calibration_report_has_the_interval_columns(fitted):
    report = fitted.calibration_report_
    first = ["layer", "temperature", "accuracy", "ece_before", "ece_after", "nll_before", "nll_after"]
    assert list(report.columns[: len(first)]) == first
    assert {"ece_after_low", "ece_after_high", "ece_noise_floor", "n_rows"} <= set(report.columns)
    assert (report["ece_noise_floor"] > 0).all()
    assert (report["ece_after_low"] <= report["ece_after_high"]).all()
    assert (report["nll_after"] <= report["nll_before"] + 1e-12).all()
