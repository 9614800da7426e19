"""Is the engine's per-text cost at batch 1 its own, or the floor of any early-exit loop on this CPU?

``fixed_cost.py`` splits the time outside the encoder layers into parts. This script asks
the question behind the split: does a hand-written loop that does only what early exit
needs (tokenize the call's texts, embed them, then per text: run a layer, apply its exit
head, temperature and softmax, stop at the first confident head) reach a better
efficiency than :class:`~skearly.inference.InferenceEngine`? Both run the same network,
the same layer and head calls and the same temperatures, at batch 1, full depth against
``--threshold``, in predict calls of ``--block`` texts; the four configurations are
interleaved call by call in a rotating order, and the speed-ups are paired within each
run (median over ``--repeats`` runs). The bare loop's exit layers are checked against the
engine's.

Run from the repository root, after the ``engine.py`` runs named in ``fixed_cost.py``
have cached their fits: ``python -m research.fixed_cost.floor``.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from research.fixed_cost.fixed_cost import load_fit, run_study
from skearly import MaxProbability
from skearly._utils.batching import collate, tokenize
from skearly.inference import InferenceEngine, ShrinkingScheduler

MAX_LENGTH = 128


def bare_exit_layers(network, tokenizer, temperatures: np.ndarray, texts: list[str], threshold: float) -> np.ndarray:
    """Exit layer of each text from the smallest loop that does early exit at batch 1 (no engine).

    Tokenizes and embeds the texts in one call (as the engine's embedding window), then runs
    each text alone through the layers; after a layer with a head it computes the calibrated
    probabilities exactly as the engine does and stops at the first whose top class reaches
    ``threshold`` (a comparison, so numpy and torch decide alike); ``threshold >= 1`` runs
    only the last head.
    """
    encoded = tokenize(tokenizer, texts, None, MAX_LENGTH)
    lengths = encoded.lengths()
    order = np.argsort(-lengths, kind="stable")
    batch = collate(encoded, order)
    hidden = network.embed(batch.input_ids, batch.token_type_ids, batch.attention_mask)
    inverse_t = torch.as_tensor(1.0 / temperatures, dtype=torch.float32).unbind()
    heads = {layer - 1: head for head, layer in enumerate(network.exit_layers)}
    last = network.n_layers_used - 1
    exits = np.empty(len(texts), dtype=np.int64)
    for position, row in enumerate(order):
        state = hidden[position : position + 1, : lengths[row]]
        context = network.layer_context(state, None)
        for index in range(last + 1):
            state = network.run_layer(index, state, context)
            head = heads.get(index)
            if head is None or (threshold >= 1.0 and index < last):
                continue
            proba = torch.softmax(network.exit_logits(head, state, None) * inverse_t[head], dim=1)
            if index == last or proba.numpy().max() >= threshold:
                exits[row] = index + 1
                break
    return exits


def measure(name: str, threshold: float, n_texts: int, block: int, repeats: int) -> list[dict]:
    """Efficiency of the engine and of the bare loop at ``threshold``, batch 1, one interleaved run."""
    clf, temperatures, X_test = load_fit(name)
    network, tokenizer = clf.network_, clf.tokenizer_
    engine = InferenceEngine(network, tokenizer, temperatures, MAX_LENGTH, 1, torch.device("cpu"), ShrinkingScheduler())
    texts = X_test[:n_texts]
    tokens = tokenize(tokenizer, texts, None, MAX_LENGTH).lengths()
    depth = network.n_layers_used

    def run(way: str, t: float, part: list[str]) -> np.ndarray:
        if way == "engine":
            return engine.predict(part, None, MaxProbability(), t)[1]
        return bare_exit_layers(network, tokenizer, temperatures, part, t)

    configs = [(way, t) for way in ("engine", "bare loop") for t in (1.0, threshold)]
    seconds = {c: np.zeros(repeats) for c in configs}
    exits = {c: np.zeros(len(texts), dtype=np.int64) for c in configs}
    with torch.inference_mode():
        for config in configs:  # warm-up
            run(*config, texts[:block])
        for repeat in range(repeats):
            for number, begin in enumerate(range(0, len(texts), block)):
                turn = (number + repeat) % len(configs)
                for config in configs[turn:] + configs[:turn]:
                    part = texts[begin : begin + block]
                    tick = time.perf_counter()
                    layers = run(*config, part)
                    seconds[config][repeat] += time.perf_counter() - tick
                    exits[config][begin : begin + block] = layers
    rows = []
    for way in ("engine", "bare loop"):
        full, early = seconds[(way, 1.0)], seconds[(way, threshold)]
        layers = exits[(way, threshold)]
        layer_speedup = float((tokens * depth).sum() / (tokens * layers).sum())
        speedup = float(np.median(full / early))
        rows.append(
            {
                "encoder": name,
                "way": way,
                "threshold": threshold,
                "mean_exit_layer": float(layers.mean()),
                "full_depth_ms": float(np.median(full)) * 1e3 / len(texts),
                "threshold_ms": float(np.median(early)) * 1e3 / len(texts),
                "speedup_vs_full_depth": speedup,
                "layer_speedup_tokens": layer_speedup,
                "efficiency_tokens": speedup / layer_speedup,
                "exits_equal_engine": float((layers == exits[("engine", threshold)]).mean()),
            }
        )
        print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    run_study(
        argv,
        measure,
        stem="floor",
        title="The engine against a bare early-exit loop at batch 1 (floor)",
        n_texts=200,
        repeats=7,
        notes=lambda args: [
            f"- binary tweets, the first {args.n_texts} test tweets at batch 1, in predict calls of {args.block}; "
            f"full depth and threshold {args.threshold}, through the engine and through a bare loop "
            "(bare_exit_layers: the same tokenizing, embedding, layer, head and softmax calls, nothing else), the "
            f"four interleaved call by call in a rotating order; {args.repeats} runs",
            "- speedup_vs_full_depth: each way's full-depth time over its threshold time, paired within a run, "
            "median over runs; efficiency_tokens = that / layer_speedup_tokens (sum tokens x depth / sum tokens x "
            "exit layer); ms: median per text",
        ],
    )


if __name__ == "__main__":
    main()
