"""ModernBERT: rotary position embeddings and alternating global / sliding-window attention."""

from __future__ import annotations

import dataclasses

import torch
from transformers.masking_utils import create_bidirectional_mask, create_bidirectional_sliding_window_mask

from skearly.network.adapters._base import EncoderAdapter, padding_mask, register

__all__ = ["ModernBertAdapter", "ModernBertContext"]


@dataclasses.dataclass(frozen=True)
class ModernBertContext:
    """ModernBERT's per-batch layer inputs, by attention type (``"full_attention"``, ``"sliding_attention"``).

    Parameters
    ----------
    masks : dict
        Attention mask of each attention type (``None``: nothing to mask).
    rotary : dict
        ``(cos, sin)`` rotary tables of each attention type, for this length.
    """

    masks: dict[str, torch.Tensor | None]
    rotary: dict[str, tuple[torch.Tensor, torch.Tensor]]


@register("modernbert")
class ModernBertAdapter(EncoderAdapter):
    """ModernBERT: ``embeddings`` then ``layers``; the last layer also applies the model's ``final_norm``.

    Each layer uses the mask and rotary table of its attention type (global or
    sliding window). The final norm makes full-depth states equal to the model's
    own output; earlier exits see the un-normalised states, as the model's
    ``output_hidden_states`` gives them.
    """

    family = "ModernBERT"
    layer_path = ("layers",)

    def layer_context(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> ModernBertContext:
        """Masks and rotary tables of both attention types, for this batch's length."""
        positions = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0)
        # the window applies with or without padding: only an unpadded batch may skip the mask (no read-back then)
        sliding = create_bidirectional_sliding_window_mask(
            config=self.config,
            inputs_embeds=hidden,
            attention_mask=attention_mask,
            allow_is_bidirectional_skip=attention_mask is None,
        )
        return ModernBertContext(
            masks={
                "full_attention": padding_mask(self.config, hidden, attention_mask, create_bidirectional_mask),
                "sliding_attention": sliding,
            },
            rotary={kind: self.encoder.rotary_emb(hidden, positions, kind) for kind in set(self.config.layer_types)},
        )

    def run_layer(self, index: int, hidden: torch.Tensor, context: ModernBertContext) -> torch.Tensor:
        """Layer ``index`` with its attention type's mask and rotary table (then the final norm, if last)."""
        kind = self._layers[index].attention_type
        hidden = self.call_layer(
            index, hidden, attention_mask=context.masks[kind], position_embeddings=context.rotary[kind]
        )
        return self.encoder.final_norm(hidden) if index == self.n_layers - 1 else hidden
