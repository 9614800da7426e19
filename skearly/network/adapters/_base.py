"""The adapter interface and its registry, keyed on the encoder config's ``model_type``.

An :class:`EncoderAdapter` runs one family's pretrained encoder one layer at a
time through three seams: :meth:`~EncoderAdapter.embed`,
:meth:`~EncoderAdapter.layer_context` and :meth:`~EncoderAdapter.run_layer`.
Family modules register their adapter with :func:`register`;
:func:`adapter_for` picks the adapter of an encoder.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

__all__ = [
    "EncoderAdapter",
    "adapter_for",
    "full_mask",
    "padding_mask",
    "register",
    "supported_model_types",
]

_REGISTRY: dict[str, type[EncoderAdapter]] = {}

_AdapterT = TypeVar("_AdapterT", bound="type[EncoderAdapter]")


class EncoderAdapter(ABC):
    """Runs one family's encoder layer by layer: embeddings, per-batch context, layer ``i``.

    Parameters
    ----------
    encoder : torch.nn.Module
        The Hugging Face base model (``AutoModel``) of the family. The adapter
        keeps a reference to it and holds no weights of its own.

    Raises
    ------
    ValueError
        If the encoder lacks the modules this family's adapter uses.
    """

    #: Human-readable family name, used in error messages and the docs.
    family: str = ""
    #: Attribute path from the encoder to its ``nn.ModuleList`` of layers.
    layer_path: tuple[str, ...] = ("encoder", "layer")
    #: Whether the embeddings module takes the attention mask (as ``mask=``).
    embeddings_take_mask: bool = False

    def __init__(self, encoder: nn.Module) -> None:
        self.encoder = encoder
        self.config = encoder.config
        layers = tuple(self._find_layers())
        if not layers or not all(isinstance(layer, nn.Module) for layer in layers):
            raise ValueError(f"{type(encoder).__name__} has no transformer layers where a {self.family} has them.")
        self._layers = layers  # found once: every layer call looks its layer up here

    # -- structure ---------------------------------------------------------------------
    @property
    def layers(self) -> list[nn.Module]:
        """The module run as layer ``i`` (0-based), for every layer: the modules at :attr:`layer_path`.

        Read from the encoder once, when the adapter is made.
        """
        return list(self._layers)

    def release_layers(self) -> None:
        """Forget the encoder's layers (once they run elsewhere), so that their weights can be freed.

        The adapter can no longer run layers afterwards.
        """
        self._layers = ()

    def _find_layers(self) -> list[nn.Module]:
        """The modules at :attr:`layer_path` (empty if there are none); a family with another layout overrides it."""
        module = self.encoder
        for name in self.layer_path:
            module = getattr(module, name, None)
        return list(module) if isinstance(module, nn.ModuleList) else []

    @property
    def n_layers(self) -> int:
        """Number of transformer layers of the encoder."""
        return len(self._layers)

    @property
    def projection(self) -> nn.Module | None:
        """Module mapping the embeddings to the hidden size, for families that have one (else ``None``)."""
        return None

    def drop_pooler(self) -> None:
        """Remove the encoder's pooler, if it has one (the exit heads pool for themselves)."""
        if getattr(self.encoder, "pooler", None) is not None:
            self.encoder.pooler = None

    def token_types(self, token_type_ids: torch.Tensor | None) -> torch.Tensor | None:
        """``token_type_ids`` if the encoder has more than one token type, else ``None`` (all zero anyway)."""
        if token_type_ids is None or getattr(self.config, "type_vocab_size", 0) <= 1:
            return None
        return token_type_ids

    # -- the three seams -----------------------------------------------------------------
    def embed(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """Hidden states entering layer 0: ``(batch, length, hidden_size)``.

        The encoder's ``embeddings`` module, given the token types where the
        family has several and the mask where it takes one, then the family's
        :attr:`projection`, if any.
        """
        kwargs: dict[str, torch.Tensor] = {"input_ids": input_ids}
        types = self.token_types(token_type_ids)
        if types is not None:
            kwargs["token_type_ids"] = types
        if self.embeddings_take_mask:
            kwargs["mask"] = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        hidden = self.encoder.embeddings(**kwargs)
        projection = self.projection
        return hidden if projection is None else projection(hidden)

    @abstractmethod
    def layer_context(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> Any:
        """What every layer needs besides the hidden states, built for exactly this batch.

        Callers rebuild it from ``(hidden, attention_mask)`` whenever rows leave
        or padding is trimmed, so it never needs slicing. Only ``hidden``'s
        shape, dtype and device are read. ``attention_mask=None`` means that no
        row is padded: callers know it from the token counts on the host, so
        building the context never reads the mask back (no host sync on a GPU).
        """

    @abstractmethod
    def run_layer(self, index: int, hidden: torch.Tensor, context: Any) -> torch.Tensor:
        """Hidden states after the 0-based layer ``index``, given the :meth:`layer_context` of this batch."""

    def call_layer(self, index: int, *args: Any, **kwargs: Any) -> Any:
        """Call layer ``index`` on ``args``; without autograd, straight into its ``forward``.

        transformers wraps the ``forward`` of its layers in Python wrappers
        (gradient checkpointing, ``deprecate_kwarg`` renames), and
        ``nn.Module.__call__`` adds its hook machinery: a fixed cost per layer call
        that shows at small batches, where a layer runs in a few milliseconds.
        When autograd is off (inference) and the layer has no hooks of its own,
        the layer's ``forward`` is called with those wrappers peeled off: without
        autograd checkpointing does nothing, and the renames only concern
        deprecated keyword arguments, which the adapters never pass, so the result
        is the same. With autograd on (training) the module is called as usual.
        """
        layer = self._layers[index]
        if torch.is_grad_enabled() or layer._forward_hooks or layer._forward_pre_hooks:
            return layer(*args, **kwargs)
        return _plain_forward(type(layer))(layer, *args, **kwargs)


#: transformers' wrappers of a layer's ``forward`` that do nothing at inference (see ``call_layer``), by the
#: qualified name of their code: gradient checkpointing (inactive without autograd) and deprecated-kwarg renames.
_INFERENCE_NOOP_WRAPPERS = ("forward_with_checkpointing", "deprecate_kwarg")
#: Each layer class's ``forward`` without those wrappers.
_PLAIN_FORWARDS: dict[type, Callable[..., Any]] = {}


def _plain_forward(kind: type) -> Callable[..., Any]:
    """``kind.forward`` with its outer inference no-op wrappers removed (found once per class)."""
    forward = _PLAIN_FORWARDS.get(kind)
    if forward is None:
        forward = kind.forward
        while hasattr(forward, "__wrapped__") and any(
            name in forward.__code__.co_qualname for name in _INFERENCE_NOOP_WRAPPERS
        ):
            forward = forward.__wrapped__
        _PLAIN_FORWARDS[kind] = forward
    return forward


def padding_mask(config: Any, hidden: torch.Tensor, attention_mask: torch.Tensor | None, build: Callable) -> Any:
    """The 4-D mask that ``build`` (a ``transformers.masking_utils`` factory) makes for the padded rows, or ``None``.

    ``attention_mask=None`` (no row padded) gives ``None`` straight away; a mask
    is always materialised, without the factory's "is anything padded?" check,
    which reads the mask back to the host.
    """
    if attention_mask is None:
        return None
    return build(config=config, inputs_embeds=hidden, attention_mask=attention_mask, allow_is_bidirectional_skip=False)


def full_mask(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """``attention_mask``, or an all-ones ``(batch, length)`` mask when it is ``None``."""
    if attention_mask is not None:
        return attention_mask
    return torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)


def register(*model_types: str) -> Callable[[_AdapterT], _AdapterT]:
    """Class decorator: make the adapter serve encoders whose ``config.model_type`` is one of ``model_types``.

    Raises
    ------
    ValueError
        If a ``model_type`` already has another adapter.
    """

    def decorate(adapter: _AdapterT) -> _AdapterT:
        for model_type in model_types:
            if _REGISTRY.get(model_type, adapter) is not adapter:
                raise ValueError(
                    f"model_type {model_type!r} already has an adapter ({_REGISTRY[model_type].__name__})."
                )
            _REGISTRY[model_type] = adapter
        return adapter

    return decorate


def supported_model_types() -> tuple[str, ...]:
    """The ``model_type`` values that have an adapter, sorted."""
    return tuple(sorted(_REGISTRY))


def adapter_for(encoder: nn.Module) -> EncoderAdapter:
    """The adapter of ``encoder``'s family, chosen by ``encoder.config.model_type``.

    Parameters
    ----------
    encoder : torch.nn.Module
        A Hugging Face base model (as built by ``AutoModel``).

    Returns
    -------
    EncoderAdapter

    Raises
    ------
    ValueError
        If the encoder has no config, its ``model_type`` has no adapter, or it
        lacks the layers its family's adapter expects.
    """
    model_type = getattr(getattr(encoder, "config", None), "model_type", None)
    adapter = _REGISTRY.get(model_type)
    if adapter is None:
        raise ValueError(
            f"Encoder {type(encoder).__name__} (model_type={model_type!r}) is not supported. skearly runs "
            f"these encoder families (config.model_type): {', '.join(supported_model_types())}."
        )
    return adapter(encoder)
