"""Where models compute: resolving the ``device`` parameter, mixed precision, host-to-device copies."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import numpy as np
import torch

__all__ = [
    "resolve_device",
    "autocast",
    "training_precision",
    "training_autocast",
    "cpu_has_native_bf16",
    "to_device",
    "to_host",
]


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn a ``device`` parameter into a :class:`torch.device` that exists on this machine.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda"}, str or torch.device
        ``"auto"`` takes CUDA when available, else the CPU.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        For a string torch cannot parse, a device type other than CPU and CUDA
        (``"mps"``, ``"xpu"`` ...: skearly runs on those two only), or a CUDA device
        on a machine without CUDA (the message says how to move the model to the CPU).
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or a torch device, got {device!r}.") from exc
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(
            f"device={device!r} is not supported: skearly runs on 'cpu' and 'cuda' (or 'auto') devices only."
        )
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available on this machine. A model fitted on a GPU "
            "runs on the CPU too: call `clf.set_params(device='cpu')` (or device='auto'), or load a saved model with "
            "`EarlyExitTextClassifier.load(path, device='cpu')`."
        )
    return resolved


def autocast(device: torch.device, enabled: bool) -> AbstractContextManager:
    """Inference autocast: that of :func:`training_precision` on CUDA when ``enabled``; a no-op elsewhere."""
    if device.type != "cuda":
        return nullcontext()
    return training_autocast(device, training_precision(device, enabled))


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AMX or AVX-512 BF16), so bf16 pays on it."""
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:  # a torch build without these probes: assume not
        return False


def training_precision(device: torch.device, mixed_precision: bool) -> str:
    """The dtype fine-tuning computes in under autocast: ``"bfloat16"``, ``"float16"`` or ``"float32"``.

    With ``mixed_precision``: bfloat16 on CUDA (float16 where the GPU lacks
    bfloat16) and on a CPU with native bfloat16 matrix units
    (:func:`cpu_has_native_bf16`); float32 elsewhere, and always without it.
    Weights, gradients and the optimizer stay in float32 in every case.

    Parameters
    ----------
    device : torch.device
        Where the fine-tune runs.
    mixed_precision : bool
        The estimator's ``mixed_precision`` parameter.

    Returns
    -------
    str
        A name of a :mod:`torch` dtype.
    """
    if not mixed_precision:
        return "float32"
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "bfloat16" if device.type == "cpu" and cpu_has_native_bf16() else "float32"


def training_autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """Autocast to ``precision`` (from :func:`training_precision`) on ``device``; a no-op for ``"float32"``."""
    if precision == "float32":
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=getattr(torch, precision))


def to_device(data: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """``data`` (host memory) as a tensor on ``device``, copied without blocking the host.

    On CUDA the data is first put in pinned (page-locked) memory, so that the
    copy is queued on the stream (``non_blocking=True``) instead of waiting for
    the device. Elsewhere the tensor shares ``data``'s memory where it can.
    """
    tensor = torch.from_numpy(np.ascontiguousarray(data)) if isinstance(data, np.ndarray) else data
    if device.type == "cuda":
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


def to_host(tensor: torch.Tensor) -> np.ndarray:
    """``tensor``'s values as a numpy array: read in place on a CPU, copied back (one host sync) elsewhere."""
    return (tensor if tensor.device.type == "cpu" else tensor.cpu()).numpy()
