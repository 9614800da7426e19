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

from typing import Any

import torch

from ._strategy import Registry, Strategy
from .network import MultiExitNetwork

__all__ = ["InferenceBackend", "TorchBackend", "BACKENDS", "resolve_backend"]


class InferenceBackend(Strategy):
    """Base class of inference backends: subclass it, set ``name``, override :meth:`prepare`, register it.

    Instances are cheap, comparable objects holding only their parameters.
    """

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


class TorchBackend(InferenceBackend):
    """Run the fitted network as it is, in PyTorch (fp32 on CPU; autocast on CUDA when enabled)."""

    name = "torch"

    def prepare(self, network: MultiExitNetwork, device: torch.device) -> MultiExitNetwork:
        """The network itself is the layer runner."""
        return network


#: Inference backends by alias (``BACKENDS.register(cls)`` adds one).
BACKENDS: Registry[InferenceBackend] = Registry(InferenceBackend, "backend")
BACKENDS.register(TorchBackend)


def resolve_backend(backend: str | InferenceBackend) -> InferenceBackend:
    """Turn the ``backend`` parameter (an alias or an :class:`InferenceBackend`) into an object.

    Raises
    ------
    ValueError
        For an unknown alias (the message lists the known ones).
    TypeError
        For anything that is neither a string nor an :class:`InferenceBackend`.
    """
    return BACKENDS.resolve(backend)
