"""Is a call right after an encoder layer slow because of the layer, or because time has passed?

``exit_step_cost.py`` found that a torch call right after an encoder layer costs 5 to 12
times what it costs back to back, and read it as the layer's matrix products leaving the
caches cold. This study tests that reading: it times three calls, each right after one of
several kinds of work, and back to back:

* ``exit step``: the engine's exit step at batch 1 on a tweet's hidden states (head,
  temperature and softmax, the exit rule, the copy back of the decision), on the packaged
  all-MiniLM-L6-v2 with a head after each layer (the heads' weights do not change the cost);
* ``torch tanh``: ``torch.tanh`` of 384 floats (no weights, nothing to read from memory);
* ``numpy tanh``: ``numpy.tanh`` of the same 384 floats (no torch code at all).

Each call is run, then one kind of work, then the call again, timed. The work: nothing
(back to back); one encoder layer at batch 1; a pure Python loop (no memory, no torch, no
system call) lasting 0.1, 0.3, 1, 3 or 10 ms; a sweep that writes one byte in every 64 over
8 MiB (it evicts the 2 MiB level-2 cache, and lasts far less than a layer); a 3 ms sleep.
The kinds of work take turns in a rotating order, and each figure is the median of
``--repeats`` calls.

Run from the repository root: ``python -m research.exit_step_cost.cold_after_work``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks._common import command, header, markdown_table, start, write_results
from research.exit_step_cost.exit_step_cost import packaged_network_and_tweets
from skearly._utils.batching import tokenize
from skearly.exit_criteria import MaxProbability

#: Lengths of the pure-Python loops, in milliseconds.
SPINS_MS = (0.1, 0.3, 1.0, 3.0, 10.0)


def _spin(seconds: float) -> Callable[[], None]:
    """A pure Python loop of about ``seconds``: no memory touched, no torch call, no system call."""

    def run(n: int) -> float:
        begin = time.perf_counter()
        for _ in range(n):
            pass
        return time.perf_counter() - begin

    n = 1
    while run(n) < seconds:  # calibrate the loop count once: the median of 5 timings of n loops
        n *= 2
    count = max(1, round(n * seconds / float(np.median([run(n) for _ in range(5)]))))

    def spin() -> None:
        for _ in range(count):
            pass

    return spin


def _sweep() -> Callable[[], None]:
    """Writes one byte in every 64 (a cache line) of an 8 MiB buffer."""
    buffer = np.zeros(8 << 20, dtype=np.uint8)

    def sweep() -> None:
        buffer[::64] += 1

    return sweep


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    start(2)
    network, tokenizer, X = packaged_network_and_tweets(200)
    lengths = tokenize(tokenizer, X, None, 128).lengths()
    width = int(np.median(lengths))  # a typical tweet: every call below works on one such row
    criterion = MaxProbability()
    inverse_t = torch.tensor(1.0)

    with torch.inference_mode():
        ids = torch.randint(1000, 2000, (1, width))
        hidden = network.run_layer(0, network.embed(ids), None)
        small = torch.randn(1, 384)
        small_np = small.numpy().copy()

        def exit_step() -> None:
            proba = torch.softmax(network.exit_logits(0, hidden, None) * inverse_t, dim=1)
            criterion.decide(proba, None, 0.9)[0].numpy().all()

        calls = {
            "exit step": exit_step,
            "torch tanh": lambda: torch.tanh(small),
            "numpy tanh": lambda: np.tanh(small_np),
        }
        works: dict[str, Callable[[], object]] = {
            "nothing (back to back)": lambda: None,
            "one encoder layer": lambda: network.run_layer(1, hidden, None),
        }
        works |= {f"Python loop, {ms:g} ms": _spin(ms / 1e3) for ms in SPINS_MS}
        works |= {"8 MiB sweep (evicts level 2)": _sweep(), "sleep, 3 ms": lambda: time.sleep(0.003)}

        work_seconds = {name: [] for name in works}
        seconds = {(work, call): [] for work in works for call in calls}
        names = list(works)
        for call in calls.values():  # warm-up
            call()
        for repeat in range(args.repeats):
            turn = repeat % len(names)
            for work_name in names[turn:] + names[:turn]:
                for call_name, call in calls.items():
                    call()  # the call has just run: what follows is the only thing between its two runs
                    begin = time.perf_counter()
                    works[work_name]()
                    middle = time.perf_counter()
                    call()
                    seconds[(work_name, call_name)].append(time.perf_counter() - middle)
                    work_seconds[work_name].append(middle - begin)

    rows = []
    for work_name in names:
        row = {"work before the call": work_name, "work_ms": 1e3 * float(np.median(work_seconds[work_name]))}
        for call_name in calls:
            row[f"{call_name}_us"] = 1e6 * float(np.median(seconds[(work_name, call_name)]))
        rows.append(row)
    table = pd.DataFrame(rows)
    back_to_back = table.iloc[0]
    for call_name in calls:
        table[f"{call_name}_vs_back_to_back"] = table[f"{call_name}_us"] / back_to_back[f"{call_name}_us"]
    print(table.to_string(index=False))
    lines = header("A call's cost after other work (cold_after_work)", command(__file__, argv)) + [
        f"- all-MiniLM-L6-v2, a head after each of its 6 layers; batch 1, {width} tokens (the median tweet of "
        f"200); 2 torch threads; every figure is the median of {args.repeats} calls, the kinds of work taking "
        "turns in a rotating order",
        "- each call runs, then the work, then the call again, timed; work_ms: how long the work took; "
        "<call>_us: the call's microseconds right after it; "
        "<call>_vs_back_to_back: that over the same call run twice in a row (work 'nothing')",
        "- exit step: head (mean pooling, dense + tanh, output), temperature and softmax, the exit rule "
        "(MaxProbability) and the copy back of the decision; torch tanh and numpy tanh: 384 floats",
        "",
        markdown_table(table, digits=2),
    ]
    write_results(args.out, "cold_after_work", table=table, lines=lines)


if __name__ == "__main__":
    main()
