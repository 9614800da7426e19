"""Inference backends: how the layers of a fitted network are run at predict time.

A backend turns the fitted :class:`~skearly.network.MultiExitNetwork` into a
*layer runner*: an object with the network's inference parts, which is all the
inference engine (:mod:`skearly.inference`) ever calls:

* ``embed(input_ids, token_type_ids, attention_mask)`` -> hidden states;
* ``layer_context(hidden, attention_mask)`` -> whatever every layer needs besides
  the hidden states (rebuilt by the engine whenever rows leave or padding is trimmed);
* ``run_layer(index, hidden, context)`` -> hidden states after 0-based layer ``index``;
* ``exit_logits(head, hidden, attention_mask)`` -> logits of exit head ``head``;
* the attributes ``exit_layers``, ``n_layers_used`` and ``n_classes``.

Backends are predict-time only: the fitted fp32 weights are never changed, so
``set_params(backend=...)`` needs no refit and persistence always stores the
fp32 network. A backend may cache its runner per network (a quantized copy, a
compiled graph ...). Each backend is one small class registered under a string
alias; ``"torch"`` runs the network as it is.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from .network import MultiExitNetwork

__all__ = ["InferenceBackend", "TorchBackend", "BACKENDS", "register_backend", "resolve_backend"]


class InferenceBackend:
    """Base class of inference backends: subclass it, set ``name`` and override :meth:`prepare`.

    Instances are cheap, comparable objects holding only their parameters.
    """

    #: The string alias of the backend (``EarlyExitTextClassifier(backend=name)``).
    name: ClassVar[str] = ""

    def prepare(self, network: MultiExitNetwork, device: torch.device) -> Any:
        """Return the layer runner for ``network`` on ``device`` (see the module docstring).

        Parameters
        ----------
        network : MultiExitNetwork
            The fitted network, already on ``device`` and in eval mode. It must not be modified.
        device : torch.device
            Where the engine computes.

        Returns
        -------
        object
            An object with ``embed``, ``layer_context``, ``run_layer``, ``exit_logits``,
            ``exit_layers``, ``n_layers_used`` and ``n_classes``.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(vars(self).items()))))


class TorchBackend(InferenceBackend):
    """Run the fitted network as it is, in PyTorch (fp32 on CPU; autocast on CUDA when enabled)."""

    name = "torch"

    def prepare(self, network: MultiExitNetwork, device: torch.device) -> MultiExitNetwork:
        """The network itself is the layer runner."""
        return network


#: Registered backends by alias.
BACKENDS: dict[str, type[InferenceBackend]] = {}


def register_backend(cls: type[InferenceBackend]) -> type[InferenceBackend]:
    """Register a backend class under its ``name`` (usable as a class decorator).

    Raises
    ------
    ValueError
        If ``cls.name`` is empty or already taken by another class.
    """
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name: set the class attribute `name`.")
    if BACKENDS.get(cls.name, cls) is not cls:
        raise ValueError(f"A backend named {cls.name!r} is already registered ({BACKENDS[cls.name].__name__}).")
    BACKENDS[cls.name] = cls
    return cls


register_backend(TorchBackend)


def resolve_backend(backend: str | InferenceBackend) -> InferenceBackend:
    """Turn the ``backend`` parameter (an alias or an :class:`InferenceBackend`) into an object.

    Raises
    ------
    ValueError
        For an unknown alias (the message lists the known ones).
    TypeError
        For anything that is neither a string nor an :class:`InferenceBackend`.
    """
    if isinstance(backend, InferenceBackend):
        return backend
    if isinstance(backend, str):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {sorted(BACKENDS)} or an InferenceBackend, got {backend!r}.")
        return BACKENDS[backend]()
    raise TypeError(f"backend must be a string or an InferenceBackend, got {type(backend).__name__}.")
