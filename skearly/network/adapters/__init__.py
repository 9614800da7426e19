"""Encoder adapters: run each supported encoder family one layer at a time.

:func:`adapter_for` returns the adapter of an encoder, chosen by its
``config.model_type``; importing this package registers every family
(``model_type``: family):

- ``bert``: BERT and MiniLM (e.g. all-MiniLM-L6-v2);
- ``roberta``: RoBERTa; ``xlm-roberta``: XLM-RoBERTa;
- ``electra``: ELECTRA, any ``embedding_size``;
- ``albert``: ALBERT (shared layer groups);
- ``distilbert``: DistilBERT;
- ``mpnet``: MPNet (e.g. all-mpnet-base-v2);
- ``deberta-v2``: DeBERTa-v2 and DeBERTa-v3;
- ``modernbert``: ModernBERT.

Any other ``model_type`` is refused with a ``ValueError`` naming these.
"""

from skearly.network.adapters._albert import AlbertAdapter
from skearly.network.adapters._base import EncoderAdapter, adapter_for, register, supported_model_types
from skearly.network.adapters._bert import BertAdapter, DistilBertAdapter
from skearly.network.adapters._deberta import DebertaV2Adapter
from skearly.network.adapters._modernbert import ModernBertAdapter
from skearly.network.adapters._mpnet import MPNetAdapter

__all__ = [
    "AlbertAdapter",
    "BertAdapter",
    "DebertaV2Adapter",
    "DistilBertAdapter",
    "EncoderAdapter",
    "MPNetAdapter",
    "ModernBertAdapter",
    "adapter_for",
    "register",
    "supported_model_types",
]
