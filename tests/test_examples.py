"""Every example runs (on the tiny encoder, so it takes seconds)."""

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

TINY = ["--tiny", "--n-train", "300", "--epochs", "1"]
CASES = {
    "quickstart": (
        ["quickstart.py", *TINY, "--n-test", "100", "--repeats", "1"],
        ["mean exit layer", "1.00x"],
    ),
    "threshold_tuning": (
        ["threshold_tuning.py", *TINY, "--thresholds", "1.0,0.9,0.8,0.6", "--cache-dir", "{tmp}/cache"],
        ["-> 4 fine-tunes (3 folds + 1 refit", "-> 0 fine-tunes", "best threshold"],
    ),
    "exit_curve": (
        ["exit_curve.py", *TINY, "--n-test", "100", "--out", "{tmp}/curve.png"],
        ["expected_speedup", "oracle_correct", "plot saved to"],
    ),
    "budget_and_criteria": (
        ["budget_and_criteria.py", *TINY, "--n-test", "100", "--targets", "1.5,2"],
        ["budget mode", "patience(2)", "entropy with target_speedup=2"],
    ),
    "pandas_column_transformer": (
        ["pandas_column_transformer.py", *TINY, "--n-test", "100"],
        [
            "is a Series with ndim=1",
            "Series input gives the pipeline's predictions: True",
            "reordered, same predictions: True",
        ],
    ),
    "sentence_pairs": (
        ["sentence_pairs.py", *TINY, "--n-test", "100"],
        ["training pairs", "mean exit layer", "give the same predictions as tuples: True"],
    ),
    "persistence": (
        ["persistence.py", *TINY, "--n-test", "100", "--out", "{tmp}/models"],
        ["joblib: model.joblib", "same probabilities after load: True", "loaded model, threshold 0.7"],
    ),
}


@pytest.mark.parametrize("argv, expected", list(CASES.values()), ids=list(CASES))
def test_example_runs(argv, expected, monkeypatch, capsys, tmp_path):
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(EXAMPLES / argv[0]), run_name="__main__")
    out = capsys.readouterr().out
    for text in expected:
        assert text in out, text
    if argv[0] == "exit_curve.py":
        assert (tmp_path / "curve.png").stat().st_size > 0
