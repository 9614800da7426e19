"""The multi-exit network: a pretrained encoder with a classifier after chosen layers.

The network exposes its parts (``embed``, ``layer_context``, ``run_layer``,
``exit_logits``) so that training can run every layer and every head, while
inference (:mod:`skearly.inference`) can stop each row at its own exit layer.
The encoder family's :class:`~skearly.network.adapters.EncoderAdapter` does the
family-specific part of the first three.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig
from transformers.utils import logging as hf_logging

from skearly._utils.fingerprint import weights_fingerprint
from skearly.network.adapters import EncoderAdapter, adapter_for

__all__ = ["ExitHead", "MultiExitNetwork", "weights_fingerprint"]

#: Pooling options of an exit head (see :class:`ExitHead`): the mean of the non-padding tokens, or the first token.
POOLINGS = ("mean", "cls")

#: Version of the dict written by :meth:`MultiExitNetwork.snapshot` (pickled models and fit-cache entries).
SNAPSHOT_VERSION = 1


class ExitHead(nn.Module):
    """Classifier on one layer's hidden states: pooling, dense + tanh, dropout, linear.

    Parameters
    ----------
    hidden_size : int
        Width of the encoder's hidden states.
    n_classes : int
        Number of output classes.
    dropout : float
        Dropout probability before each linear map (active in training only).
    pooling : {"mean", "cls"}
        ``"mean"`` averages the non-padding tokens; ``"cls"`` takes the first token.
    """

    def __init__(self, hidden_size: int, n_classes: int, dropout: float, pooling: str) -> None:
        super().__init__()
        self.pooling = pooling
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, n_classes)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Return logits of shape ``(batch, n_classes)`` for hidden states ``(batch, length, hidden)``.

        ``attention_mask=None`` means no row is padded (a cheaper mean, same result).
        """
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif attention_mask is None:
            pooled = hidden.mean(dim=1)
        else:
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        if self.training:  # dropout is the identity in eval mode: skip its call (inference runs this per layer)
            pooled = self.dropout(pooled)
        pooled = torch.tanh(self.dense(pooled))
        if self.training:
            pooled = self.dropout(pooled)
        return self.out(pooled)


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """Silence transformers' load report and weight-loading progress bar (the dropped pooler is expected)."""
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


class MultiExitNetwork(nn.Module):
    """A pretrained encoder with one :class:`ExitHead` after each exit layer.

    Parameters
    ----------
    encoder : transformers.PreTrainedModel
        Base encoder (``AutoModel``) of a family listed in :mod:`skearly.network.adapters`
        (its pooler, if any, is dropped).
    exit_layers : sequence of int
        1-based, strictly increasing layer numbers that carry a head. Layers after
        the last one are never run.
    n_classes : int
        Number of classes.
    dropout : float, default=0.1
        Dropout in the heads.
    pooling : {"mean", "cls"}, default="mean"
        How each head pools the token states.

    Attributes
    ----------
    adapter : skearly.network.adapters.EncoderAdapter
        Runs the encoder's family one layer at a time (chosen by ``config.model_type``);
        :meth:`embed`, :meth:`layer_context` and :meth:`run_layer` delegate to it.

    Raises
    ------
    ValueError
        If the encoder's family has no adapter, or ``exit_layers`` goes past its last layer.
    """

    def __init__(
        self,
        encoder: nn.Module,
        exit_layers: Sequence[int],
        n_classes: int,
        dropout: float = 0.1,
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        adapter = adapter_for(encoder)
        adapter.drop_pooler()
        self.encoder = encoder
        self.adapter: EncoderAdapter = adapter  # a plain object holding no weights: not a submodule
        self.exit_layers = tuple(int(layer) for layer in exit_layers)
        if self.exit_layers and self.exit_layers[-1] > adapter.n_layers:
            raise ValueError(f"exit_layers {list(self.exit_layers)} go past the encoder's {adapter.n_layers} layers.")
        self.heads = nn.ModuleList(
            ExitHead(encoder.config.hidden_size, n_classes, dropout, pooling) for _ in self.exit_layers
        )

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str, **kwargs: Any) -> MultiExitNetwork:
        """Load pretrained encoder weights from a local folder (never from a hub) and add fresh heads."""
        with _quiet_loading():
            encoder = AutoModel.from_pretrained(path, local_files_only=True)
        return cls(encoder, **kwargs)

    @classmethod
    def from_config(cls, config: PretrainedConfig, **kwargs: Any) -> MultiExitNetwork:
        """Build the architecture from an encoder config, with random weights (to load a state dict into)."""
        encoder = AutoModel.from_config(config)
        return cls(encoder, **kwargs)

    def architecture(self) -> dict[str, Any]:
        """Keyword arguments (besides the encoder) that rebuild this network: JSON-able."""
        head = self.heads[0]
        return {
            "exit_layers": list(self.exit_layers),
            "n_classes": int(head.out.out_features),
            "pooling": head.pooling,
            "dropout": float(head.dropout.p),
        }

    def cpu_state_dict(self) -> dict[str, torch.Tensor]:
        """Contiguous CPU copies of the weights (also fit for safetensors, which refuses shared storage)."""
        return {name: t.detach().to("cpu", copy=True).contiguous() for name, t in self.state_dict().items()}

    def snapshot(self) -> dict[str, Any]:
        """Config, architecture and CPU weights as a plain dict: picklable, loads on a machine without CUDA."""
        return {
            "version": SNAPSHOT_VERSION,
            "config": self.config,
            "architecture": self.architecture(),
            "state_dict": self.cpu_state_dict(),
        }

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any]) -> MultiExitNetwork:
        """Rebuild a network from :meth:`snapshot` (on CPU, in eval mode, torch's global RNG untouched).

        Raises
        ------
        ValueError
            If the snapshot was written by an unknown format version.
        """
        version = snapshot.get("version")
        if version != SNAPSHOT_VERSION:
            raise ValueError(
                f"Unsupported network snapshot format version {version!r}; this skearly reads version "
                f"{SNAPSHOT_VERSION}."
            )
        with torch.random.fork_rng(devices=[]):
            network = cls.from_config(snapshot["config"], **snapshot["architecture"])
        network.load_state_dict(snapshot["state_dict"])
        return network.eval()

    @staticmethod
    def load_config(path: str) -> PretrainedConfig:
        """Read an encoder's config from a local folder."""
        return AutoConfig.from_pretrained(path, local_files_only=True)

    # -- parts ------------------------------------------------------------------------
    @property
    def config(self) -> PretrainedConfig:
        """The encoder's Hugging Face config."""
        return self.encoder.config

    @property
    def n_classes(self) -> int:
        """Number of classes of every exit head."""
        return int(self.heads[0].out.out_features)

    @property
    def n_layers_used(self) -> int:
        """Number of encoder layers ever run (up to the last exit layer)."""
        return self.exit_layers[-1]

    def embed(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token embeddings of a padded batch: ``(batch, length, hidden)``.

        ``attention_mask`` (1 = token, 0 = padding) is passed for encoders whose
        embeddings depend on it (DeBERTa zeroes padding); the others ignore it,
        as families without token types ignore ``token_type_ids``.
        """
        return self.adapter.embed(input_ids, token_type_ids, attention_mask)

    def layer_context(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> Any:
        """What every layer needs besides the hidden states, for this exact batch (opaque to callers).

        For BERT-style encoders it is the 4-D attention mask, or ``None`` when
        nothing is padded; other families add what their layers share (MPNet's
        relative position bias, DeBERTa's relative positions and embeddings,
        ModernBERT's rotary tables). The inference engine builds it once per
        group of rows, from ``(hidden, attention_mask)``, so it never needs to
        be sliced. ``attention_mask=None`` means no row is padded.
        """
        return self.adapter.layer_context(hidden, attention_mask)

    def run_layer(self, index: int, hidden: torch.Tensor, context: Any) -> torch.Tensor:
        """Apply the 0-based encoder layer ``index``, with the ``context`` of :meth:`layer_context`."""
        return self.adapter.run_layer(index, hidden, context)

    def exit_logits(self, head: int, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Logits of exit head number ``head`` (0-based position in ``exit_layers``); mask ``None``: no padding."""
        return self.heads[head](hidden, attention_mask)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Run every layer up to the last exit; return each head's logits, in ``exit_layers`` order."""
        hidden = self.embed(input_ids, token_type_ids, attention_mask)
        context = self.layer_context(hidden, attention_mask)
        outputs = []
        head = 0
        for index in range(self.n_layers_used):
            hidden = self.run_layer(index, hidden, context)
            if index + 1 == self.exit_layers[head]:
                outputs.append(self.exit_logits(head, hidden, attention_mask))
                head += 1
        return outputs
