"""MPNet: BERT-like layers plus a relative position bias shared by every layer.

The bias depends only on the padded length (the bucket of each key-query distance), so at
inference the adapter builds it once per length bucket and hands each batch a
slice of it, ``(1, heads, length, length)``, which the layers' attention broadcasts over the
rows. transformers' own ``compute_position_bias`` rebuilds it, about 17 torch calls, and
copies it once per row for every batch: a fixed cost per layer context that shows at batch 1.
"""

from __future__ import annotations

import dataclasses

import torch
from transformers.masking_utils import create_bidirectional_mask

from skearly._utils.fingerprint import weights_fingerprint
from skearly._utils.rounding import round_up
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
        ``(batch, heads, length, length)`` relative position bias, or ``(1, heads, length, length)``
        at inference (the same for every row; the attention broadcasts it).
    """

    mask: torch.Tensor | None
    position_bias: torch.Tensor


@register("mpnet")
class MPNetAdapter(EncoderAdapter):
    """MPNet (e.g. all-mpnet-base-v2): ``embeddings`` then ``encoder.layer`` with a relative position bias."""

    family = "MPNet"
    #: Inference bias tables are built for lengths rounded up to a multiple of this (fewer rebuilds).
    _BIAS_LENGTH_MULTIPLE = 64

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__(encoder)
        self._bias_table: tuple[tuple, torch.Tensor] | None = None

    def __getstate__(self) -> dict:
        """Pickle without the inference bias table (rebuilt on first use)."""
        return {**self.__dict__, "_bias_table": None}

    def layer_context(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> MPNetContext:
        """The attention mask and the relative position bias, both for this batch's length."""
        return MPNetContext(
            mask=padding_mask(self.config, hidden, attention_mask, create_bidirectional_mask),
            position_bias=self._position_bias(hidden),
        )

    def _position_bias(self, hidden: torch.Tensor) -> torch.Tensor:
        """The relative position bias for ``hidden``'s length.

        With autograd on (training) it is transformers' own, built for the batch, so
        that the bias weights get their gradient. Without it, a ``[:, :, :L, :L]``
        slice of one table, built for the length rounded up to
        :attr:`_BIAS_LENGTH_MULTIPLE` and rebuilt for a longer length or when the bias
        weights change (their :func:`~skearly._utils.fingerprint.weights_fingerprint`:
        another tensor, device or dtype, or an in-place update such as an optimizer
        step or ``load_state_dict``).
        """
        encoder = self.encoder.encoder
        weight = encoder.relative_attention_bias.weight
        if torch.is_grad_enabled() or weight.is_inference():  # an inference tensor keeps no version count
            return encoder.compute_position_bias(hidden)
        length = int(hidden.shape[1])
        key = weights_fingerprint(encoder.relative_attention_bias)
        table = self._bias_table
        if table is None or table[0] != key or table[1].shape[-1] < length:
            # compute_position_bias reads only the size and device of what it is given
            shape_only = hidden.new_empty((1, round_up(length, self._BIAS_LENGTH_MULTIPLE), 0))
            table = (key, encoder.compute_position_bias(shape_only))
            self._bias_table = table
        return table[1][:, :, :length, :length]

    def run_layer(self, index: int, hidden: torch.Tensor, context: MPNetContext) -> torch.Tensor:
        """Layer ``index`` with the mask and position bias of ``context``."""
        return self.call_layer(index, hidden, context.mask, context.position_bias)[0]
