"""DeBERTa-v2 and DeBERTa-v3 (``model_type`` ``"deberta-v2"``): disentangled attention on relative positions."""

from __future__ import annotations

import dataclasses

import torch

from skearly.network.adapters._base import EncoderAdapter, full_mask, register

__all__ = ["DebertaV2Adapter", "DebertaV2Context"]


@dataclasses.dataclass(frozen=True)
class DebertaV2Context:
    """DeBERTa's per-batch layer inputs.

    Parameters
    ----------
    input_mask : torch.Tensor
        ``(batch, length)`` mask, 1 = token, 0 = padding (for the optional convolution).
    mask : torch.Tensor
        ``(batch, 1, length, length)`` pairwise attention mask.
    relative_pos : torch.Tensor or None
        ``(1, length, length)`` (bucketed) relative positions; ``None`` without relative attention.
    rel_embeddings : torch.Tensor or None
        The (normalised) relative position embeddings shared by every layer.
    """

    input_mask: torch.Tensor
    mask: torch.Tensor
    relative_pos: torch.Tensor | None
    rel_embeddings: torch.Tensor | None


@register("deberta-v2")
class DebertaV2Adapter(EncoderAdapter):
    """DeBERTa-v2/v3: masked embeddings, then ``encoder.layer`` with relative positions and embeddings.

    The optional convolution after the first layer (``conv_kernel_size > 0``)
    is applied in layer 0, as the model's own forward does.
    """

    family = "DeBERTa-v2/v3"
    embeddings_take_mask = True  # DeBERTa zeroes the embeddings of padding

    def layer_context(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> DebertaV2Context:
        """Pairwise mask, relative positions for this length, and the relative embeddings."""
        stack = self.encoder.encoder
        input_mask = full_mask(hidden, attention_mask)
        return DebertaV2Context(
            input_mask=input_mask,
            mask=stack.get_attention_mask(input_mask),
            relative_pos=stack.get_rel_pos(hidden),
            rel_embeddings=stack.get_rel_embedding(),
        )

    def run_layer(self, index: int, hidden: torch.Tensor, context: DebertaV2Context) -> torch.Tensor:
        """Layer ``index`` (followed by the convolution in layer 0, if the model has one)."""
        output, _ = self.call_layer(
            index, hidden, context.mask, relative_pos=context.relative_pos, rel_embeddings=context.rel_embeddings
        )
        conv = self.encoder.encoder.conv
        if index == 0 and conv is not None:
            output = conv(hidden, output, context.input_mask)
        return output
