"""Count the torch calls that would block the host on an accelerator: a CPU proxy for GPU behaviour.

On CUDA, a call that needs a device value on the host (``.item()``, ``.cpu()``,
``.tolist()``, ``bool(tensor)``, a boolean-mask index, ``nonzero`` ...) or that
copies host memory to the device synchronously (``torch.as_tensor(..., device=)``,
indexing with a numpy array or a list, ``.to(device)`` without ``non_blocking``)
waits for every queued kernel: the host stops feeding the GPU. On the CPU these
calls cost nothing special, so they go unnoticed. :class:`HostSyncCounter` is a
:class:`torch.overrides.TorchFunctionMode` that sees every torch call on any
device and counts those that *would* synchronise, per named phase, together with
the number of torch calls (ops). Tests use it on CPU so that a regression fails
there (``torch.cuda.set_sync_debug_mode`` only works on a GPU).

Where the CPU cannot tell host from device memory it follows the code's intent:
``torch.as_tensor(data, device=...)`` of host data counts (a pageable copy),
``tensor.to(device, non_blocking=True)`` does not (pinned on CUDA by
:func:`skearly._utils.devices.to_device`), and a plain ``tensor.to(device)``
counts only between two device types. ``tensor.numpy()`` reads the values on the
host: it counts, unless the tensor was just copied to the host by ``.cpu()``
(counted there), so that code reading a CPU tensor in place (no ``.cpu()`` call
on a CPU device) is charged the same one sync as ``.cpu().numpy()``.
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

__all__ = ["HostSyncCounter"]

#: Tensor methods that bring a device value to the host.
_TO_HOST = frozenset(
    {"item", "cpu", "tolist", "__bool__", "__int__", "__float__", "__index__", "nonzero", "masked_select", "unique"}
)
#: Factories that copy host data to ``device=`` synchronously (from pageable memory).
_FACTORIES = frozenset({"as_tensor", "tensor"})
_INDEXING = frozenset({"__getitem__", "__setitem__"})


def _name(func: Any) -> str:
    return getattr(func, "__name__", "") or str(func)


def _host_index(index: Any) -> bool:
    """Whether an index needs the host: a boolean mask, or host data (numpy, list) to copy to the device."""
    parts = index if isinstance(index, tuple) else (index,)
    for part in parts:
        if isinstance(part, torch.Tensor) and part.dtype == torch.bool:
            return True
        if isinstance(part, (np.ndarray, list)):
            return True
    return False


def _crosses_devices(args: tuple, kwargs: dict) -> bool:
    """Whether ``tensor.to(...)`` copies to another device without ``non_blocking=True``."""
    if kwargs.get("non_blocking", False) or not args or not isinstance(args[0], torch.Tensor):
        return False
    targets = [kwargs.get("device"), *args[1:]]
    for target in targets:
        if isinstance(target, torch.Tensor):
            target = target.device
        if isinstance(target, (str, torch.device)):
            return torch.device(target).type != args[0].device.type
    return False


def would_sync(func: Any, args: tuple, kwargs: dict) -> bool:
    """Whether the torch call ``func(*args, **kwargs)`` would block the host on an accelerator."""
    name = _name(func)
    if name in _TO_HOST:
        return True
    if name in _FACTORIES:
        return kwargs.get("device") is not None and not isinstance(args[0] if args else None, torch.Tensor)
    if name in _INDEXING:
        return len(args) > 1 and _host_index(args[1])
    if name == "to":
        return _crosses_devices(args, kwargs)
    if name == "where":
        return len(args) + len(kwargs) == 1  # torch.where(condition): nonzero
    return name == "repeat_interleave" and "output_size" not in kwargs


class HostSyncCounter(TorchFunctionMode):
    """A torch function mode counting would-be host syncs and torch calls, per phase.

    Use it as a context manager around the code to watch; :meth:`phase` names
    what runs inside it (phases nest: the innermost one is charged).

    Attributes
    ----------
    syncs : collections.Counter
        Would-be host syncs by phase (``"other"`` outside any named phase).
    ops : collections.Counter
        Torch calls by phase (operators and views; attribute reads such as
        ``tensor.shape`` are not counted).
    calls : collections.Counter
        How many times each phase was entered.
    where : collections.Counter
        Would-be syncs by ``(phase, torch function name)``: what to look at when a count rises.

    Examples
    --------
    >>> import torch
    >>> counter = HostSyncCounter()
    >>> with counter:
    ...     with counter.phase("step"):
    ...         _ = torch.ones(3).sum().item()
    >>> counter.syncs["step"], counter.calls["step"]
    (1, 1)
    """

    def __init__(self) -> None:
        super().__init__()
        self.syncs: Counter[str] = Counter()
        self.ops: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.where: Counter[tuple[str, str]] = Counter()
        self._phases: list[str] = ["other"]
        self._on_host: set[int] = set()  # ids of the live outputs of ``.cpu()`` (tensors compare by value)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Charge the torch calls made inside the block to phase ``name``."""
        self.calls[name] += 1
        self._phases.append(name)
        try:
            yield
        finally:
            self._phases.pop()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        phase = self._phases[-1]
        name = _name(func)
        if name != "__get__":  # attribute reads (``.shape``, ``.dtype``) run no operator
            self.ops[phase] += 1
        if would_sync(func, args, kwargs) or (name == "numpy" and args and id(args[0]) not in self._on_host):
            self.syncs[phase] += 1
            self.where[(phase, name)] += 1
        out = func(*args, **kwargs)
        if name == "cpu" and isinstance(out, torch.Tensor):
            self._on_host.add(id(out))  # its ``.numpy()`` is no second sync
            weakref.finalize(out, self._on_host.discard, id(out))
        return out

    def total_syncs(self) -> int:
        """Would-be host syncs over every phase."""
        return sum(self.syncs.values())
