import numpy as np

from skearly.calibration import (
    calibrated_proba,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
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
