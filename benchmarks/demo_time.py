"""How long the demo (``make demo``: ``examples/quickstart.py``) takes now against an earlier revision, side by side.

Runs the quickstart of an earlier git revision (checked out into a temporary worktree and
imported from there through ``PYTHONPATH``) and of the working tree one after the other, in the
same environment (the project's ``.venv``, set up already: installation time is not counted),
and records each run's wall-clock seconds and the fit time it prints.

Outputs ``<out>/<name>.csv`` and ``<out>/<name>.md``.

Run: ``python benchmarks/demo_time.py --before <revision>`` (two demo runs: about 15 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from _common import REPOSITORY, command, header, markdown_table, start, write_results


def run_demo(tree: Path, extra: list[str]) -> dict:
    """Run ``tree``'s quickstart with ``tree`` first on the import path; wall clock and the printed fit time."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    begin = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "examples/quickstart.py", *extra], cwd=tree, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - begin
    if done.returncode:
        raise RuntimeError(f"the demo of {tree} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    fitted = re.search(r"fitted in (\d+)s", done.stdout)
    return {"wall_s": seconds, "fit_s": float(fitted.group(1)) if fitted else float("nan"), "output": done.stdout}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the earlier git revision to compare with")
    parser.add_argument("--demo-args", default="", help="extra arguments of quickstart.py (e.g. '--tiny')")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--name", default="demo_time")
    args = parser.parse_args(argv)
    start(None)
    extra = args.demo_args.split()
    rows, outputs = [], {}
    with tempfile.TemporaryDirectory() as folder:
        before = Path(folder) / "before"
        worktree = ["git", "worktree", "add", "--detach", "-q", str(before), args.before]
        subprocess.run(worktree, cwd=REPOSITORY, check=True)
        try:
            commit = subprocess.run(
                ["git", "rev-parse", "--short", args.before], cwd=REPOSITORY, capture_output=True, text=True, check=True
            ).stdout.strip()
            for label, tree in ((f"before ({commit})", before), ("now (working tree)", REPOSITORY)):
                result = run_demo(tree, extra)
                outputs[label] = result.pop("output")
                rows.append({"revision": label, **result})
                print(f"{label}: {result['wall_s']:.0f}s, fitted in {result['fit_s']:.0f}s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=REPOSITORY, check=False)
    table = pd.DataFrame(rows)
    table["wall_ratio"] = table["wall_s"] / table["wall_s"].iloc[0]
    table["fit_ratio"] = table["fit_s"] / table["fit_s"].iloc[0]
    lines = header("The demo's run time, before and now", command(__file__, argv))
    lines += [
        "`python examples/quickstart.py` (what `make demo` runs once `.venv` exists) of each revision, one after "
        "the other in one environment; `wall_s` is the whole run, `fit_s` the fit time the demo prints.",
        "",
        markdown_table(table),
        "",
    ]
    for label, output in outputs.items():
        lines += [f"Output of {label}:", "", "```", output.rstrip(), "```", ""]
    write_results(args.out, args.name, table=table, lines=lines)


if __name__ == "__main__":
    main()
