"""Early-exit inference: run layer by layer and let rows leave the batch as soon as their criterion allows.

After each exit head, the rows that exit are written out and removed from the
hidden states, the attention mask and the criterion's state, and padding no
longer needed by the remaining rows is trimmed. Later layers therefore only
compute the rows still running: this is where the wall-clock saving comes from.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ._batching import Encoded, n_batches, sorted_batches
from .exit_criteria import ExitCriterion
from .network import MultiExitNetwork
from .training import autocast

__all__ = ["early_exit_proba", "simulate_exits"]


@torch.inference_mode()
def early_exit_proba(
    network: MultiExitNetwork,
    encoded: Encoded,
    temperatures: np.ndarray,
    criterion: ExitCriterion,
    threshold: float,
    *,
    batch_size: int,
    device: torch.device,
    mixed_precision: bool = False,
    verbose: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated probabilities at each row's exit head, and that head's 1-based encoder layer.

    Parameters
    ----------
    network : MultiExitNetwork
        The fitted network, on ``device``, in eval mode.
    encoded : Encoded
        Tokenized rows.
    temperatures : ndarray of shape (n_heads,)
        One temperature per exit head.
    criterion : ExitCriterion
        The exit rule.
    threshold : float
        Passed to the criterion; ``threshold >= 1`` runs every row to the last head
        and skips the intermediate heads altogether.
    batch_size : int
        Rows per batch (batches are formed from rows of similar length).
    device : torch.device
        Where to compute.
    mixed_precision : bool, default=False
        Use autocast on CUDA.
    verbose : int, default=0
        Show a progress bar over batches when > 0.

    Returns
    -------
    proba : ndarray of shape (n_rows, n_classes), float64
    exit_layers : ndarray of shape (n_rows,), int64
    """
    network.eval()
    n_rows = len(encoded)
    n_classes = network.heads[0].out.out_features
    proba_out = np.empty((n_rows, n_classes), dtype=np.float64)
    layers_out = np.empty(n_rows, dtype=np.int64)
    inverse_t = torch.as_tensor(1.0 / np.asarray(temperatures, dtype=np.float32), device=device)
    exit_layers = network.exit_layers
    last_head = len(exit_layers) - 1
    early = criterion.exits_early(threshold)
    batches = tqdm(
        sorted_batches(encoded, batch_size),
        total=n_batches(n_rows, batch_size),
        desc="predicting",
        unit="batch",
        disable=not verbose,
    )
    for batch in batches:
        batch = batch.to(device)
        active = batch.rows  # dataset rows still running, aligned with the hidden states
        mask = batch.attention_mask
        with autocast(device, mixed_precision):
            hidden = network.embed(batch.input_ids, batch.token_type_ids, mask)
            bias = network.layer_context(hidden, mask)
            state = criterion.start(len(active), device) if early else None
            head = 0
            for index in range(network.n_layers_used):
                hidden = network.run_layer(index, hidden, bias)
                if index + 1 != exit_layers[head]:
                    continue
                if head < last_head and not early:
                    head += 1
                    continue
                # no padding left (bias is None): the head may skip the masked mean
                logits = network.exit_logits(head, hidden, None if bias is None else mask)
                proba = torch.softmax(logits.float() * inverse_t[head], dim=1)
                if head == last_head:
                    leaving = torch.ones(len(active), dtype=torch.bool, device=device)
                else:
                    leaving, state = criterion.decide(proba, state, threshold)
                leaving_np = leaving.cpu().numpy()
                if leaving_np.any():
                    rows = active[leaving_np]
                    proba_out[rows] = proba[leaving].double().cpu().numpy()
                    layers_out[rows] = exit_layers[head]
                    if leaving_np.all():
                        break
                    staying = ~leaving
                    active = active[~leaving_np]
                    hidden, mask = hidden[staying], mask[staying]
                    state = None if state is None else state[staying]
                    bias = None if bias is None else bias[staying]
                    length = int(mask.sum(dim=1).max())
                    if length < hidden.shape[1]:
                        hidden, mask = hidden[:, :length], mask[:, :length]
                        bias = None if bias is None else bias[..., :length, :length]
                head += 1
    return proba_out, layers_out


def simulate_exits(
    criterion: ExitCriterion,
    proba_per_head: np.ndarray,
    threshold: float,
) -> np.ndarray:
    """Exit head of each row, from precomputed calibrated probabilities of every head.

    Gives the same decisions as :func:`early_exit_proba` without re-running the
    encoder, so one pass serves every threshold.

    Parameters
    ----------
    criterion : ExitCriterion
        The exit rule.
    proba_per_head : ndarray of shape (n_heads, n_rows, n_classes)
        Calibrated probabilities of every head.
    threshold : float
        The threshold to simulate.

    Returns
    -------
    ndarray of shape (n_rows,), int64
        0-based index of the head at which each row exits.
    """
    n_heads, n_rows, _ = proba_per_head.shape
    exit_head = np.full(n_rows, n_heads - 1, dtype=np.int64)
    if not criterion.exits_early(threshold):
        return exit_head
    active = np.arange(n_rows)
    state = criterion.start(n_rows, torch.device("cpu"))
    for head in range(n_heads - 1):
        proba = torch.as_tensor(proba_per_head[head, active], dtype=torch.float32)
        leaving, state = criterion.decide(proba, state, threshold)
        leaving_np = leaving.numpy()
        exit_head[active[leaving_np]] = head
        active = active[~leaving_np]
        state = None if state is None else state[~leaving]
        if len(active) == 0:
            break
    return exit_head
