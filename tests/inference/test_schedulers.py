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
