"""BERT-style encoders: BERT (and MiniLM), RoBERTa, XLM-RoBERTa, ELECTRA, DistilBERT.

Their layers take the hidden states and a 4-D attention mask only, so the
layer context is that mask (``None`` when nothing is padded).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.masking_utils import create_bidirectional_mask

from skearly.network.adapters._base import EncoderAdapter, padding_mask, register

__all__ = ["BertAdapter", "DistilBertAdapter"]


class BertAdapter(EncoderAdapter):
    """BERT, RoBERTa, XLM-RoBERTa and ELECTRA: ``embeddings`` then ``encoder.layer``.

    ELECTRA's ``embeddings_project`` (present when ``embedding_size`` differs
    from ``hidden_size``) is applied after the embeddings.
    """

    family = "BERT-style encoder"

    @property
    def projection(self) -> nn.Module | None:
        """ELECTRA's ``embeddings_project``, where the encoder has one."""
        return getattr(self.encoder, "embeddings_project", None)

    def layer_context(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> Any:
        """The 4-D attention mask of the model's attention implementation, or ``None`` when nothing is padded."""
        return padding_mask(self.config, hidden, attention_mask, create_bidirectional_mask)

    def run_layer(self, index: int, hidden: torch.Tensor, context: Any) -> torch.Tensor:
        """Layer ``index`` with the attention mask ``context``."""
        return self.call_layer(index, hidden, context)


register("bert", "roberta", "xlm-roberta", "electra")(BertAdapter)


@register("distilbert")
class DistilBertAdapter(BertAdapter):
    """DistilBERT: ``embeddings`` (no token types) then ``transformer.layer``."""

    family = "DistilBERT"
    layer_path = ("transformer", "layer")
