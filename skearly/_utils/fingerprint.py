"""A fingerprint of a module's weights: keep what was derived from them while it stays equal."""

from __future__ import annotations

from torch import nn

__all__ = ["weights_fingerprint"]


def weights_fingerprint(module: nn.Module) -> tuple[tuple[int, int], ...]:
    """Storage address and in-place version counter of every weight of ``module``.

    It changes whenever the weights do (in place, or replaced by others, e.g. moved
    to another device or dtype), so whatever was derived from the weights can be
    kept while it stays equal.

    Raises
    ------
    RuntimeError
        For weights that are inference tensors (made under ``torch.inference_mode``),
        which keep no version counter.
    """
    return tuple((t.data_ptr(), t._version) for t in module.state_dict(keep_vars=True).values())
