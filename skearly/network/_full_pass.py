"""Every exit head's logits for every row, with no row leaving (the pass that calibration and exit curves need)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from skearly._utils.batching import Encoded, sorted_batches
from skearly._utils.devices import to_host

__all__ = ["all_head_logits"]


def all_head_logits(runner: Any, encoded: Encoded, batch_size: int, device: torch.device) -> np.ndarray:
    """Logits of every exit head for every row, no row leaving: shape ``(n_heads, n_rows, n_classes)``.

    Runs length-sorted batches through every layer up to the last exit with the
    layer-runner interface; rows come back in input order. The caller chooses
    autocast and ``torch.inference_mode``.

    Parameters
    ----------
    runner : object
        A layer runner (the network, or what a backend made of it).
    encoded : Encoded
        Tokenized rows.
    batch_size : int
        Rows per batch.
    device : torch.device
        Where to compute.

    Returns
    -------
    ndarray of shape (n_heads, n_rows, n_classes), float32
    """
    exit_layers = tuple(runner.exit_layers)
    head_after = {layer - 1: head for head, layer in enumerate(exit_layers)}
    out = np.empty((len(exit_layers), len(encoded), int(runner.n_classes)), dtype=np.float32)
    lengths = encoded.lengths()
    for batch in sorted_batches(encoded, batch_size):
        padded = bool((lengths[batch.rows] < batch.input_ids.shape[1]).any())  # decided on the host
        batch = batch.to(device)
        mask = batch.attention_mask if padded else None
        hidden = runner.embed(batch.input_ids, batch.token_type_ids, batch.attention_mask)
        context = runner.layer_context(hidden, mask)
        logits = []
        for index in range(int(runner.n_layers_used)):
            hidden = runner.run_layer(index, hidden, context)
            head = head_after.get(index)
            if head is not None:
                logits.append(runner.exit_logits(head, hidden, mask).float())
        out[:, batch.rows] = to_host(torch.stack(logits))  # one copy back per batch
    return out
