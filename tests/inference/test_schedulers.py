import pytest
import torch

from skearly.inference._schedulers import SCHEDULERS, RefillingScheduler, ShrinkingScheduler, resolve_scheduler


def test_auto_picks_by_device():
    assert resolve_scheduler("auto", torch.device("cpu")) == ShrinkingScheduler()
    assert resolve_scheduler("auto", torch.device("cuda")) == RefillingScheduler()


def test_names_and_objects_resolve():
    for name, cls in SCHEDULERS.classes.items():
        assert isinstance(resolve_scheduler(name, torch.device("cpu")), cls)
    scheduler = RefillingScheduler()
    assert resolve_scheduler(scheduler, torch.device("cpu")) is scheduler


def test_bad_schedulers_are_refused():
    with pytest.raises(ValueError, match="refilling"):
        resolve_scheduler("fastest", torch.device("cpu"))
    with pytest.raises(TypeError, match="scheduler must be a string"):
        resolve_scheduler(3, torch.device("cpu"))


def test_padding_tolerance_is_checked_and_kept():
    assert RefillingScheduler().padding_tolerance == 0.0
    assert RefillingScheduler(padding_tolerance=1).padding_tolerance == 1.0
    assert RefillingScheduler(float("inf")).padding_tolerance == float("inf")
    assert RefillingScheduler(0.25) == RefillingScheduler(padding_tolerance=0.25) != RefillingScheduler()
    assert repr(RefillingScheduler(0.25)) == "RefillingScheduler(padding_tolerance=0.25)"
    for bad in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="padding_tolerance must be in"):
            RefillingScheduler(bad)
    for bad in ("0.25", True, None):
        with pytest.raises(TypeError, match="padding_tolerance must be a real number"):
            RefillingScheduler(bad)


def test_a_tolerant_scheduler_is_an_estimator_parameter(fitted, toy_data):
    import copy

    from sklearn.base import clone

    _, _, X_test, _ = toy_data
    scheduler = RefillingScheduler(padding_tolerance=0.25)
    clf = copy.deepcopy(fitted).set_params(scheduler=scheduler, threshold=0.8)
    assert clone(clf).get_params()["scheduler"] == scheduler
    assert clf.predict(X_test).shape == (len(X_test),)
