"""ALBERT: an embedding projection, then a few layer groups shared across the layers."""

from __future__ import annotations

from torch import nn

from skearly.network.adapters._base import register
from skearly.network.adapters._bert import BertAdapter

__all__ = ["AlbertAdapter"]


@register("albert")
class AlbertAdapter(BertAdapter):
    """ALBERT: layer ``i`` runs the shared layer group ``i * num_hidden_groups // num_hidden_layers``.

    The embeddings (``embedding_size`` wide) are projected to ``hidden_size`` by
    ``encoder.embedding_hidden_mapping_in``, as ALBERT's own forward does.
    """

    family = "ALBERT"

    def _find_layers(self) -> list[nn.Module]:
        """The layer group run at each of the ``num_hidden_layers`` layers (groups repeat)."""
        groups = getattr(getattr(self.encoder, "encoder", None), "albert_layer_groups", None)
        if not groups:
            return []
        n_layers, n_groups = self.config.num_hidden_layers, self.config.num_hidden_groups
        return [groups[int(i / (n_layers / n_groups))] for i in range(n_layers)]

    @property
    def projection(self) -> nn.Module:
        """``encoder.embedding_hidden_mapping_in``: embeddings to the hidden size."""
        return self.encoder.encoder.embedding_hidden_mapping_in
