import copy

import numpy as np
import pytest
import torch
from conftest import tiny_classifier
from torch.nn import functional as F

from skearly import EarlyExitTextClassifier
from skearly.objectives import (
    DepthWeighted,
    LayerWeighted,
    SelfDistillation,
    SummedCrossEntropy,
    TrainingObjective,
    resolve_objective,
)
from skearly.training._fit_cache import FitParams

LAYERS = (1, 2, 4)


def _batch(seed=0, n=8, n_classes=3):
    gen = torch.Generator().manual_seed(seed)
    logits = [torch.randn(n, n_classes, generator=gen, requires_grad=True) for _ in LAYERS]
    target = torch.randint(0, n_classes, (n,), generator=gen)
    return logits, target


def _loss(objective, logits, target):
    return objective.loss(logits, target, exit_layers=LAYERS, epoch=0, n_epochs=1)


def test_resolve_objective_names_objects_and_errors():
    assert resolve_objective("sum") == SummedCrossEntropy()
    assert resolve_objective("depth_weighted") == DepthWeighted()
    assert resolve_objective("distill") == SelfDistillation(2.0, 0.5)
    assert resolve_objective("layer_weighted") == LayerWeighted(-1.0)
    custom = SelfDistillation(temperature=4, alpha=0.2)
    assert resolve_objective(custom) is custom
    with pytest.raises(ValueError, match="objective must be one of .*'distill'.*got 'kl'"):
        resolve_objective("kl")
    with pytest.raises(TypeError, match="objective must be a string or a TrainingObjective, got int"):
        resolve_objective(3)


@pytest.mark.parametrize(
    "params, error",
    [
        ({"temperature": 0}, ValueError),
        ({"temperature": float("inf")}, ValueError),
        ({"temperature": 101}, ValueError),
        ({"temperature": "2"}, TypeError),
        ({"alpha": 1.5}, ValueError),
        ({"alpha": float("nan")}, ValueError),
        ({"alpha": True}, TypeError),
        ({"warmup_epochs": -1}, ValueError),
        ({"warmup_epochs": 1.5}, TypeError),
        ({"warmup_epochs": True}, TypeError),
    ],
)
def test_self_distillation_rejects_bad_parameters(params, error):
    with pytest.raises(error, match=next(iter(params))):
        SelfDistillation(**params)


def test_summed_and_depth_weighted_losses():
    logits, target = _batch()
    ce = [F.cross_entropy(head, target) for head in logits]
    torch.testing.assert_close(_loss(SummedCrossEntropy(), logits, target), sum(ce))
    expected = (1 * ce[0] + 2 * ce[1] + 4 * ce[2]) / 7
    torch.testing.assert_close(_loss(DepthWeighted(), logits, target), expected)


def test_layer_weighted_loss_generalises_depth_weighted():
    logits, target = _batch(4)
    ce = [F.cross_entropy(head, target) for head in logits]
    torch.testing.assert_close(_loss(LayerWeighted(1.0), logits, target), _loss(DepthWeighted(), logits, target))
    torch.testing.assert_close(_loss(LayerWeighted(0), logits, target), sum(ce) / 3)
    expected = (ce[0] / 1 + ce[1] / 2 + ce[2] / 4) / (1 + 1 / 2 + 1 / 4)
    torch.testing.assert_close(_loss(LayerWeighted(), logits, target), expected)


@pytest.mark.parametrize(
    "power, error, match",
    [
        (float("nan"), ValueError, r"power must be in \[-10.0, 10.0\]"),
        (float("inf"), ValueError, r"power must be in \[-10.0, 10.0\]"),
        (1000, ValueError, r"power must be in \[-10.0, 10.0\], got 1000"),
        ("1", TypeError, "power must be a real number"),
        (True, TypeError, "power must be a real number"),
        (None, TypeError, "power must be a real number"),
    ],
)
def test_layer_weighted_rejects_bad_power(power, error, match):
    with pytest.raises(error, match=match):
        LayerWeighted(power)


def test_self_distillation_loss():
    logits, target = _batch(1)
    ce = [F.cross_entropy(head, target) for head in logits]
    # alpha 0: the summed loss
    torch.testing.assert_close(_loss(SelfDistillation(alpha=0.0), logits, target), sum(ce))
    # heads equal to the final one: KL is 0
    same = [logits[-1]] * 3
    got = _loss(SelfDistillation(alpha=0.3), same, target)
    torch.testing.assert_close(got, ce[-1] + 2 * 0.7 * ce[-1])
    # the KL term moves the early heads toward the final one, never the final head (its target is detached)
    objective = SelfDistillation(temperature=2.0, alpha=1.0)
    _loss(objective, logits, target).backward()
    final_grad = logits[-1].grad.clone()
    fresh = logits[-1].detach().clone().requires_grad_(True)
    F.cross_entropy(fresh, target).backward()
    torch.testing.assert_close(final_grad, fresh.grad)
    assert logits[0].grad.abs().sum() > 0


def test_self_distillation_warmup_epochs_train_on_the_summed_loss_first():
    logits, target = _batch(2)
    ce = [F.cross_entropy(head, target) for head in logits]
    staged = SelfDistillation(alpha=1.0, warmup_epochs=2)

    def at(epoch):
        return staged.loss(logits, target, exit_layers=LAYERS, epoch=epoch, n_epochs=3)

    torch.testing.assert_close(at(0), sum(ce))
    torch.testing.assert_close(at(1), sum(ce))
    joint = SelfDistillation(alpha=1.0).loss(logits, target, exit_layers=LAYERS, epoch=2, n_epochs=3)
    torch.testing.assert_close(at(2), joint)
    assert not torch.allclose(at(2), sum(ce))


def test_objectives_are_equal_by_parameters_and_key_the_fit_cache():
    assert SelfDistillation(2, 0.5) == SelfDistillation(2.0, 0.5) != SelfDistillation(3.0, 0.5)
    assert hash(DepthWeighted()) == hash(DepthWeighted())
    assert repr(SelfDistillation()) == "SelfDistillation(temperature=2.0, alpha=0.5, warmup_epochs=0)"
    assert SelfDistillation(warmup_epochs=1) != SelfDistillation()
    base = dict(
        encoder_path="e",
        encoder_identity=(),
        head_layers=(1, 2),
        max_length=8,
        batch_size=2,
        epochs=1,
        learning_rate=1e-3,
        weight_decay=0.0,
        warmup_ratio=0.1,
        calibration_size=0.1,
        pooling="mean",
        dropout=0.1,
        seed=0,
        device_type="cpu",
        mixed_precision=False,
    )
    assert FitParams(**base) == FitParams(**base, objective=SummedCrossEntropy())
    assert FitParams(**base) != FitParams(**base, objective=SelfDistillation())


def _weights(clf):
    return {k: v.clone() for k, v in clf.network_.state_dict().items()}


def test_objective_parameter_reaches_training(tiny_encoder, toy_data):
    X, y, X_test, y_test = toy_data
    default = tiny_classifier(tiny_encoder, epochs=1).fit(X, y)
    named = tiny_classifier(tiny_encoder, epochs=1, objective=SummedCrossEntropy()).fit(X, y)
    distill = tiny_classifier(tiny_encoder, epochs=1, objective="distill").fit(X, y)
    a, b, c = _weights(default), _weights(named), _weights(distill)
    assert all(torch.equal(a[k], b[k]) for k in a)  # "sum" and its object: the same fit
    assert any(not torch.equal(a[k], c[k]) for k in a)
    assert default.loss_curve_ == named.loss_curve_ != distill.loss_curve_


@pytest.mark.parametrize(("objective", "error"), [("bogus", ValueError), (None, TypeError)])
def test_bad_objective_is_refused_in_fit(tiny_encoder, toy_data, objective, error):
    X, y, _, _ = toy_data
    clf = tiny_classifier(tiny_encoder, objective=objective)  # __init__ stores only
    with pytest.raises(error, match="objective"):
        clf.fit(X, y)


@pytest.mark.parametrize(
    "objective",
    [
        "depth_weighted",
        SelfDistillation(temperature=3.0, alpha=0.25),
        SelfDistillation(warmup_epochs=1),
        DepthWeighted(),
        "layer_weighted",
        LayerWeighted(power=-2.0),
    ],
)
def test_objective_is_saved_and_loaded(fitted, tmp_path, objective):
    clf = copy.deepcopy(fitted).set_params(objective=objective)
    loaded = EarlyExitTextClassifier.load(clf.save(tmp_path / "m"))
    assert loaded.objective == objective and type(loaded.objective) is type(objective)


def test_custom_objective_is_refused_by_save(fitted, tmp_path):
    class Mine(TrainingObjective):
        def loss(self, logits, target, *, exit_layers, epoch, n_epochs):
            return logits[-1].sum()

    clf = copy.deepcopy(fitted).set_params(objective=Mine())
    with pytest.raises(TypeError, match="objective .*custom Mine.*built-in TrainingObjective classes"):
        clf.save(tmp_path / "m")


def test_custom_objective_trains(tiny_encoder, toy_data):
    class LastOnly(TrainingObjective):
        def loss(self, logits, target, *, exit_layers, epoch, n_epochs):
            return F.cross_entropy(logits[-1].float(), target)

    X, y, _, _ = toy_data
    clf = tiny_classifier(tiny_encoder, epochs=1, objective=LastOnly()).fit(X, y)
    assert np.isfinite(clf.loss_curve_).all()
