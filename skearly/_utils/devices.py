"""Where models compute: resolving the ``device`` parameter, and mixed precision on CUDA."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

__all__ = ["resolve_device", "autocast"]


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
        For a string torch cannot parse, or a CUDA device on a machine without
        CUDA (the message says how to move the model to the CPU).
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or a torch device, got {device!r}.") from exc
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
