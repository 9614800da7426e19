"""What the benchmark scripts share: the machine a result was measured on, timers, and writing results.

The scripts of ``benchmarks/`` import it as ``from _common import ...`` (run as
``python benchmarks/<script>.py``, their own folder is on the import path); the studies of
``research/`` as ``from benchmarks._common import ...`` (run from the repository root as
``python -m research.<question>.<script>``).
"""

from __future__ import annotations

import csv
import logging
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import torch
import transformers

import skearly
from skearly._utils.batching import sorted_batches, tokenize
from skearly._utils.devices import autocast, cpu_has_native_bf16

REPOSITORY = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


# ------------------------------------------------------------------------------- the machine
def environment(device: torch.device = CPU) -> str:
    """One line naming the device, the machine and the versions a result was measured with."""
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return (
        f"device: {where}; CPU count: {os.cpu_count()}; torch threads: {torch.get_num_threads()}; "
        f"python {platform.python_version()}; torch {torch.__version__}; transformers {transformers.__version__}; "
        f"scikit-learn {sklearn.__version__}; skearly {skearly.__version__}; "
        f"machine {platform.machine()} ({_cpu_model()}; native bf16: {cpu_has_native_bf16()})"
    )


def _cpu_model() -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` on Linux), else what :mod:`platform` says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def command(script: str, argv: Sequence[str] | None = None) -> str:
    """The command line that reruns ``script`` (its ``__file__``) with ``argv`` (default: this process's arguments).

    ``python benchmarks/<name>.py ...`` for a benchmark, ``python -m research.<question>.<name> ...``
    for a study of ``research/``.
    """
    path = Path(script).resolve()
    args = " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    if path.is_relative_to(REPOSITORY):
        path = path.relative_to(REPOSITORY)
    if path.parts[0] == "research":
        runner = "python -m " + ".".join(path.with_suffix("").parts)
    else:
        runner = f"python {path.as_posix()}"
    return f"{runner} {args}".strip()


def start(threads: int | None) -> float:
    """Set torch's CPU threads (``None``: torch's default), print the environment, return the start time."""
    if threads:
        torch.set_num_threads(threads)
    print(environment(), flush=True)
    return time.perf_counter()


# ------------------------------------------------------------------------------------ timers
@dataclass
class Timing:
    """Median seconds and throughput of one predict configuration."""

    seconds: float
    n_rows: int

    @property
    def throughput(self) -> float:
        return self.n_rows / self.seconds


def timed(fn: Callable[[], object], device: torch.device = CPU) -> float:
    """Wall-clock seconds of one call of ``fn`` (on CUDA, synchronised before and after)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    begin = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - begin


def median_time(fn: Callable[[], object], repeats: int, n_rows: int, device: torch.device = CPU) -> Timing:
    """Median of ``repeats`` calls of ``fn``, which handles ``n_rows`` rows."""
    return Timing(float(np.median([timed(fn, device) for _ in range(repeats)])), n_rows)


class FineTuneCounter(logging.Handler):
    """Counts skearly's "fitted in" log records: one per fine-tune actually run (cache hits log none)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("fitted in"):
            self.count += 1


def count_fine_tunes() -> FineTuneCounter:
    """A :class:`FineTuneCounter` listening to skearly's logger (set to INFO)."""
    counter = FineTuneCounter()
    logger = logging.getLogger("skearly")
    logger.addHandler(counter)
    logger.setLevel(logging.INFO)
    return counter


# ------------------------------------------------------------------------- shared measurements
@torch.inference_mode()
def plain_predict(
    model, tokenizer, X, batch_size: int, device: torch.device = CPU, mixed_precision: bool = False
) -> np.ndarray:
    """Predict with a plain HF sequence-classification model as a user would: tokenize, length-sorted batches."""
    encoded = tokenize(tokenizer, X, None, 128)
    out = torch.empty(len(X), dtype=torch.long, device=device)
    with autocast(device, mixed_precision):
        for batch in sorted_batches(encoded, batch_size):
            batch = batch.to(device)
            logits = model(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask, token_type_ids=batch.token_type_ids
            ).logits
            out[torch.as_tensor(batch.rows, device=device)] = logits.argmax(1)
    return out.cpu().numpy()


def loosest_within_one_point(sweep: pd.DataFrame, full_accuracy: float) -> float:
    """P1: the smallest threshold of ``sweep`` whose accuracy is within 1 point of ``full_accuracy``."""
    return float(sweep.loc[sweep["accuracy"] >= full_accuracy - 0.01, "threshold"].min())


# --------------------------------------------------------------------------- writing results
def header(title: str, command_line: str, device: torch.device = CPU) -> list[str]:
    """The first lines of a results page: title, the command that wrote it, the environment."""
    return [f"# {title}", "", f"Command: `{command_line}`", "", f"Environment: {environment(device)}", ""]


def markdown_table(table: pd.DataFrame, digits: int = 3) -> str:
    """``table`` as a Markdown table (floats to ``digits`` places), with no dependency beyond pandas."""

    def cell(value) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def save_figure(fig, path: Path) -> None:
    """Lay out, write (110 dpi) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(
    out: Path, stem: str, *, table: pd.DataFrame | None = None, lines: Sequence[str] | None = None, figure=None
) -> None:
    """Write ``<out>/<stem>.csv`` (``table``), ``<stem>.md`` (``lines``) and ``<stem>.png`` (``figure``), as given."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if table is not None:
        table.to_csv(out / f"{stem}.csv", index=False, quoting=csv.QUOTE_NONNUMERIC)
    if lines is not None:
        (out / f"{stem}.md").write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")
    if figure is not None:
        save_figure(figure, out / f"{stem}.png")
