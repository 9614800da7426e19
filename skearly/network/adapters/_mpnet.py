"""MPNet: BERT-like layers plus a relative position bias shared by every layer."""

from __future__ import annotations

import dataclasses

import torch
from transformers.masking_utils import create_bidirectional_mask

from skearly.network.adapters._base import EncoderAdapter, padding_mask, register

__all__ = ["MPNetAdapter", "MPNetContext"]


@dataclasses.dataclass(frozen=True)
class MPNetContext:
    """MPNet's per-batch layer inputs: the attention mask and the relative position bias for this length.

    Parameters
    ----------
    mask : torch.Tensor or None
        4-D attention mask of the model's attention implementation (``None``: nothing padded).
    position_bias : torch.Tensor
        ``(batch, heads, length, length)`` relative position bias.
    """

    mask: torch.Tensor | None
    position_bias: torch.Tensor


@register("mpnet")
class MPNetAdapter(EncoderAdapter):
    """MPNet (e.g. all-mpnet-base-v2): ``embeddings`` then ``encoder.layer`` with a relative position bias."""

    family = "MPNet"

    def layer_context(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> MPNetContext:
        """The attention mask and the relative position bias, both for this batch's length."""
        return MPNetContext(
            mask=padding_mask(self.config, hidden, attention_mask, create_bidirectional_mask),
            position_bias=self.encoder.encoder.compute_position_bias(hidden),
        )

    def run_layer(self, index: int, hidden: torch.Tensor, context: MPNetContext) -> torch.Tensor:
        """Layer ``index`` with the mask and position bias of ``context``."""
        return self.call_layer(index, hidden, context.mask, context.position_bias)[0]
