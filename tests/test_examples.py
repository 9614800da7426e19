"""Every example runs (on the tiny encoder, so it takes seconds)."""

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    "argv", [["quickstart.py", "--tiny", "--n-train", "300", "--n-test", "100", "--epochs", "1", "--repeats", "1"]]
)
def test_example_runs(argv, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(EXAMPLES / argv[0]), run_name="__main__")
    out = capsys.readouterr().out
    assert "mean exit layer" in out and "1.00x" in out
