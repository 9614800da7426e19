"""``benchmarks/gpu.py`` runs on a bare GPU machine: checked on CPU with the tiny encoder.

The GPU machine has torch, transformers, scikit-learn, pandas, numpy, joblib, tqdm,
safetensors and matplotlib (and what they depend on), nothing else: the script must
import nothing more, write where ``--out`` / ``$OUT`` says, and finish.
"""

import csv
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_texts
from packaging.requirements import Requirement

REPOSITORY = Path(__file__).resolve().parents[1]
BARE = ("torch", "transformers", "scikit-learn", "pandas", "numpy", "joblib", "tqdm", "safetensors", "matplotlib")

# Runs gpu.py as on a bare machine: the interpreter starts without site-packages (-S) and sees
# only the allowed packages (linked into a folder of their own), so optional imports of other
# packages fall back as they would there, and a needed one fails the run.
RUN = """
import json, runpy, sys
sys.path.insert(0, "benchmarks")
sys.argv = ["benchmarks/gpu.py", *json.loads(sys.argv[1])]
runpy.run_path("benchmarks/gpu.py", run_name="__main__")
print("MODULES " + json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def _normal(name: str) -> str:
    return name.lower().replace("_", "-")


def _bare_site(folder: Path, allowed: set[str]) -> Path:
    """A folder linking only the allowed distributions' files of this environment's site-packages."""
    import torch

    site = Path(torch.__file__).resolve().parents[1]
    owners = metadata.packages_distributions()
    folder.mkdir()
    for entry in site.iterdir():
        if entry.name.endswith(".dist-info"):
            keep = _normal(entry.name.split("-")[0]) in allowed
        else:
            dists = {_normal(d) for d in owners.get(entry.name.split(".")[0], [])}
            keep = bool(dists & allowed)
        if keep:
            (folder / entry.name).symlink_to(entry)
    return folder


def _closure(names) -> set[str]:
    """The distributions ``names`` need to import, their own requirements included (no extras)."""
    seen, todo = set(), [Requirement(n).name for n in names]
    while todo:
        name = _normal(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requirements = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requirements:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


@pytest.mark.slow
def test_gpu_script_runs_on_a_bare_machine(tmp_path, tiny_encoder):
    texts, labels = make_texts(120, seed=2)
    data = tmp_path / "tweets.csv"
    frame = pd.DataFrame({"text": texts, "sentiment": ["negative", "positive"] * 60})
    frame.loc[3, "text"] = "a tweet with a bare\rcarriage return"
    frame.to_csv(data, index=False, quoting=csv.QUOTE_ALL, lineterminator="\n")
    out = tmp_path / "out"
    args = ["--device", "cpu", "--encoder", tiny_encoder, "--data", str(data), "--n-train", "60", "--n-test", "40"]
    args += ["--b1-rows", "4", "--batches", "1,16", "--thresholds", "1.0,0.8", "--repeats", "1", "--epochs", "1"]
    args += ["--threads", "1", "--cache", str(tmp_path / "cache")]
    allowed = _closure(BARE)
    site = _bare_site(tmp_path / "site", allowed)
    env = {**os.environ, "OUT": str(out), "PYTHONPATH": f"{REPOSITORY}{os.pathsep}{site}"}
    done = subprocess.run(
        [sys.executable, "-S", "-c", RUN, json.dumps(args)],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = pd.read_csv(out / "gpu.csv")
    assert (out / "gpu.md").read_text().startswith("# Engine schedulers")
    engines = table[table["config"] != "plain HF"]
    assert set(engines["config"]) == {"shrinking", "refilling"}  # "old engine" differs only on CUDA
    assert engines["mean_exit_layer"].notna().all() and engines["efficiency_tokens"].notna().all()
    assert (table["tokenize_pad_s"] > 0).all()
    assert engines["outside_layers_share_full_depth"].between(0, 1).all()
    assert engines["efficiency_bound_tokens"].between(0, 1.5).all()
    assert (out / "gpu.csv").read_text().startswith('"batch","config"')  # quoted CSV

    modules = json.loads(done.stdout.split("MODULES ", 1)[1].splitlines()[0])
    packages = metadata.packages_distributions()
    imported = {dist.lower().replace("_", "-") for m in modules if m in packages for dist in packages[m]}
    assert imported and imported <= allowed | {"skearly"}, imported - allowed


def test_efficiency_bound_is_one_without_outside_time_and_falls_with_it():
    sys.path.insert(0, str(REPOSITORY / "benchmarks"))
    try:
        from engine import efficiency_bound
    finally:
        sys.path.remove(str(REPOSITORY / "benchmarks"))
    assert efficiency_bound(6.0, 6.0, 5.0) == pytest.approx(1.0)  # all time in layers: the layer speed-up is reachable
    # 1 s outside 6 s of layers, layers 5x faster: 7 / (1 + 1.2) = 3.18x measured, 0.636 of 5x
    assert efficiency_bound(7.0, 6.0, 5.0) == pytest.approx(7.0 / 2.2 / 5.0)
    assert efficiency_bound(7.0, 6.0, 1.0) == pytest.approx(1.0)  # no exits: nothing to lose


def test_engine_rows_are_the_devices_or_the_ones_asked_for():
    import torch

    sys.path.insert(0, str(REPOSITORY / "benchmarks"))
    try:
        from engine import engines
    finally:
        sys.path.remove(str(REPOSITORY / "benchmarks"))
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert engines(cpu) == ["shrinking", "refilling"]  # the kernel choice of "old engine" is CUDA's only
    assert engines(cuda) == ["old engine", "shrinking", "refilling"]
    assert engines(cpu, "shrinking,refilling 0.25") == ["shrinking", "refilling 0.25"]  # opt-in rows, when named
    assert engines(cpu, "shrinking") == ["shrinking"]
    with pytest.raises(SystemExit, match="old engine"):
        engines(cpu, "shrinking,old engine")
