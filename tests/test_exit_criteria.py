import math

import pytest
import torch

from skearly import Entropy, ExitCriterion, MaxProbability, Patience
from skearly.exit_criteria import resolve_criterion


def test_max_probability():
    proba = torch.tensor([[0.95, 0.05], [0.6, 0.4], [0.1, 0.9]])
    leave, state = MaxProbability().decide(proba, None, 0.9)
    assert leave.tolist() == [True, False, True] and state is None
    assert not MaxProbability().exits_early(1.0)


def test_entropy_uses_normalised_confidence():
    uniform = torch.full((1, 4), 0.25)
    sure = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    p = torch.tensor([[0.8, 0.2]])
    h = -(0.8 * math.log(0.8) + 0.2 * math.log(0.2)) / math.log(2)  # 0.7219
    assert Entropy().decide(uniform, None, 0.01)[0].tolist() == [False]
    assert Entropy().decide(sure, None, 0.99)[0].tolist() == [True]
    assert Entropy().decide(p, None, 1 - h - 1e-4)[0].tolist() == [True]
    assert Entropy().decide(p, None, 1 - h + 1e-4)[0].tolist() == [False]


def test_patience_counts_consecutive_agreement():
    crit = Patience(2)
    state = crit.start(3, torch.device("cpu"))
    leave, state = crit.decide(torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), state, 0.5)
    assert leave.tolist() == [False, False, False]
    leave, state = crit.decide(torch.tensor([[0.7, 0.3], [0.7, 0.3], [0.8, 0.2]]), state, 0.5)
    assert leave.tolist() == [True, False, True]
    leave, state = crit.decide(torch.tensor([[0.7, 0.3], [0.9, 0.1], [0.8, 0.2]]), state, 0.5)
    assert leave.tolist() == [True, True, True]
    assert Patience(1).decide(torch.tensor([[0.5, 0.5]]), Patience(1).start(1, "cpu"), 0.5)[0].tolist() == [True]


def test_patience_rejects_bad_values():
    for bad in (0, -1):
        with pytest.raises(ValueError, match=r"patience must be in \[1, inf\)"):
            Patience(bad)
    for bad in (1.5, True, "2"):
        with pytest.raises(TypeError, match="patience must be an int"):
            Patience(bad)


def test_resolve_and_custom_criterion():
    assert isinstance(resolve_criterion("entropy"), Entropy)
    assert resolve_criterion("patience") == Patience(2)

    class Never(ExitCriterion):
        def decide(self, proba, state, threshold):
            return torch.zeros(len(proba), dtype=torch.bool), state

    crit = Never()
    assert resolve_criterion(crit) is crit
    with pytest.raises(TypeError):
        resolve_criterion(3)
    with pytest.raises(NotImplementedError):
        ExitCriterion().decide(torch.ones(1, 2), None, 0.5)
