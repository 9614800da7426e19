"""Where models compute: resolving the ``device`` parameter, mixed precision on CUDA, host-to-device copies."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import numpy as np
import torch

__all__ = ["resolve_device", "autocast", "to_device"]


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
    """bfloat16/float16 autocast on CUDA when ``enabled``; a no-op elsewhere."""
    if not enabled or device.type != "cuda":
        return nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


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
