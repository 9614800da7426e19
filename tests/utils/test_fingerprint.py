"""``weights_fingerprint`` changes with the weights, in place or replaced, and only then."""

import pytest
import torch
from torch import nn

from skearly._utils.fingerprint import weights_fingerprint


def test_fingerprint_stays_while_the_weights_do_and_changes_when_they_change():
    layer = nn.Linear(3, 2)
    first = weights_fingerprint(layer)
    assert weights_fingerprint(layer) == first  # reading changes nothing
    with torch.no_grad():
        layer.weight.add_(1.0)  # in place: same storage, new version
    in_place = weights_fingerprint(layer)
    assert in_place != first
    layer.to(torch.float64)  # replaced: another tensor
    assert weights_fingerprint(layer) not in (first, in_place)


def test_inference_tensors_have_no_fingerprint():
    with torch.inference_mode():
        layer = nn.Linear(3, 2)
    with pytest.raises(RuntimeError, match="version counter"):
        weights_fingerprint(layer)
