"""What does one exit step cost between two encoder layers, at batch 1 and 64, on this CPU?

An exit step is what the engine runs after a layer that carries a head: the head
(pooling, dense + tanh, output), temperature scaling and softmax, the exit rule, and the
one host transfer of the decision. Full depth skips the intermediate steps, so their cost
is what a threshold that exits no row pays over full depth.

Two measurements, on the packaged all-MiniLM-L6-v2 (6 layers, a head after each; the
heads' weights do not change the cost) and real tweets:

* ``engine``: :class:`skearly.inference.InferenceEngine` (shrinking scheduler) at full
  depth against an exit rule that runs every exit step and never exits, same texts;
  the difference over 5 intermediate steps per row is one step's cost;
* ``parts`` (batch 1): one text at a time through embeddings and 6 layers, with nothing,
  or part of an exit step, between the layers; each part is timed *cold* (between
  layers, by the change in the whole forward's time) and *hot* (the same calls repeated
  back to back).

Every measurement interleaves the variants text by text (or block by block) in a rotating
order, and reports medians. Run from the repository root:
``python -m research.exit_step_cost.exit_step_cost``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import AutoTokenizer

from benchmarks._common import command, header, markdown_table, start, write_results
from skearly._utils.batching import tokenize
from skearly.datasets import load_tweet_sentiment
from skearly.encoders import default_encoder_path
from skearly.exit_criteria import ExitCriterion, MaxProbability
from skearly.inference import InferenceEngine, ShrinkingScheduler
from skearly.network import MultiExitNetwork


class NeverExit(ExitCriterion):
    """Runs every exit step (``exits_early`` is true) and lets no row leave."""

    name = "never"

    def decide(self, proba, state, threshold):
        """No row leaves: the step's work is done, its answer is always "go on"."""
        return proba.amax(dim=1) > 2.0, state


def engine_cost(network, tokenizer, texts, batch_size: int, block: int, repeats: int) -> dict:
    """Seconds per text of full depth and of an exit step at every head that never exits."""
    engine = InferenceEngine(network, tokenizer, np.ones(6), 128, batch_size, torch.device("cpu"), ShrinkingScheduler())
    configs = {"full depth": (MaxProbability(), 1.0), "every exit step": (NeverExit(), 0.5)}
    blocks = [texts[i : i + block] for i in range(0, len(texts), block)]
    for criterion, threshold in configs.values():
        engine.predict(texts[:block], None, criterion, threshold)
    totals = {name: [] for name in configs}
    for _ in range(repeats):
        run = dict.fromkeys(configs, 0.0)
        for number, part in enumerate(blocks):
            names = list(configs)[number % 2 :] + list(configs)[: number % 2]
            for name in names:
                begin = time.perf_counter()
                engine.predict(part, None, *configs[name])
                run[name] += time.perf_counter() - begin
        for name in configs:
            totals[name].append(run[name])
    full, steps = (float(np.median(totals[name])) / len(texts) for name in configs)
    return {"full_depth_ms_per_text": 1e3 * full, "exit_steps_ms_per_text": 1e3 * steps}


def parts_cost(network, ids_per_text, repeats: int) -> pd.DataFrame:
    """Cold (between layers) and hot (back to back) cost of the parts of an exit step, at batch 1."""
    inverse_t = torch.tensor(1.0)
    criterion = MaxProbability()

    def head(i, h):
        return network.exit_logits(i, h, None)

    def head_softmax_decide(i, h):
        proba = torch.softmax(head(i, h) * inverse_t, dim=1)
        return criterion.decide(proba, None, 0.9)[0].cpu().numpy().all()

    parts = {
        "nothing": None,
        "one torch op (a slice)": lambda i, h: h[:, 0],
        "pooling (mean)": lambda i, h: h.mean(dim=1),
        "head": head,
        "exit step (head, softmax, rule, transfer)": head_softmax_decide,
    }

    def forward(ids, part):
        hidden = network.embed(ids)
        for i in range(6):
            hidden = network.run_layer(i, hidden, None)
            if part is not None and i < 5:
                part(i, hidden)
        return head_softmax_decide(5, hidden)

    names = list(parts)
    cold = {name: [] for name in names}
    hot = {name: [] for name in names}
    for _ in range(repeats):
        for number, ids in enumerate(ids_per_text):
            turn = number % len(names)
            for name in names[turn:] + names[:turn]:
                begin = time.perf_counter()
                forward(ids, parts[name])
                cold[name].append(time.perf_counter() - begin)
    hidden = network.run_layer(0, network.embed(ids_per_text[0]), None)
    for name in names[1:]:
        for _ in range(200):
            begin = time.perf_counter()
            parts[name](0, hidden)
            hot[name].append(time.perf_counter() - begin)
    base = float(np.median(cold["nothing"]))
    rows = []
    for name in names:
        extra = (float(np.median(cold[name])) - base) / 5
        rows.append(
            {
                "between layers": name,
                "forward_ms": 1e3 * float(np.median(cold[name])),
                "cold_ms_per_step": 1e3 * extra,
                "cold_share_of_a_layer": extra / (base / 6),
                "hot_ms_per_step": 1e3 * float(np.median(hot[name])) if hot[name] else 0.0,
            }
        )
    return pd.DataFrame(rows)


def packaged_network_and_tweets(n_texts: int) -> tuple[MultiExitNetwork, object, list[str]]:
    """The packaged all-MiniLM-L6-v2 with a (fresh) head after each layer, its tokenizer, ``n_texts`` test tweets."""
    torch.manual_seed(0)
    path = str(default_encoder_path())
    network = MultiExitNetwork.from_pretrained(path, exit_layers=(1, 2, 3, 4, 5, 6), n_classes=2).eval()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    _, X, _, _ = load_tweet_sentiment(classes=("negative", "positive"), n_train=100, n_test=n_texts, random_state=0)
    return network, tokenizer, X


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-texts", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    start(2)
    network, tokenizer, X = packaged_network_and_tweets(1000)
    engine_rows = []
    with torch.inference_mode():
        for batch_size, texts, block in ((1, X[: args.n_texts], 10), (64, X, 256)):
            cost = engine_cost(network, tokenizer, texts, batch_size, block, args.repeats)
            step = (cost["exit_steps_ms_per_text"] - cost["full_depth_ms_per_text"]) / 5
            engine_rows.append(
                {
                    "batch": batch_size,
                    "n_texts": len(texts),
                    **cost,
                    "cost_vs_full_depth": cost["exit_steps_ms_per_text"] / cost["full_depth_ms_per_text"],
                    "exit_step_ms_per_text": step,
                    "exit_step_share_of_a_layer": step / (cost["full_depth_ms_per_text"] / 6),
                }
            )
            print(engine_rows[-1], flush=True)
        encoded = tokenize(tokenizer, X[: args.n_texts], None, 128)
        ids = [torch.tensor([row]) for row in encoded.input_ids]
        parts = parts_cost(network, ids, max(1, args.repeats // 2))
    print(parts.to_string(index=False))
    engine_table = pd.DataFrame(engine_rows)
    lines = header("Exit step cost between layers (exit_step_cost)", command(__file__, argv)) + [
        f"- all-MiniLM-L6-v2 with a head after each of its 6 layers; {args.n_texts} tweets at batch 1, 1,000 at "
        f"batch 64; 2 torch threads; medians of {args.repeats} runs interleaved in blocks (engine) or text by "
        "text (parts), the order rotating",
        "",
        "## The engine: every exit step run, no row exiting, against full depth",
        "",
        markdown_table(engine_table),
        "",
        "## Parts of an exit step at batch 1: cold (between layers) and hot (back to back)",
        "",
        "cold_ms_per_step: the change in a whole 6-layer forward's time, per intermediate step; "
        "hot_ms_per_step: the same calls repeated back to back",
        "",
        markdown_table(parts),
    ]
    write_results(args.out, "exit_step_cost", table=pd.concat([engine_table, parts]), lines=lines)


if __name__ == "__main__":
    main()
